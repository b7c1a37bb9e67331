//! End-to-end: the real `rag` binary, real models, the embedded store, gRPC over loopback.
//! One test binary (it links once), a module per area.

mod abuse;
mod answers;
mod auth;
mod backup;
mod browser;
mod cache;
mod client;
mod concurrency;
mod connections;
mod harness;
mod http;
mod incremental;
mod ingest;
mod names;
mod observability;
mod reindex;
mod retrieval;
mod server_backend;
mod service;
mod tenants;
mod tls;
