//! One request type per call, as plain Rust (each door maps its wire onto these), and what
//! validating each makes of it: the engine's options with the server defaults filled in, over
//! the caller's documents only. A request means the same, and fails the same way, whichever
//! door it comes through.

use std::collections::BTreeMap;
use std::time::Instant;

use rag_engine::{AskOptions, Engine, Retrieval};
use rag_store::SearchFilter;

use crate::check::{document_id, question, source_path};
use crate::{ApiError, Caller};

const MAX_TOP_K: u32 = 100;
const MAX_ANSWER_TOKENS: u32 = 4096;
/// Turns of history a follow-up may carry; only the last few are shown to the rewriter.
pub const MAX_HISTORY_TURNS: usize = 20;
/// An earlier answer longer than this is cut (history is context, not content).
const MAX_HISTORY_ANSWER_CHARS: usize = 8000;

/// Which chunks may be found, within what the caller may read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only chunks whose source path starts with this folder or is this file; empty: any.
    pub path_prefix: String,
    /// Only chunks of these documents; empty: any.
    pub document_ids: Vec<String>,
}

/// How to search. Unset (or 0 for `top_k`): the server default.
#[derive(Debug, Clone, Default)]
pub struct RetrievalOptions {
    pub top_k: Option<u32>,
    /// Minimum cosine similarity.
    pub score_threshold: Option<f32>,
    pub filter: Filter,
}

/// Search: ranked chunks for a query, no generation.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: String,
    pub retrieval: RetrievalOptions,
}

/// An earlier turn of the conversation.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    pub question: String,
    /// The answer the user was shown; may be empty.
    pub answer: String,
}

/// Ask: a grounded answer. Unset (or 0 for `max_tokens`): the server default.
#[derive(Debug, Clone, Default)]
pub struct AskRequest {
    pub question: String,
    pub retrieval: RetrievalOptions,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub seed: Option<u32>,
    /// The conversation so far, oldest first.
    pub history: Vec<Turn>,
}

/// IngestDocument: one file, indexed into the caller's tenant.
#[derive(Debug, Clone, Default)]
pub struct IngestDocumentRequest {
    pub file_name: String,
    /// Empty: inferred from the file name.
    pub media_type: String,
    pub content: Vec<u8>,
    /// Empty: derived from the file name.
    pub document_id: String,
    pub metadata: BTreeMap<String, String>,
    /// Who may read it; empty: everyone in the tenant.
    pub groups: Vec<String>,
}

/// What a DeleteDocument call removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteTarget {
    DocumentId(String),
    SourcePath(String),
}

impl DeleteTarget {
    /// The id or path, as the audit line names it.
    pub fn name(&self) -> &str {
        match self {
            Self::DocumentId(id) => id,
            Self::SourcePath(path) => path,
        }
    }
}

/// DeleteDocument: `None` when the request names nothing.
#[derive(Debug, Clone, Default)]
pub struct DeleteDocumentRequest {
    pub target: Option<DeleteTarget>,
}

impl RetrievalOptions {
    /// Validated, with the server defaults filled in, over the caller's documents only.
    pub fn validate(self, engine: &Engine, caller: &Caller) -> Result<Retrieval, ApiError> {
        let defaults = engine.default_retrieval();
        let top_k = match self.top_k.unwrap_or(0) {
            0 => defaults.top_k,
            k if k <= MAX_TOP_K => k as usize,
            k => {
                return Err(ApiError::invalid(
                    "retrieval.top_k",
                    format!("{k} is outside 1..={MAX_TOP_K}"),
                ));
            }
        };
        let score_threshold = match self.score_threshold {
            None => defaults.score_threshold,
            Some(t) if (-1.0..=1.0).contains(&t) => t,
            Some(t) => {
                return Err(ApiError::invalid(
                    "retrieval.score_threshold",
                    format!("{t} is outside -1..=1 (cosine similarity)"),
                ));
            }
        };
        let path_prefix = source_path("retrieval.filter.path_prefix", &self.filter.path_prefix)?;
        let doc_ids = self
            .filter
            .document_ids
            .iter()
            .map(|id| document_id("retrieval.filter.document_ids", id))
            .collect::<Result<_, _>>()?;
        Ok(Retrieval {
            top_k,
            score_threshold,
            hybrid: defaults.hybrid,
            tenant: caller.tenant.clone(),
            filter: SearchFilter {
                path_prefix: Some(path_prefix).filter(|p| !p.is_empty()),
                doc_ids,
                visibility: caller.visibility.clone(),
            },
        })
    }
}

