//! Every error a request can end in, and the one table that maps it onto a gRPC status.

use rag_auth::AuthError;
use rag_engine::EngineError;
use rag_ingest::IndexError;
use rag_llm::LlmError;
use rag_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field that is out of range or malformed, named by its path in the request.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("the service is still loading its models")]
    NotReady,
    /// A request over its RPC's size limit (the transport refuses those over the largest).
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
}

/// The table: which status each error is.
pub fn code(e: &ApiError) -> Code {
    match e {
        ApiError::InvalidArgument { .. } => Code::InvalidArgument,
        ApiError::NotReady => Code::Unavailable,
        // What tonic answers for a message over the transport's limit.
        ApiError::TooLarge { .. } => Code::OutOfRange,
        ApiError::Auth(AuthError::Missing | AuthError::Unknown) => Code::Unauthenticated,
        ApiError::Auth(AuthError::Forbidden { .. } | AuthError::MayNotForward { .. }) => {
            Code::PermissionDenied
        }
        ApiError::Auth(AuthError::TooManyInFlight { .. } | AuthError::RateLimited { .. }) => {
            Code::ResourceExhausted
        }
        ApiError::Engine(e) => match e {
            EngineError::InvalidArgument { .. } => Code::InvalidArgument,
            // The deployment, not the request, is at fault: another configuration answers it.
            EngineError::UnsupportedLanguage { .. } => Code::FailedPrecondition,
            EngineError::Store(s) => store_code(s),
            EngineError::Llm(l) => llm_code(l),
            EngineError::Embed(_) | EngineError::Internal(_) => Code::Internal,
        },
        ApiError::Index(i) => match i {
            IndexError::Store(s) => store_code(s),
            IndexError::Folder(_) | IndexError::Embed { .. } | IndexError::Read { .. } => {
                Code::Internal
            }
            IndexError::TooLarge { .. }
            | IndexError::Extract { .. }
            // A parser that crashes on a document was given a document it cannot read.
            | IndexError::Crashed { .. }
            | IndexError::BadName { .. }
            | IndexError::BadGroups { .. }
            | IndexError::Unsupported { .. } => Code::InvalidArgument,
            IndexError::Forbidden { .. } => Code::PermissionDenied,
        },
        // A missing folder, a store that is not this service's to rebuild: the operator acts.
        ApiError::Rebuild(_) => Code::FailedPrecondition,
        ApiError::NotForTenant(_) => Code::PermissionDenied,
    }
}

fn llm_code(e: &LlmError) -> Code {
    match e {
        LlmError::Busy => Code::ResourceExhausted,
        LlmError::DeadlineExceeded => Code::DeadlineExceeded,
        LlmError::TooLong { .. } => Code::InvalidArgument,
        LlmError::Stopped => Code::Unavailable,
        LlmError::Load { .. } | LlmError::Generation(_) => Code::Internal,
    }
}

fn store_code(e: &StoreError) -> Code {
    match e {
        // Another process holds the embedded store; it may let go (a finished ingest).
        StoreError::Unavailable(_) | StoreError::Locked { .. } => Code::Unavailable,
        StoreError::SchemaMismatch(_) => Code::FailedPrecondition,
        // The disk, not the request: nothing was written; retrying after space is freed works.
        StoreError::Full { .. } => Code::ResourceExhausted,
        StoreError::Migration { .. } | StoreError::Io { .. } | StoreError::Operation(_) => {
            Code::Internal
        }
    }
}

