//! candidates -> reranked candidates: a cross-encoder reads the question and each passage
//! together and scores the pair, which ranks better than comparing two separate embeddings but
//! costs one model pass per candidate. Off unless a model is configured.

use std::path::PathBuf;
use std::sync::Mutex;

use fastembed::{RerankInitOptionsUserDefined, TextRerank, UserDefinedRerankingModel};
use serde::{Deserialize, Serialize};

use crate::{EmbedError, init_runtime, tokenizer_files};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankConfig {
    /// Folder with a cross-encoder's ONNX file (output `logits`) and its tokenizer files; empty
    /// turns reranking off.
    pub model_dir: PathBuf,
    pub onnx_file: PathBuf,
    /// Longest (question, passage) pair in tokens.
    pub max_length: usize,
    /// Fused candidates scored per question; the best `top_k` of them are kept.
    pub candidates: usize,
    /// ONNX Runtime intra-op threads; 0 means one per core.
    pub threads: usize,
}

impl Default for RerankConfig {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::new(),
            onnx_file: "model.onnx".into(),
            max_length: 512,
            candidates: 20,
            threads: 0,
        }
    }
}

impl RerankConfig {
    pub fn enabled(&self) -> bool {
        !self.model_dir.as_os_str().is_empty()
    }
}

pub struct Reranker {
    name: String,
    candidates: usize,
    // fastembed's `rerank` takes `&mut self`; calls are serialised here.
    model: Mutex<TextRerank>,
}

impl Reranker {
    /// Loads the cross-encoder; `onnxruntime` is the runtime library the embedder uses.
    pub fn load(config: &RerankConfig, onnxruntime: &std::path::Path) -> Result<Self, EmbedError> {
        init_runtime(onnxruntime)?;
        let name = config.model_dir.display().to_string();
        let onnx = config.model_dir.join(&config.onnx_file);
        let onnx =
            std::fs::read(&onnx).map_err(|source| EmbedError::ModelFile { path: onnx, source })?;
        let model = UserDefinedRerankingModel::new(onnx, tokenizer_files(&config.model_dir)?);
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let options = RerankInitOptionsUserDefined::new()
            .with_max_length(config.max_length)
            .with_intra_threads(threads)
            .with_session_config("session.intra_op.allow_spinning", "0");
        let model = TextRerank::try_new_from_user_defined(model, options).map_err(|e| {
            EmbedError::Model {
                name: name.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            name,
            candidates: config.candidates,
            model: Mutex::new(model),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fused candidates to score per question.
    pub fn candidates(&self) -> usize {
        self.candidates
    }

    /// One score per passage, in the passages' order (higher is more relevant). Blocking.
    pub fn score(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbedError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let mut model = self.model.lock().map_err(|_| {
            EmbedError::Inference("reranker lock poisoned by an earlier panic".into())
        })?;
        let passages: Vec<&str> = passages.iter().map(String::as_str).collect();
        let ranked = model
            .rerank(query, passages.as_slice(), false, Some(16))
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let mut scores = vec![f32::MIN; passages.len()];
        for r in ranked {
            scores[r.index] = r.score;
        }
        Ok(scores)
    }
}
