//! What every call leaves behind: a request id (in the logs and the response metadata), a
//! tracing span, Prometheus counts and latencies per RPC and status code, and one audit line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::{counter, histogram};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Response, Status};
use tracing::Span;

/// Request metadata a client may set to correlate its logs with ours; echoed in the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Calls by `rpc` and `code` (the gRPC status name).
pub const REQUESTS: &str = "rag_grpc_requests_total";
/// Seconds from the call to its last message (for Ask, the end of the stream), by `rpc` and
/// `code`.
pub const REQUEST_SECONDS: &str = "rag_grpc_request_duration_seconds";

/// The gRPC deadline a client sends, as a timeout from now.
const TIMEOUT_HEADER: &str = "grpc-timeout";

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n), as the gRPC HTTP/2
/// protocol defines it; anything else is no deadline.
fn parse_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A client's id is kept when it is short, printable ASCII; anything else gets a fresh one.
const MAX_REQUEST_ID: usize = 128;

/// Describes the per-call metrics to the installed recorder (Prometheus `# HELP` lines).
pub fn describe() {
    metrics::describe_counter!(REQUESTS, "gRPC calls by rpc and status code");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "gRPC call duration (Ask: until the stream ends) by rpc and status code"
    );
    metrics::describe_counter!(
        crate::service::STALLED_STREAMS,
        "answer streams ended because their client stopped reading, by door"
    );
}

pub struct Call {
    rpc: &'static str,
    id: String,
    started: Instant,
    deadline: Option<Instant>,
    span: Span,
    finished: AtomicBool,
    /// The id of the key that was let in (none when the service checks no keys).
    key: OnceLock<String>,
    /// The tenant the call acted in (none when it was refused before that was known).
    tenant: OnceLock<String>,
    /// Document ids the call returned, wrote or deleted, for the audit line.
    documents: Mutex<Vec<String>>,
    /// The call's place in its key's limit of calls under way, given back when the call ends.
    permit: Mutex<Option<rag_auth::Permit>>,
}

impl Call {
    pub fn start<T>(rpc: &'static str, request: &Request<T>) -> Self {
        let id = request
            .metadata()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= MAX_REQUEST_ID
                    && v.bytes().all(|b| b.is_ascii_graphic())
            })
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let span = tracing::info_span!("request", rpc, request_id = %id);
        let started = Instant::now();
        let deadline = request
            .metadata()
            .get(TIMEOUT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_timeout)
            .map(|timeout| started + timeout);
        Self {
            rpc,
            id,
            started,
            deadline,
            span,
            finished: AtomicBool::new(false),
            key: OnceLock::new(),
            tenant: OnceLock::new(),
            documents: Mutex::new(Vec::new()),
            permit: Mutex::new(None),
        }
    }

    /// Keeps the key's permit until the call ends (for Ask: its stream).
    pub fn hold(&self, permit: rag_auth::Permit) {
        *self.permit.lock().unwrap_or_else(|e| e.into_inner()) = Some(permit);
    }

    /// Names the key the call was let in with, for the audit line.
    pub fn set_key(&self, key_id: String) {
        let _ = self.key.set(key_id);
    }

    /// Names the tenant the call acts in, for the audit line.
    pub fn set_tenant(&self, tenant: String) {
        let _ = self.tenant.set(tenant);
    }

    /// Adds documents the call returned, wrote or deleted to its audit line.
    pub fn touch<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if !documents.iter().any(|d| d == id) {
                documents.push(id.to_owned());
            }
        }
    }

    /// When the client stops waiting, from its `grpc-timeout`. tonic enforces it only until
    /// the response starts; a stream (Ask) ends itself at this instant.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn span(&self) -> Span {
        self.span.clone()
    }

    /// Records the call's outcome (once).
    pub fn finish(&self, code: Code) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        let labels = [("rpc", self.rpc), ("code", code_name(code))];
        let elapsed = self.started.elapsed();
        self.permit.lock().unwrap_or_else(|e| e.into_inner()).take();
        counter!(REQUESTS, &labels).increment(1);
        histogram!(REQUEST_SECONDS, &labels).record(elapsed);
        let documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        tracing::info!(
            target: rag_api::AUDIT_TARGET,
            request_id = %self.id,
            key = self.key.get().map_or("-", String::as_str),
            tenant = self.tenant.get().map_or("-", String::as_str),
            rpc = self.rpc,
            code = code_name(code),
            ms = elapsed.as_secs_f64() * 1e3,
            documents = %documents.join(","),
            "call"
        );
    }

    /// The response with the request id, without finishing the call (a stream finishes later).
    pub fn tag<T>(&self, mut response: Response<T>) -> Response<T> {
        if let Ok(v) = MetadataValue::try_from(self.id.as_str()) {
            response.metadata_mut().insert(REQUEST_ID_HEADER, v);
        }
        response
    }

    /// Finishes a unary call: its result, tagged with the request id, recorded.
    pub fn respond<T>(&self, result: Result<T, Status>) -> Result<Response<T>, Status> {
        match result {
            Ok(message) => {
                self.finish(Code::Ok);
                Ok(self.tag(Response::new(message)))
            }
            Err(status) => Err(self.fail(status)),
        }
    }

    /// Finishes a failed call: the status, tagged with the request id, recorded.
    pub fn fail(&self, mut status: Status) -> Status {
        self.finish(status.code());
        if let Ok(v) = MetadataValue::try_from(self.id.as_str()) {
            status.metadata_mut().insert(REQUEST_ID_HEADER, v);
        }
        status
    }
}

/// A call dropped before it finished was cancelled: the client left or its deadline passed, and
/// tonic dropped the handler.
impl Drop for Call {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// The status name as gRPC spells it, a bounded label set.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_nothing_else() {
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("10u"), Some(Duration::from_micros(10)));
        assert_eq!(
            parse_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123456789S", "5s", "-1S", "1.5S", "5"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }
}
