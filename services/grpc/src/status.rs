//! The gRPC door's status table: each kind of API error ([`rag_api::ErrorKind`], decided once
//! in `rag-api`) onto its gRPC code, and an error onto the status the caller gets.

use rag_api::{ApiError, ErrorKind};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The table: which code each kind of error is.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::OutOfRange => Code::OutOfRange,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

/// The status a failed call answers with: its code, the message the caller may read, and the
/// details a client can act on.
pub fn status(e: ApiError) -> Status {
    let code = code(e.kind());
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

#[cfg(test)]
mod tests {
    use rag_engine::EngineError;
    use rag_store::StoreError;

    use super::*;
    use crate::code_name;

    #[test]
    fn every_kind_is_the_code_of_its_name() {
        for kind in ErrorKind::ALL {
            assert_eq!(code_name(code(kind)), kind.name(), "{kind:?}");
        }
    }

    #[test]
    fn callers_are_told_the_client_message() {
        let unreachable = ApiError::Engine(EngineError::Store(StoreError::Unavailable(
            "http://10.1.2.3:6334: transport error: connection refused".into(),
        )));
        let message = unreachable.client_message();
        let told = status(unreachable);
        assert_eq!(told.code(), Code::Unavailable);
        assert_eq!(told.message(), message);
        assert!(!told.message().contains("10.1.2.3"), "{told:?}");
        assert_eq!(
            status(ApiError::NotReady).message(),
            "the service is still loading its models"
        );
    }

    #[test]
    fn field_errors_carry_a_bad_request_detail_naming_the_field() {
        for error in [
            ApiError::invalid("retrieval.top_k", "101 is outside 1..=100"),
            EngineError::invalid("retrieval.top_k", "101 is outside 1..=100").into(),
        ] {
            let status = status(error);
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
        let plain = status(ApiError::NotReady);
        assert!(plain.get_error_details().bad_request().is_none());
    }
}