impl AskRequest {
    /// The question and how to answer it, validated, until `deadline` (when the caller stops
    /// waiting; `None`: no deadline).
    pub fn validate(
        self,
        engine: &Engine,
        caller: &Caller,
        deadline: Option<Instant>,
    ) -> Result<(String, AskOptions), ApiError> {
        let question = question(engine, "question", &self.question)?;
        let defaults = engine.default_ask();
        let max_tokens = match self.max_tokens.unwrap_or(0) {
            0 => defaults.max_tokens,
            n if n <= MAX_ANSWER_TOKENS => n as usize,
            n => {
                return Err(ApiError::invalid(
                    "max_tokens",
                    format!("{n} is over the limit of {MAX_ANSWER_TOKENS}"),
                ));
            }
        };
        let temperature = match self.temperature {
            None => defaults.temperature,
            Some(t) if (0.0..=2.0).contains(&t) => t,
            Some(t) => {
                return Err(ApiError::invalid(
                    "temperature",
                    format!("{t} is outside 0..=2"),
                ));
            }
        };
        let options = AskOptions {
            retrieval: self.retrieval.validate(engine, caller)?,
            max_tokens,
            temperature,
            seed: self.seed.unwrap_or(defaults.seed),
            deadline,
            history: history(engine, self.history)?,
        };
        Ok((question, options))
    }
}

/// The conversation before a follow-up, validated: each question like a question, answers cut.
fn history(engine: &Engine, turns: Vec<Turn>) -> Result<Vec<rag_engine::Turn>, ApiError> {
    if turns.len() > MAX_HISTORY_TURNS {
        return Err(ApiError::invalid(
            "history",
            format!(
                "{} turns is over the limit of {MAX_HISTORY_TURNS}",
                turns.len()
            ),
        ));
    }
    turns
        .into_iter()
        .map(|t| {
            Ok(rag_engine::Turn {
                question: question(engine, "history.question", &t.question)?,
                answer: t.answer.chars().take(MAX_HISTORY_ANSWER_CHARS).collect(),
            })
        })
        .collect()
}

impl DeleteDocumentRequest {
    /// The target, checked before anything is touched: what reaches the store and the audit
    /// line is a valid id or a one-line path.
    pub fn validate(self) -> Result<DeleteTarget, ApiError> {
        match self.target {
            Some(DeleteTarget::DocumentId(id)) => {
                Ok(DeleteTarget::DocumentId(document_id("document_id", &id)?))
            }
            Some(DeleteTarget::SourcePath(path)) => {
                let path = source_path("source_path", path.trim())?;
                if path.is_empty() {
                    return Err(ApiError::invalid("source_path", "must not be empty"));
                }
                Ok(DeleteTarget::SourcePath(path))
            }
            None => Err(ApiError::invalid(
                "target",
                "set document_id or source_path",
            )),
        }
    }
}

impl IngestDocumentRequest {
    /// The document to index into the caller's tenant, written as the caller may write.
    pub fn validate(self, caller: &Caller) -> Result<rag_ingest::IncomingDocument, ApiError> {
        // Empty: derived from the file name.
        let document_id = match self.document_id.trim() {
            "" => String::new(),
            id => document_id("document_id", id)?,
        };
        let file_name = self.file_name.trim().to_owned();
        if file_name.is_empty() {
            return Err(ApiError::invalid("file_name", "must not be empty"));
        }
        if self.content.is_empty() {
            return Err(ApiError::invalid("content", "must not be empty"));
        }
        Ok(rag_ingest::IncomingDocument {
            file_name,
            media_type: self.media_type,
            content: self.content,
            document_id,
            metadata: self.metadata,
            tenant: caller.tenant.clone(),
            groups: self.groups,
            writer: caller.visibility.clone(),
        })
    }
}
