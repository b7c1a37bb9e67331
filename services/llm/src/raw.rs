//! The limit the scheduler is measured against: the same prompts decoded together by llama.cpp
//! with nothing else — no queue, no channels, no per-step admission, one prefill of all prompts,
//! then one batch per step until every answer ends. Same model, threads, batch size and
//! samplers as the service (`rag bench`).

use std::time::{Duration, Instant};

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::{LlmConfig, LlmError, Prompt, Sampling, load};

#[derive(Debug, Clone)]
pub struct RawRun {
    pub answers: usize,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Evaluating every prompt, until the first token of every answer.
    pub prompt_eval: Duration,
    /// After the prompts: generating every answer.
    pub generation: Duration,
}

impl RawRun {
    /// Generated tokens per second, all answers together, after the prompts.
    pub fn tokens_per_second(&self) -> f64 {
        let secs = self.generation.as_secs_f64();
        if secs > 0.0 {
            (self.completion_tokens.saturating_sub(self.answers)) as f64 / secs
        } else {
            0.0
        }
    }
}

/// Greedy answers to the requests' turns (their sampling options are not used), all in one context as `config.parallel` allows
/// (at most `parallel` prompts).
/// With `ignore_eos`, every answer is `max_tokens` long (see [`crate::Request::ignore_eos`]).
pub fn decode_together(
    config: &LlmConfig,
    turns: &[crate::Request],
    max_tokens: usize,
    ignore_eos: bool,
) -> Result<RawRun, LlmError> {
    let loaded = load(config)?;
    let settings = &loaded.settings;
    let fail = |what: &str, e: &dyn std::fmt::Display| LlmError::Generation(format!("{what}: {e}"));
    if turns.is_empty() || turns.len() > settings.parallel {
        return Err(fail(
            "raw decode",
            &format!(
                "{} prompts for {} sequences",
                turns.len(),
                settings.parallel
            ),
        ));
    }
    let model = &loaded.model;
    let mut ctx = model
        .new_context(loaded.backend, settings.context_params())
        .map_err(|e| fail("context", &e))?;
    let prompts = turns
        .iter()
        .map(|r| Prompt::new(model, &loaded.template, &r.system, &r.examples, &r.user))
        .collect::<Result<Vec<_>, _>>()?;
    let greedy = Sampling {
        temperature: 0.0,
        seed: 0,
    };
    let mut samplers: Vec<_> = prompts.iter().map(|_| greedy.sampler(model)).collect();
    let capacity = settings.step_tokens + settings.parallel;
    let mut batch = LlamaBatch::new(capacity, 1);

    // Every prompt, `capacity` tokens per decode; each answer's first token is sampled in the
    // step that evaluates the last token of its prompt, while those logits are there.
    let started = Instant::now();
    let mut next: Vec<Option<LlamaToken>> = vec![None; prompts.len()];
    let all: Vec<(usize, usize)> = prompts
        .iter()
        .enumerate()
        .flat_map(|(seq, p)| (0..p.tokens.len()).map(move |pos| (seq, pos)))
        .collect();
    let vocab = model.vocab();
    for piece in all.chunks(capacity) {
        batch.clear();
        let mut ends = Vec::new();
        for (row, &(seq, pos)) in piece.iter().enumerate() {
            let last = pos + 1 == prompts[seq].tokens.len();
            batch
                .add(prompts[seq].tokens[pos], pos as i32, &[seq as i32], last)
                .map_err(|e| fail("batch", &e))?;
            if last {
                ends.push((seq, row as i32));
            }
        }
        ctx.decode(&mut batch).map_err(|e| fail("prompt", &e))?;
        for (seq, row) in ends {
            let token = samplers[seq].sample(&ctx, row);
            next[seq] = (ignore_eos || !vocab.is_eog(token)).then_some(token);
        }
    }
    let prompt_eval = started.elapsed();

    let mut generated: Vec<usize> = next.iter().map(|t| usize::from(t.is_some())).collect();
    let generation_started = Instant::now();
    loop {
        batch.clear();
        let mut rows = Vec::new();
        for (seq, token) in next.iter().enumerate() {
            if let Some(token) = token
                && generated[seq] < max_tokens
            {
                let pos = prompts[seq].tokens.len() + generated[seq] - 1;
                batch
                    .add(*token, pos as i32, &[seq as i32], true)
                    .map_err(|e| fail("batch", &e))?;
                rows.push(seq);
            }
        }
        if rows.is_empty() {
            break;
        }
        ctx.decode(&mut batch).map_err(|e| fail("decode", &e))?;
        for (row, &seq) in rows.iter().enumerate() {
            let token = samplers[seq].sample(&ctx, row as i32);
            if vocab.is_eog(token) && !ignore_eos {
                next[seq] = None;
            } else {
                next[seq] = Some(token);
                generated[seq] += 1;
            }
        }
    }
    Ok(RawRun {
        answers: prompts.len(),
        prompt_tokens: prompts.iter().map(|p| p.tokens.len()).sum(),
        completion_tokens: generated.iter().sum(),
        prompt_eval,
        generation: generation_started.elapsed(),
    })
}
