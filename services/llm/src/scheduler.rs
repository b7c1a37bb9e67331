//! Continuous batching: the thread that owns the llama.cpp context.
//!
//! Each answer is a llama.cpp sequence in one context. Every step decodes the next token of
//! every answer being generated in one batch, then one piece of at most `step_tokens` prompt
//! tokens of a newly admitted answer (chunked prefill: a long prompt is taken in pieces and
//! cannot stall the others). After the step each answer samples its own next token with its own
//! sampler, so an answer does not depend on what it was batched with. An answer that finishes,
//! is cancelled or passes its deadline gives its KV cells back at once, and the next queued
//! request takes its sequence.
//!
//! Every sequence has a KV stream of its own (llama.cpp's non-unified cache), so an answer's
//! cells sit at the same places whatever else runs, and attention sums them in the same order:
//! with flash attention off (its CPU kernels are chosen by shape), llama.cpp built without its
//! tinyBLAS kernels (they take a product over from two rows up: `scripts/cpu-flags.sh`) and
//! prompts read in the same pieces, a greedy answer is the same token for token batched or
//! alone. Batch entries are ordered by sequence id because llama.cpp puts consecutive sequences
//! into one micro-batch.
//!
//! A shared prefix (the system turn, and worked examples if any) is read once, as a piece of
//! its own, by the first answer that starts with it; its KV cells are then saved (a few hundred
//! KB to a few MB) and restored into every later answer with the same prefix instead of being
//! evaluated again. The last few prefixes are kept, so that side requests with instructions and
//! examples of their own (a follow-up's rewrite, a question's translation) do not evict the
//! answers' prefix, nor it theirs. Every answer reads its prefix as a piece of its own, restored
//! or not, so the pieces after it are the same either way.
//!
//! With speculative decoding on (proposals from prompt lookup or a draft model:
//! [`crate::draft`]), a greedy answer's step decodes its sampled token and the proposals for the
//! tokens after it, all with logits; its own
//! sampler then picks token after token from those rows for as long as each pick is the next
//! proposal, and the cells of the proposals it did not keep are removed before the next step.
//! One decode of k + 1 rows can so yield up to k + 1 tokens. Where weights are repacked for the
//! CPU (Q4_K), llama.cpp multiplies four rows at a time in another order than one row, so a
//! near-tie may then fall the other way than in a one-row step.

use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::draft::Draft;
use crate::{Event, Finish, LlmError, Prompt, Sampling, Settings, Stats};

pub(crate) struct Job {
    pub prompt: Prompt,
    pub max_tokens: usize,
    pub sampling: Sampling,
    pub deadline: Option<Instant>,
    pub ignore_eos: bool,
    pub events: mpsc::UnboundedSender<Event>,
    pub queued_at: Instant,
}

pub(crate) fn run(
    backend: &LlamaBackend,
    model: &LlamaModel,
    draft: Option<&LlamaModel>,
    settings: Settings,
    mut jobs: mpsc::Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut ctx = match model.new_context(backend, settings.context_params()) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(format!("context: {e}")));
            return;
        }
    };
    let draft = match Draft::new(backend, draft, &settings) {
        Ok(draft) => draft,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut scheduler = Scheduler::new(model, &settings, draft);
    loop {
        // Idle: wait for work. Busy: take what is queued, without waiting.
        if scheduler.running.is_empty() {
            match jobs.blocking_recv() {
                Some(job) => scheduler.admit(job),
                None => return, // the generator was dropped
            }
        }
        while scheduler.has_free_sequence() {
            match jobs.try_recv() {
                Ok(job) => scheduler.admit(job),
                Err(_) => break,
            }
        }
        scheduler.step(&mut ctx);
    }
}

struct Scheduler<'m> {
    model: &'m LlamaModel,
    step_tokens: usize,
    share_prefix: bool,
    free: Vec<i32>,
    running: Vec<Sequence>,
    prefixes: Prefixes,
    batch: LlamaBatch<'static>,
    draft: Option<Draft<'m>>,
}

/// Prefixes kept: the answers' (one per wording: English, Korean), the rewrites' and the
/// translations', with room to spare.
const PREFIXES_KEPT: usize = 6;

/// A prefix read, ready to be restored into a new answer.
struct Prefix {
    tokens: Vec<LlamaToken>,
    state: SeqState,
}

