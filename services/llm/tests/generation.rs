//! The real model on the CPU: streaming, limits, cancellation, continuous batching.

use std::path::PathBuf;

use rag_llm::{Event, Finish, Generator, LlmConfig, LlmError, Request};

/// One generator per test: a shared one would queue the tests behind each other and make
/// timings depend on what else runs.
fn generator() -> Generator {
    with_config(LlmConfig::default())
}

fn with_config(config: LlmConfig) -> Generator {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf");
    Generator::start(&LlmConfig {
        model_file: model,
        n_ctx: 1024,
        threads: 1,
        ..config
    })
    .expect("model: run scripts/fetch-models.sh")
}

fn request(user: &str, max_tokens: usize) -> Request {
    Request {
        system: "You are a helpful assistant. Answer briefly.".into(),
        examples: Vec::new(),
        user: user.into(),
        max_tokens,
        temperature: 0.0,
        seed: 0,
        deadline: None,
        ignore_eos: false,
    }
}

async fn collect(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> (String, rag_llm::Stats) {
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
async fn a_prompt_over_the_window_is_refused_before_it_is_queued() {
    let g = generator();
    let huge = "lorem ipsum ".repeat(2000);
    match g.generate(request(&huge, 16)) {
        Err(LlmError::TooLong { n_ctx, .. }) => assert_eq!(n_ctx, 1024),
        other => panic!("expected TooLong, got {other:?}"),
    }
}

#[test]
fn a_quantized_value_cache_without_flash_attention_is_refused_at_start() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf");
    let refused = Generator::start(&LlmConfig {
        model_file: model,
        cache_type_v: rag_llm::KvType::Q8_0,
        flash_attention: false,
        ..LlmConfig::default()
    });
    match refused {
        Err(e @ LlmError::Load { .. }) => {
            let message = e.to_string();
            assert!(message.contains("llm.cache_type_v = \"q8_0\""), "{message}");
            assert!(message.contains("llm.flash_attention = true"), "{message}");
        }
        Err(other) => panic!("expected a load error, got {other}"),
        Ok(_) => panic!("a q8_0 value cache without flash attention was accepted"),
    }
}

const QUESTIONS: [&str; 5] = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
    "What is two plus two? Explain.",
    "Give a tip for a job interview.",
];

