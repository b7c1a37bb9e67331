//! prompt -> answer: llama.cpp generation with continuous batching on a dedicated thread.
//!
//! A llama.cpp context borrows its model and must stay on one thread, so the generator owns a
//! scheduler thread and is reached by messages: each request carries a channel on which tokens
//! stream back. Up to `parallel` answers are generated together, one decode step for all of them
//! (see [`scheduler`]); a bounded queue behind them turns overload into [`LlmError::Busy`].
//! Dropping the receiver (a client that went away) or passing the request's deadline ends that
//! answer at the next step and frees its share of the context at once.

mod draft;
pub mod raw;
mod scheduler;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// A GGUF model with a chat template.
    pub model_file: PathBuf,
    /// Context window of one answer in tokens (prompt + answer); 0 means the model's training
    /// context. The KV cache holds `parallel` such windows.
    pub n_ctx: u32,
    /// Layers offloaded to the GPU in a `cuda` build; 0 keeps everything on the CPU.
    pub n_gpu_layers: u32,
    /// Generation threads; 0 means one per core.
    pub threads: u32,
    /// Answers generated together (llama.cpp sequences in one context). More raise the total
    /// tokens/s until the cores (or the GPU) are saturated, and slow each answer down.
    pub parallel: usize,
    /// Requests waiting behind the `parallel` running ones before new ones are refused.
    pub queue: usize,
    /// Prompt tokens evaluated per decode step, besides one token of every answer being
    /// generated: a long prompt is taken in pieces so it cannot stall the answers under way.
    pub step_tokens: usize,
    /// Evaluate the system turn (and worked examples) once and restore its saved KV cells into
    /// every answer that starts with it, instead of evaluating it again for each prompt.
    pub share_prefix: bool,
    /// llama.cpp's flash attention. Off by default: its CPU kernels are chosen by the shape of
    /// the batch, so a greedy answer would depend on what it is batched with. On a GPU it saves
    /// memory and time; reproducibility under batching is then not promised.
    pub flash_attention: bool,
    /// How the KV cache stores keys. `q8_0` halves them against `f16` with no measurable change
    /// in the answers (BENCHMARKS.md, "Concurrent answers"), which buys room for more answers.
    pub cache_type_k: KvType,
    /// How it stores values; anything but `f16` needs `flash_attention` (llama.cpp's rule).
    pub cache_type_v: KvType,
    /// Speculative decoding: `draft_tokens` tokens of each greedy answer are proposed, and the
    /// answering model checks them all in one decode. Greedy answers stay the answering model's
    /// own; what changes is how many tokens a decode yields. Off by default: on two cores both
    /// ways of proposing lose (BENCHMARKS.md, "Speculative decoding").
    pub speculative: Speculative,
    /// The draft model of `speculative = "draft_model"`: a smaller model with the same
    /// vocabulary (Qwen2.5-Coder-0.5B for the 1.5B).
    pub draft_model_file: Option<PathBuf>,
    /// Tokens proposed per answer and step.
    pub draft_tokens: usize,
    /// Every generation runs to its `max_tokens` (end-of-generation tokens are sampled past), as
    /// llama-server's `--ignore-eos`: for measuring decoding and load with answers of one length
    /// whatever the model, and for tests of long answers. Never for users: the text after the
    /// model's end is noise.
    pub ignore_eos: bool,
}

/// Where the proposals of speculative decoding come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speculative {
    #[default]
    Off,
    /// The tokens that followed the answer's last few tokens where they last occurred in the
    /// prompt or the answer: free to make, right where an answer quotes its sources.
    PromptLookup,
    /// A smaller model's greedy continuation (`draft_model_file`).
    DraftModel,
}

/// Element type of the KV cache (llama.cpp's `--cache-type-k/-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvType {
    F16,
    Q8_0,
    Q4_0,
}

