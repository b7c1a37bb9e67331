//! chunks -> vectors: local sentence embeddings with fastembed on ONNX Runtime.
//!
//! Nothing is downloaded: the ONNX model, its tokenizer files and the ONNX Runtime library are
//! read from configured paths (fetched by `scripts/fetch-models.sh`).

mod batch;
mod rerank;

pub use batch::{BATCH_SIZE, QueryBatcher};
pub use rerank::{RerankConfig, Reranker};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// Recorded with every point: vectors of different models are never mixed.
    pub name: String,
    /// Folder with the tokenizer files (tokenizer.json, config.json, special_tokens_map.json,
    /// tokenizer_config.json) and, unless `onnx_file` is absolute, the ONNX model.
    pub model_dir: PathBuf,
    pub onnx_file: PathBuf,
    /// Longest input in tokens; longer inputs are truncated by the model.
    pub max_length: usize,
    pub pooling: PoolingKind,
    /// ONNX Runtime intra-op threads; 0 means one per core.
    pub threads: usize,
    /// The ONNX Runtime shared library (loaded at run time, not linked).
    pub onnxruntime: PathBuf,
    /// Put before every question (and answer sentence) that is embedded. Models trained with
    /// instructions need it: the E5 family expects "query: ".
    pub query_prefix: String,
    /// Put before every document chunk that is embedded ("passage: " for E5).
    pub passage_prefix: String,
    /// The nice value (Linux) of the threads that embed. Above 0, embedding yields the cores to
    /// generation in the same process, which waits at every step for all its threads: Search
    /// and ingest slow down under Ask load instead of Ask collapsing. 0 = the same priority.
    pub nice: i32,
    /// Whether the model reads languages beyond English. An English-only model places a Korean
    /// (or Russian, Japanese, ...) question near unrelated passages, above any threshold, so
    /// such questions are refused with a pointer to the multilingual configuration instead.
    pub multilingual: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolingKind {
    Mean,
    Cls,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            name: "all-MiniLM-L6-v2".into(),
            model_dir: "models/embed/all-MiniLM-L6-v2".into(),
            onnx_file: "model.onnx".into(),
            max_length: 256,
            // Sentence-transformers models are trained with mean pooling; fastembed's default
            // for user-defined models (CLS) gives plausible-looking but wrong vectors.
            pooling: PoolingKind::Mean,
            threads: 0,
            onnxruntime: "models/onnxruntime/libonnxruntime.so".into(),
            query_prefix: String::new(),
            passage_prefix: String::new(),
            nice: 10,
            multilingual: false,
        }
    }
}

