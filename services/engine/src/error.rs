use rag_llm::LlmError;
use rag_store::StoreError;

/// Everything the engine can fail with. The transports map it onto their own status codes, each
/// in one table (`rag-grpc`'s `status` module).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A request option the engine cannot honour, named by its field (e.g. `max_tokens` that
    /// leaves no room for sources in the context window).
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] rag_embed::EmbedError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("internal: {0}")]
    Internal(String),
}

impl EngineError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}