impl KvType {
    fn llama(self) -> llama_cpp_2::context::params::KvCacheType {
        use llama_cpp_2::context::params::KvCacheType;
        match self {
            Self::F16 => KvCacheType::F16,
            Self::Q8_0 => KvCacheType::Q8_0,
            Self::Q4_0 => KvCacheType::Q4_0,
        }
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            // Chosen by `rag eval --generate` (BENCHMARKS.md, "Chat models"): twice the answered
            // share of SmolLM2-135M, which the tests use for speed.
            model_file: "models/llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf".into(),
            n_ctx: 2048,
            n_gpu_layers: 0,
            threads: 0,
            // Measured on 2 cores (BENCHMARKS.md, "Concurrent answers"); a GPU takes many more.
            parallel: 4,
            queue: 16,
            // 128 rather than 256: the same prompt speed on 2 cores, half the compute buffer
            // (its logits rows are sized by the batch).
            step_tokens: 128,
            share_prefix: true,
            flash_attention: false,
            cache_type_k: KvType::Q8_0,
            cache_type_v: KvType::F16,
            speculative: Speculative::Off,
            draft_model_file: None,
            draft_tokens: 4,
            ignore_eos: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("language model {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error(
        "the prompt needs {prompt} tokens plus {max_tokens} for the answer, over the context window of {n_ctx}"
    )]
    TooLong {
        prompt: usize,
        max_tokens: usize,
        n_ctx: usize,
    },
    #[error("generation queue is full; retry later")]
    Busy,
    #[error("the request's deadline passed during generation")]
    DeadlineExceeded,
    #[error("generation failed: {0}")]
    Generation(String),
    #[error("generator has stopped")]
    Stopped,
}

/// One chat turn to answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub system: String,
    /// Worked examples shown before the question, as (user, assistant) turns. With the system
    /// turn they are the shared prefix, evaluated once for all answers.
    pub examples: Vec<(String, String)>,
    pub user: String,
    pub max_tokens: usize,
    /// 0 means greedy decoding.
    pub temperature: f32,
    pub seed: u32,
    /// The answer ends with [`LlmError::DeadlineExceeded`] when this passes.
    pub deadline: Option<std::time::Instant>,
    /// Generate `max_tokens` tokens whatever the model says (end-of-generation tokens are
    /// sampled past): for measuring decoding, as llama.cpp's `ignore_eos`. The service sets it
    /// only where [`LlmConfig::ignore_eos`] says so.
    pub ignore_eos: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model ended its answer.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

#[derive(Debug, Clone)]
pub struct Stats {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish: Finish,
    /// From the request being admitted to a sequence to the first token.
    pub first_token: Duration,
    /// Prompt evaluation (shared with the other answers of each step).
    pub prompt_eval: Duration,
    /// Prompt tokens whose KV cells were copied from the shared prefix, not evaluated.
    pub shared_prompt_tokens: usize,
    /// Generation after the first token.
    pub generation: Duration,
    /// Time spent waiting for a free sequence.
    pub queued: Duration,
    /// Tokens proposed for this answer by speculative decoding (0 when off).
    pub draft_proposed: usize,
    /// Of those, the tokens the answering model picked itself.
    pub draft_accepted: usize,
}

#[derive(Debug)]
pub enum Event {
    Token(String),
    Done(Stats),
    Failed(LlmError),
}

/// Prometheus gauge: requests waiting for the model.
pub const QUEUE_DEPTH: &str = "rag_generation_queue_depth";
/// Prometheus gauge: answers being generated right now.
pub const ACTIVE_GENERATIONS: &str = "rag_generations_active";
/// Prometheus counter: tokens proposed by speculative decoding.
pub const DRAFT_PROPOSED: &str = "rag_draft_tokens_proposed_total";
/// Prometheus counter: proposed tokens the answering model picked itself.
pub const DRAFT_ACCEPTED: &str = "rag_draft_tokens_accepted_total";

/// The repetition penalty of every answer's sampler (and of the draft's picks): small models
/// otherwise loop on a sentence until max_tokens.
pub(crate) const PENALTY_LAST_N: usize = 64;
pub(crate) const PENALTY_REPEAT: f32 = 1.15;

