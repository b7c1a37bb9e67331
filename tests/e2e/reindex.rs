//! Re-embedding without downtime (`rag reindex`): a store built with MiniLM is rebuilt with the
//! multilingual model beside the old one and switched in one step, as an operator changing
//! the embedding model does. Over the embedded store (the service stopped for the rebuild: one
//! process per data directory) and, with RAG_E2E_QDRANT_URL, over a Qdrant server (the service
//! keeps answering during the rebuild and the switch, from the collection it started with).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rag_proto::v1 as pb;

use crate::client::search_request;
use crate::harness::{Server, Workspace, repo};

/// Questions, each searched within its folder: a document sent during the rebuild (under
/// `canteen/`) cannot change these results, only another model or another store can.
const QUESTIONS: &[(&str, &str)] = &[
    (
        "How many days of paid annual leave do employees get?",
        "handbook/",
    ),
    ("What does VPN error NWC-412 mean?", "it/"),
    ("Where are parking permits issued?", "facilities/"),
];

/// Every Search hit (document, chunk, similarity) for each question: equal only when the
/// same vectors of the same model answered.
async fn hits(server: &Server) -> Result<Vec<String>, tonic::Status> {
    let mut seen = Vec::new();
    for (question, folder) in QUESTIONS {
        let mut request = search_request(question);
        request.retrieval.as_mut().unwrap().filter = Some(pb::Filter {
            path_prefix: folder.to_string(),
            ..Default::default()
        });
        let chunks = server.client().search(request).await?.into_inner().chunks;
        for c in chunks {
            // The cosine similarity, not the fused score: a document sent meanwhile changes
            // the lexical side's term statistics, but never another chunk's similarity.
            seen.push(format!(
                "{question} | {} #{} {:.6}",
                c.source_path, c.chunk_index, c.score
            ));
        }
    }
    Ok(seen)
}

