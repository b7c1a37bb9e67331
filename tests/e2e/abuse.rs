//! Requests made to abuse what the service records and shows: ids and paths that would forge a
//! line of its logs, and the secrets `rag config` would print.

use std::process::Command;

use rag_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::client::search_request;
use crate::harness::Workspace;

/// The line a caller would like the log to show: an audit line of its own making.
const FORGED_LINE: &str =
    "1999-12-31T23:59:59.000000Z  INFO audit: key=\"admin\" rpc=\"DeleteDocument\" code=\"OK\"";

#[tokio::test(flavor = "multi_thread")]
async fn forged_ids_and_paths_are_refused_and_forge_no_log_line() {
    let ws = Workspace::new();
    let log = ws.dir.path().join("serve.log");
    let server = ws
        .serve_text_logged(&log, &["--http-listen", "127.0.0.1:0"])
        .await;
    let forged = format!("x\n{FORGED_LINE}");
    let mut client = server.client();
    let refused = |result: Result<(), tonic::Status>, field: &str| {
        let status = result.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    };

    // gRPC: a delete by id or by path, a search filter, a document written under an id.
    use pb::delete_document_request::Target;
    for (target, field) in [
        (Target::DocumentId(forged.clone()), "document_id"),
        (Target::SourcePath(forged.clone()), "source_path"),
        (Target::DocumentId("x".repeat(300)), "document_id"),
    ] {
        let request = pb::DeleteDocumentRequest {
            target: Some(target),
        };
        refused(client.delete_document(request).await.map(drop), field);
    }
    let mut search = search_request("vacation days");
    search.retrieval.as_mut().unwrap().filter = Some(pb::Filter {
        path_prefix: String::new(),
        document_ids: vec![forged.clone()],
    });
    refused(
        client.search(search).await.map(drop),
        "retrieval.filter.document_ids",
    );
    let mut search = search_request("vacation days");
    search.retrieval.as_mut().unwrap().filter = Some(pb::Filter {
        path_prefix: forged.clone(),
        document_ids: Vec::new(),
    });
    refused(
        client.search(search).await.map(drop),
        "retrieval.filter.path_prefix",
    );
    let ingest = pb::IngestDocumentRequest {
        file_name: "notes.txt".into(),
        content: b"The cafeteria opens at eight.".to_vec(),
        document_id: forged.clone(),
        ..Default::default()
    };
    refused(
        client.ingest_document(ingest).await.map(drop),
        "document_id",
    );

    // HTTP: the source viewer's id (percent-encoded newline), a search filter, feedback.
    let http = server.http.as_deref().unwrap();
    let web = reqwest::Client::new();
    let response = web
        .get(format!(
            "{http}/v1/documents/x%0A1999-12-31T23:59:59Z%20INFO/chunks/0"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "document_id", "{body}");
    let posts = [
        (
            "/v1/search",
            json!({"query": "vacation", "filter": {"document_ids": [forged]}}),
            "retrieval.filter.document_ids",
        ),
        (
            "/v1/feedback",
            json!({"rating": "down", "question": "q", "answer": "a", "status": "answered",
                "sources": [{"number": 1, "document_id": forged, "source_path": "a.md"}]}),
            "sources.document_id",
        ),
        (
            "/v1/feedback",
            json!({"rating": "down", "question": "q", "answer": "a", "status": "answered",
                "sources": [{"number": 1, "document_id": "d1", "source_path": forged}]}),
            "sources.source_path",
        ),
    ];
    for (path, body, field) in posts {
        let response = web
            .post(format!("{http}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], field, "{body}");
    }
    assert!(
        !ws.dir.path().join("data/feedback.jsonl").exists(),
        "refused feedback was stored"
    );

    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.lines().any(|l| l.starts_with("1999-12-31")),
        "a forged line in the log:\n{text}"
    );
    // Each refusal left its one audit line, on a line of its own.
    let audited = text
        .lines()
        .filter(|l| l.contains(" audit: ") && l.contains("INVALID_ARGUMENT"))
        .count();
    assert_eq!(audited, 6, "{text}");
    let http_refusals = text
        .lines()
        .filter(|l| l.contains(" audit: ") && l.contains("status=\"400\""))
        .count();
    assert_eq!(http_refusals, 4, "{text}");
}

/// `rag config` says which secrets are set, never what they are.
#[test]
fn rag_config_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rag"))
            .arg("config")
            .current_dir(dir.path())
            .env_remove("RAG_CONFIG")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let secrets = [
        ("RAG_STORE__API_KEY", "qdrant-s3cr3t"),
        ("RAG_CLIENT__API_KEY", "rag_client-s3cr3t"),
        ("RAG_API_KEY", "rag_flag-s3cr3t"),
        (
            "RAG_AUTH__KEYS",
            "[{id = \"ops\", sha256 = \"digest-s3cr3t\", role = \"admin\"}]",
        ),
        (
            "RAG_STORE__URL",
            "http://qdrant:url-s3cr3t@qdrant.internal:6334",
        ),
    ];
    let printed = config(&secrets);
    assert!(!printed.contains("s3cr3t"), "a secret printed:\n{printed}");
    for line in [
        "api_key = \"***redacted***\"",
        "sha256 = \"***redacted***\"",
        "url = \"http://***redacted***@qdrant.internal:6334\"",
        "id = \"ops\"",
    ] {
        assert!(printed.contains(line), "{line} missing:\n{printed}");
    }
    // Nothing set, nothing redacted.
    let printed = config(&[]);
    assert!(!printed.contains("redacted"), "{printed}");
    assert!(!printed.contains("api_key"), "{printed}");
}
