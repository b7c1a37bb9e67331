//! The gRPC door of the query service: [`service`] admits calls, maps each message onto its
//! `rag-api` request ([`wire`]) and makes the call through `rag_api::calls`, [`status`] maps
//! every kind of error onto a gRPC status in one table, [`server`] runs tonic with health and
//! reflection. What a call does and how it fails is `rag-api`'s, shared with the HTTP door.

mod observe;
mod screen;
pub mod server;
mod service;
pub mod status;
mod wire;

pub use observe::{REQUEST_ID_HEADER, code_name, describe as describe_metrics};
pub use service::{AUTHORIZATION_HEADER, Rebuild, Serving};