/// The prefixes read most recently in one context, the latest last.
#[derive(Default)]
pub(crate) struct Prefixes(Vec<Prefix>);

impl Prefixes {
    /// Restores the cells of `tokens` into sequence `id` if they were saved; on failure,
    /// whatever was half-restored is removed and the caller reads them instead.
    pub(crate) fn restore(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        id: i32,
        tokens: &[LlamaToken],
    ) -> bool {
        let Some(at) = self.0.iter().position(|p| p.tokens == tokens) else {
            return false;
        };
        if ctx.state_seq_set(&self.0[at].state, id).is_ok() {
            // Used again: the last to be evicted.
            let prefix = self.0.remove(at);
            self.0.push(prefix);
            true
        } else {
            let _ = ctx.clear_kv_cache_seq(Some(id as u32), None, None);
            false
        }
    }

    /// Saves the cells of sequence `id`, which has read exactly `tokens`.
    pub(crate) fn save(&mut self, ctx: &LlamaContext<'_>, id: i32, tokens: &[LlamaToken]) {
        if self.0.iter().any(|p| p.tokens == tokens) {
            return;
        }
        if let Ok(state) = ctx.state_seq_get(id, LlamaStateSeqFlags::default()) {
            if self.0.len() == PREFIXES_KEPT {
                self.0.remove(0);
            }
            self.0.push(Prefix {
                tokens: tokens.to_vec(),
                state,
            });
        }
    }
}

/// One answer in the context.
pub(crate) struct Sequence {
    pub(crate) id: i32,
    job: Job,
    sampler: LlamaSampler,
    /// Prompt tokens already in the KV cache.
    prefilled: usize,
    /// Sampled and streamed, not yet in the KV cache.
    pub(crate) next: Option<LlamaToken>,
    /// Every token sampled and streamed, `next` last.
    pub(crate) generated: Vec<LlamaToken>,
    /// Greedy with speculative decoding on: proposals are checked at each step.
    pub(crate) speculates: bool,
    /// Proposals for the tokens after `next`, checked at this step.
    pub(crate) proposal: Vec<LlamaToken>,
    /// Leading tokens of the answer (prompt, then `generated`) in the draft model's KV cache.
    pub(crate) drafted: usize,
    /// One past the last position written in the draft's KV cache (rejected proposals beyond
    /// `drafted` until removed).
    pub(crate) draft_end: usize,
    /// One past the last position written in the KV cache (rejected proposals beyond
    /// `position()` until removed).
    kv_end: usize,
    proposed: usize,
    accepted: usize,
    /// Where this step's logits for this sequence are in the batch.
    logits_at: Option<i32>,
    pending: Vec<u8>,
    completion_tokens: usize,
    /// The leading prompt tokens read as a piece of their own (0: sharing off).
    pub(crate) prefix_len: usize,
    /// Prompt tokens restored from the saved prefix, not evaluated.
    shared: usize,
    admitted: Instant,
    prompt_eval: Option<Duration>,
    first_token: Option<Duration>,
    _active: Active,
}

impl Sequence {
    fn position(&self) -> i32 {
        (self.prefilled + self.completion_tokens.saturating_sub(1)) as i32
    }

    pub(crate) fn prompt(&self) -> &[LlamaToken] {
        &self.job.prompt.tokens
    }

    /// The answer's tokens so far: prompt and generated.
    pub(crate) fn len(&self) -> usize {
        self.job.prompt.tokens.len() + self.generated.len()
    }

    pub(crate) fn token_at(&self, pos: usize) -> LlamaToken {
        let prompt = &self.job.prompt.tokens;
        prompt
            .get(pos)
            .copied()
            .unwrap_or_else(|| self.generated[pos - prompt.len()])
    }

    /// Proposals that fit after `next`: the answer may not pass `max_tokens`, and its cells
    /// may not pass its window (which `max_tokens` was checked against).
    pub(crate) fn room_to_propose(&self) -> usize {
        self.job.max_tokens.saturating_sub(self.completion_tokens)
    }