#[tokio::test(flavor = "multi_thread")]
async fn greedy_answers_batched_together_are_the_answers_each_gets_alone() {
    let g = with_config(LlmConfig {
        parallel: 4,
        // A small step budget: prompts are evaluated in pieces, beside answers under way.
        step_tokens: 16,
        ..LlmConfig::default()
    });
    let mut alone = Vec::new();
    for q in QUESTIONS {
        alone.push(collect(g.generate(request(q, 24)).unwrap()).await.0);
    }
    // All at once: four run together, the fifth takes the first free sequence.
    let receivers: Vec<_> = QUESTIONS
        .iter()
        .map(|q| g.generate(request(q, 24)).unwrap())
        .collect();
    let mut together = Vec::new();
    let mut overlapped = 0;
    for rx in receivers {
        let (text, stats) = collect(rx).await;
        together.push(text);
        overlapped += usize::from(stats.queued.is_zero() || stats.shared_prompt_tokens > 0);
    }
    assert!(overlapped >= 4, "the answers did not run together");
    assert_eq!(alone, together);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_system_turn_is_evaluated_once_and_changes_nothing() {
    let shared = with_config(LlmConfig::default());
    let unshared = with_config(LlmConfig {
        share_prefix: false,
        ..LlmConfig::default()
    });
    // The first answer reads the system turn (a piece of its own); later ones restore it.
    let (first, stats) = collect(shared.generate(request(QUESTIONS[0], 16)).unwrap()).await;
    assert_eq!(stats.shared_prompt_tokens, 0, "{stats:?}");
    let (second, stats) = collect(shared.generate(request(QUESTIONS[1], 16)).unwrap()).await;
    assert!(stats.shared_prompt_tokens > 5, "{stats:?}");
    assert!(stats.shared_prompt_tokens < stats.prompt_tokens);
    let (plain_first, _) = collect(unshared.generate(request(QUESTIONS[0], 16)).unwrap()).await;
    let (plain_second, plain) =
        collect(unshared.generate(request(QUESTIONS[1], 16)).unwrap()).await;
    assert_eq!(plain.shared_prompt_tokens, 0);
    assert_eq!((first, second), (plain_first, plain_second));
    // Another system turn is read once, then restored in its turn.
    let other = |q: &str| Request {
        system: "You answer in one word.".into(),
        ..request(q, 8)
    };
    let (third, s) = collect(shared.generate(other(QUESTIONS[2])).unwrap()).await;
    assert_eq!(s.shared_prompt_tokens, 0, "a new system turn is read first");
    let (fourth, s) = collect(shared.generate(other(QUESTIONS[3])).unwrap()).await;
    assert!(s.shared_prompt_tokens > 0);
    let (plain_third, _) = collect(unshared.generate(other(QUESTIONS[2])).unwrap()).await;
    let (plain_fourth, _) = collect(unshared.generate(other(QUESTIONS[3])).unwrap()).await;
    assert_eq!((third, fourth), (plain_third, plain_fourth));
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_parallel_and_queue_requests_are_refused_as_busy() {
    let g = with_config(LlmConfig {
        parallel: 1,
        queue: 1,
        ..LlmConfig::default()
    });
    let running = g
        .generate(request("Count from one to one hundred.", 400))
        .unwrap();
    let mut running = running;
    // Wait until it holds the one sequence.
    while !matches!(running.recv().await, Some(Event::Token(_))) {}
    let waiting = g.generate(request("Say hello.", 4)).unwrap();
    assert!(matches!(
        g.generate(request("Say goodbye.", 4)),
        Err(LlmError::Busy)
    ));
    drop(running);
    let (text, _) = collect(waiting).await;
    assert!(!text.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_ends_the_answer_and_frees_its_sequence() {
    let g = with_config(LlmConfig {
        parallel: 1,
        ..LlmConfig::default()
    });
    let started = std::time::Instant::now();
    let mut rx = g
        .generate(Request {
            deadline: Some(started + std::time::Duration::from_millis(400)),
            ..request("Write a long story about a lighthouse keeper.", 900)
        })
        .unwrap();
    // Queued behind it with a deadline that passes before a sequence is free.
    let late = g
        .generate(Request {
            deadline: Some(started + std::time::Duration::from_millis(100)),
            ..request("Say hello.", 8)
        })
        .unwrap();
    let mut tokens = 0;
    let failure = loop {
        match rx.recv().await {
            Some(Event::Token(_)) => tokens += 1,
            Some(Event::Failed(e)) => break e,
            other => panic!("expected DeadlineExceeded, got {other:?}"),
        }
    };
    assert!(matches!(failure, LlmError::DeadlineExceeded), "{failure}");
    assert!(tokens > 0 && tokens < 900, "{tokens}");
    let mut late = late;
    assert!(matches!(
        late.recv().await,
        Some(Event::Failed(LlmError::DeadlineExceeded))
    ));
    // The one sequence is free again.
    let (text, stats) = collect(g.generate(request("Say hello.", 8)).unwrap()).await;
    assert!(!text.is_empty());
    assert!(stats.queued.as_secs_f32() < 1.0, "{:?}", stats.queued);
}

/// RAG-sized prompts (hundreds of tokens) are read in `step_tokens` pieces beside answers
/// being generated; each still gets the answer it gets alone.
#[tokio::test(flavor = "multi_thread")]
async fn long_prompts_read_in_pieces_give_the_answers_given_alone() {
    let g = Generator::start(&LlmConfig {
        model_file: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
        threads: 1,
        ..LlmConfig::default()
    })
    .unwrap();
    let prompts: Vec<String> = (0..4)
        .map(|i| {
            format!(
                "{}\nQuestion {i}: how many days of leave do employees get?",
                "The leave policy says employees get thirty days of paid leave every year. \
                 Part-time staff get a share. "
                    .repeat(5 + 9 * i)
            )
        })
        .collect();
    let mut alone = Vec::new();
    for p in &prompts {
        alone.push(collect(g.generate(request(p, 48)).unwrap()).await.0);
    }
    // Arriving a little apart: each is admitted while the others are being read or generated.
    let mut receivers = Vec::new();
    for p in &prompts {
        receivers.push(g.generate(request(p, 48)).unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let mut together = Vec::new();
    for rx in receivers {
        together.push(collect(rx).await.0);
    }
    assert_eq!(alone, together);
}

#[tokio::test(flavor = "multi_thread")]
async fn worked_examples_are_part_of_the_shared_prefix() {
    let g = generator();
    let _ = collect(g.generate(request(QUESTIONS[0], 4)).unwrap()).await;
    let plain = collect(g.generate(request(QUESTIONS[1], 4)).unwrap())
        .await
        .1;
    let with_example = |q: &str| Request {
        examples: vec![("What is 1 + 1?".into(), "1 + 1 is 2.".into())],
        ..request(q, 4)
    };
    let _ = collect(g.generate(with_example(QUESTIONS[0])).unwrap()).await;
    let second = collect(g.generate(with_example(QUESTIONS[1])).unwrap())
        .await
        .1;
    assert!(plain.shared_prompt_tokens > 5);
    assert!(second.shared_prompt_tokens > plain.shared_prompt_tokens + 10);
    assert!(second.prompt_tokens > plain.prompt_tokens);
}
