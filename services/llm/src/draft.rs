//! Speculative decoding's draft side: the next few tokens of every greedy answer are proposed,
//! and the scheduler has the answering model check them all in one decode (see
//! [`crate::scheduler`]). Proposals never change an answer: the answering model's own sampler
//! picks every token, a proposal is kept only where it is that token, and the cells of the rest
//! are removed. They change only how many tokens one decode yields.
//!
//! Two sources of proposals:
//! - **prompt lookup**: the tokens that followed the answer's last few tokens where these last
//!   occurred in the prompt or the answer. Free to make, and right where an answer quotes its
//!   sources; nothing is proposed where nothing matches.
//! - **a draft model**: a smaller model of the same vocabulary, with a context of its own (a KV
//!   stream per sequence, as the answering model's). It reads an answer's prompt after that
//!   answer's first token (a person waits for the first word, not for the draft), in pieces,
//!   while the answer goes on without proposals; from then on it proposes. The shared prefix
//!   (the system turn) is read once and restored, as in the answering model's context. The
//!   answering model samples greedily with a repetition penalty (see [`crate::Sampling`]); the
//!   draft applies the same penalty to the same recent tokens before its argmax, so that it
//!   proposes what the answering model would pick rather than what it would pick unpenalised.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::scheduler::{Prefixes, Sequence, remove_cells_from};
use crate::{PENALTY_LAST_N, PENALTY_REPEAT, Settings, Speculative};

/// Where proposals come from, when speculation is on.
pub(crate) enum Draft<'m> {
    Lookup(PromptLookup),
    Model(DraftModel<'m>),
}

impl<'m> Draft<'m> {
    /// The configured source of proposals; `None` when speculation is off.
    pub(crate) fn new(
        backend: &LlamaBackend,
        model: Option<&'m LlamaModel>,
        settings: &Settings,
    ) -> Result<Option<Self>, String> {
        Ok(match (settings.speculative, model) {
            (Speculative::Off, _) => None,
            (Speculative::PromptLookup, _) => Some(Self::Lookup(PromptLookup {
                tokens: settings.draft_tokens,
            })),
            (Speculative::DraftModel, Some(model)) => {
                Some(Self::Model(DraftModel::new(backend, model, settings)?))
            }
            (Speculative::DraftModel, None) => return Err("draft model not loaded".into()),
        })
    }

    /// Fills `proposal` of the greedy answers under way that get proposals at this step.
    pub(crate) fn propose(&mut self, running: &mut [Sequence]) -> Result<(), String> {
        match self {
            Self::Lookup(lookup) => {
                lookup.propose(running);
                Ok(())
            }
            Self::Model(model) => model.propose(running),
        }
    }

    /// Gives a finished answer's cells back.
    pub(crate) fn release(&mut self, id: i32) {
        if let Self::Model(model) = self {
            model.release(id);
        }
    }
}

/// Proposals looked up in the answer's own tokens (prompt and answer so far).
pub(crate) struct PromptLookup {
    tokens: usize,
}

/// The longest key first: a longer match predicts better. One token is too weak a key (every
/// comma would propose what followed the last comma).
const LOOKUP_KEYS: [usize; 2] = [3, 2];

impl PromptLookup {
    fn propose(&self, running: &mut [Sequence]) {
        for seq in running
            .iter_mut()
            .filter(|s| s.speculates && s.next.is_some())
        {
            let want = seq.room_to_propose().min(self.tokens);
            let len = seq.len();
            for n in LOOKUP_KEYS {
                if want == 0 || len <= n {
                    break;
                }
                let key: Vec<LlamaToken> = (len - n..len).map(|p| seq.token_at(p)).collect();
                // The latest earlier occurrence with a token after it.
                let found = (0..len - n)
                    .rev()
                    .find(|&at| (0..n).all(|j| seq.token_at(at + j) == key[j]));
                if let Some(at) = found {
                    let from = at + n;
                    let to = (from + want).min(len);
                    seq.proposal = (from..to).map(|p| seq.token_at(p)).collect();
                    break;
                }
            }
        }
    }
}

pub(crate) struct DraftModel<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    capacity: usize,
    /// Tokens proposed per answer per step.
    tokens: usize,
    prefixes: Prefixes,
    #[cfg(test)]
    pub(crate) sabotage: bool,
}

impl<'m> DraftModel<'m> {
    fn new(
        backend: &LlamaBackend,
        model: &'m LlamaModel,
        settings: &Settings,
    ) -> Result<Self, String> {
        let ctx = model
            .new_context(backend, settings.context_params())
            .map_err(|e| format!("draft context: {e}"))?;
        let capacity = settings.batch_rows();
        Ok(Self {
            ctx,
            batch: LlamaBatch::new(capacity, 1),
            capacity,
            tokens: settings.draft_tokens,
            prefixes: Prefixes::default(),
            #[cfg(test)]
            sabotage: settings.sabotage_draft,
        })
    }

