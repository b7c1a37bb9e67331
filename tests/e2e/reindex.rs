//! Re-embedding without downtime (`rag reindex`): a store built with MiniLM is rebuilt with the
//! multilingual model beside the old one and switched in one step, as an operator changing
//! the embedding model does, while a client searches all along. Over the embedded store (the
//! command asks the running service, which rebuilds beside the store it serves and then answers
//! from the new one) and, with RAG_E2E_QDRANT_URL, over a Qdrant server (the command rebuilds
//! beside the running service, which keeps its collection and model until restarted).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// Every Search hit (document, chunk, similarity) of each question: equal only when the same
/// vectors of the same model answered. The similarity, not the fused score: a document sent
/// meanwhile changes the lexical side's term statistics, never another chunk's similarity.
async fn hits(server: &Server) -> Result<Vec<Vec<String>>, tonic::Status> {
    let mut seen = Vec::new();
    for (question, folder) in QUESTIONS {
        let mut request = search_request(question);
        request.retrieval.as_mut().unwrap().filter = Some(pb::Filter {
            path_prefix: folder.to_string(),
            ..Default::default()
        });
        let chunks = server.client().search(request).await?.into_inner().chunks;
        seen.push(
            chunks
                .iter()
                .map(|c| format!("{} #{} {:.6}", c.source_path, c.chunk_index, c.score))
                .collect(),
        );
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

async fn top_source(server: &Server, question: &str) -> Option<String> {
    server
        .client()
        .search(search_request(question))
        .await
        .unwrap()
        .into_inner()
        .chunks
        .first()
        .map(|c| c.source_path.clone())
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

/// `rag reindex` while, once the rebuild has read the old store, a document is sent to
/// `server` and another deleted (both must be carried over all the same). Returns the
/// command's output.
async fn reindex_while_writing(ws: &Workspace, server: &Server) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("--config")
        .arg(ws.config())
        .args(["reindex", "--addr", &server.url])
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
    let _ = building.await;
    server
        .client()
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "canteen/menu.md".into(),
            content: b"# Canteen\n\nThe canteen serves bibimbap every Thursday.\n".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let deleted = server
        .client()
        .delete_document(pb::DeleteDocumentRequest {
            target: Some(pb::delete_document_request::Target::SourcePath(
                "lost-and-found/umbrellas.md".into(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.chunks_deleted, 1);
    let (stdout, status) = reader.await.unwrap();
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("switched"), "{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_embedding_model_is_built_beside_the_old_one_and_switched_in_one_step() {
    let server_backend = std::env::var_os("RAG_E2E_QDRANT_URL").is_some();
    let ws = Workspace::new();
    ws.index_samples();
    let first = ws.serve().await;
    // Documents that only the store holds: their bytes are not kept, so the rebuild re-embeds
    // their stored chunks. The second is deleted while the rebuild runs.
    for (file_name, content) in [
        (
            "facilities/parking.md",
            "# Parking\n\nParking permits are issued by the front desk on floor 2.\n",
        ),
        (
            "lost-and-found/umbrellas.md",
            "# Umbrellas\n\nForgotten umbrellas are kept at the reception for a month.\n",
        ),
    ] {
        first
            .client()
            .ingest_document(pb::IngestDocumentRequest {
                file_name: file_name.into(),
                content: content.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let old_hits = hits(&first).await.unwrap();
    let old = stats(&first).await;
    assert_eq!(old.embedding_model, "all-MiniLM-L6-v2");

    // The dry run says what would be rebuilt and changes nothing.
    switch_config_to_multilingual(&ws);
    let addr = first.url.clone();
    let plan = run_ok(&ws, &["reindex", "--dry-run", "--addr", &addr]);
    let docs = ws.docs().canonicalize().unwrap();
    assert!(
        plan.contains(&format!("folder {}", docs.display())),
        "{plan}"
    );
    assert!(
        plan.contains("2 documents sent over the API (2 chunks)"),
        "{plan}"
    );
    assert!(plan.contains("multilingual-e5-small"), "{plan}");
    assert!(plan.contains("nothing written"), "{plan}");
    assert!(!plan.contains("also present"), "{plan}");
    assert_eq!(stats(&first).await.store_backend, old.store_backend);

    // A client searches all along the rebuild and the switch; every answer is recorded.
    let first = Arc::new(first);
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let searcher = {
        let (first, done, seen) = (first.clone(), done.clone(), seen.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) || seen.lock().unwrap().is_empty() {
                let answer = hits(&first)
                    .await
                    .expect("Search failed during the rebuild");
                seen.lock().unwrap().push(answer);
            }
        })
    };
    let out = reindex_while_writing(&ws, &first).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::Relaxed);
    searcher.await.unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.len() >= 2,
        "only {} rounds of searches ran",
        seen.len()
    );

    // The new generation, with the new model: embedded, the same service answers from it now;
    // server, a service started after the switch does (the first keeps its collection).
    let first = Arc::into_inner(first).expect("the searcher is done");
    let now = if server_backend {
        assert!(out.contains("kept"), "{out}");
        assert_eq!(stats(&first).await.embedding_model, "all-MiniLM-L6-v2");
        assert_eq!(hits(&first).await.unwrap(), old_hits);
        first.stop();
        ws.serve().await
    } else {
        assert!(out.contains("asking it to rebuild"), "{out}");
        first
    };
    let new = stats(&now).await;
    assert!(
        new.embedding_model.starts_with("multilingual-e5-small"),
        "{new:?}"
    );
    assert_ne!(new.store_backend, old.store_backend);
    assert_eq!(
        new.documents, old.documents,
        "the canteen menu is in, the umbrellas note is out"
    );
    let new_hits = hits(&now).await.unwrap();
    assert_ne!(new_hits, old_hits, "the new model's similarities differ");
    // Every answer during the rebuild came whole from one model: never failed, never mixed.
    for answer in &seen {
        for (q, question_hits) in answer.iter().enumerate() {
            assert!(
                question_hits == &old_hits[q] || question_hits == &new_hits[q],
                "{}: {question_hits:?} is neither {:?} nor {:?}",
                QUESTIONS[q].0,
                old_hits[q],
                new_hits[q]
            );
        }
    }
    for (question, expected) in [
        (QUESTIONS[0].0, "handbook/leave-policy.md"),
        (QUESTIONS[2].0, "facilities/parking.md"),
        (
            "What does the canteen serve on Thursdays?",
            "canteen/menu.md",
        ),
    ] {
        assert_eq!(
            top_source(&now, question).await.as_deref(),
            Some(expected),
            "{question}"
        );
    }

    // The old generation was kept; --drop-old removes every generation but the current one.
    let addr = now.url.clone();
    let plan = run_ok(&ws, &["reindex", "--dry-run", "--addr", &addr]);
    assert!(plan.contains("also present"), "{plan}");
    let drop_old = || {
        let out = run_ok(&ws, &["reindex", "--drop-old", "--addr", &addr]);
        assert!(out.contains("removed"), "{out}");
        let plan = run_ok(&ws, &["reindex", "--dry-run", "--addr", &addr]);
        assert!(!plan.contains("also present"), "{plan}");
    };
    let last = if server_backend {
        now.stop();
        drop_old();
        ws.serve().await
    } else {
        drop_old();
        now
    };
    assert_eq!(stats(&last).await.documents, old.documents);
    assert_eq!(
        hits(&last).await.unwrap(),
        new_hits,
        "the same model, the same answers"
    );
}
