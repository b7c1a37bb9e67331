//! The service over a Qdrant server (the `qdrant` store backend) when the server goes away and
//! comes back: callers get UNAVAILABLE, never a hang or an internal error, and the service
//! answers again once the server is back, without being restarted.

use std::time::{Duration, Instant};

use rag_proto::v1 as pb;
use tonic::Code;

use crate::harness::{Qdrant, Workspace};

fn search(query: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        query: query.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Qdrant binary (QDRANT_BIN or qdrant on PATH); scripts/test.sh runs it when there is one"]
async fn a_qdrant_restart_under_load_is_unavailable_then_the_service_recovers_by_itself() {
    let mut qdrant = Qdrant::start();
    let ws = Workspace::new();
    ws.use_qdrant(&qdrant.url(), "e2e_restart", 3);
    ws.index_samples();
    let server = ws.serve().await;
    let mut client = server.client();
    let query = "What is the hotel limit per night?";
    let before = client
        .search(search(query))
        .await
        .unwrap()
        .into_inner()
        .chunks;
    assert_eq!(before[0].source_path, "finance/expense-policy.pdf");

    // Eight clients search without pause through the outage; every answer is OK or
    // UNAVAILABLE.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let mut client = server.client();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut codes = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    codes.push(match client.search(search("VPN error NWC-412")).await {
                        Ok(_) => "Ok".to_owned(),
                        Err(s) if s.code() == Code::Unavailable => "Unavailable".to_owned(),
                        Err(s) => format!("{:?}: {}", s.code(), s.message()),
                    });
                }
                codes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    qdrant.kill();
    let started = Instant::now();
    let err = client.search(search(query)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    // Well within the store's 3 s request timeout: a refused connection is known at once.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let err = client
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "note.md".into(),
            content: b"# Note\n\nThe lift is serviced on Fridays.".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = client
        .ask(pb::AskRequest {
            question: query.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;

    qdrant.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        match client.search(search(query)).await {
            Ok(response) => break response.into_inner().chunks,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(Instant::now() < deadline, "not back after 60 s: {status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let ids = |chunks: &[pb::Chunk]| {
        chunks
            .iter()
            .map(|c| (c.document_id.clone(), c.chunk_index))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&after),
        ids(&before),
        "the same answer as before the outage"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = std::collections::BTreeMap::new();
    for task in load {
        for code in task.await.unwrap() {
            *seen.entry(code).or_insert(0) += 1;
        }
    }
    assert!(
        seen.keys().all(|c| c == "Ok" || c == "Unavailable"),
        "{seen:?}"
    );
    assert!(
        seen.contains_key("Ok") && seen.contains_key("Unavailable"),
        "{seen:?}"
    );
    // And writes work again.
    client
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "note.md".into(),
            content: b"# Note\n\nThe lift is serviced on Fridays.".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Polls Search on `client` until a chunk from `source` holding `text` comes back.
async fn until_found(
    client: &mut rag_proto::v1::rag_service_client::RagServiceClient<tonic::transport::Channel>,
    query: &str,
    source: &str,
    text: &str,
) -> Vec<pb::Chunk> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let chunks = client
            .search(search(query))
            .await
            .unwrap()
            .into_inner()
            .chunks;
        if chunks
            .iter()
            .any(|c| c.source_path == source && c.text.contains(text))
        {
            return chunks;
        }
        assert!(
            Instant::now() < deadline,
            "{source} ({text}) not found: {chunks:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Qdrant binary (QDRANT_BIN or qdrant on PATH); scripts/test.sh runs it when there is one"]
async fn two_query_services_and_a_watching_worker_share_one_qdrant() {
    use std::io::BufRead;
    let qdrant = Qdrant::start();
    // Three processes, three configurations and data directories, one collection.
    let [a, b, worker] = [(); 3].map(|()| {
        let ws = Workspace::new();
        ws.use_qdrant(&qdrant.url(), "shared_chunks", 10);
        ws
    });
    std::fs::create_dir_all(worker.docs()).unwrap();
    std::fs::write(
        worker.docs().join("menu.md"),
        "# Menu\n\nOn Fridays the canteen serves fish soup.",
    )
    .unwrap();
    let mut watcher = std::process::Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("--config")
        .arg(worker.config())
        .args(["ingest", "--watch", "--debounce-ms", "300", "--json"])
        .arg(worker.docs())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, runs) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(summary) = serde_json::from_str(&line) {
                let _ = tx.send(summary);
            }
        }
    });
    let first = runs.recv_timeout(Duration::from_secs(120)).unwrap();
    assert_eq!(first["indexed"], 1, "{first}");

    let server_a = a.serve().await;
    let server_b = b.serve().await;
    let (mut client_a, mut client_b) = (server_a.client(), server_b.client());

    // What the worker indexed, both services find.
    let query = "What does the canteen serve on Fridays?";
    for client in [&mut client_a, &mut client_b] {
        until_found(client, query, "menu.md", "fish soup").await;
    }
    // A document sent to one service is searchable on the other at once.
    let sent = client_a
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "parking.md".into(),
            content: b"# Parking\n\nBicycles park in the courtyard behind building B.".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let found = client_b
        .search(search("Where do bicycles park?"))
        .await
        .unwrap()
        .into_inner()
        .chunks;
    assert_eq!(found[0].source_path, "parking.md", "{found:?}");
    assert_eq!(found[0].document_id, sent.document_id);
    // A change the worker picks up reaches both; a delete on B is gone from A.
    std::fs::write(
        worker.docs().join("menu.md"),
        "# Menu\n\nOn Fridays the canteen serves mushroom risotto.",
    )
    .unwrap();
    for client in [&mut client_a, &mut client_b] {
        until_found(client, query, "menu.md", "risotto").await;
    }
    let deleted = client_b
        .delete_document(pb::DeleteDocumentRequest {
            target: Some(pb::delete_document_request::Target::DocumentId(
                sent.document_id.clone(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.chunks_deleted > 0);
    let after = client_a
        .search(search("Where do bicycles park?"))
        .await
        .unwrap()
        .into_inner()
        .chunks;
    assert!(
        after.iter().all(|c| c.source_path != "parking.md"),
        "{after:?}"
    );
    let _ = watcher.kill();
    let _ = watcher.wait();
}

/// Every shard replica of `collection` that `peer` knows of is active (a restarted peer has
/// caught up).
fn all_replicas_active(peer: &Qdrant, collection: &str) -> bool {
    let (_, body) = peer.http_get(&format!("/collections/{collection}/cluster"));
    let info: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let states: Vec<&str> = ["local_shards", "remote_shards"]
        .iter()
        .flat_map(|k| info["result"][k].as_array().cloned().unwrap_or_default())
        .map(|s| s["state"].as_str().unwrap_or("?").to_owned())
        .map(|s| if s == "Active" { "Active" } else { "other" })
        .collect();
    !states.is_empty() && states.iter().all(|s| *s == "Active")
}

async fn ranked(
    client: &mut rag_proto::v1::rag_service_client::RagServiceClient<tonic::transport::Channel>,
    query: &str,
) -> Result<Vec<(String, u32)>, tonic::Status> {
    Ok(client
        .search(search(query))
        .await?
        .into_inner()
        .chunks
        .into_iter()
        .map(|c| (c.source_path, c.chunk_index))
        .collect())
}

async fn chunks_stored(
    client: &mut rag_proto::v1::rag_service_client::RagServiceClient<tonic::transport::Channel>,
) -> u64 {
    client
        .index_stats(pb::IndexStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .chunks
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Qdrant binary (QDRANT_BIN or qdrant on PATH); scripts/test.sh runs it when there is one"]
async fn a_three_peer_cluster_loses_a_peer_without_losing_answers_or_points() {
    let questions = [
        "What is the hotel limit per night?",
        "VPN error NWC-412",
        "How many vacation days do I get?",
        "When was the all-hands meeting?",
    ];
    // The reference: one server.
    let single = Qdrant::start();
    let reference = Workspace::new();
    reference.use_qdrant(&single.url(), "chunks", 10);
    // Rankings are compared as sets below (shards weigh lexical terms apart); a cap per document
    // would make the set depend on that order too.
    reference.append_config("per_document = 0");
    reference.index_samples();
    let reference_server = reference.serve().await;
    let mut reference_client = reference_server.client();

    // Three peers; every shard on two of them. `store.url` lists them all, the first in use.
    let mut peers = Qdrant::cluster(3);
    let ws = Workspace::new();
    let urls: Vec<String> = peers.iter().map(Qdrant::url).collect();
    ws.use_qdrant_with(
        &urls.join(","),
        "chunks",
        10,
        "shards = 3\nreplication_factor = 2\nwrite_consistency = 1",
    );
    ws.append_config("per_document = 0");
    ws.index_samples();
    let (_, body) = peers[0].http_get("/collections/chunks");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    let params = &config["result"]["config"]["params"];
    assert_eq!(
        (
            params["shard_number"].as_u64(),
            params["replication_factor"].as_u64()
        ),
        (Some(3), Some(2)),
        "{body}"
    );
    let server = ws.start_serving(&["--admin-listen", "127.0.0.1:0"]);
    server.wait_serving().await;
    let mut client = server.client();
    // The same chunks as on one server. Their order may differ: Qdrant 1.18 weighs lexical terms
    // by each shard's own document frequencies, so a 15-chunk corpus over 3 shards can rank the
    // lexical side a little differently (collection-wide IDF came with Qdrant 1.19).
    let mut expected = Vec::new();
    for q in questions {
        let mut want = ranked(&mut reference_client, q).await.unwrap();
        let got = ranked(&mut client, q).await.unwrap();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        want.sort();
        assert_eq!(got_sorted, want, "{q}");
        expected.push(got);
    }
    let points = chunks_stored(&mut reference_client).await;
    assert_eq!(chunks_stored(&mut client).await, points);

    // The peer the service talks to dies: every question still gets its answer, from the
    // replicas on the other peers.
    peers[0].kill();
    for (q, want) in questions.iter().zip(&expected) {
        assert_eq!(
            &ranked(&mut client, q).await.unwrap(),
            want,
            "{q} with a peer down"
        );
    }
    // The service says it moved to another peer.
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rag_store_failovers_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    // And Ask answers to the end, from the hotel question's document.
    let mut stream = client
        .ask(pb::AskRequest {
            question: questions[0].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut sources = Vec::new();
    let mut answer = None;
    while let Some(message) = stream.message().await.unwrap() {
        match message.event.unwrap() {
            pb::ask_response::Event::Sources(s) => sources = s.sources,
            pb::ask_response::Event::Answer(a) => answer = Some(a),
            pb::ask_response::Event::Token(_) | pb::ask_response::Event::Rewrite(_) => {}
        }
    }
    let answer = answer.expect("the Ask stream ends with its answer");
    let paths: Vec<&str> = sources
        .iter()
        .map(|s| s.chunk.as_ref().unwrap().source_path.as_str())
        .collect();
    assert!(
        paths.contains(&"finance/expense-policy.pdf"),
        "with a peer down: {paths:?}"
    );
    // An answer cites the sources that support it; a refusal cites none.
    assert_eq!(
        answer.citations.is_empty(),
        answer.status != pb::AnswerStatus::Answered as i32,
        "with a peer down: {answer:?}"
    );
    for c in &answer.citations {
        assert!(
            c.number >= 1 && c.number as usize <= sources.len(),
            "{answer:?}"
        );
        assert_eq!(c.source_path, paths[c.number as usize - 1], "{answer:?}");
    }

    // Ingest goes on (or fails cleanly and the next run completes it).
    let note = "# Lift\n\nThe lift in building B is serviced on Fridays.\n";
    for ws in [&ws, &reference] {
        std::fs::write(ws.docs().join("lift.md"), note).unwrap();
    }
    let (code, summary) = ws.ingest();
    if code != 0 {
        eprintln!("ingest with a peer down: {summary}");
        let (code, summary) = ws.ingest();
        assert_eq!(code, 0, "{summary}");
    }
    let (code, summary) = reference.ingest();
    assert_eq!(code, 0, "{summary}");

    // The peer comes back and catches up; then nothing is lost or doubled.
    peers[0].restart();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !peers.iter().all(|p| all_replicas_active(p, "chunks")) {
        assert!(Instant::now() < deadline, "replicas not active after 120 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        chunks_stored(&mut client).await,
        chunks_stored(&mut reference_client).await
    );
    // The same chunks as on one server, the new note included (order: see above).
    for q in questions.iter().chain(&["When is the lift serviced?"]) {
        let (mut got, mut want) = (
            ranked(&mut client, q).await.unwrap(),
            ranked(&mut reference_client, q).await.unwrap(),
        );
        got.sort();
        want.sort();
        assert_eq!(got, want, "{q} after the peer came back");
    }
}