    /// Fills `proposal` of every greedy answer under way whose prompt the draft has read; reads
    /// a piece of the prompt of those it has not, as far as the batch has room. Sequences are
    /// taken in id order.
    fn propose(&mut self, running: &mut [Sequence]) -> Result<(), String> {
        let mut order: Vec<usize> = (0..running.len())
            .filter(|&i| running[i].speculates && running[i].next.is_some())
            .collect();
        order.sort_by_key(|&i| running[i].id);

        // Catch up: every token of the answer not yet read, up to and including the one just
        // sampled, whose logits give the first proposal.
        self.batch.clear();
        let mut drafting: Vec<(usize, usize)> = Vec::new();
        let mut rows = Vec::new();
        let mut prefixes_read = Vec::new();
        for &i in &order {
            let seq = &mut running[i];
            self.forget_rejected(seq)?;
            let want = seq.room_to_propose().min(self.tokens);
            let room = self.capacity - self.batch.n_tokens() as usize;
            if want == 0 || room == 0 {
                continue;
            }
            let prefix = &seq.prompt()[..seq.prefix_len];
            if seq.drafted == 0
                && !prefix.is_empty()
                && self.prefixes.restore(&mut self.ctx, seq.id, prefix)
            {
                seq.drafted = prefix.len();
            }
            // The prefix is a piece of its own, saved once read.
            let len = seq.len();
            let boundary = if seq.drafted < seq.prefix_len {
                seq.prefix_len
            } else {
                len
            };
            let end = boundary.min(seq.drafted + room);
            for pos in seq.drafted..end {
                self.add(seq.token_at(pos), pos, seq.id, pos + 1 == len)?;
            }
            seq.drafted = end;
            seq.draft_end = end;
            if end == seq.prefix_len {
                prefixes_read.push(i);
            }
            if end == len {
                drafting.push((i, want));
                rows.push((i, self.batch.n_tokens() - 1));
            }
        }
        if self.batch.n_tokens() > 0 {
            self.decode()?;
        }
        for i in prefixes_read {
            let seq = &running[i];
            self.prefixes
                .save(&self.ctx, seq.id, &seq.prompt()[..seq.prefix_len]);
        }
        // Then one token per round, every drafting answer in the same batch.
        while !rows.is_empty() {
            for &(i, row) in &rows {
                let token = self.pick(&running[i], row);
                running[i].proposal.push(token);
            }
            self.batch.clear();
            rows.clear();
            for &(i, want) in &drafting {
                let seq = &mut running[i];
                if seq.proposal.len() >= want {
                    continue;
                }
                let last = *seq.proposal.last().expect("a proposal was made");
                self.add(last, seq.draft_end, seq.id, true)?;
                seq.draft_end += 1;
                rows.push((i, self.batch.n_tokens() - 1));
            }
            if !rows.is_empty() {
                self.decode()?;
            }
        }
        Ok(())
    }

    /// Removes the cells of proposals the answering model rejected (or never checked).
    fn forget_rejected(&mut self, seq: &mut Sequence) -> Result<(), String> {
        if seq.draft_end > seq.drafted {
            remove_cells_from(&mut self.ctx, seq.id, seq.drafted)
                .map_err(|e| format!("draft {e}"))?;
            seq.draft_end = seq.drafted;
        }
        Ok(())
    }

    /// The draft's greedy pick at `row`, with the answering model's repetition penalty over
    /// the answer's recent tokens and the proposals before it.
    fn pick(&self, seq: &Sequence, row: i32) -> LlamaToken {
        let logits = self.ctx.get_logits_ith(row);
        let mut recent: Vec<i32> = seq
            .generated
            .iter()
            .chain(&seq.proposal)
            .rev()
            .take(PENALTY_LAST_N)
            .map(|t| t.0)
            .collect();
        recent.sort_unstable();
        recent.dedup();
        let mut best = (0, f32::NEG_INFINITY);
        for (token, &logit) in logits.iter().enumerate() {
            let logit = if recent.binary_search(&(token as i32)).is_err() {
                logit
            } else if logit <= 0.0 {
                logit * PENALTY_REPEAT
            } else {
                logit / PENALTY_REPEAT
            };
            if logit > best.1 {
                best = (token, logit);
            }
        }
        #[cfg(test)]
        if self.sabotage && seq.proposal.len() == 1 {
            // Every answer's second proposal made wrong: the check must reject it and all
            // after it, and the answer must be what it is without a draft.
            return LlamaToken(best.0 as i32 ^ 1);
        }
        LlamaToken(best.0 as i32)
    }

    fn add(&mut self, token: LlamaToken, pos: usize, seq: i32, logits: bool) -> Result<(), String> {
        self.batch
            .add(token, pos as i32, &[seq], logits)
            .map_err(|e| format!("draft batch: {e}"))
    }

