//! What an operator watches: the admin listener's /metrics, /healthz and /readyz, and the
//! request id that ties a client's call to the service's logs.

use rag_proto::v1 as pb;
use tonic::Code;

use crate::client::{ask, sample, search_request};
use crate::harness::Workspace;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_health_and_request_ids_for_operators() {
    let ws = Workspace::new();
    ws.copy_samples();
    let (code, summary) = ws.ingest();
    assert_eq!(code, 0, "{summary}");

    let server = ws.start_serving(&["--admin-listen", "127.0.0.1:0"]);
    let (status, body) = server.admin_get("/healthz");
    assert_eq!(status, 200, "{body}");
    server.wait_serving().await;
    let (status, body) = server.admin_get("/readyz");
    assert_eq!(status, 200, "{body}");

    let mut client = server.client();
    // A client's own request id comes back; a call without one gets a fresh one.
    let mut request = tonic::Request::new(search_request("What is the hotel limit per night?"));
    request
        .metadata_mut()
        .insert("x-request-id", "client-chosen-42".parse().unwrap());
    let response = client.search(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "client-chosen-42"
    );
    assert!(!response.into_inner().chunks.is_empty());
    let response = client
        .search(search_request("How do I set up the VPN?"))
        .await
        .unwrap();
    let generated = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // A bad request is counted under its status, and its error carries the id too.
    let err = client
        .search(pb::SearchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.metadata().get("x-request-id").is_some());

    let asked = ask(&server, "How many vacation days do I get?").await;
    // A document sent over the API is counted by the ingest counters.
    client
        .ingest_document(pb::IngestDocumentRequest {
            file_name: "notes/parking.md".into(),
            content: b"# Parking\n\nVisitors park on level -2 of the garage.".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let usage = asked.answer.usage.expect("the model was asked");

    let (status, metrics) = server.admin_get("/metrics");
    assert_eq!(status, 200);
    let requests = |rpc, code| {
        sample(
            &metrics,
            "rag_grpc_requests_total",
            &[("rpc", rpc), ("code", code)],
        )
    };
    assert_eq!(requests("Search", "OK"), 2.0, "{metrics}");
    assert_eq!(requests("Search", "INVALID_ARGUMENT"), 1.0, "{metrics}");
    assert_eq!(requests("Ask", "OK"), 1.0, "{metrics}");
    let latency_count = sample(
        &metrics,
        "rag_grpc_request_duration_seconds_count",
        &[("rpc", "Search"), ("code", "OK")],
    );
    assert_eq!(latency_count, 2.0, "{metrics}");
    // Histograms with buckets, not summaries: the +Inf bucket holds every observation.
    let inf = sample(
        &metrics,
        "rag_grpc_request_duration_seconds_bucket",
        &[("rpc", "Ask"), ("code", "OK"), ("le", "+Inf")],
    );
    assert_eq!(inf, 1.0, "{metrics}");
    // Three retrievals: two searches and the ask.
    assert_eq!(sample(&metrics, "rag_retrieval_seconds_count", &[]), 3.0);
    assert_eq!(sample(&metrics, "rag_first_token_seconds_count", &[]), 1.0);
    assert_eq!(sample(&metrics, "rag_prompt_eval_seconds_count", &[]), 1.0);
    assert_eq!(
        sample(&metrics, "rag_generated_tokens_total", &[]),
        f64::from(usage.completion_tokens)
    );
    assert_eq!(sample(&metrics, "rag_answers_total", &[]), 1.0);
    assert_eq!(
        sample(
            &metrics,
            "rag_ingest_files_total",
            &[("outcome", "indexed")]
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(requests("IngestDocument", "OK"), 1.0, "{metrics}");
    // Nothing is left queued or generating once the answer is in (and both gauges exist: a
    // missing series would read as 0 too).
    for gauge in ["rag_generation_queue_depth", "rag_generations_active"] {
        assert!(
            metrics.lines().any(|l| l.starts_with(&format!("{gauge} "))),
            "{gauge} missing: {metrics}"
        );
        assert_eq!(sample(&metrics, gauge, &[]), 0.0, "{gauge}");
    }

    // `rag status` says what is indexed.
    let out = ws.rag(&["status", "--json", "--addr", &server.url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["status"], "SERVING");
    let index = &status["index"];
    // The folder's documents and the one sent over the API.
    let indexed = summary["indexed"].as_u64().unwrap();
    assert_eq!(
        index["documents"].as_u64().unwrap(),
        indexed + 1,
        "{status}"
    );
    assert!(
        index["chunks"].as_u64().unwrap() > summary["points_total"].as_u64().unwrap(),
        "{status}"
    );
    assert_eq!(index["embedding_model"], "all-MiniLM-L6-v2");
    assert_eq!(index["vector_size"], 384);
    assert!(index["schema_version"].as_u64().unwrap() >= 3, "{status}");
    // Which store, and where: the embedded one, or the server the suite runs against.
    let backend = index["store_backend"].as_str().unwrap();
    match std::env::var("RAG_E2E_QDRANT_URL") {
        Ok(url) => assert!(
            backend.ends_with(&format!("on Qdrant server {url}")),
            "{status}"
        ),
        Err(_) => assert!(backend.starts_with("embedded store "), "{status}"),
    }
    assert!(server.stop().success());
}

/// A client that leaves mid-answer frees the model: the call is counted as CANCELLED, nothing
/// stays queued or generating, and the next question is answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_cancels_its_answer() {
    let ws = Workspace::new();
    ws.index_samples();
    let server = ws.start_serving(&["--admin-listen", "127.0.0.1:0"]);
    server.wait_serving().await;

    let mut stream = server
        .client()
        .ask(pb::AskRequest {
            question: "How many vacation days do I get?".into(),
            max_tokens: 400,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(matches!(
        first.event,
        Some(pb::ask_response::Event::Sources(_))
    ));
    // The prompt is still being read when the client goes away.
    drop(stream);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, metrics) = server.admin_get("/metrics");
        let cancelled = sample(
            &metrics,
            "rag_grpc_requests_total",
            &[("rpc", "Ask"), ("code", "CANCELLED")],
        );
        // Both gauges settle once the worker has seen the job (on a loaded machine it may
        // still sit in the queue for a moment after the call ended).
        if cancelled == 1.0
            && sample(&metrics, "rag_generations_active", &[]) == 0.0
            && sample(&metrics, "rag_generation_queue_depth", &[]) == 0.0
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Whether the model stopped mid-answer or had just finished cannot be told apart here (this
    // model's answers are short, and a loaded machine delays the reset); the llama.cpp worker's
    // own test (`services/llm/tests/generation.rs`) checks that a dropped receiver stops it.

    let asked = ask(&server, "How many vacation days do I get?").await;
    assert!(
        asked.answer.usage.is_some(),
        "the model answers the next one"
    );
    assert!(server.stop().success());
}
