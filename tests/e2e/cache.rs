//! Repeated questions (issue 25 item 4): the same question over the same documents gets the
//! checked answer again without generating; any write to the tenant's documents ends that. Over
//! a Qdrant server (RAG_E2E_QDRANT_URL), which other processes write to unseen, nothing is
//! reused.

use rag_proto::v1 as pb;

use crate::client::ask;
use crate::harness::{Server, Workspace};

fn cache_hits(server: &Server) -> u64 {
    server.counter("rag_answer_cache_hits_total")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_question_is_answered_from_the_cache_until_the_documents_change() {
    let ws = Workspace::new();
    ws.index_samples();
    let server = ws.start_serving(&["--admin-listen", "127.0.0.1:0"]);
    server.wait_serving().await;

    let first = ask(
        &server,
        "What is the hotel limit per night on business trips?",
    )
    .await;
    assert_eq!(cache_hits(&server), 0);
    assert!(
        first.answer.usage.unwrap().completion_tokens > 0,
        "generated"
    );
    // Over a Qdrant server other processes write too, unseen by this one: no answer is reused
    // there, and a repeated question is answered anew.
    if std::env::var_os("RAG_E2E_QDRANT_URL").is_some() {
        let again = ask(
            &server,
            "What is the hotel limit per night on business trips?",
        )
        .await;
        assert_eq!(cache_hits(&server), 0);
        assert!(again.answer.usage.unwrap().completion_tokens > 0);
        assert!(server.stop().success());
        return;
    }

    // The same question, spelled with other spaces and case: the same checked answer, from the
    // same sources, without the model.
    let asked = std::time::Instant::now();
    let again = ask(
        &server,
        "  what is the hotel limit per night   on business trips? ",
    )
    .await;
    println!(
        "a repeated question: {:?} at the client; its first answer took {:.0} ms at the service",
        asked.elapsed(),
        first.answer.timings.unwrap().total_ms
    );
    assert_eq!(cache_hits(&server), 1);
    assert_eq!(again.answer.text, first.answer.text);
    assert_eq!(again.answer.status, first.answer.status);
    let paths = |a: &crate::client::Asked| -> Vec<String> {
        a.sources
            .iter()
            .map(|s| s.chunk.as_ref().unwrap().source_path.clone())
            .collect()
    };
    assert!(!paths(&first).is_empty());
    assert_eq!(paths(&again), paths(&first));
    assert_eq!(again.order.first(), Some(&"sources"));
    assert_eq!(again.order.last(), Some(&"answer"));
    let timings = again.answer.timings.unwrap();
    assert_eq!(timings.first_token_ms, 0.0, "{timings:?}");

    // A write to the tenant's documents: the next answer is generated again.
    server
        .client()
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "travel/hotels-2027.md".into(),
            content: b"# Hotels 2027\n\nFrom 2027 the hotel limit per night is 150 euros.".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = ask(
        &server,
        "What is the hotel limit per night on business trips?",
    )
    .await;
    assert_eq!(
        cache_hits(&server),
        1,
        "an answer from before the write was reused"
    );
    assert!(after.answer.usage.unwrap().completion_tokens > 0);
    server.stop();
}
