//! The real model on the CPU: streaming, limits, cancellation.

use std::path::PathBuf;

use rag_llm::{Event, Finish, Generator, LlmConfig, LlmError, Request};

/// One generator per test: a shared one would queue the tests behind each other and make
/// timings depend on what else runs.
fn generator() -> Generator {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf");
    Generator::start(&LlmConfig {
        model_file: model,
        n_ctx: 1024,
        threads: 1,
        ..LlmConfig::default()
    })
    .expect("model: run scripts/fetch-models.sh")
}

fn request(user: &str, max_tokens: usize) -> Request {
    Request {
        system: "You are a helpful assistant. Answer briefly.".into(),
        user: user.into(),
        max_tokens,
        temperature: 0.0,
        seed: 0,
    }
}

async fn collect(mut rx: tokio::sync::mpsc::Receiver<Event>) -> (String, rag_llm::Stats) {
    let mut text = String::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Token(t) => text.push_str(&t),
            Event::Done(stats) => return (text, stats),
            Event::Failed(e) => panic!("generation failed: {e}"),
        }
    }
    panic!("stream ended without Done");
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_tokens_and_stops_at_max_tokens() {
    let g = generator();
    let rx = g
        .generate(request("Write a long story about a lighthouse keeper.", 12))
        .unwrap();
    let (text, stats) = collect(rx).await;
    assert!(!text.trim().is_empty());
    assert_eq!(stats.completion_tokens, 12);
    assert_eq!(stats.finish, Finish::Length);
    assert!(stats.prompt_tokens > 10);
    assert!(g.count_tokens("hello world") >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn greedy_decoding_is_reproducible() {
    let g = generator();
    let (a, _) = collect(
        g.generate(request("What is the capital of France?", 16))
            .unwrap(),
    )
    .await;
    let (b, _) = collect(
        g.generate(request("What is the capital of France?", 16))
            .unwrap(),
    )
    .await;
    assert_eq!(a, b);
    assert!(a.contains("Paris"), "{a}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_receiver_cancels_and_the_next_request_still_works() {
    let g = generator();
    let mut rx = g
        .generate(request("Count from one to one thousand in words.", 900))
        .unwrap();
    // Take one token, then walk away.
    loop {
        if let Some(Event::Token(_)) = rx.recv().await {
            break;
        }
    }
    drop(rx);
    let (text, stats) = collect(g.generate(request("Say hello.", 8)).unwrap()).await;
    assert!(!text.is_empty() && stats.completion_tokens <= 8);
    // Had the first request run on, it would have held the worker for 900 tokens (seconds).
    assert!(
        stats.queued.as_secs_f32() < 3.0,
        "waited {:?}",
        stats.queued
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_over_the_window_is_refused() {
    let g = generator();
    let huge = "lorem ipsum ".repeat(2000);
    let mut rx = g.generate(request(&huge, 16)).unwrap();
    match rx.recv().await {
        Some(Event::Failed(LlmError::TooLong { n_ctx, .. })) => assert_eq!(n_ctx, 1024),
        other => panic!("expected TooLong, got {other:?}"),
    }
}
