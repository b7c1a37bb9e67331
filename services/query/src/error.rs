use rag_ingest::IndexError;
use rag_llm::LlmError;
use rag_store::StoreError;
use tonic::{Code, Status};

/// Everything a request can fail with, mapped onto gRPC status codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("the service is still loading its models")]
    NotReady,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] rag_embed::EmbedError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("internal: {0}")]
    Internal(String),
}

impl QueryError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<QueryError> for Status {
    fn from(e: QueryError) -> Self {
        let code = match &e {
            QueryError::InvalidArgument { .. } => Code::InvalidArgument,
            QueryError::NotReady => Code::Unavailable,
            QueryError::Store(s) => store_code(s),
            QueryError::Embed(_) | QueryError::Internal(_) => Code::Internal,
            QueryError::Llm(LlmError::Busy) => Code::ResourceExhausted,
            QueryError::Llm(LlmError::TooLong { .. }) => Code::InvalidArgument,
            QueryError::Llm(LlmError::Stopped) => Code::Unavailable,
            QueryError::Llm(_) => Code::Internal,
            QueryError::Index(i) => match i {
                IndexError::Store(s) => store_code(s),
                IndexError::Folder(_) | IndexError::Embed { .. } => Code::Internal,
                IndexError::Read { .. } => Code::Internal,
                IndexError::TooLarge { .. }
                | IndexError::Extract { .. }
                // A parser that crashes on a document was given a document it cannot read.
                | IndexError::Crashed { .. }
                | IndexError::Unsupported { .. } => Code::InvalidArgument,
            },
        };
        if code == Code::Internal {
            tracing::error!(error = %e, "request failed");
        }
        Status::new(code, e.to_string())
    }
}

fn store_code(e: &StoreError) -> Code {
    match e {
        StoreError::Unavailable(_) => Code::Unavailable,
        StoreError::SchemaMismatch(_) => Code::FailedPrecondition,
        _ => Code::Internal,
    }
}
