//! What `rag bench` and `rag load` ask: the sample folder's questions (or a file's), and one
//! greedy Ask streamed and timed. Shared here so that neither command imports the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rag_proto::v1 as pb;

use crate::client::Client;

const SAMPLE_QUESTIONS: &[&str] = &[
    "How many days of paid annual leave do employees get?",
    "What is the hotel limit per night on business trips?",
    "What does VPN error NWC-412 mean?",
    "How long must a password be?",
    "When does the new office in Busan open?",
    "Who approves expenses above 1,000 euros?",
    "How many days per week can I work remotely?",
    "Until when can I use carried-over leave days?",
];

/// Questions from a file (one per line), or the sample folder's.
pub fn questions(file: Option<&std::path::Path>) -> anyhow::Result<Arc<Vec<String>>> {
    let questions: Vec<String> = match file {
        Some(path) => fs_err::read_to_string(path)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => SAMPLE_QUESTIONS.iter().map(|q| q.to_string()).collect(),
    };
    anyhow::ensure!(!questions.is_empty(), "no questions");
    Ok(Arc::new(questions))
}

/// One greedy Ask, streamed to its end: (time to the first token, answer tokens, time to the
/// last token), each from `started`; or the code it failed with.
pub async fn streamed_ask(
    client: &mut Client,
    question: &str,
    max_tokens: u32,
    started: Instant,
) -> Result<(Duration, u32, Duration), tonic::Code> {
    let mut stream = client
        .ask(pb::AskRequest {
            question: question.to_owned(),
            max_tokens,
            temperature: Some(0.0),
            ..Default::default()
        })
        .await
        .map_err(|e| e.code())?
        .into_inner();
    let (mut first, mut last, mut tokens) = (None, started.elapsed(), 0);
    while let Some(message) = stream.message().await.map_err(|e| e.code())? {
        match message.event {
            Some(pb::ask_response::Event::Token(_)) => {
                first.get_or_insert(started.elapsed());
                last = started.elapsed();
            }
            Some(pb::ask_response::Event::Answer(a)) => {
                tokens = a.usage.map_or(0, |u| u.completion_tokens);
            }
            _ => {}
        }
    }
    Ok((first.unwrap_or(last), tokens, last))
}
