//! The API's calls independent of any transport, as TEI's `core` serves its HTTP and gRPC
//! routers: [`admit`] lets a call in, [`request`] holds one plain request type per call and
//! its validation, [`calls`] does the call (one [`calls::start_ask`] for every answer, with its
//! deadline), [`reply`] is what calls return, [`error`] what they fail with and which kind of
//! failure each is, [`serving`] what the service answers from.
//!
//! The gRPC door (`rag-grpc`) and the HTTP door (`rag-http`) each keep only their wire
//! mapping (proto or JSON onto these types and back) and their status table (an
//! [`ErrorKind`] onto a gRPC code or an HTTP status), so a request means the same, and fails
//! the same way, whichever door it comes through.

pub mod admit;
pub mod calls;
pub mod check;
pub mod error;
pub mod reply;
pub mod request;
pub mod serving;

pub use admit::{Admission, Caller, GROUPS_HEADER, admit, bearer, may_rebuild};
pub use error::{ApiError, ErrorKind};
pub use rag_engine::Verdict;
pub use request::{
    AskRequest, DeleteDocumentRequest, DeleteTarget, Filter, IngestDocumentRequest,
    RetrievalOptions, SearchRequest, Turn,
};
pub use serving::{Current, Loaded};

/// The tracing target of the audit log both doors write: one line per call (request id, key
/// id — never the key —, call, status, latency, documents touched), to be filtered and shipped
/// on its own (`RUST_LOG=audit=info`, `--log-json`).
pub const AUDIT_TARGET: &str = "audit";