    /// Streams `token` as the answer's next; `Some` when the answer ends with it.
    fn emit(&mut self, model: &LlamaModel, token: LlamaToken) -> Option<Exit> {
        let vocab = model.vocab();
        if vocab.is_eog(token) && !self.job.ignore_eos {
            return Some(Exit::Done(Finish::Stop));
        }
        self.completion_tokens += 1;
        self.generated.push(token);
        self.first_token
            .get_or_insert_with(|| self.admitted.elapsed());
        vocab.token_to_piece_into(token, &mut self.pending, false, None);
        let text = take_utf8(&mut self.pending);
        if !text.is_empty() && self.job.events.send(Event::Token(text)).is_err() {
            return Some(Exit::Abandoned);
        }
        if self.completion_tokens >= self.job.max_tokens {
            return Some(Exit::Done(Finish::Length));
        }
        None
    }

    fn stats(&self, finish: Finish) -> Stats {
        let first_token = self.first_token.unwrap_or_else(|| self.admitted.elapsed());
        Stats {
            prompt_tokens: self.job.prompt.tokens.len(),
            completion_tokens: self.completion_tokens,
            finish,
            first_token,
            prompt_eval: self.prompt_eval.unwrap_or_default(),
            shared_prompt_tokens: self.shared,
            generation: self.admitted.elapsed().saturating_sub(first_token),
            queued: self.admitted.saturating_duration_since(self.job.queued_at),
            draft_proposed: self.proposed,
            draft_accepted: self.accepted,
        }
    }
}

/// How a sequence leaves the context.
enum Exit {
    Done(Finish),
    Failed(LlmError),
    /// Nobody is listening any more.
    Abandoned,
}

impl<'m> Scheduler<'m> {
    fn new(model: &'m LlamaModel, settings: &Settings, draft: Option<Draft<'m>>) -> Self {
        Self {
            model,
            step_tokens: settings.step_tokens,
            share_prefix: settings.share_prefix,
            free: (0..settings.parallel as i32).collect(),
            running: Vec::new(),
            prefixes: Prefixes::default(),
            batch: LlamaBatch::new(settings.batch_rows(), 1),
            draft,
        }
    }

    fn has_free_sequence(&self) -> bool {
        !self.free.is_empty()
    }