impl ApiError {
    /// What the caller is told. Errors of the service's own machinery (the store unreachable,
    /// an I/O or engine failure) carry internal addresses, paths and transport details: the
    /// caller gets what happened and what to do, the log keeps the detail (with the request
    /// id, in the call's span).
    pub fn client_message(&self) -> String {
        match code(self) {
            Code::Internal => {
                "internal error; the service's log has the details (by request id)".to_owned()
            }
            Code::Unavailable if !matches!(self, ApiError::NotReady) => {
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

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let code = code(&e);
        if code == Code::Internal {
            tracing::error!(error = %e, "request failed");
        }
        let retry = e.retry_after();
        match (e.field(), retry) {
            // The message keeps the field name for clients that only read messages; the
            // BadRequest detail names it for clients that act on it.
            (Some((field, reason)), _) => Status::with_error_details(
                code,
                e.client_message(),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            // A limit says when to come back (google.rpc.RetryInfo).
            (None, Some(delay)) => Status::with_error_details(
                code,
                e.client_message(),
                ErrorDetails::with_retry_info(Some(delay)),
            ),
            (None, None) => Status::new(code, e.client_message()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rag_ingest::ExtractError;

    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::other("disk")
    }

    #[test]
    fn callers_are_not_told_internal_addresses_or_paths() {
        let unreachable = ApiError::Engine(EngineError::Store(StoreError::Unavailable(
            "http://10.1.2.3:6334: transport error: connection refused".into(),
        )));
        let status = Status::from(unreachable);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.1.2.3"), "{status:?}");
        assert!(status.message().contains("retry later"), "{status:?}");
        let io = ApiError::Engine(EngineError::Store(StoreError::Io {
            path: PathBuf::from("/srv/rag/data/collection/segment_7"),
            source: io(),
        }));
        let status = Status::from(io);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/srv/rag"), "{status:?}");
        // What the caller can act on is still said.
        let field = ApiError::invalid("query", "must not be empty");
        assert_eq!(Status::from(field).message(), "query: must not be empty");
        assert_eq!(
            Status::from(ApiError::NotReady).message(),
            "the service is still loading its models"
        );
    }

    #[test]
    fn every_error_maps_to_its_status() {
        let store = || {
            [
                (StoreError::Unavailable("down".into()), Code::Unavailable),
                (
                    StoreError::Locked {
                        path: PathBuf::from("/d"),
                    },
                    Code::Unavailable,
                ),
                (
                    StoreError::SchemaMismatch("dim".into()),
                    Code::FailedPrecondition,
                ),
                (
                    StoreError::Migration {
                        name: "0001".into(),
                        reason: "bad".into(),
                    },
                    Code::Internal,
                ),
                (
                    StoreError::Io {
                        path: PathBuf::from("/d"),
                        source: io(),
                    },
                    Code::Internal,
                ),
                (StoreError::Operation("x".into()), Code::Internal),
                (
                    StoreError::Full {
                        path: "/data".into(),
                        free: 1,
                        reserve: 2,
                    },
                    Code::ResourceExhausted,
                ),
            ]
        };
        let mut table: Vec<(ApiError, Code)> = vec![
            (
                ApiError::invalid("query", "must not be empty"),
                Code::InvalidArgument,
            ),
            (ApiError::NotReady, Code::Unavailable),
            (
                ApiError::TooLarge {
                    rpc: "Search",
                    size: 2,
                    limit: 1,
                },
                Code::OutOfRange,
            ),
            (AuthError::Missing.into(), Code::Unauthenticated),
            (AuthError::Unknown.into(), Code::Unauthenticated),
            (
                AuthError::Forbidden {
                    key_id: "bot".into(),
                    role: rag_auth::Role::Reader,
                    action: rag_auth::Action::Ingest,
                }
                .into(),
                Code::PermissionDenied,
            ),
            (
                AuthError::RateLimited {
                    key_id: "bot".into(),
                    per_minute: 60,
                    retry_after: std::time::Duration::from_secs(1),
                }
                .into(),
                Code::ResourceExhausted,
            ),
            (
                AuthError::TooManyInFlight {
                    key_id: "bot".into(),
                    limit: 4,
                }
                .into(),
                Code::ResourceExhausted,
            ),
            (
                EngineError::invalid("max_tokens", "too many").into(),
                Code::InvalidArgument,
            ),
            (
                EngineError::Embed(rag_embed::EmbedError::Inference("x".into())).into(),
                Code::Internal,
            ),
            (EngineError::Internal("x".into()).into(), Code::Internal),
            (
                EngineError::UnsupportedLanguage {
                    script: "Korean (Hangul)",
                    model: "all-MiniLM-L6-v2".into(),
                }
                .into(),
                Code::FailedPrecondition,
            ),
            (
                EngineError::Llm(LlmError::Busy).into(),
                Code::ResourceExhausted,
            ),
            (
                EngineError::Llm(LlmError::DeadlineExceeded).into(),
                Code::DeadlineExceeded,
            ),
            (
                EngineError::Llm(LlmError::TooLong {
                    prompt: 1,
                    max_tokens: 1,
                    n_ctx: 1,
                })
                .into(),
                Code::InvalidArgument,
            ),
            (
                EngineError::Llm(LlmError::Stopped).into(),
                Code::Unavailable,
            ),
            (
                EngineError::Llm(LlmError::Generation("x".into())).into(),
                Code::Internal,
            ),
            (
                EngineError::Llm(LlmError::Load {
                    path: "m.gguf".into(),
                    reason: "x".into(),
                })
                .into(),
                Code::Internal,
            ),
        ];
        for (s, c) in store() {
            table.push((EngineError::Store(s).into(), c));
        }
        for (s, c) in store() {
            table.push((IndexError::Store(s).into(), c));
        }
        let path = || "a.pdf".to_owned();
        table.extend([
            (
                ApiError::from(IndexError::Read {
                    path: path(),
                    source: io(),
                }),
                Code::Internal,
            ),
            (
                IndexError::TooLarge {
                    path: path(),
                    size: 2,
                    limit: 1,
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                IndexError::Extract {
                    path: path(),
                    source: ExtractError::Garbled(50.0),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                IndexError::Unsupported {
                    path: path(),
                    media_type: "image/png".into(),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                IndexError::Embed {
                    path: path(),
                    reason: "x".into(),
                }
                .into(),
                Code::Internal,
            ),
            (
                IndexError::Crashed {
                    path: path(),
                    reason: "x".into(),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (IndexError::Folder("x".into()).into(), Code::Internal),
            (
                IndexError::Forbidden {
                    path: "hr/pay.md".into(),
                    reason: "x".into(),
                }
                .into(),
                Code::PermissionDenied,
            ),
            (
                IndexError::BadGroups {
                    path: "hr/pay.md".into(),
                    reason: "x".into(),
                }
                .into(),
                Code::InvalidArgument,
            ),
            (
                AuthError::MayNotForward {
                    key_id: "bot".into(),
                }
                .into(),
                Code::PermissionDenied,
            ),
        ]);
        for (error, expected) in table {
            let message = error.client_message();
            let detail = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), expected, "{detail}");
            assert_eq!(status.message(), message);
            // Only the service's own failures are told in other words than the error's.
            let internal = matches!(expected, Code::Internal | Code::Unavailable);
            assert!(internal || message == detail, "{detail}");
        }
    }

    #[test]
    fn field_errors_carry_a_bad_request_detail_naming_the_field() {
        for error in [
            ApiError::invalid("retrieval.top_k", "101 is outside 1..=100"),
            EngineError::invalid("retrieval.top_k", "101 is outside 1..=100").into(),
        ] {
            let status = Status::from(error);
            assert!(status.message().starts_with("retrieval.top_k: "));
            let details = status.get_error_details();
            let violations = &details
                .bad_request()
                .expect("a BadRequest detail")
                .field_violations;
            assert_eq!(violations.len(), 1);
            assert_eq!(violations[0].field, "retrieval.top_k");
            assert_eq!(violations[0].description, "101 is outside 1..=100");
        }
        let plain = Status::from(ApiError::NotReady);
        assert!(plain.get_error_details().bad_request().is_none());
    }
}
