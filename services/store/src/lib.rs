//! The vector store behind the service: one core over two backends.
//!
//! [`Store`] holds the domain operations (versions, deletes, search) and [`open`] runs the one
//! migration driver; both are written once over a narrow backend trait with two
//! implementations:
//!
//! - embedded (`edge.rs`): Qdrant's engine in-process (`qdrant-edge`), the default, so a single
//!   machine needs no server;
//! - server (`server.rs`): a Qdrant server or cluster over gRPC (`qdrant-client`), the scale-out
//!   path.
//!
//! Both pass the same contract tests (`tests/contract`).

mod backend;
mod edge;
mod error;
mod fields;
mod fusion;
pub mod generation;
mod migrate;
pub mod migrations;
mod point;
mod schema;
mod server;
pub mod snapshot;
mod store;
pub mod synthetic;

use std::path::PathBuf;
use std::sync::Arc;

pub use edge::ensure_free_space;
pub use error::{Result, StoreError};
pub use fusion::{Fusion, FusionMethod, RRF_K, chunk_key, fuse_hits};
pub use point::{
    ChunkPayload, ChunkPoint, DEFAULT_TENANT, DOCUMENT_ID_RULE, DocumentVersion, EVERYONE, Hit,
    MAX_DOCUMENT_ID_BYTES, NAME_RULE, Query, SearchFilter, Visibility, breaks_lines, cosine,
    normalise_groups, point_id, valid_document_id, valid_name,
};
pub use rag_lexical::SparseVector;
pub use snapshot::SnapshotInfo;
pub use store::{IndexStats, Store};

/// Calls that found the Qdrant peer in use unreachable and were answered by another peer of
/// `store.url` (a Prometheus counter).
pub const FAILOVERS: &str = "rag_store_failovers_total";

/// Store searches made ([`Store::search`], a Prometheus counter): one per question, one more
/// for its translation when it is searched in English too.
pub const SEARCHES: &str = "rag_store_searches_total";

/// Which backend to open, and where.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    /// Embedded engine in `data_dir`, refusing writes while its file system has less than
    /// `min_free_bytes` free.
    Embedded {
        data_dir: PathBuf,
        min_free_bytes: u64,
    },
    /// Qdrant server at `urls` (gRPC, e.g. `http://127.0.0.1:6334`; several peers of one
    /// cluster to fail over between), collection `collection`.
    Server {
        urls: Vec<String>,
        collection: String,
        api_key: Option<String>,
        /// How long one request to the server may take before it fails as unavailable.
        timeout: std::time::Duration,
        /// How a new collection is spread over a cluster's peers.
        layout: Layout,
    },
}

/// How a collection is spread over a Qdrant cluster, applied when the first migration creates
/// it (an existing collection keeps its own). `None`: the server's default (one shard per peer,
/// no replica: losing a peer loses its shards).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    pub shards: Option<u32>,
    /// Copies of each shard, on distinct peers: 2 survives the loss of any one peer.
    pub replication_factor: Option<u32>,
    /// Copies that must confirm a write before it counts.
    pub write_consistency: Option<u32>,
}

/// Opens the configured backend and brings its schema up to date for vectors of `vector_size`
/// produced by `embedding_model`.
pub async fn open(
    config: &StoreConfig,
    vector_size: usize,
    embedding_model: &str,
) -> Result<Arc<Store>> {
    let target = migrations::Target {
        vector_size,
        embedding_model: embedding_model.to_owned(),
    };
    Ok(Arc::new(
        Store::open(connect(config).await?, &target).await?,
    ))
}

/// Opens an existing store for the embedding model it was built with, whatever is configured
/// now (for backups, which copy vectors and never make any).
pub async fn open_existing(config: &StoreConfig) -> Result<Arc<Store>> {
    let backend = connect(config).await?;
    let record = backend.schema().await?.ok_or_else(|| {
        StoreError::Operation(format!("{}: there is no store here", backend.describe()))
    })?;
    let target = migrations::Target {
        vector_size: record.vector_size,
        embedding_model: record.embedding_model,
    };
    Ok(Arc::new(Store::open(backend, &target).await?))
}

async fn connect(config: &StoreConfig) -> Result<Box<dyn backend::Backend>> {
    Ok(match config {
        StoreConfig::Embedded {
            data_dir,
            min_free_bytes,
        } => Box::new(edge::EdgeBackend::open(data_dir.clone(), *min_free_bytes).await?),
        StoreConfig::Server {
            urls,
            collection,
            api_key,
            timeout,
            layout,
        } => Box::new(
            server::ServerBackend::connect(urls, collection, api_key.as_deref(), *timeout, *layout)
                .await?,
        ),
    })
}