    fn admit(&mut self, job: Job) {
        metrics::gauge!(crate::QUEUE_DEPTH).decrement(1.0);
        if job.events.is_closed() {
            return; // the client left while queued
        }
        if job.deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = job.events.send(Event::Failed(LlmError::DeadlineExceeded));
            return;
        }
        // The lowest free id: consecutive sequences share a micro-batch.
        let lowest = (0..self.free.len()).min_by_key(|&i| self.free[i]);
        let id = self
            .free
            .swap_remove(lowest.expect("admitted only with a free sequence"));
        // At least one prompt token is evaluated: its logits give the first answer token.
        let prefix_len = if self.share_prefix {
            job.prompt.system_len.min(job.prompt.tokens.len() - 1)
        } else {
            0
        };
        let sampler = job.sampling.sampler(self.model);
        let speculates = self.draft.is_some() && job.sampling.temperature <= 0.0;
        self.running.push(Sequence {
            id,
            job,
            sampler,
            prefilled: 0,
            next: None,
            generated: Vec::new(),
            speculates,
            proposal: Vec::new(),
            drafted: 0,
            draft_end: 0,
            kv_end: 0,
            proposed: 0,
            accepted: 0,
            logits_at: None,
            pending: Vec::new(),
            completion_tokens: 0,
            prefix_len,
            shared: 0,
            admitted: Instant::now(),
            prompt_eval: None,
            first_token: None,
            _active: Active::start(),
        });
    }

    /// Restores a saved prefix into `seq` if it starts with one and has read nothing yet.
    fn restore_prefix(&mut self, ctx: &mut LlamaContext<'_>, index: usize) {
        let seq = &mut self.running[index];
        if seq.prefilled > 0 || seq.prefix_len == 0 {
            return;
        }
        if self
            .prefixes
            .restore(ctx, seq.id, &seq.job.prompt.tokens[..seq.prefix_len])
        {
            seq.prefilled = seq.prefix_len;
            seq.shared = seq.prefix_len;
        }
    }

    /// Saves `seq`'s cells as a prefix once it has read exactly its prefix.
    fn save_prefix(&mut self, ctx: &LlamaContext<'_>, index: usize) {
        let seq = &self.running[index];
        if seq.prefix_len == 0 || seq.prefilled != seq.prefix_len || seq.shared > 0 {
            return;
        }
        self.prefixes
            .save(ctx, seq.id, &seq.job.prompt.tokens[..seq.prefix_len]);
    }

    /// One step: a decode of the next token of every answer being generated, then a decode of
    /// one prompt piece (the shared prefix while it is being built, else the earliest admitted
    /// prompt not yet read). Two decodes, not one mixed batch: llama.cpp computes a token
    /// differently by the shape of the batch around it (how many rows of its sequence share a
    /// micro-batch), so a prompt is always read in the same `step_tokens` pieces, alone in
    /// their batch, as it would be if it were the only one.
    fn step(&mut self, ctx: &mut LlamaContext<'_>) {
        self.retire_abandoned(ctx);
        if let Err(e) = self.generate(ctx) {
            self.fail_all(ctx, &e);
            return;
        }
        if let Err(e) = self.read_prompt(ctx) {
            self.fail_all(ctx, &e);
        }
    }

    fn generate(&mut self, ctx: &mut LlamaContext<'_>) -> Result<(), String> {
        if let Some(draft) = &mut self.draft {
            draft.propose(&mut self.running)?;
        }
        self.batch.clear();
        let mut order: Vec<usize> = (0..self.running.len()).collect();
        order.sort_by_key(|&i| self.running[i].id);
        let mut row = 0;
        for i in order {
            let seq = &mut self.running[i];
            let Some(token) = seq.next.take() else {
                continue;
            };
            let (position, id) = (seq.position(), seq.id);
            if seq.kv_end > position as usize {
                // The cells of proposals rejected at the last step.
                remove_cells_from(ctx, id, position as usize)?;
            }
            let proposal = std::mem::take(&mut seq.proposal);
            seq.kv_end = position as usize + 1 + proposal.len();
            seq.logits_at = Some(row);
            self.add(token, position, id, true)?;
            for (k, &proposed) in proposal.iter().enumerate() {
                self.add(proposed, position + 1 + k as i32, id, true)?;
            }
            row += 1 + proposal.len() as i32;
            self.running[i].proposal = proposal;
        }
        self.decode_and_sample(ctx)
    }

    /// One piece of the earliest admitted prompt not yet read: its prefix restored if saved,
    /// else read (a piece of its own, then saved), then the rest in `step_tokens` pieces.
    fn read_prompt(&mut self, ctx: &mut LlamaContext<'_>) -> Result<(), String> {
        let Some(i) = self
            .running
            .iter()
            .position(|s| s.next.is_none() && s.prefilled < s.job.prompt.tokens.len())
        else {
            return Ok(());
        };
        self.restore_prefix(ctx, i);
        let (id, start, len, prefix_len) = {
            let seq = &self.running[i];
            (
                seq.id,
                seq.prefilled,
                seq.job.prompt.tokens.len(),
                seq.prefix_len,
            )
        };
        let boundary = if start < prefix_len { prefix_len } else { len };
        let end = (start + self.step_tokens).min(boundary);
        self.batch.clear();
        for pos in start..end {
            let last = pos + 1 == len;
            let token = self.running[i].job.prompt.tokens[pos];
            self.add(token, pos as i32, id, last)?;
        }
        self.running[i].prefilled = end;
        self.running[i].kv_end = end;
        if end == len {
            self.running[i].logits_at = Some((end - start - 1) as i32);
        }
        let saved_at = end == prefix_len;
        self.decode_and_sample(ctx)?;
        if saved_at && self.running.get(i).is_some_and(|s| s.id == id) {
            self.save_prefix(ctx, i);
        }
        Ok(())
    }

    /// Decodes the batch, if it holds anything, and samples every answer whose logits it made.
    fn decode_and_sample(&mut self, ctx: &mut LlamaContext<'_>) -> Result<(), String> {
        if self.batch.n_tokens() == 0 {
            return Ok(());
        }
        ctx.decode(&mut self.batch)
            .map_err(|e| format!("decode: {e}"))?;
        let mut exits = Vec::new();
        for (index, seq) in self.running.iter_mut().enumerate() {
            if let Some(exit) = sample(self.model, ctx, seq) {
                exits.push((index, exit));
            }
        }
        for (index, exit) in exits.into_iter().rev() {
            self.retire(ctx, index, exit);
        }
        Ok(())
    }

    fn add(&mut self, token: LlamaToken, pos: i32, seq: i32, logits: bool) -> Result<(), String> {
        self.batch
            .add(token, pos, &[seq], logits)
            .map_err(|e| format!("batch: {e}"))
    }

    /// Answers whose reader left or whose deadline passed leave before the next step.
    fn retire_abandoned(&mut self, ctx: &mut LlamaContext<'_>) {
        let now = Instant::now();
        for index in (0..self.running.len()).rev() {
            let seq = &self.running[index];
            if seq.job.events.is_closed() {
                self.retire(ctx, index, Exit::Abandoned);
            } else if seq.job.deadline.is_some_and(|d| now >= d) {
                self.retire(ctx, index, Exit::Failed(LlmError::DeadlineExceeded));
            }
        }
    }

    fn fail_all(&mut self, ctx: &mut LlamaContext<'_>, reason: &str) {
        tracing::error!(
            reason,
            answers = self.running.len(),
            "generation step failed"
        );

        for index in (0..self.running.len()).rev() {
            self.retire(
                ctx,
                index,
                Exit::Failed(LlmError::Generation(reason.to_owned())),
            );
        }
    }

    /// Ends an answer: its last event, its KV cells and its sequence given back.
    fn retire(&mut self, ctx: &mut LlamaContext<'_>, index: usize, exit: Exit) {
        // `remove`, not `swap_remove`: prompts are evaluated in the order answers were admitted.
        let mut seq = self.running.remove(index);
        let _ = ctx.clear_kv_cache_seq(Some(seq.id as u32), None, None);
        if let Some(draft) = &mut self.draft {
            draft.release(seq.id);
        }
        self.free.push(seq.id);
        let event = match exit {
            Exit::Done(finish) => {
                if seq.proposed > 0 {
                    tracing::debug!(
                        tokens = seq.completion_tokens,
                        proposed = seq.proposed,
                        accepted = seq.accepted,
                        "draft"
                    );
                }
                let tail = String::from_utf8_lossy(&std::mem::take(&mut seq.pending)).into_owned();
                if !tail.is_empty() {
                    let _ = seq.job.events.send(Event::Token(tail));
                }
                Event::Done(seq.stats(finish))
            }
            Exit::Failed(e) => Event::Failed(e),
            Exit::Abandoned => return,
        };
        let _ = seq.job.events.send(event);
    }
}

