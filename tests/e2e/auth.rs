//! Who may call what: API keys and roles over gRPC and through the CLI, the audit log, the
//! loopback rule for a service without keys, and names of documents sent over the API.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rag_proto::v1 as pb;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::harness::{Workspace, with_key};

const READER: &str = "rag_reader-key-for-tests";
const WRITER: &str = "rag_writer-key-for-tests";
const ADMIN: &str = "rag_admin-key-for-tests";

fn search(query: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        query: query.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_roles_decide_every_call_and_the_audit_log_names_the_key_not_the_secret() {
    let ws = Workspace::new();
    ws.index_samples();
    ws.with_keys(&[
        ("qa-bot", READER, "reader"),
        ("ingester", WRITER, "writer"),
        ("ops", ADMIN, "admin"),
    ]);
    let log = ws.dir.path().join("serve.log");
    let server = ws.serve_logged(&log).await;
    let mut client = server.client();

    // No key, an unknown key, a malformed header: UNAUTHENTICATED, and nothing is searched.
    for key in [None, Some("rag_not-a-key"), Some("")] {
        let err = client
            .search(with_key(search("hotel limit per night"), key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{key:?}: {err:?}");
    }
    let mut basic = tonic::Request::new(search("hotel limit"));
    basic.metadata_mut().insert(
        "authorization",
        MetadataValue::from_static("Basic cmFnOnJhZw=="),
    );
    assert_eq!(
        client.search(basic).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // A reader searches and asks; it may not write or read statistics.
    let hits = client
        .search(with_key(search("hotel limit per night"), Some(READER)))
        .await
        .unwrap()
        .into_inner()
        .chunks;
    assert_eq!(
        hits[0].source_path, "finance/expense-policy.pdf",
        "{hits:?}"
    );
    let doc = pb::IngestDocumentRequest {
        file_name: "hr/parking.md".into(),
        content: b"# Parking\n\nParking permits are issued by the front desk on floor 2.\n"
            .to_vec(),
        ..Default::default()
    };
    let denied = client
        .ingest_document(with_key(doc.clone(), Some(READER)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("qa-bot"), "{denied:?}");
    assert_eq!(
        client
            .index_stats(with_key(pb::IndexStatsRequest {}, Some(READER)))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    // A writer adds a document the reader then finds; only an admin reads statistics.
    let written = client
        .ingest_document(with_key(doc, Some(WRITER)))
        .await
        .unwrap()
        .into_inner();
    assert!(written.chunks_written >= 1, "{written:?}");
    let hits = client
        .search(with_key(
            search("Who issues parking permits?"),
            Some(READER),
        ))
        .await
        .unwrap()
        .into_inner()
        .chunks;
    assert_eq!(hits[0].source_path, "hr/parking.md", "{hits:?}");
    assert_eq!(
        client
            .index_stats(with_key(pb::IndexStatsRequest {}, Some(WRITER)))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let stats = client
        .index_stats(with_key(pb::IndexStatsRequest {}, Some(ADMIN)))
        .await
        .unwrap()
        .into_inner();
    assert!(stats.documents >= 8, "{stats:?}");

    // The CLI sends the key from --api-key or RAG_API_KEY; without one it says why it failed.
    let cli = |args: &[&str], env_key: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rag"));
        command
            .arg("--config")
            .arg(ws.config())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("RAG_API_KEY");
        if let Some(key) = env_key {
            command.env("RAG_API_KEY", key);
        }
        command.output().unwrap()
    };
    let flagged = cli(
        &[
            "search",
            "--addr",
            &server.url,
            "--api-key",
            READER,
            "parking permits",
        ],
        None,
    );
    assert!(flagged.status.success(), "{flagged:?}");
    assert!(String::from_utf8_lossy(&flagged.stdout).contains("hr/parking.md"));
    let from_env = cli(
        &["search", "--addr", &server.url, "parking permits"],
        Some(READER),
    );
    assert!(from_env.status.success(), "{from_env:?}");
    let keyless = cli(&["search", "--addr", &server.url, "parking permits"], None);
    assert!(!keyless.status.success());
    let said = String::from_utf8_lossy(&keyless.stderr);
    assert!(said.contains("API key"), "{said}");

    // Health needs no key (load balancers, `rag status`).
    let status = cli(&["status", "--addr", &server.url], None);
    assert!(status.status.success(), "{status:?}");

    // A reader may not delete; the writer removes its document from the command line.
    let delete = |key: &str| {
        cli(
            &[
                "delete",
                "--addr",
                &server.url,
                "--source",
                "hr/parking.md",
                "--api-key",
                key,
            ],
            None,
        )
    };
    let denied = delete(READER);
    assert!(!denied.status.success());
    let said = String::from_utf8_lossy(&denied.stderr);
    assert!(said.contains("may not delete documents"), "{said}");
    let deleted = delete(WRITER);
    assert!(deleted.status.success(), "{deleted:?}");
    assert!(
        String::from_utf8_lossy(&deleted.stdout).contains("chunks deleted"),
        "{deleted:?}"
    );

    server.stop();
    let log = std::fs::read_to_string(&log).unwrap();
    for secret in [READER, WRITER, ADMIN] {
        assert!(!log.contains(secret), "a key reached the log");
    }
    let audit: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect();
    let line = |key: &str, rpc: &str, code: &str| {
        audit.iter().find(|v| {
            v["fields"]["key"] == key && v["fields"]["rpc"] == rpc && v["fields"]["code"] == code
        })
    };
    assert!(
        line("-", "Search", "UNAUTHENTICATED").is_some(),
        "{audit:#?}"
    );
    assert!(line("qa-bot", "IngestDocument", "PERMISSION_DENIED").is_some());
    let ingested = line("ingester", "IngestDocument", "OK").expect("the writer's ingest");
    assert_eq!(
        ingested["fields"]["documents"].as_str().unwrap(),
        written.document_id
    );
    let removed = line("ingester", "DeleteDocument", "OK").expect("the writer's delete");
    assert_eq!(removed["fields"]["documents"], "hr/parking.md");
    let searched = line("qa-bot", "Search", "OK").expect("the reader's search");
    assert!(searched["fields"]["ms"].as_f64().is_some());
    assert!(searched["fields"]["request_id"].as_str().is_some());
    assert!(!searched["fields"]["documents"].as_str().unwrap().is_empty());
    assert!(searched["timestamp"].as_str().is_some());
}

/// `rag serve` with `args`, expected to refuse to start: its stderr. Fails (rather than hangs)
/// when the service starts instead.
fn refused_to_start(ws: &Workspace, args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("--config")
        .arg(ws.config())
        .arg("serve")
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "rag serve {args:?} exited successfully");
            let output = child.wait_with_output().unwrap();
            return String::from_utf8_lossy(&output.stderr).into_owned();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("rag serve {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_keys_the_service_refuses_to_listen_beyond_loopback() {
    let ws = Workspace::new();
    let said = refused_to_start(&ws, &["--listen", "0.0.0.0:0"]);
    assert!(said.contains("beyond loopback"), "{said}");
    assert!(said.contains("auth.enabled = false"), "{said}");

    // Keys switched on without any key configured: a clear message, not a locked service.
    let config = std::fs::read_to_string(ws.config())
        .unwrap()
        .replace("[auth]\nenabled = false\n", "[auth]\nenabled = true\n");
    std::fs::write(ws.config(), config).unwrap();
    let said = refused_to_start(&ws, &["--listen", "127.0.0.1:0"]);
    assert!(said.contains("rag keys new"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_of_documents_sent_over_the_api_are_normalised_or_refused() {
    let ws = Workspace::new();
    let server = ws.serve().await;
    let mut client = server.client();
    let doc = |name: &str| pb::IngestDocumentRequest {
        file_name: name.into(),
        content: b"# Lockers\n\nLockers on floor 3 are assigned by facilities.\n".to_vec(),
        ..Default::default()
    };
    for name in [
        "../../etc/passwd.txt",
        "/etc/passwd.txt",
        "hr/../../x.md",
        "a\u{7}b.md",
    ] {
        let err = client.ingest_document(doc(name)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name:?}: {err:?}");
        assert!(err.message().contains("file_name"), "{err:?}");
    }
    let stored = client
        .ingest_document(doc("./facilities//lockers.md"))
        .await
        .unwrap()
        .into_inner();
    let hits = client
        .search(search("Who assigns lockers?"))
        .await
        .unwrap()
        .into_inner()
        .chunks;
    assert_eq!(hits[0].source_path, "facilities/lockers.md", "{hits:?}");
    assert_eq!(hits[0].document_id, stored.document_id);
    // The normalised name is the document: sending it under its plain name changes nothing.
    let again = client
        .ingest_document(doc("facilities/lockers.md"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.unchanged, "{again:?}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_rate_is_told_when_to_come_back() {
    let ws = Workspace::new();
    ws.index_samples();
    ws.with_keys(&[("qa-bot", READER, "reader")]);
    // The keys file's one table gets a limit of 2 calls a minute.
    let keys = ws.dir.path().join("keys.toml");
    let mut file = std::fs::read_to_string(&keys).unwrap();
    file.push_str("requests_per_minute = 2\n");
    std::fs::write(&keys, file).unwrap();
    let server = ws.serve().await;
    let mut client = server.client();
    for _ in 0..2 {
        client
            .search(with_key(search("hotel limit per night"), Some(READER)))
            .await
            .unwrap();
    }
    let refused = client
        .search(with_key(search("hotel limit per night"), Some(READER)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("2 calls per minute"),
        "{refused:?}"
    );
    use tonic_types::StatusExt;
    let retry = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a RetryInfo detail");
    assert!(
        retry > std::time::Duration::from_secs(20) && retry <= std::time::Duration::from_secs(30),
        "{retry:?}"
    );
    server.stop();
}