    fn decode(&mut self) -> Result<(), String> {
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| format!("draft decode: {e}"))
    }

    fn release(&mut self, id: i32) {
        let _ = self.ctx.clear_kv_cache_seq(Some(id as u32), None, None);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::{Event, Generator, LlmConfig, Request, Speculative, Stats};

    fn model() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    /// The test model drafting for itself: its proposals are mostly right, so most steps keep
    /// several tokens, and the rest are rejected as with any draft.
    fn generator(speculative: Speculative, sabotage: bool) -> Generator {
        let config = LlmConfig {
            model_file: model(),
            n_ctx: 1024,
            threads: 1,
            parallel: 4,
            step_tokens: 32,
            speculative,
            draft_model_file: Some(model()),
            draft_tokens: 4,
            ..LlmConfig::default()
        };
        Generator::start_with(&config, |s| s.sabotage_draft = sabotage)
            .expect("model: run scripts/fetch-models.sh")
    }

    fn request(user: &str, max_tokens: usize, temperature: f32) -> Request {
        Request {
            system: "You are a helpful assistant. Answer briefly.".into(),
            examples: Vec::new(),
            user: user.into(),
            max_tokens,
            temperature,
            seed: 7,
            deadline: None,
            ignore_eos: false,
        }
    }

    async fn collect(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> (String, Stats) {
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

    const QUESTIONS: [&str; 5] = [
        "What is the capital of France? Explain its history.",
        "Name the colours of the rainbow, one per line.",
        "Write three sentences about the sea.",
        "Employees get thirty days of paid leave every year. How many days of leave do \
         employees get, and who decides when they are taken?",
        "Give three tips for a job interview.",
    ];

    /// Each question alone, then all at once (four together, the fifth in the first free
    /// sequence).
    async fn answers(g: &Generator, max_tokens: usize) -> (Vec<String>, Vec<String>, Vec<Stats>) {
        let mut alone = Vec::new();
        for q in QUESTIONS {
            alone.push(
                collect(g.generate(request(q, max_tokens, 0.0)).unwrap())
                    .await
                    .0,
            );
        }
        let receivers: Vec<_> = QUESTIONS
            .iter()
            .map(|q| g.generate(request(q, max_tokens, 0.0)).unwrap())
            .collect();
        let (mut together, mut stats) = (Vec::new(), Vec::new());
        for rx in receivers {
            let (text, s) = collect(rx).await;
            together.push(text);
            stats.push(s);
        }
        (alone, together, stats)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn greedy_answers_with_a_draft_are_the_answers_without_one() {
        let plain = generator(Speculative::Off, false);
        let (expected, expected_together, _) = answers(&plain, 64).await;
        assert_eq!(expected, expected_together);
        drop(plain);

        let drafted = generator(Speculative::DraftModel, false);
        let (alone, together, stats) = answers(&drafted, 64).await;
        assert_eq!(alone, expected, "alone");
        assert_eq!(together, expected, "together");
        let proposed: usize = stats.iter().map(|s| s.draft_proposed).sum();
        let accepted: usize = stats.iter().map(|s| s.draft_accepted).sum();
        let tokens: usize = stats.iter().map(|s| s.completion_tokens).sum();
        assert!(
            proposed > tokens / 2,
            "{proposed} proposed for {tokens} tokens"
        );
        assert!(accepted * 2 > proposed, "{accepted} of {proposed} accepted");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rejected_proposals_are_rolled_back() {
        let plain = generator(Speculative::Off, false);
        let (expected, _, _) = answers(&plain, 48).await;
        drop(plain);

        // Every step's second proposal is wrong: at most one is kept, the cells of the rest
        // are removed from both contexts, and the answers do not change.
        let sabotaged = generator(Speculative::DraftModel, true);
        let (alone, together, stats) = answers(&sabotaged, 48).await;
        assert_eq!(alone, expected, "alone");
        assert_eq!(together, expected, "together");
        let proposed: usize = stats.iter().map(|s| s.draft_proposed).sum();
        let accepted: usize = stats.iter().map(|s| s.draft_accepted).sum();
        assert!(
            accepted > 0 && accepted * 3 < proposed,
            "{accepted} of {proposed}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn sampled_answers_are_not_drafted() {
        let g = generator(Speculative::DraftModel, false);
        let (text, stats) = collect(g.generate(request(QUESTIONS[2], 24, 0.8)).unwrap()).await;
        assert!(!text.is_empty());
        assert_eq!((stats.draft_proposed, stats.draft_accepted), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn greedy_answers_with_prompt_lookup_are_the_answers_without_it() {
        let plain = generator(Speculative::Off, false);
        let (expected, _, _) = answers(&plain, 64).await;
        drop(plain);
        let lookup = generator(Speculative::PromptLookup, false);
        let (alone, together, stats) = answers(&lookup, 64).await;
        assert_eq!(alone, expected, "alone");
        assert_eq!(together, expected, "together");
        // The leave question's answer repeats its prompt's words: proposed, and some kept.
        assert!(stats[3].draft_proposed > 0, "{:?}", stats[3]);
        assert!(stats.iter().map(|s| s.draft_accepted).sum::<usize>() > 0);
    }
}
