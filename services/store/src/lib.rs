//! The vector store behind the service: one interface, two backends.
//!
//! - [`edge::EdgeStore`]: Qdrant's engine embedded in-process (`qdrant-edge`), the default, so a
//!   single machine needs no server.
//! - [`server::ServerStore`]: a Qdrant server or cluster over gRPC (`qdrant-client`), the
//!   scale-out path.
//!
//! Both are created through [`open`], apply the same [`migrations`], and pass the same tests.

pub mod edge;
mod error;
pub mod migrations;
mod point;
pub mod server;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

pub use error::{Result, StoreError};
pub use point::{
    ChunkPayload, ChunkPoint, DocumentVersion, Hit, Query, SearchFilter, cosine, point_id,
};
pub use rag_lexical::SparseVector;

/// What every backend offers. Calls never block the async runtime.
#[async_trait::async_trait]
pub trait VectorStore: Send + Sync {
    /// Inserts or overwrites points by id, in order.
    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<()>;

    /// The best `limit` chunks for `query`, best first. With lexical terms: the dense and the
    /// lexical (IDF-weighted) candidates fused by reciprocal rank; without: dense only.
    async fn search(&self, query: Query, limit: usize, filter: &SearchFilter) -> Result<Vec<Hit>>;

    /// One entry per (document, version) whose commit marker (chunk 0) is stored, optionally
    /// only those indexed from folder `root`, or only those of document `doc_id`.
    async fn document_versions(
        &self,
        root: Option<&str>,
        doc_id: Option<&str>,
    ) -> Result<Vec<DocumentVersion>>;

    /// A stored vector for each of `chunk_hashes` that some stored chunk has, by hash: the
    /// embedding of a text depends only on the text (one model per store), so a chunk already
    /// stored under another document or version need not be embedded again.
    async fn vectors_by_chunk_hash(
        &self,
        chunk_hashes: Vec<String>,
    ) -> Result<HashMap<String, Vec<f32>>>;

    /// Deletes every chunk of `doc_id`, except those of version `keep_hash` when given.
    /// Returns how many points were deleted.
    async fn delete_document(&self, doc_id: &str, keep_hash: Option<&str>) -> Result<u64>;

    /// Deletes every chunk whose source path is exactly `source`. Returns how many.
    async fn delete_source(&self, source: &str) -> Result<u64>;

    /// Number of stored points (chunks).
    async fn count(&self) -> Result<u64>;

    /// Number of points indexed from folder `root`.
    async fn count_in_root(&self, root: &str) -> Result<u64>;

    /// Every (doc_id, doc_hash) that has at least one point under `root`, commit marker or
    /// not. Reads an id pair per point: for finding what an interrupted run left behind, when
    /// [`VectorStore::count_in_root`] shows more points than the complete versions hold.
    async fn point_versions(&self, root: &str) -> Result<BTreeSet<(String, String)>>;

    /// Makes everything written so far durable.
    async fn flush(&self) -> Result<()>;
}

/// Which backend to open, and where.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// Embedded engine in `data_dir`.
    Embedded { data_dir: PathBuf },
    /// Qdrant server at `url` (gRPC, e.g. `http://127.0.0.1:6334`), collection `collection`.
    Server {
        url: String,
        collection: String,
        api_key: Option<String>,
    },
}

/// Opens the configured backend and brings its schema up to date for vectors of `vector_size`
/// produced by `embedding_model`.
pub async fn open(
    config: &StoreConfig,
    vector_size: usize,
    embedding_model: &str,
) -> Result<Arc<dyn VectorStore>> {
    let schema = migrations::Target {
        vector_size,
        embedding_model: embedding_model.to_owned(),
    };
    Ok(match config {
        StoreConfig::Embedded { data_dir } => {
            Arc::new(edge::EdgeStore::open(data_dir.clone(), schema).await?)
        }
        StoreConfig::Server {
            url,
            collection,
            api_key,
        } => Arc::new(
            server::ServerStore::connect(url, collection, api_key.as_deref(), schema).await?,
        ),
    })
}