pub struct Generator {
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    n_ctx: usize,
    /// [`LlmConfig::ignore_eos`].
    ignore_eos: bool,
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<scheduler::Job>>,
    /// The scheduler thread, which owns the context (the KV cache: GPU memory with `cuda`).
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Generator {
    /// Loads the model and starts the scheduler thread. Returns once the context is ready.
    pub fn start(config: &LlmConfig) -> Result<Self, LlmError> {
        Self::start_with(config, |_| {})
    }

    /// [`Generator::start`] with the context layout adjusted: tests reach the scheduler's
    /// internals this way.
    fn start_with(
        config: &LlmConfig,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Self, LlmError> {
        let load_err = |reason: String| LlmError::Load {
            path: config.model_file.clone(),
            reason,
        };
        let mut loaded = load(config)?;
        adjust(&mut loaded.settings);
        let draft = load_draft(config, &loaded)?;
        let (jobs, receiver) = mpsc::channel(config.queue.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let model = loaded.model.clone();
        let settings = loaded.settings.clone();
        let worker = std::thread::Builder::new()
            .name("llama".into())
            .spawn(move || {
                scheduler::run(
                    loaded.backend,
                    &model,
                    draft.as_deref(),
                    settings,
                    receiver,
                    ready_tx,
                )
            })
            .map_err(|e| load_err(format!("scheduler thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| load_err("scheduler thread exited".into()))?
            .map_err(load_err)?;
        Ok(Self {
            model: loaded.model,
            template: loaded.template,
            n_ctx: loaded.settings.n_ctx_seq,
            ignore_eos: config.ignore_eos,
            jobs: Some(jobs),
            worker: Some(worker),
        })
    }

    /// The context window of one answer, in tokens.
    pub fn context_size(&self) -> usize {
        self.n_ctx
    }

    /// Tokens `text` takes in a prompt.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }

    /// The token ids the model reads for `request`: what a prompt-injection test checks.
    pub fn prompt_tokens(&self, request: &Request) -> Result<Vec<i32>, LlmError> {
        Ok(self.prompt(request)?.tokens.iter().map(|t| t.0).collect())
    }

    fn prompt(&self, request: &Request) -> Result<Prompt, LlmError> {
        Prompt::new(
            &self.model,
            &self.template,
            &request.system,
            &request.examples,
            &request.user,
        )
    }

    /// The token ids of `text`, with the vocabulary's special tokens recognised when `special`.
    pub fn token_ids(&self, text: &str, special: bool) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, special)
            .iter()
            .map(|t| t.0)
            .collect()
    }

    /// Queues a request; tokens and a final [`Event::Done`] (or [`Event::Failed`]) arrive on the
    /// returned channel. Drop the receiver to cancel. A prompt over the window and a full queue
    /// are refused here, before anything is queued.
    pub fn generate(&self, request: Request) -> Result<mpsc::UnboundedReceiver<Event>, LlmError> {
        let prompt = self.prompt(&request)?;
        if prompt.tokens.len() + request.max_tokens > self.n_ctx {
            return Err(LlmError::TooLong {
                prompt: prompt.tokens.len(),
                max_tokens: request.max_tokens,
                n_ctx: self.n_ctx,
            });
        }
        // Unbounded, yet bounded by max_tokens: a slow reader must never stall the decode step
        // that every other answer shares.
        let (events, receiver) = mpsc::unbounded_channel();
        let job = scheduler::Job {
            prompt,
            max_tokens: request.max_tokens,
            sampling: Sampling {
                temperature: request.temperature,
                seed: request.seed,
            },
            deadline: request.deadline,
            ignore_eos: request.ignore_eos || self.ignore_eos,
            events,
            queued_at: std::time::Instant::now(),
        };
        let jobs = self.jobs.as_ref().ok_or(LlmError::Stopped)?;
        // Counted before it is sent, so the scheduler's decrement can never come first.
        let queued = metrics::gauge!(QUEUE_DEPTH);
        queued.increment(1.0);
        jobs.try_send(job).map_err(|e| {
            queued.decrement(1.0);
            match e {
                mpsc::error::TrySendError::Full(_) => LlmError::Busy,
                mpsc::error::TrySendError::Closed(_) => LlmError::Stopped,
            }
        })?;
        Ok(receiver)
    }
}

/// Closes the queue and waits for the scheduler thread to free its context. Without the wait a
/// process could exit while that thread is still releasing GPU buffers, after the CUDA runtime
/// has begun shutting down: llama.cpp then aborts ("CUDA error: driver shutting down"), seen
/// on an H200 at the end of `rag bench`. The wait is one decode step: answers whose receivers
/// are gone are cancelled at the next step.
impl Drop for Generator {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A chat turn as the model reads it: the template applied, tokenized.
#[derive(Debug, Clone)]
pub(crate) struct Prompt {
    pub tokens: Vec<LlamaToken>,
    /// The leading tokens that are the system turn and the examples: the same for every answer
    /// with the same ones, so their KV cells can be shared.
    pub system_len: usize,
}

impl Prompt {
    /// Applies the chat template and tokenizes the result so that only the template's own
    /// markers can become control tokens. Everything the system, a user, a history turn or a
    /// document wrote is tokenized as plain text: a document containing
    /// `<|im_end|>\n<|im_start|>system …` stays those characters, and cannot open a turn of its
    /// own for every reader of the tenant. The template is applied to placeholders, and the text
    /// is put back in place of each placeholder as plain-text tokens.
    pub(crate) fn new(
        model: &LlamaModel,
        template: &LlamaChatTemplate,
        system: &str,
        examples: &[(String, String)],
        user: &str,
    ) -> Result<Self, LlmError> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| LlmError::Generation(format!("{what}: {e}"));
        let mut texts: Vec<&str> = vec![system];
        for (question, answer) in examples {
            texts.push(question);
            texts.push(answer);
        }
        texts.push(user);
        let roles = std::iter::once("system")
            .chain(examples.iter().flat_map(|_| ["user", "assistant"]))
            .chain(std::iter::once("user"));
        let chat = roles
            .enumerate()
            .map(|(i, role)| {
                LlamaChatMessage::new(role.into(), placeholder(i)).map_err(|e| fail("message", &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prefix_len = chat.len() - 1;
        let full = model
            .apply_chat_template(template, &chat, true)
            .map_err(|e| fail("chat template", &e))?;
        let alone = model
            .apply_chat_template(template, &chat[..prefix_len], false)
            .map_err(|e| fail("chat template", &e))?;
        let tokens =
            tokenize_filled(model, &full, &texts).map_err(|e| fail("chat template", &e))?;
        // Token boundaries may differ where the system turn meets the user turn: share only
        // the tokens both tokenizations agree on.
        let system_tokens =
            tokenize_filled(model, &alone, &texts).map_err(|e| fail("chat template", &e))?;
        let system_len = tokens
            .iter()
            .zip(&system_tokens)
            .take_while(|(a, b)| a == b)
            .count();
        if tokens.is_empty() {
            return Err(fail("prompt", &"empty after tokenization"));
        }
        Ok(Self { tokens, system_len })
    }
}

/// Stands in for message `i` while the template is applied: private-use characters no template
/// rewrites, and no text can forge (the texts are never put into the template's output).
fn placeholder(i: usize) -> String {
    format!("\u{e000}{i}\u{e001}")
}

/// Tokenizes `rendered` (a template applied to placeholders): the template's text with its
/// special tokens recognised, each placeholder replaced by its text as plain tokens.
fn tokenize_filled(
    model: &LlamaModel,
    rendered: &str,
    texts: &[&str],
) -> Result<Vec<LlamaToken>, String> {
    let vocab = model.vocab();
    let mut tokens = Vec::new();
    let mut rest = rendered;
    while let Some(open) = rest.find('\u{e000}') {
        tokens.extend(vocab.tokenize(&rest.as_bytes()[..open], false, true));
        let after = &rest[open + '\u{e000}'.len_utf8()..];
        let close = after
            .find('\u{e001}')
            .ok_or("a message placeholder was cut by the template")?;
        let index: usize = after[..close]
            .parse()
            .map_err(|_| "a message placeholder was changed by the template")?;
        let text = texts
            .get(index)
            .ok_or("a message placeholder out of range")?;
        // NUL ends a C string: llama.cpp would read the text only up to it.
        tokens.extend(vocab.tokenize(text.replace('\0', " ").as_bytes(), false, false));
        rest = &after[close + '\u{e001}'.len_utf8()..];
    }
    tokens.extend(vocab.tokenize(rest.as_bytes(), false, true));
    Ok(tokens)
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampling {
    /// 0 means greedy decoding.
    pub temperature: f32,
    pub seed: u32,
}

impl Sampling {
    /// One sampler per answer, so an answer is the same whatever it is batched with.
    pub fn sampler(self, model: &LlamaModel) -> LlamaSampler {
        // A mild repetition penalty: small models otherwise loop on a sentence until max_tokens.
        let penalty = || {
            LlamaSampler::penalties(
                model.n_vocab(),
                PENALTY_LAST_N as i32,
                PENALTY_REPEAT,
                0.0,
                0.0,
            )
        };
        if self.temperature <= 0.0 {
            LlamaSampler::chain_simple([penalty(), LlamaSampler::greedy()])
        } else {
            LlamaSampler::chain_simple([
                penalty(),
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(0.95, 1),
                LlamaSampler::temp(self.temperature),
                LlamaSampler::dist(self.seed),
            ])
        }
    }
}

/// How the scheduler's context is laid out, from the configuration and the model.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub n_ctx_seq: usize,
    pub parallel: usize,
    pub step_tokens: usize,
    pub threads: u32,
    pub share_prefix: bool,
    pub flash_attention: bool,
    pub cache_type_k: KvType,
    pub cache_type_v: KvType,
    pub speculative: Speculative,
    /// Proposals per answer and step (0: speculation off).
    pub draft_tokens: usize,
    /// Tests only: the draft's second proposal of every step made wrong.
    #[cfg(test)]
    pub sabotage_draft: bool,
}

impl Settings {
    /// Rows of a decode: a prompt piece and one token of every answer, or every answer's token
    /// and its draft proposals.
    pub fn batch_rows(&self) -> usize {
        (self.step_tokens + self.parallel).max(self.parallel * (self.draft_tokens + 1))
    }

    /// Parameters of a context with room for `parallel` answers and the shared prefix.
    pub fn context_params(&self) -> LlamaContextParams {
        let cells = self.n_ctx_seq * self.parallel;
        let batch = self.batch_rows() as u32;
        LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(cells as u32))
            .with_n_batch(batch)
            .with_n_ubatch(batch)
            .with_n_seq_max(self.parallel as u32)
            // A KV stream per sequence: an answer's cells are laid out the same whatever runs
            // beside it, so batching does not change its tokens (see `scheduler`).
            .with_kv_unified(false)
            // Off unless asked for: llama.cpp's CPU flash attention picks its kernel by shape
            // (tiled for many query rows, KV-split for one row over a long cache), so the same
            // token would be computed differently batched and alone. The plain path sums the
            // same cells in the same order whatever the batch (masked cells add exact zeros).
            .with_flash_attention_policy(if self.flash_attention {
                llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED
            } else {
                llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED
            })
            .with_type_k(self.cache_type_k.llama())
            .with_type_v(self.cache_type_v.llama())
            .with_n_threads(self.threads as i32)
            .with_n_threads_batch(self.threads as i32)
    }
}

pub(crate) struct Loaded {
    pub backend: &'static LlamaBackend,
    pub model: Arc<LlamaModel>,
    pub template: LlamaChatTemplate,
    pub settings: Settings,
}

/// The model, its chat template and the context layout; shared by the service and `raw`.
pub(crate) fn load(config: &LlmConfig) -> Result<Loaded, LlmError> {
    let load_err = |reason: String| LlmError::Load {
        path: config.model_file.clone(),
        reason,
    };
    if !config.model_file.is_file() {
        return Err(load_err(
            "file not found (run scripts/fetch-models.sh)".into(),
        ));
    }
    if config.cache_type_v != KvType::F16 && !config.flash_attention {
        return Err(load_err(format!(
            "llm.cache_type_v = \"{}\" needs llm.flash_attention = true (llama.cpp reads a \
             quantized V cache only in its flash-attention kernels)",
            format!("{:?}", config.cache_type_v).to_lowercase()
        )));
    }
    let backend = backend().map_err(load_err)?;
    let devices: Vec<String> = llama_cpp_2::list_llama_ggml_backend_devices()
        .iter()
        .map(|d| {
            format!(
                "{} ({}, {} MiB free)",
                d.name,
                d.description,
                d.memory_free >> 20
            )
        })
        .collect();
    tracing::info!(
        ?devices,
        gpu_layers = config.n_gpu_layers,
        "llama.cpp devices"
    );
    if config.n_gpu_layers > 0 && !backend.supports_gpu_offload() {
        tracing::warn!(
            "llm.n_gpu_layers is {} but llama.cpp has no GPU here (not a `cuda` build, or no GPU or \
             driver found): generating on the CPU",
            config.n_gpu_layers
        );
    }
    let model = load_model(backend, &config.model_file, config.n_gpu_layers).map_err(load_err)?;
    let template = model
        .chat_template(None)
        .map_err(|e| e.to_string())
        .or_else(|_| LlamaChatTemplate::new("chatml").map_err(|e| e.to_string()))
        .map_err(|e| load_err(format!("chat template: {e}")))?;
    let n_ctx_seq = if config.n_ctx == 0 {
        model.n_ctx_train()
    } else {
        config.n_ctx.min(model.n_ctx_train())
    } as usize;
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    } else {
        config.threads
    };
    Ok(Loaded {
        backend,
        model: Arc::new(model),
        template,
        settings: Settings {
            n_ctx_seq,
            parallel: config.parallel.max(1),
            step_tokens: config.step_tokens.max(16),
            threads,
            share_prefix: config.share_prefix,
            flash_attention: config.flash_attention,
            cache_type_k: config.cache_type_k,
            cache_type_v: config.cache_type_v,
            speculative: config.speculative,
            draft_tokens: if config.speculative == Speculative::Off {
                0
            } else {
                config.draft_tokens.max(1)
            },
            #[cfg(test)]
            sabotage_draft: false,
        },
    })
}

/// A GGUF model's weights, `gpu_layers` of them offloaded in a `cuda` build.
fn load_model(
    backend: &LlamaBackend,
    path: &std::path::Path,
    gpu_layers: u32,
) -> Result<LlamaModel, String> {
    // Read, not mapped: on a CPU llama.cpp repacks most weights into its own interleaved
    // layout, so mapped file pages would be held (and counted) beside the repacked copy.
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(gpu_layers)
        .with_use_mmap(false);
    LlamaModel::load_from_file(backend, path, &params).map_err(|e| e.to_string())
}

/// The draft model of speculative decoding, if configured: loaded as the answering model is,
/// and refused unless it reads and writes text with the same token ids.
fn load_draft(config: &LlmConfig, loaded: &Loaded) -> Result<Option<Arc<LlamaModel>>, LlmError> {
    if config.speculative != Speculative::DraftModel {
        return Ok(None);
    }
    let Some(path) = &config.draft_model_file else {
        return Err(LlmError::Load {
            path: config.model_file.clone(),
            reason: "llm.speculative = \"draft_model\" needs llm.draft_model_file".into(),
        });
    };
    let load_err = |reason: String| LlmError::Load {
        path: path.clone(),
        reason: format!("draft model: {reason}"),
    };
    if !path.is_file() {
        return Err(load_err(
            "file not found (scripts/fetch-models.sh qwen-0.5b)".into(),
        ));
    }
    let draft = load_model(loaded.backend, path, config.n_gpu_layers).map_err(load_err)?;
    let (model, vocab) = (&loaded.model, loaded.model.vocab());
    // A proposal is a token id: the same text must be the same ids, and the same ids end.
    let probe = "Leave: 25 days [1]. 연차는 25일입니다.<|im_end|>";
    let same = draft.n_vocab() == model.n_vocab()
        && draft.vocab().tokenize(probe.as_bytes(), false, true)
            == vocab.tokenize(probe.as_bytes(), false, true)
        && (0..model.n_vocab())
            .map(LlamaToken)
            .filter(|&t| vocab.is_eog(t))
            .all(|t| draft.vocab().is_eog(t));
    if !same {
        return Err(load_err(format!(
            "its vocabulary differs from {}'s; a draft must be of the same family",
            config.model_file.display()
        )));
    }
    Ok(Some(Arc::new(draft)))
}

/// llama.cpp's backend is process-wide and may be initialised once.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: std::sync::OnceLock<Result<LlamaBackend, String>> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            // llama.cpp's own log (devices, offloaded layers) as tracing events, target
            // "llama-cpp-2": warnings by default, everything with RUST_LOG=llama-cpp-2=info.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            Ok(backend)
        })
        .as_ref()
        .map_err(Clone::clone)
}
