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
    /// A question in a writing system the embedding model does not read: retrieval would
    /// return unrelated passages with confident scores, so nothing is retrieved.
    #[error(
        "the question is written in {script}, but the embedding model {model} reads English only, \
         so the passages it finds would be unrelated, and no page in that script holds its \
         words: ask in English, turn on query.translation (the chat model then searches the \
         question in English), or run the service with the multilingual configuration \
         (examples/multilingual.toml; for another model that reads this language, set \
         embedding.multilingual = true)"
    )]
    UnsupportedLanguage { script: &'static str, model: String },
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
