//! Every error an HTTP request can end in, as a status and a JSON body: the HTTP door's status
//! table. What kind of failure an error is comes from `rag-api` ([`ErrorKind`]), as for gRPC,
//! so the two doors never disagree about what an error is; this table maps the kind onto the
//! standard HTTP status for it (as grpc-gateway and Google APIs do). The body is OpenAI's error
//! shape, which the OpenAI SDKs read; our own clients read the same.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rag_api::{ApiError, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// A failed request: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    /// OpenAI's error family: "invalid_request_error", "authentication_error",
    /// "permission_error", "not_found_error", "rate_limit_error", "server_error".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The gRPC status name of the same error ("INVALID_ARGUMENT", "UNAVAILABLE", ...).
    pub code: &'static str,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// An error of the HTTP door: one of the service's, or a route's own "not found".
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Something the request names that does not exist (or that the caller may not see).
    #[error("{0}")]
    NotFound(String),
    /// A request this service will not answer as addressed (see `loopback_names_only`).
    #[error("{0}")]
    Misaddressed(String),
    /// A body that could not be read as the request: its HTTP status as axum judged it.
    #[error("body: {reason}")]
    Body { status: StatusCode, reason: String },
}

impl HttpError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Api(ApiError::invalid(field, reason))
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Api(e) => e.kind(),
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Misaddressed(_) => ErrorKind::PermissionDenied,
            Self::Body { .. } => ErrorKind::InvalidArgument,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let kind = self.kind();
        let param = match self {
            Self::Api(e) => e.field().map(|(field, _)| field.to_owned()),
            Self::NotFound(_) | Self::Misaddressed(_) => None,
            Self::Body { .. } => Some("body".to_owned()),
        };
        let message = match self {
            Self::Api(e) => e.client_message(),
            _ => self.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                message,
                kind: openai_type(kind),
                code: kind.name(),
                param,
            },
        }
    }
}

impl From<rag_engine::EngineError> for HttpError {
    fn from(e: rag_engine::EngineError) -> Self {
        Self::Api(e.into())
    }
}

/// A JSON request body, read before the handler runs but judged after the caller is let in
/// (a caller without a key learns it needs one, not what is wrong with its body). One that is
/// not JSON, not the request's shape or too large is refused with the API's own error (field
/// `body`) and the status axum gives it (400, 413, 415, 422).
pub struct Body<T>(pub Result<T, HttpError>);

impl<S, T> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(value),
            Err(e) => Err(HttpError::Body {
                status: e.status(),
                reason: e.body_text(),
            }),
        }))
    }
}

/// The table: which HTTP status each kind of error is.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::OutOfRange | ErrorKind::FailedPrecondition => {
            StatusCode::BAD_REQUEST
        }
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// OpenAI's error family for each kind.
fn openai_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unauthenticated => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::ResourceExhausted => "rate_limit_error",
        ErrorKind::InvalidArgument | ErrorKind::OutOfRange | ErrorKind::FailedPrecondition => {
            "invalid_request_error"
        }
        ErrorKind::DeadlineExceeded | ErrorKind::Unavailable | ErrorKind::Internal => {
            "server_error"
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        if kind == ErrorKind::Internal {
            tracing::error!(error = %self, "request failed");
        }
        let retry = match &self {
            Self::Api(e) => e.retry_after(),
            _ => None,
        };
        let status = match &self {
            Self::Body { status, .. } => *status,
            _ => http_status(kind),
        };
        let mut response = (status, Json(self.body())).into_response();
        if let Some(delay) = retry {
            // Whole seconds, rounded up: "0" would invite an immediate retry.
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_meaning_over_http() {
        let e = HttpError::invalid("question", "must not be empty");
        assert_eq!(http_status(e.kind()), StatusCode::BAD_REQUEST);
        let body = e.body();
        assert_eq!(body.error.code, "INVALID_ARGUMENT");
        assert_eq!(body.error.param.as_deref(), Some("question"));
        let e = HttpError::Api(ApiError::Auth(rag_auth::AuthError::Missing));
        assert_eq!(http_status(e.kind()), StatusCode::UNAUTHORIZED);
        assert_eq!(e.body().error.kind, "authentication_error");
        let e = HttpError::Api(ApiError::NotReady);
        assert_eq!(http_status(e.kind()), StatusCode::SERVICE_UNAVAILABLE);
    }
}
