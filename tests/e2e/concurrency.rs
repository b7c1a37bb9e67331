//! Many people at once: answers generated together (continuous batching) are the answers each
//! question gets alone, and a caller's deadline ends its answer on the service's side.

use rag_proto::v1 as pb;
use tonic::Code;

use crate::client::{ask, sample};
use crate::harness::Workspace;

const QUESTIONS: [&str; 4] = [
    "How many vacation days do I get?",
    "What is the hotel limit per night on business trips?",
    "What does VPN error NWC-412 mean?",
    "How long must a password be?",
];

/// The draft the model wrote, whether or not the check let it through.
fn written(asked: &crate::client::Asked) -> String {
    asked.tokens.concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_generated_together_are_the_answers_given_alone() {
    let ws = Workspace::new();
    ws.index_samples();
    // Each question is asked twice: both answers must be generated, not the second reused.
    ws.append_config("answer_cache = 0");
    let server = ws.start_serving(&[]);
    server.wait_serving().await;

    let mut alone = Vec::new();
    for q in QUESTIONS {
        alone.push(ask(&server, q).await);
    }
    let (a, b, c, d) = tokio::join!(
        ask(&server, QUESTIONS[0]),
        ask(&server, QUESTIONS[1]),
        ask(&server, QUESTIONS[2]),
        ask(&server, QUESTIONS[3]),
    );
    let together = [a, b, c, d];
    for (a, t) in alone.iter().zip(&together) {
        let chunks = |x: &crate::client::Asked| -> Vec<String> {
            x.sources.iter().map(|s| format!("{:?}", s.chunk)).collect()
        };
        assert_eq!(chunks(a), chunks(t), "other sources when asked together");
        assert_eq!(written(a), written(t), "greedy answers differ when batched");
        assert_eq!(a.answer.text, t.answer.text);
        assert_eq!(a.answer.status, t.answer.status);
        assert!(!written(t).is_empty());
    }
    assert!(server.stop().success());
}

/// A question whose answer takes longer than the deadlines below.
const LONG: &str = "Summarise every policy: leave, travel, remote work, passwords, VPN.";

/// `grpc-timeout` reaches the generation: tonic's own deadline covers only the response head,
/// and an Ask streams its body afterwards. The service ends the stream with DEADLINE_EXCEEDED
/// and frees the sequence. The HTTP door's `x-rag-timeout` does the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_ends_the_answer_with_deadline_exceeded() {
    let ws = Workspace::new();
    ws.index_samples();
    let server = ws.serve_http_and_admin().await;

    let mut request = tonic::Request::new(pb::AskRequest {
        question: LONG.into(),
        max_tokens: 400,
        retrieval: Some(pb::RetrievalOptions {
            top_k: 8,
            ..Default::default()
        }),
        ..Default::default()
    });
    request.set_timeout(std::time::Duration::from_millis(800));
    let mut stream = server.client().ask(request).await.unwrap().into_inner();
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the answer finished within the deadline; make it longer"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");

    let (_, metrics) = server.admin_get("/metrics");
    let deadlines = sample(
        &metrics,
        "rag_grpc_requests_total",
        &[("rpc", "Ask"), ("code", "DEADLINE_EXCEEDED")],
    );
    assert_eq!(deadlines, 1.0, "{metrics}");

    // Over HTTP: the stream ends with an `error` event, DEADLINE_EXCEEDED, and no answer (or,
    // had the deadline passed before the stream started, 504).
    let response = reqwest::Client::new()
        .post(format!("{}/v1/ask", server.http.as_deref().unwrap()))
        .header("x-rag-timeout", "0.8")
        .json(&serde_json::json!({"question": LONG, "max_tokens": 400, "top_k": 8}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert!(matches!(status, 200 | 504), "{status}: {body}");
    assert!(body.contains("DEADLINE_EXCEEDED"), "{body}");
    assert!(!body.contains("event: answer"), "{body}");
    // The sequence is free: the next question is answered.
    let asked = ask(&server, QUESTIONS[0]).await;
    assert!(asked.answer.usage.is_some());
    assert!(server.stop().success());
}

/// Speculative decoding changes how many tokens a step yields, never the answer: with each
/// source of proposals the service gives the answers it gives without them, asked one at a time
/// and four at once, and its metrics show proposals made and kept. (The test model drafts for
/// itself; its weights take the same CPU kernels for one row and several, so the answers are
/// token for token the same.)
#[tokio::test(flavor = "multi_thread")]
async fn speculative_decoding_gives_the_answers_given_without_it() {
    let answers = |options: Option<String>| async move {
        let ws = Workspace::new();
        ws.index_samples();
        ws.append_config("answer_cache = 0");
        if let Some(options) = options {
            ws.llm_option(&options);
        }
        let server = ws.serve_http_and_admin().await;
        let mut written_alone = Vec::new();
        for q in QUESTIONS {
            written_alone.push(written(&ask(&server, q).await));
        }
        let (a, b, c, d) = tokio::join!(
            ask(&server, QUESTIONS[0]),
            ask(&server, QUESTIONS[1]),
            ask(&server, QUESTIONS[2]),
            ask(&server, QUESTIONS[3]),
        );
        let together: Vec<String> = [a, b, c, d].iter().map(written).collect();
        let counts = (
            server.counter("rag_draft_tokens_proposed_total"),
            server.counter("rag_draft_tokens_accepted_total"),
        );
        assert!(server.stop().success());
        (written_alone, together, counts)
    };
    let (plain, plain_together, plain_counts) = answers(None).await;
    assert_eq!(
        plain_counts,
        (0, 0),
        "nothing is proposed when speculation is off"
    );
    assert!(plain.iter().all(|a| !a.is_empty()));
    let draft = crate::harness::repo().join("models/llm/SmolLM2-135M-Instruct.Q4_1.gguf");
    for options in [
        "speculative = \"prompt_lookup\"".to_string(),
        format!(
            "speculative = \"draft_model\"\ndraft_model_file = \"{}\"",
            draft.display()
        ),
    ] {
        let (alone, together, (proposed, accepted)) = answers(Some(options.clone())).await;
        assert_eq!(alone, plain, "{options}: answers alone");
        assert_eq!(together, plain_together, "{options}: answers together");
        assert!(
            proposed > 0 && accepted > 0,
            "{options}: {proposed} proposed, {accepted} kept"
        );
    }
}
