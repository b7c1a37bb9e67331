//! The service as a backend calls it: index, search, ask, ingest, delete, and bad requests.

use rag_proto::v1 as pb;
use tonic::Code;

use crate::client::{ask, failed_paths, search_request, top_sources};
use crate::harness::Workspace;

#[tokio::test(flavor = "multi_thread")]
async fn index_a_folder_then_search_ask_ingest_and_delete_over_grpc() {
    let ws = Workspace::new();
    ws.copy_samples();
    // Bad files next to good ones: they are reported and the rest is indexed.
    let pdf = std::fs::read(ws.docs().join("finance/expense-policy.pdf")).unwrap();
    std::fs::write(ws.docs().join("broken.pdf"), &pdf[..pdf.len() / 3]).unwrap();
    std::fs::write(
        ws.docs().join("binary.txt"),
        b"\x7fELF\x02\x01\x01\0\0\0\0garbage",
    )
    .unwrap();

    let (code, summary) = ws.ingest();
    assert_eq!(
        code, 3,
        "exit code 3 = finished, some files failed: {summary}"
    );
    let mut failed = failed_paths(&summary);
    failed.sort();
    assert_eq!(failed, ["binary.txt", "broken.pdf"], "{summary}");
    let reasons = summary["failed"].to_string();
    assert!(reasons.contains("binary"), "{reasons}");
    assert!(reasons.contains("PDF"), "{reasons}");
    assert_eq!(summary["indexed"], 7, "{summary}");
    assert!(
        summary["chunks_written"].as_u64().unwrap() >= 7,
        "{summary}"
    );

    // An unchanged folder writes nothing.
    let (_, again) = ws.ingest();
    assert_eq!(again["indexed"], 0, "{again}");
    assert_eq!(again["unchanged"], 7, "{again}");
    assert_eq!(again["chunks_written"], 0, "{again}");
    assert_eq!(again["deleted"], 0, "{again}");

    let server = ws.serve().await;

    // Search ranks the document that holds the answer first.
    for (question, source, page) in [
        (
            "How many days of paid annual leave do employees get?",
            "handbook/leave-policy.md",
            0,
        ),
        (
            "What is the hotel limit per night on business trips?",
            "finance/expense-policy.pdf",
            2,
        ),
        ("What does VPN error NWC-412 mean?", "it/vpn-setup.txt", 0),
        (
            "How long must a password be?",
            "it/security-guidelines.md",
            0,
        ),
        (
            "When does the new office in Busan open?",
            "meetings/2026-q3-all-hands.txt",
            0,
        ),
        (
            "Who approves expenses above 1,000 euros?",
            "finance/expense-policy.pdf",
            3,
        ),
    ] {
        let top = top_sources(&server, question).await;
        assert_eq!(
            top.first(),
            Some(&(source.to_owned(), page)),
            "{question}: got {top:?}"
        );
    }

    // A document sent over gRPC is searchable at once; sending it again writes nothing.
    let doc = "# First week\n\nParking permits for the office garage (level -2) are issued at \
               reception on your first day. Bring your ID card.\n\nYour buddy shows you the \
               kitchen and the fire exits.";
    let ingest = pb::IngestDocumentRequest {
        file_name: "onboarding/first-week.md".into(),
        content: doc.as_bytes().to_vec(),
        ..Default::default()
    };
    let first = server
        .client()
        .ingest_document(ingest.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(first.chunks_written >= 1 && !first.unchanged, "{first:?}");
    let top = top_sources(&server, "Where do I get a parking permit?").await;
    assert_eq!(top[0].0, "onboarding/first-week.md", "{top:?}");
    let second = server
        .client()
        .ingest_document(ingest)
        .await
        .unwrap()
        .into_inner();
    assert!(second.unchanged && second.chunks_written == 0, "{second:?}");
    assert_eq!(second.document_id, first.document_id);

    // Ask streams sources, then tokens, then the final answer, grounded in the right document.
    let asked = ask(
        &server,
        "How many days of paid annual leave do employees get per year?",
    )
    .await;
    assert_eq!(asked.order, ["sources", "token", "answer"]);
    assert!(!asked.tokens.is_empty());
    let streamed = asked.tokens.concat();
    // Every sentence of the answer is checked; a supported one names a given source that
    // shares most of its terms or its meaning.
    let answer = &asked.answer;
    assert!(!answer.sentences.is_empty(), "{answer:?}");
    for sentence in &answer.sentences {
        // Citations may be corrected (a sentence cites the source that supports it), so the
        // words are compared without them.
        assert!(
            without_citations(&streamed)
                .contains(without_citations(&sentence.text).trim_end_matches(['.', ' '])),
            "{sentence:?} in {streamed:?}"
        );
        if sentence.supported {
            let n = sentence.supported_by as usize;
            assert!(n >= 1 && n <= asked.sources.len(), "{sentence:?}");
            assert!(
                sentence.lexical_overlap >= 0.6 || sentence.similarity >= 0.7,
                "{sentence:?}"
            );
        } else {
            assert_eq!(sentence.supported_by, 0, "{sentence:?}");
        }
    }
    // A refusal for lack of support keeps the model's words as the draft; otherwise the text is
    // what was streamed, less any citation of a source that was not given.
    if answer.status == pb::AnswerStatus::Unsupported as i32 {
        assert!(answer.sentences.iter().all(|s| !s.supported), "{answer:?}");
        assert_eq!(answer.draft, streamed.trim());
        assert!(answer.citations.is_empty());
    } else {
        assert_eq!(
            answer.status,
            pb::AnswerStatus::Answered as i32,
            "{answer:?}"
        );
        assert!(answer.sentences.iter().any(|s| s.supported), "{answer:?}");
        // A supported sentence cites the source that supports it.
        assert!(!answer.citations.is_empty(), "{answer:?}");
        if answer.invalid_citations.is_empty() {
            assert_eq!(answer.text, streamed.trim());
        }
        for n in &answer.invalid_citations {
            assert!(!answer.text.contains(&format!("[{n}]")), "{answer:?}");
        }
    }
    eprintln!("answer: {answer:?}");
    assert!(
        asked
            .sources
            .iter()
            .any(|s| s.chunk.as_ref().unwrap().source_path == "handbook/leave-policy.md"),
        "sources: {:?}",
        asked.sources
    );
    assert_eq!(asked.sources[0].number, 1);
    // Each citation (there is one at least unless the answer was withheld: checked above)
    // names the source it was given as.
    for c in &asked.answer.citations {
        let given = &asked.sources[c.number as usize - 1];
        assert_eq!(c.source_path, given.chunk.as_ref().unwrap().source_path);
    }
    let usage = asked.answer.usage.unwrap();
    assert!(
        usage.completion_tokens >= 1 && usage.completion_tokens <= 48,
        "{usage:?}"
    );
    assert!(usage.prompt_tokens > 50, "{usage:?}");
    let timings = asked.answer.timings.unwrap();
    assert!(timings.first_token_ms > 0.0 && timings.total_ms >= timings.first_token_ms);

    // A question the documents don't cover is refused without calling the model.
    let asked = ask(&server, "What is the boiling point of mercury in kelvin?").await;
    assert_eq!(
        asked.answer.status,
        pb::AnswerStatus::NotFound as i32,
        "{:?}",
        asked.answer
    );
    assert_eq!(asked.answer.finish_reason, "not_found");
    assert!(asked.sources.is_empty() && asked.tokens.is_empty());

    // DeleteDocument removes a document from results.
    let deleted = server
        .client()
        .delete_document(pb::DeleteDocumentRequest {
            target: Some(pb::delete_document_request::Target::SourcePath(
                "it/vpn-setup.txt".into(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.chunks_deleted >= 1, "{deleted:?}");
    let top = top_sources(&server, "What does VPN error NWC-412 mean?").await;
    assert!(top.iter().all(|(s, _)| s != "it/vpn-setup.txt"), "{top:?}");

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_invalid_argument_naming_the_field() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.docs()).unwrap();
    std::fs::write(ws.docs().join("note.txt"), "The cafeteria opens at 11:30.").unwrap();
    let (code, _) = ws.ingest();
    assert_eq!(code, 0);
    let server = ws.serve().await;
    let mut client = server.client();

    fn expect<T>(r: Result<T, tonic::Status>, field: &str) {
        let Err(status) = r else {
            panic!("request with a bad {field} succeeded")
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
        // Clients that act on the field read it from the google.rpc.BadRequest detail.
        use tonic_types::StatusExt;
        let details = status.get_error_details();
        let violations = &details
            .bad_request()
            .unwrap_or_else(|| panic!("no BadRequest detail: {status:?}"))
            .field_violations;
        assert_eq!(violations.len(), 1, "{status:?}");
        assert_eq!(violations[0].field, field, "{status:?}");
    }

    expect(client.search(search_request("   ")).await, "query");
    let mut too_many = search_request("cafeteria");
    too_many.retrieval.as_mut().unwrap().top_k = 1000;
    expect(client.search(too_many).await, "retrieval.top_k");
    expect(
        client
            .ask(pb::AskRequest {
                question: "".into(),
                ..Default::default()
            })
            .await,
        "question",
    );
    expect(
        client
            .ask(pb::AskRequest {
                question: "When does the cafeteria open?".into(),
                temperature: Some(9.0),
                ..Default::default()
            })
            .await,
        "temperature",
    );
    expect(
        client
            .ingest_document(pb::IngestDocumentRequest {
                file_name: "photo.png".into(),
                media_type: "image/png".into(),
                content: vec![1, 2, 3],
                ..Default::default()
            })
            .await,
        "media_type",
    );
    expect(
        client
            .ingest_document(pb::IngestDocumentRequest {
                file_name: "scan.pdf".into(),
                content: b"%PDF-1.7\n garbage that is no PDF".to_vec(),
                ..Default::default()
            })
            .await,
        // The message names the document too: "content: scan.pdf: PDF could not be read ...".
        "content",
    );
    expect(
        client
            .delete_document(pb::DeleteDocumentRequest { target: None })
            .await,
        "target",
    );

    // Size limits per RPC: a Search is a question and its options, so 300 KB of document ids
    // is refused (as tonic refuses a message over its limit), while an IngestDocument of a
    // larger file goes through.
    let mut bloated = search_request("cafeteria");
    bloated.retrieval.as_mut().unwrap().filter = Some(pb::Filter {
        path_prefix: String::new(),
        document_ids: vec!["x".repeat(1000); 300],
    });
    let status = client.search(bloated).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("Search"), "{status:?}");
    let long = "The cafeteria serves soup on Mondays. ".repeat(10_000);
    let written = client
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "soup.txt".into(),
            content: long.into_bytes(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(written.chunks_written > 0, "{written:?}");

    // The server is still healthy and answers after all of that.
    let top = top_sources(&server, "When does the cafeteria open?").await;
    assert_eq!(top[0].0, "note.txt");

    // Generic gRPC clients can discover the API through reflection.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(server.channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"rag.v1.RagService".to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

/// `text` without its `[n]` citations, spaces collapsed.
fn without_citations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').map(|c| open + c);
        match close {
            Some(close)
                if rest[open + 1..close]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ') =>
            {
                out.push_str(&rest[..open]);
                rest = &rest[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