/// Removes sequence `id`'s KV cells from position `from` on: proposals a step did not keep, in
/// the answering model's context or the draft model's.
pub(crate) fn remove_cells_from(
    ctx: &mut LlamaContext<'_>,
    id: i32,
    from: usize,
) -> Result<(), String> {
    let removed = ctx
        .clear_kv_cache_seq(Some(id as u32), Some(from as u32), None)
        .map_err(|e| format!("rollback: {e}"))?;
    if removed {
        Ok(())
    } else {
        Err("rollback: the model cannot remove cells".into())
    }
}

/// Samples `seq`'s next token if this step produced its logits, and then, from the rows of its
/// proposals, each next token for as long as the one picked is the proposal that row was
/// computed for; `Some` when the answer ends.
fn sample(model: &LlamaModel, ctx: &LlamaContext<'_>, seq: &mut Sequence) -> Option<Exit> {
    let index = seq.logits_at.take()?;
    if seq.prompt_eval.is_none() {
        seq.prompt_eval = Some(seq.admitted.elapsed());
    }
    let proposal = std::mem::take(&mut seq.proposal);
    let mut kept = 0;
    let token = loop {
        let token = seq.sampler.sample(ctx, index + kept as i32);
        if let Some(exit) = seq.emit(model, token) {
            return Some(exit);
        }
        if proposal.get(kept) != Some(&token) {
            break token;
        }
        kept += 1;
    };
    if !proposal.is_empty() {
        seq.proposed += proposal.len();
        seq.accepted += kept;
        // The draft read `next` and every proposal but the last; those kept are the answer's.
        seq.drafted += kept.min(proposal.len() - 1);
        metrics::counter!(crate::DRAFT_PROPOSED).increment(proposal.len() as u64);
        metrics::counter!(crate::DRAFT_ACCEPTED).increment(kept as u64);
    }
    seq.next = Some(token);
    None
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

/// The longest valid UTF-8 prefix of `pending`, removed from it. A character split across
/// tokens stays in `pending` until its last byte arrives; invalid bytes become U+FFFD.
pub(crate) fn take_utf8(pending: &mut Vec<u8>) -> String {
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
