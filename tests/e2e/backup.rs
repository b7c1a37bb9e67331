//! Backups: `rag snapshot create` of an indexed store, `rag snapshot restore` into an empty
//! one, and the restored store answers the same questions identically, as an operator checks
//! after restoring. With RAG_E2E_QDRANT_URL, both stores are collections on that server.

use rag_proto::v1 as pb;

use crate::client::{ask, search_request};
use crate::harness::{Server, Workspace};

const QUESTIONS: &[&str] = &[
    "How many days of paid annual leave do employees get?",
    "What does VPN error NWC-412 mean?",
    "When does the new office in Busan open?",
    // Not in the documents: nothing passes the threshold, and Ask says so.
    "What is the boiling point of mercury?",
];

/// What a client sees: every Search hit (document, page, chunk, text, both scores) and the
/// Ask answer (text, status, citations) for each question.
async fn answers(server: &Server) -> Vec<String> {
    let mut seen = Vec::new();
    for question in QUESTIONS {
        let chunks = server
            .client()
            .search(search_request(question))
            .await
            .unwrap()
            .into_inner()
            .chunks;
        for c in chunks {
            seen.push(format!(
                "{question} | {} p{} #{} {:.6} {:.6} {}",
                c.source_path, c.page, c.chunk_index, c.score, c.rank_score, c.text
            ));
        }
        let asked = ask(server, question).await;
        let a = asked.answer;
        seen.push(format!(
            "{question} | {:?} {:?} {:?}",
            pb::AnswerStatus::try_from(a.status),
            a.text,
            a.citations
                .iter()
                .map(|c| (c.number, &c.source_path))
                .collect::<Vec<_>>()
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_snapshot_answers_the_same_questions_identically() {
    let original = Workspace::new();
    original.index_samples();
    let server = original.serve().await;
    let before = answers(&server).await;
    assert!(
        before.len() > 2 * QUESTIONS.len(),
        "too little found: {before:#?}"
    );
    // The embedded store is one process's at a time: a backup while the service runs is
    // refused with the reason, and nothing is written.
    let file = original.dir.path().join("backup.snapshot");
    if std::env::var_os("RAG_E2E_QDRANT_URL").is_none() {
        let out = original.rag(&["snapshot", "create", file.to_str().unwrap()]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("in use by another process"), "{stderr}");
        assert!(!file.exists());
    }
    server.stop();

    let out = original.rag(&["snapshot", "create", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("wrote") && stdout.contains("points"),
        "{stdout}"
    );

    // Another machine's empty store, the same configuration otherwise.
    let restored = Workspace::new();
    let out = restored.rag(&["snapshot", "restore", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = restored.serve().await;
    assert_eq!(answers(&server).await, before);
    server.stop();

    // Restoring twice would double nothing: a store with points is refused.
    let out = restored.rag(&["snapshot", "restore", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only into an empty store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