async fn stats(server: &Server) -> pb::IndexStatsResponse {
    server
        .client()
        .index_stats(pb::IndexStatsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// The workspace's configuration with the multilingual embedding model instead of MiniLM
/// (same store), as `examples/multilingual.toml` sets it.
fn switch_config_to_multilingual(ws: &Workspace) {
    let minilm = format!(
        "model_dir = \"{}/embed/all-MiniLM-L6-v2\"",
        repo().join("models").display()
    );
    let e5 = format!(
        "name = \"multilingual-e5-small\"\nmodel_dir = \"{}/embed/multilingual-e5-small\"\n\
         max_length = 512\nquery_prefix = \"query: \"\npassage_prefix = \"passage: \"\n\
         multilingual = true",
        repo().join("models").display()
    );
    let config = std::fs::read_to_string(ws.config()).unwrap();
    assert!(config.contains(&minilm), "{config}");
    std::fs::write(ws.config(), config.replace(&minilm, &e5)).unwrap();
    ws.append_config("score_threshold = 0.814");
}

fn run_ok(ws: &Workspace, args: &[&str]) -> String {
    let out = ws.rag(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rag {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_embedding_model_is_built_beside_the_old_one_and_switched_in_one_step() {
    let server_backend = std::env::var_os("RAG_E2E_QDRANT_URL").is_some();
    let ws = Workspace::new();
    ws.index_samples();
    let first = ws.serve().await;
    // A document that only the store holds: its bytes are not kept, so the rebuild re-embeds
    // its stored chunks.
    first
        .client()
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "facilities/parking.md".into(),
            content: b"# Parking\n\nParking permits are issued by the front desk on floor 2.\n"
                .to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = hits(&first).await.unwrap();
    let old = stats(&first).await;
    assert_eq!(old.embedding_model, "all-MiniLM-L6-v2");

    switch_config_to_multilingual(&ws);
    // Embedded: the store is one process's at a time, so the rebuild is refused while the
    // service runs, and made with it stopped.
    let first = if server_backend {
        Some(first)
    } else {
        let out = ws.rag(&["reindex", "--dry-run"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("in use by another process"), "{stderr}");
        first.stop();
        None
    };

    // The dry run says what would be rebuilt and changes nothing.
    let plan = run_ok(&ws, &["reindex", "--dry-run"]);
    let docs = ws.docs().canonicalize().unwrap();
    assert!(
        plan.contains(&format!("folder {}", docs.display())),
        "{plan}"
    );
    assert!(
        plan.contains("1 documents sent over the API (1 chunks)"),
        "{plan}"
    );
    assert!(plan.contains("multilingual-e5-small"), "{plan}");
    assert!(plan.contains("nothing written"), "{plan}");
    assert!(!plan.contains("also present"), "{plan}");

    match first {
        // Server: the service answers all along, always as before (the collection and model
        // it started with), while the next collection is built and the alias switched.
        Some(first) => {
            assert_eq!(stats(&first).await.store_backend, old.store_backend);
            let first = Arc::new(first);
            let done = Arc::new(AtomicBool::new(false));
            let searcher = {
                let (first, done, before) = (first.clone(), done.clone(), before.clone());
                tokio::spawn(async move {
                    let mut rounds = 0;
                    while !done.load(Ordering::Relaxed) || rounds == 0 {
                        let seen = hits(&first)
                            .await
                            .expect("Search failed during the rebuild");
                        assert_eq!(seen, before, "Search changed during the rebuild");
                        rounds += 1;
                    }
                    rounds
                })
            };
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rag"))
                .arg("--config")
                .arg(ws.config())
                .arg("reindex")
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let (building_tx, building) = tokio::sync::oneshot::channel();
            let stdout = child.stdout.take().unwrap();
            let reader = tokio::task::spawn_blocking(move || {
                let mut building_tx = Some(building_tx);
                let mut all = String::new();
                for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                    let line = line.unwrap();
                    if line.starts_with("building") {
                        let _ = building_tx.take().map(|tx| tx.send(()));
                    }
                    all.push_str(&line);
                    all.push('\n');
                }
                (all, child.wait().unwrap())
            });
            // Sent to the running service after the rebuild has read the old store: carried
            // over all the same.
            let _ = building.await;
            first
                .client()
                .ingest_document(pb::IngestDocumentRequest {
                    file_name: "canteen/menu.md".into(),
                    content: b"# Canteen\n\nThe canteen serves bibimbap every Thursday.\n".to_vec(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let (stdout, status) = reader.await.unwrap();
            assert!(status.success(), "{stdout}");
            assert!(stdout.contains("switched"), "{stdout}");
            // And after the switch, until it is restarted.
            tokio::time::sleep(Duration::from_millis(300)).await;
            done.store(true, Ordering::Relaxed);
            let rounds = searcher.await.unwrap();
            assert!(rounds >= 2, "only {rounds} rounds of searches ran");
            assert_eq!(stats(&first).await.embedding_model, "all-MiniLM-L6-v2");
            Arc::into_inner(first).expect("the searcher is done").stop();
        }
        None => {
            let stdout = run_ok(&ws, &["reindex"]);
            assert!(stdout.contains("switched"), "{stdout}");
        }
    }

    // A service started now reads the new generation with the new model, folder documents and
    // the API's alike.
    let second = ws.serve().await;
    let new = stats(&second).await;
    assert!(
        new.embedding_model.starts_with("multilingual-e5-small"),
        "{new:?}"
    );
    assert_ne!(new.store_backend, old.store_backend);
    let sent_during = u64::from(server_backend);
    assert_eq!(new.documents, old.documents + sent_during);
    let mut expected = vec![
        (QUESTIONS[0].0, "handbook/leave-policy.md"),
        (QUESTIONS[2].0, "facilities/parking.md"),
    ];
    if server_backend {
        expected.push((
            "What does the canteen serve on Thursdays?",
            "canteen/menu.md",
        ));
    }
    for (question, expected) in expected {
        let top = second
            .client()
            .search(search_request(question))
            .await
            .unwrap()
            .into_inner()
            .chunks;
        assert_eq!(
            top.first().map(|c| c.source_path.as_str()),
            Some(expected),
            "{question}: {top:?}"
        );
    }
    let after = hits(&second).await.unwrap();
    assert_ne!(
        after, before,
        "the new model's scores differ from the old one's"
    );
    second.stop();

    // The old generation was kept; --drop-old removes every generation but the current one.
    let plan = run_ok(&ws, &["reindex", "--dry-run"]);
    assert!(plan.contains("also present"), "{plan}");
    let out = run_ok(&ws, &["reindex", "--drop-old"]);
    assert!(out.contains("removed"), "{out}");
    let plan = run_ok(&ws, &["reindex", "--dry-run"]);
    assert!(!plan.contains("also present"), "{plan}");
    let third = ws.serve().await;
    assert_eq!(stats(&third).await.documents, old.documents + sent_during);
    assert_eq!(
        hits(&third).await.unwrap(),
        after,
        "the same model, the same answers"
    );
}