impl EmbedConfig {
    pub fn tokenizer_file(&self) -> PathBuf {
        self.model_dir.join("tokenizer.json")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model file {path}: {source}")]
    ModelFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ONNX Runtime library {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    #[error("embedding model {name}: {reason}")]
    Model { name: String, reason: String },
    #[error("embedding failed: {0}")]
    Inference(String),
}

pub struct Embedder {
    name: String,
    dimension: usize,
    multilingual: bool,
    query_prefix: String,
    passage_prefix: String,
    /// The thread that owns the model (fastembed's `embed` takes `&mut self`): calls are
    /// serialised there, at the configured priority, and ONNX Runtime's own threads, created
    /// on it, inherit that priority.
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

struct Job {
    texts: Vec<String>,
    reply: std::sync::mpsc::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

impl Embedder {
    /// Loads ONNX Runtime and the model on the embedding thread, and probes the vector size.
    pub fn load(config: &EmbedConfig) -> Result<Self, EmbedError> {
        init_runtime(&config.onnxruntime)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let (ready, loaded) = std::sync::mpsc::channel();
        let thread_config = config.clone();
        std::thread::Builder::new()
            .name("embed".into())
            .spawn(move || {
                lower_priority(thread_config.nice);
                let mut model = match open(&thread_config) {
                    Ok((model, dimension)) => {
                        let _ = ready.send(Ok(dimension));
                        model
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                for job in queue {
                    let batch = job.texts.len();
                    // A panic in the tokenizer or the runtime fails this call, not the thread.
                    let vectors = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        model
                            .embed(job.texts, Some(batch))
                            .map_err(|e| EmbedError::Inference(e.to_string()))
                    }))
                    .unwrap_or_else(|_| {
                        Err(EmbedError::Inference(
                            "the embedding model panicked on this input".into(),
                        ))
                    });
                    let _ = job.reply.send(vectors);
                }
            })
            .map_err(|e| EmbedError::Model {
                name: config.name.clone(),
                reason: format!("embedding thread: {e}"),
            })?;
        let dimension = loaded.recv().map_err(|_| EmbedError::Model {
            name: config.name.clone(),
            reason: "embedding thread exited".into(),
        })??;
        // Vectors made with other prefixes are other vectors: the prefixes are part of the name
        // the store, the ingest fingerprint and every point record.
        let name = if config.query_prefix.is_empty() && config.passage_prefix.is_empty() {
            config.name.clone()
        } else {
            format!(
                "{} (query prefix {:?}, passage prefix {:?})",
                config.name, config.query_prefix, config.passage_prefix
            )
        };
        Ok(Self {
            name,
            dimension,
            multilingual: config.multilingual,
            query_prefix: config.query_prefix.clone(),
            passage_prefix: config.passage_prefix.clone(),
            jobs: Mutex::new(jobs),
        })
    }

    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// Whether questions beyond English may be asked (`embedding.multilingual`).
    pub fn multilingual(&self) -> bool {
        self.multilingual
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Vectors of document chunks (with the passage prefix), one per text, in order.
    /// Blocking: call from a blocking thread.
    pub fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_raw(with_prefix(&self.passage_prefix, texts))
    }

    /// Vectors of questions and answer sentences (with the query prefix). Blocking.
    pub fn embed_queries(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_raw(with_prefix(&self.query_prefix, texts))
    }

    /// L2-normalised vectors, one per text, in order.
    fn embed_raw(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = std::sync::mpsc::channel();
        let stopped = || EmbedError::Inference("the embedding thread has stopped".into());
        self.jobs
            .lock()
            .map_err(|_| stopped())?
            .send(Job { texts, reply })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

/// The model with the configured options, and its vector size from a probe embedding.
fn open(config: &EmbedConfig) -> Result<(TextEmbedding, usize), EmbedError> {
    let read = |name: &Path| {
        let path = config.model_dir.join(name);
        std::fs::read(&path).map_err(|source| EmbedError::ModelFile { path, source })
    };
    let tokenizer_files = tokenizer_files(&config.model_dir)?;
    let pooling = match config.pooling {
        PoolingKind::Mean => Pooling::Mean,
        PoolingKind::Cls => Pooling::Cls,
    };
    let model = UserDefinedEmbeddingModel::new(read(&config.onnx_file)?, tokenizer_files)
        .with_pooling(pooling);
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.threads
    };
    let options = InitOptionsUserDefined::new()
        .with_max_length(config.max_length)
        .with_intra_threads(threads)
        // Spinning threads starve llama.cpp when both share the cores.
        .with_session_config("session.intra_op.allow_spinning", "0");
    let model_err = |reason: String| EmbedError::Model {
        name: config.name.clone(),
        reason,
    };
    let mut model = TextEmbedding::try_new_from_user_defined(model, options)
        .map_err(|e| model_err(e.to_string()))?;
    let probe = model
        .embed(["probe"], None)
        .map_err(|e| model_err(format!("probe embedding: {e}")))?;
    let dimension = probe.first().map_or(0, Vec::len);
    Ok((model, dimension))
}

/// Lowers the calling thread's priority to `nice` (Linux: per thread). Threads it creates
/// afterwards inherit it. Best effort: a failure leaves the priority as it was.
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    // SAFETY: plain syscalls on the calling thread; no memory is shared.
    let failed = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0
    };
    if failed {
        eprintln!("rag: could not lower the embedding thread's priority to nice {nice}");
    }
}

/// The tokenizer files fastembed reads next to a model.
fn tokenizer_files(dir: &Path) -> Result<TokenizerFiles, EmbedError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| EmbedError::ModelFile { path, source })
    };
    Ok(TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    })
}

/// ONNX Runtime is loaded once per process; later calls reuse the first outcome.
fn init_runtime(path: &Path) -> Result<(), EmbedError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = LOADED.get_or_init(|| {
        if !path.is_file() {
            return Err("file not found (run scripts/fetch-models.sh)".to_owned());
        }
        ort::init_from(path).map(drop).map_err(|e| e.to_string())
    });
    outcome.clone().map_err(|reason| EmbedError::Runtime {
        path: path.to_owned(),
        reason,
    })
}

fn with_prefix(prefix: &str, texts: Vec<String>) -> Vec<String> {
    if prefix.is_empty() {
        return texts;
    }
    texts.into_iter().map(|t| format!("{prefix}{t}")).collect()
}
