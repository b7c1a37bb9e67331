use std::path::PathBuf;

use rag_ingest::ExtractError;

use super::*;
use ErrorKind as K;

fn io() -> std::io::Error {
    std::io::Error::other("disk")
}

#[test]
fn callers_are_not_told_internal_addresses_or_paths() {
    let unreachable = ApiError::Engine(EngineError::Store(StoreError::Unavailable(
        "http://10.1.2.3:6334: transport error: connection refused".into(),
    )));
    assert_eq!(unreachable.kind(), K::Unavailable);
    let message = unreachable.client_message();
    assert!(!message.contains("10.1.2.3"), "{message}");
    assert!(message.contains("retry later"), "{message}");
    let io = ApiError::Engine(EngineError::Store(StoreError::Io {
        path: PathBuf::from("/srv/rag/data/collection/segment_7"),
        source: io(),
    }));
    assert_eq!(io.kind(), K::Internal);
    assert!(!io.client_message().contains("/srv/rag"));
    // What the caller can act on is still said.
    let field = ApiError::invalid("query", "must not be empty");
    assert_eq!(field.client_message(), "query: must not be empty");
    assert_eq!(
        ApiError::NotReady.client_message(),
        "the service is still loading its models"
    );
}

fn store_errors() -> Vec<(StoreError, ErrorKind)> {
    vec![
        (StoreError::Unavailable("down".into()), K::Unavailable),
        (
            StoreError::Locked {
                path: PathBuf::from("/d"),
            },
            K::Unavailable,
        ),
        (
            StoreError::SchemaMismatch("dim".into()),
            K::FailedPrecondition,
        ),
        (
            StoreError::Migration {
                name: "0001".into(),
                reason: "bad".into(),
            },
            K::Internal,
        ),
        (
            StoreError::Io {
                path: PathBuf::from("/d"),
                source: io(),
            },
            K::Internal,
        ),
        (StoreError::Operation("x".into()), K::Internal),
        (
            StoreError::Full {
                path: "/data".into(),
                free: 1,
                reserve: 2,
            },
            K::ResourceExhausted,
        ),
    ]
}

fn request_and_engine_errors() -> Vec<(ApiError, ErrorKind)> {
    vec![
        (
            ApiError::invalid("query", "must not be empty"),
            K::InvalidArgument,
        ),
        (ApiError::NotReady, K::Unavailable),
        (
            ApiError::TooLarge {
                rpc: "Search",
                size: 2,
                limit: 1,
            },
            K::OutOfRange,
        ),
        (AuthError::Missing.into(), K::Unauthenticated),
        (AuthError::Unknown.into(), K::Unauthenticated),
        (
            AuthError::Forbidden {
                key_id: "bot".into(),
                role: rag_auth::Role::Reader,
                action: rag_auth::Action::Ingest,
            }
            .into(),
            K::PermissionDenied,
        ),
        (
            AuthError::RateLimited {
                key_id: "bot".into(),
                per_minute: 60,
                retry_after: std::time::Duration::from_secs(1),
            }
            .into(),
            K::ResourceExhausted,
        ),
        (
            AuthError::TooManyInFlight {
                key_id: "bot".into(),
                limit: 4,
            }
            .into(),
            K::ResourceExhausted,
        ),
        (
            AuthError::MayNotForward {
                key_id: "bot".into(),
            }
            .into(),
            K::PermissionDenied,
        ),
        (
            EngineError::invalid("max_tokens", "too many").into(),
            K::InvalidArgument,
        ),
        (
            EngineError::Embed(rag_embed::EmbedError::Inference("x".into())).into(),
            K::Internal,
        ),
        (EngineError::Internal("x".into()).into(), K::Internal),
        (
            EngineError::UnsupportedLanguage {
                script: "Korean (Hangul)",
                model: "all-MiniLM-L6-v2".into(),
            }
            .into(),
            K::FailedPrecondition,
        ),
        (
            EngineError::Llm(LlmError::Busy).into(),
            K::ResourceExhausted,
        ),
        (
            EngineError::Llm(LlmError::DeadlineExceeded).into(),
            K::DeadlineExceeded,
        ),
        (
            EngineError::Llm(LlmError::TooLong {
                prompt: 1,
                max_tokens: 1,
                n_ctx: 1,
            })
            .into(),
            K::InvalidArgument,
        ),
        (EngineError::Llm(LlmError::Stopped).into(), K::Unavailable),
        (
            EngineError::Llm(LlmError::Generation("x".into())).into(),
            K::Internal,
        ),
        (
            EngineError::Llm(LlmError::Load {
                path: "m.gguf".into(),
                reason: "x".into(),
            })
            .into(),
            K::Internal,
        ),
        (ApiError::Rebuild("x".into()), K::FailedPrecondition),
        (ApiError::NotForTenant("x".into()), K::PermissionDenied),
    ]
}

fn index_errors() -> Vec<(ApiError, ErrorKind)> {
    let path = || "a.pdf".to_owned();
    vec![
        (
            ApiError::from(IndexError::Read {
                path: path(),
                source: io(),
            }),
            K::Internal,
        ),
        (
            IndexError::TooLarge {
                path: path(),
                size: 2,
                limit: 1,
            }
            .into(),
            K::InvalidArgument,
        ),
        (
            IndexError::Extract {
                path: path(),
                source: ExtractError::Garbled(50.0),
            }
            .into(),
            K::InvalidArgument,
        ),
        (
            IndexError::Unsupported {
                path: path(),
                media_type: "image/png".into(),
            }
            .into(),
            K::InvalidArgument,
        ),
        (
            IndexError::Embed {
                path: path(),
                reason: "x".into(),
            }
            .into(),
            K::Internal,
        ),
        (
            IndexError::Crashed {
                path: path(),
                reason: "x".into(),
            }
            .into(),
            K::InvalidArgument,
        ),
        (IndexError::Folder("x".into()).into(), K::Internal),
        (
            IndexError::Forbidden {
                path: "hr/pay.md".into(),
                reason: "x".into(),
            }
            .into(),
            K::PermissionDenied,
        ),
        (
            IndexError::BadGroups {
                path: "hr/pay.md".into(),
                reason: "x".into(),
            }
            .into(),
            K::InvalidArgument,
        ),
    ]
}

/// Every error, with the kind it is: what both doors' tables start from.
fn every_error() -> Vec<(ApiError, ErrorKind)> {
    let mut table = request_and_engine_errors();
    table.extend(
        store_errors()
            .into_iter()
            .map(|(s, k)| (EngineError::Store(s).into(), k)),
    );
    table.extend(
        store_errors()
            .into_iter()
            .map(|(s, k)| (IndexError::Store(s).into(), k)),
    );
    table.extend(index_errors());
    table
}

#[test]
fn every_error_is_of_its_kind() {
    for (error, expected) in every_error() {
        let message = error.client_message();
        let detail = error.to_string();
        assert_eq!(error.kind(), expected, "{detail}");
        // Only the service's own failures are told in other words than the error's.
        let internal = matches!(expected, K::Internal | K::Unavailable);
        assert!(internal || message == detail, "{detail}");
    }
}
