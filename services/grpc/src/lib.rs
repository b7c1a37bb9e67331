//! The gRPC front door of the query service: [`service`] validates requests and maps them onto
//! the engine, [`status`] maps every error onto a gRPC status in one table, [`server`] runs
//! tonic with health and reflection.

mod observe;
pub mod request;
mod screen;
pub mod server;
mod service;
pub mod status;

pub use observe::{AUDIT_TARGET, REQUEST_ID_HEADER, code_name, describe as describe_metrics};
pub use service::{AUTHORIZATION_HEADER, Current, Loaded, Rebuild, Serving};
