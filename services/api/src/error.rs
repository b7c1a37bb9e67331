//! Every error a call can end in, and the one table of what kind of failure each is. The kinds
//! are the canonical API error codes (`google.rpc.Code`): the gRPC door reports a kind as its
//! status code, the HTTP door as a status and the error body's `code`; neither decides again
//! what an error is.

use rag_auth::AuthError;
use rag_engine::EngineError;
use rag_ingest::IndexError;
use rag_llm::LlmError;
use rag_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field that is out of range or malformed, named by its path in the request.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("the service is still loading its models")]
    NotReady,
    /// A request over its call's size limit (the transport refuses those over the largest).
    #[error("{rpc} requests are limited to {limit} bytes; this one has {size}")]
    TooLarge {
        rpc: &'static str,
        size: usize,
        limit: usize,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A store rebuild (Reindex) that could not be made or is not this service's to make.
    #[error("{0}")]
    Rebuild(String),
    /// A call this key's role allows, but not for its tenant.
    #[error("{0}")]
    NotForTenant(String),
}

/// What kind of failure an error is: what the caller can do about it. Only the kinds the
/// service reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    FailedPrecondition,
    OutOfRange,
    DeadlineExceeded,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        Self::InvalidArgument,
        Self::NotFound,
        Self::PermissionDenied,
        Self::Unauthenticated,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::OutOfRange,
        Self::DeadlineExceeded,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The canonical name, as gRPC spells the status and HTTP's error body reports it.
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::NotFound => "NOT_FOUND",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl ApiError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// The request field at fault, for errors that have one.
    pub fn field(&self) -> Option<(&'static str, &str)> {
        match self {
            Self::InvalidArgument { field, reason }
            | Self::Engine(EngineError::InvalidArgument { field, reason }) => Some((field, reason)),
            _ => None,
        }
    }

    /// The table: which kind each error is.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            ApiError::InvalidArgument { .. } => K::InvalidArgument,
            ApiError::NotReady => K::Unavailable,
            // What gRPC transports answer for a message over their limit.
            ApiError::TooLarge { .. } => K::OutOfRange,
            ApiError::Auth(AuthError::Missing | AuthError::Unknown) => K::Unauthenticated,
            ApiError::Auth(AuthError::Forbidden { .. } | AuthError::MayNotForward { .. }) => {
                K::PermissionDenied
            }
            ApiError::Auth(AuthError::TooManyInFlight { .. } | AuthError::RateLimited { .. }) => {
                K::ResourceExhausted
            }
            ApiError::Engine(e) => match e {
                EngineError::InvalidArgument { .. } => K::InvalidArgument,
                // The deployment, not the request, is at fault: another configuration answers it.
                EngineError::UnsupportedLanguage { .. } => K::FailedPrecondition,
                EngineError::Store(s) => store_kind(s),
                EngineError::Llm(l) => llm_kind(l),
                EngineError::Embed(_) | EngineError::Internal(_) => K::Internal,
            },
            ApiError::Index(i) => match i {
                IndexError::Store(s) => store_kind(s),
                IndexError::Folder(_) | IndexError::Embed { .. } | IndexError::Read { .. } => {
                    K::Internal
                }
                IndexError::TooLarge { .. }
                | IndexError::Extract { .. }
                // A parser that crashes on a document was given a document it cannot read.
                | IndexError::Crashed { .. }
                | IndexError::BadName { .. }
                | IndexError::BadGroups { .. }
                | IndexError::Unsupported { .. } => K::InvalidArgument,
                IndexError::Forbidden { .. } => K::PermissionDenied,
            },
            // A missing folder, a store that is not this service's to rebuild: the operator acts.
            ApiError::Rebuild(_) => K::FailedPrecondition,
            ApiError::NotForTenant(_) => K::PermissionDenied,
        }
    }

    /// What the caller is told. Errors of the service's own machinery (the store unreachable,
    /// an I/O or engine failure) carry internal addresses, paths and transport details: the
    /// caller gets what happened and what to do, the log keeps the detail (with the request
    /// id, in the call's span).
    pub fn client_message(&self) -> String {
        match self.kind() {
            ErrorKind::Internal => {
                "internal error; the service's log has the details (by request id)".to_owned()
            }
            ErrorKind::Unavailable if !matches!(self, ApiError::NotReady) => {
                tracing::warn!(error = %self, "request failed: a backend is unavailable");
                "a backend of the service (the document store or the generator) is unavailable; \
                 retry later"
                    .to_owned()
            }
            _ => self.to_string(),
        }
    }

    /// How long a refused caller should wait before trying again, for limits that say.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ApiError::Auth(a) => a.retry_after(),
            _ => None,
        }
    }
}

fn llm_kind(e: &LlmError) -> ErrorKind {
    match e {
        LlmError::Busy => ErrorKind::ResourceExhausted,
        LlmError::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        LlmError::TooLong { .. } => ErrorKind::InvalidArgument,
        LlmError::Stopped => ErrorKind::Unavailable,
        LlmError::Load { .. } | LlmError::Generation(_) => ErrorKind::Internal,
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        // Another process holds the embedded store; it may let go (a finished ingest).
        StoreError::Unavailable(_) | StoreError::Locked { .. } => ErrorKind::Unavailable,
        StoreError::SchemaMismatch(_) => ErrorKind::FailedPrecondition,
        // The disk, not the request: nothing was written; retrying after space is freed works.
        StoreError::Full { .. } => ErrorKind::ResourceExhausted,
        StoreError::Migration { .. } | StoreError::Io { .. } | StoreError::Operation(_) => {
            ErrorKind::Internal
        }
    }
}

#[cfg(test)]
mod tests;
