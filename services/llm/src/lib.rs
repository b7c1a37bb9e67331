//! prompt -> answer: llama.cpp generation on a dedicated thread.
//!
//! A llama.cpp context borrows its model and must stay on one thread, so the generator owns a
//! worker thread and is reached by messages: each request carries a channel on which tokens
//! stream back. Dropping the receiver (a client that went away) stops that generation at the
//! next token. Requests run one at a time; a bounded queue turns overload into [`LlmError::Busy`].

mod worker;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// A GGUF model with a chat template.
    pub model_file: PathBuf,
    /// Context window in tokens (prompt + answer); 0 means the model's training context.
    pub n_ctx: u32,
    /// Layers offloaded to the GPU in a `cuda` build; 0 keeps everything on the CPU.
    pub n_gpu_layers: u32,
    /// Generation threads; 0 means one per core.
    pub threads: u32,
    /// Requests waiting behind the running one before new ones are refused.
    pub queue: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            model_file: "models/llm/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            n_ctx: 2048,
            n_gpu_layers: 0,
            threads: 0,
            queue: 8,
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
    #[error("generation failed: {0}")]
    Generation(String),
    #[error("generator has stopped")]
    Stopped,
}

/// One chat turn to answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub system: String,
    pub user: String,
    pub max_tokens: usize,
    /// 0 means greedy decoding.
    pub temperature: f32,
    pub seed: u32,
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
    /// From the request reaching the worker to the first token.
    pub first_token: Duration,
    /// Prompt evaluation.
    pub prompt_eval: Duration,
    /// Generation after the first token.
    pub generation: Duration,
    /// Time spent waiting for the worker.
    pub queued: Duration,
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

pub struct Generator {
    model: Arc<LlamaModel>,
    n_ctx: usize,
    jobs: mpsc::Sender<worker::Job>,
}

impl Generator {
    /// Loads the model and starts the worker thread. Returns once the context is ready.
    pub fn start(config: &LlmConfig) -> Result<Self, LlmError> {
        let load_err = |reason: String| LlmError::Load {
            path: config.model_file.clone(),
            reason,
        };
        if !config.model_file.is_file() {
            return Err(load_err(
                "file not found (run scripts/fetch-models.sh)".into(),
            ));
        }
        let backend = backend().map_err(load_err)?;
        let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
        let model = LlamaModel::load_from_file(backend, &config.model_file, &params)
            .map_err(|e| load_err(e.to_string()))?;
        let model = Arc::new(model);
        let n_ctx = if config.n_ctx == 0 {
            model.n_ctx_train()
        } else {
            config.n_ctx.min(model.n_ctx_train())
        };
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
        } else {
            config.threads
        };
        let (jobs, receiver) = mpsc::channel(config.queue.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let worker_model = model.clone();
        std::thread::Builder::new()
            .name("llama".into())
            .spawn(move || {
                worker::run(
                    backend,
                    &worker_model,
                    NonZeroU32::new(n_ctx).expect("n_ctx > 0"),
                    threads,
                    receiver,
                    ready_tx,
                )
            })
            .map_err(|e| load_err(format!("worker thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| load_err("worker thread exited".into()))?
            .map_err(load_err)?;
        Ok(Self {
            model,
            n_ctx: n_ctx as usize,
            jobs,
        })
    }

    /// The context window, in tokens.
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

    /// Queues a request; tokens and a final [`Event::Done`] (or [`Event::Failed`]) arrive on the
    /// returned channel. Drop the receiver to cancel.
    pub fn generate(&self, request: Request) -> Result<mpsc::Receiver<Event>, LlmError> {
        let (events, receiver) = mpsc::channel(64);
        let job = worker::Job {
            request,
            events,
            queued_at: std::time::Instant::now(),
        };
        // Counted before it is sent, so the worker's decrement can never come first.
        let queued = metrics::gauge!(QUEUE_DEPTH);
        queued.increment(1.0);
        self.jobs.try_send(job).map_err(|e| {
            queued.decrement(1.0);
            match e {
                mpsc::error::TrySendError::Full(_) => LlmError::Busy,
                mpsc::error::TrySendError::Closed(_) => LlmError::Stopped,
            }
        })?;
        Ok(receiver)
    }
}

/// llama.cpp's backend is process-wide and may be initialised once.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: std::sync::OnceLock<Result<LlamaBackend, String>> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            backend.void_logs();
            Ok(backend)
        })
        .as_ref()
        .map_err(Clone::clone)
}
