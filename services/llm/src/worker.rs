//! The thread that owns the llama.cpp context.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use tokio::sync::mpsc;

use crate::{Event, Finish, LlmError, Request, Stats};

pub struct Job {
    pub request: Request,
    pub events: mpsc::Sender<Event>,
    pub queued_at: Instant,
}

pub fn run(
    backend: &LlamaBackend,
    model: &LlamaModel,
    n_ctx: NonZeroU32,
    threads: u32,
    mut jobs: mpsc::Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let params = LlamaContextParams::default()
        .with_n_ctx(Some(n_ctx))
        .with_n_batch(512)
        .with_n_threads(threads as i32)
        .with_n_threads_batch(threads as i32);
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(format!("context: {e}")));
            return;
        }
    };
    let template = match model
        .chat_template(None)
        .map_err(|e| e.to_string())
        .or_else(|_| LlamaChatTemplate::new("chatml").map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(format!("chat template: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));

    while let Some(job) = jobs.blocking_recv() {
        metrics::gauge!(crate::QUEUE_DEPTH).decrement(1.0);
        if job.events.is_closed() {
            continue; // the client left while queued
        }
        let queued = job.queued_at.elapsed();
        let events = job.events.clone();
        let result = {
            let _active = Active::start();
            generate(model, &mut ctx, &template, job, queued)
        };
        match result {
            Ok(stats) => {
                let _ = events.blocking_send(Event::Done(stats));
            }
            Err(e) => {
                let _ = events.blocking_send(Event::Failed(e));
            }
        }
    }
}

/// Counts one generation in the active gauge for as long as it lives, however it ends.
struct Active(metrics::Gauge);

impl Active {
    fn start() -> Self {
        let gauge = metrics::gauge!(crate::ACTIVE_GENERATIONS);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn generate(
    model: &LlamaModel,
    ctx: &mut LlamaContext<'_>,
    template: &LlamaChatTemplate,
    job: Job,
    queued: Duration,
) -> Result<Stats, LlmError> {
    let started = Instant::now();
    let request = &job.request;
    let fail = |what: &str, e: &dyn std::fmt::Display| LlmError::Generation(format!("{what}: {e}"));
    // A NUL byte in a document would make the chat message invalid.
    let clean = |s: &str| s.replace('\0', " ");
    let messages = [
        LlamaChatMessage::new("system".into(), clean(&request.system)),
        LlamaChatMessage::new("user".into(), clean(&request.user)),
    ]
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| fail("message", &e))?;
    let prompt = model
        .apply_chat_template(template, &messages, true)
        .map_err(|e| fail("chat template", &e))?;
    let vocab = model.vocab();
    let tokens = vocab.tokenize(prompt.as_bytes(), false, true);
    let n_ctx = ctx.n_ctx() as usize;
    if tokens.is_empty() || tokens.len() + request.max_tokens > n_ctx {
        return Err(LlmError::TooLong {
            prompt: tokens.len(),
            max_tokens: request.max_tokens,
            n_ctx,
        });
    }

    ctx.clear_kv_cache();
    // llama.cpp aborts the process on a batch larger than n_batch: feed the prompt in pieces.
    let n_batch = ctx.n_batch() as usize;
    let mut batch = LlamaBatch::new(n_batch, 1);
    let mut pos: i32 = 0;
    let last = tokens.len() - 1;
    for (piece_index, piece) in tokens.chunks(n_batch).enumerate() {
        batch.clear();
        for (i, token) in piece.iter().enumerate() {
            let is_last = piece_index * n_batch + i == last;
            batch
                .add(*token, pos, &[0], is_last)
                .map_err(|e| fail("batch", &e))?;
            pos += 1;
        }
        ctx.decode(&mut batch).map_err(|e| fail("prompt", &e))?;
    }
    let prompt_eval = started.elapsed();

    // A mild repetition penalty: small models otherwise loop on a sentence until max_tokens.
    let penalty = || LlamaSampler::penalties(model.n_vocab(), 64, 1.15, 0.0, 0.0);
    let mut sampler = if request.temperature <= 0.0 {
        LlamaSampler::chain_simple([penalty(), LlamaSampler::greedy()])
    } else {
        LlamaSampler::chain_simple([
            penalty(),
            LlamaSampler::top_k(40),
            LlamaSampler::top_p(0.95, 1),
            LlamaSampler::temp(request.temperature),
            LlamaSampler::dist(request.seed),
        ])
    };
    let mut pending = Vec::new();
    let mut completion_tokens = 0;
    let mut first_token = None;
    let mut finish = Finish::Length;
    while completion_tokens < request.max_tokens {
        let token = sampler.sample(ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            finish = Finish::Stop;
            break;
        }
        completion_tokens += 1;
        first_token.get_or_insert_with(|| started.elapsed());
        vocab.token_to_piece_into(token, &mut pending, false, None);
        let text = take_utf8(&mut pending);
        if !text.is_empty() && job.events.blocking_send(Event::Token(text)).is_err() {
            // The receiver is gone: nobody wants the rest of this answer.
            return Err(LlmError::Stopped);
        }
        batch.clear();
        batch
            .add(token, pos, &[0], true)
            .map_err(|e| fail("batch", &e))?;
        pos += 1;
        ctx.decode(&mut batch).map_err(|e| fail("decode", &e))?;
    }
    let tail = String::from_utf8_lossy(&pending).into_owned();
    if !tail.is_empty() {
        let _ = job.events.blocking_send(Event::Token(tail));
    }
    let first_token = first_token.unwrap_or_else(|| started.elapsed());
    Ok(Stats {
        prompt_tokens: tokens.len(),
        completion_tokens,
        finish,
        first_token,
        prompt_eval,
        generation: started.elapsed().saturating_sub(first_token),
        queued,
    })
}

/// The longest valid UTF-8 prefix of `pending`, removed from it. A character split across
/// tokens stays in `pending` until its last byte arrives; invalid bytes become U+FFFD.
fn take_utf8(pending: &mut Vec<u8>) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(pending) {
            Ok(s) => {
                out.push_str(s);
                pending.clear();
                return out;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(std::str::from_utf8(&pending[..valid]).expect("checked prefix"));
                match e.error_len() {
                    None => {
                        pending.drain(..valid);
                        return out;
                    }
                    Some(bad) => {
                        out.push('\u{FFFD}');
                        pending.drain(..valid + bad);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::take_utf8;

    #[test]
    fn split_characters_wait_for_their_last_byte() {
        let han = "한".as_bytes();
        let mut pending = han[..2].to_vec();
        assert_eq!(take_utf8(&mut pending), "");
        pending.extend_from_slice(&han[2..]);
        pending.extend_from_slice(b"a");
        assert_eq!(take_utf8(&mut pending), "한a");
        assert!(pending.is_empty());
        let mut bad = vec![b'x', 0xff, b'y'];
        assert_eq!(take_utf8(&mut bad), "x\u{FFFD}y");
    }
}
