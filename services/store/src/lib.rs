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

use serde::{Deserialize, Serialize};

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

impl StoreConfig {
    /// Whether other processes may use the store while this one has it open (a server), or
    /// it is one process's at a time (embedded: its data directory is locked).
    pub fn shared(&self) -> bool {
        matches!(self, StoreConfig::Server { .. })
    }

    /// The data directory of an embedded store.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        match self {
            StoreConfig::Embedded { data_dir, .. } => Some(data_dir),
            StoreConfig::Server { .. } => None,
        }
    }

    /// Another store on the same backend, named by `label`: the folder `label` under
    /// `scratch` (embedded) or the collection `{collection}-{label}` (server).
    pub fn beside(&self, scratch: &std::path::Path, label: &str) -> StoreConfig {
        let mut other = self.clone();
        match &mut other {
            StoreConfig::Embedded { data_dir, .. } => *data_dir = scratch.join(label),
            StoreConfig::Server { collection, .. } => *collection = format!("{collection}-{label}"),
        }
        other
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// Qdrant's engine in-process, data in `data_dir`.
    Embedded,
    /// A Qdrant server or cluster at `store.url`.
    Qdrant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
/// The `[store]` table of the configuration.
pub struct StoreSettings {
    pub backend: StoreBackend,
    /// gRPC address of the Qdrant server (backend = "qdrant"), or the addresses of several
    /// peers of one cluster separated by commas: when the peer in use cannot be reached, the
    /// store moves on to the next.
    pub url: String,
    pub collection: String,
    pub api_key: Option<String>,
    /// How long one request to the Qdrant server may take; past it the call fails as
    /// UNAVAILABLE instead of hanging on a stalled server. Migrations of a large collection
    /// (payload fills) may need more.
    pub timeout_secs: u64,
    /// Qdrant cluster: shards of a new collection (none: one per peer), copies of each shard on
    /// distinct peers (2 survives the loss of a peer), and copies that must confirm a write.
    /// Applied when the collection is created; an existing one keeps its layout.
    pub shards: Option<u32>,
    pub replication_factor: Option<u32>,
    pub write_consistency: Option<u32>,
    /// Embedded store: writes stop (cleanly, with an error) while the data directory's file
    /// system has less than this many MB free. The engine writes through memory maps, where a
    /// full disk would crash the process mid-write. 0: no check.
    pub min_free_mb: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Embedded,
            url: "http://127.0.0.1:6334".into(),
            collection: "rag_chunks".into(),
            api_key: None,
            timeout_secs: 30,
            shards: None,
            replication_factor: None,
            write_consistency: None,
            min_free_mb: 128,
        }
    }
}

impl StoreSettings {
    /// The store these settings name; an embedded one keeps its data in `data_dir`.
    pub fn config(&self, data_dir: &std::path::Path) -> StoreConfig {
        match self.backend {
            StoreBackend::Embedded => StoreConfig::Embedded {
                data_dir: data_dir.to_owned(),
                min_free_bytes: self.min_free_mb * 1_000_000,
            },
            StoreBackend::Qdrant => StoreConfig::Server {
                urls: self
                    .url
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect(),
                collection: self.collection.clone(),
                api_key: self.api_key.clone(),
                timeout: std::time::Duration::from_secs(self.timeout_secs.max(1)),
                layout: Layout {
                    shards: self.shards,
                    replication_factor: self.replication_factor,
                    write_consistency: self.write_consistency,
                },
            },
        }
    }
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

/// The backend's way of keeping generations of `config`'s store.
fn generations(config: &StoreConfig) -> Box<dyn generation::Generations> {
    match config {
        StoreConfig::Embedded {
            data_dir,
            min_free_bytes,
        } => Box::new(edge::generations::Generations {
            data_dir: data_dir.clone(),
            min_free_bytes: *min_free_bytes,
        }),
        StoreConfig::Server {
            urls,
            collection,
            api_key,
            timeout,
            layout,
        } => Box::new(server::generations::Generations {
            urls: urls.clone(),
            collection: collection.clone(),
            api_key: api_key.clone(),
            timeout: *timeout,
            layout: *layout,
        }),
    }
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
