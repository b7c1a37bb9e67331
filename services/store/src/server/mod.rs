//! The scale-out backend: a Qdrant server or cluster over gRPC.
//!
//! It behaves like the embedded backend so the service cannot tell them apart: the store core
//! sends both the same payloads, filters and migrations. Where the embedded backend keeps
//! `schema.json` next to its shard, a server has no directory of ours to write to, so the
//! [`SchemaRecord`] lives in the collection's own metadata (Qdrant 1.16 or newer). That record
//! travels with the collection through snapshots and restores, and a collection without it was
//! made by something else and is left alone.
//!
//! Every write waits until the server has applied it, so a search right after an ingest sees
//! it, as with the embedded engine, and there is nothing left for `flush` to do.
//!
//! `store.url` may name several peers of one cluster. Every peer serves every collection, so
//! when the peer in use cannot be reached, each call moves on to the next one ([`Peers::call`]).

mod collections;
mod convert;
mod export;
pub(crate) mod generations;
mod migrate;
mod peers;
mod schema;

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    CollectionStatus, CountPointsBuilder, DeletePointsBuilder, GetPointsBuilder, NamedVectors,
    PayloadIncludeSelector, PointId, PointStruct, QueryPointsBuilder, ScrollPointsBuilder,
    UpdateCollectionBuilder, UpsertPointsBuilder, VectorsSelector,
};
use qdrant_client::{Qdrant, QdrantError};

use crate::backend::{
    Backend, ExportPage, Filter, NewPoint, Page, PointKey, QueryRequest, Record, Scored,
    ScrollRequest,
};
use crate::migrations::{Step, Target};
use crate::schema::SchemaRecord;
use crate::{Layout, Result, StoreError};

use collections::FIRST_GENERATION;
pub(crate) use collections::Named;
use convert::{
    dense_size, dense_vector, nearest, to_filter, to_json_map, to_payload, to_point_id, to_vector,
};
use peers::{Peers, detail, is_transient};
use schema::to_metadata;

pub(crate) struct ServerBackend {
    peers: Peers,
    /// The collection this process reads and writes. A configured name that is an alias is
    /// resolved once, when connecting: a running process keeps the collection (and so the
    /// embedding model) it started with when `rag reindex` points the alias elsewhere.
    collection: String,
    /// The configured name, when it is an alias of `collection` or is to become one when
    /// `collection` is created.
    alias: Option<String>,
    layout: Layout,
}

impl ServerBackend {
    /// Connects to the server at `urls` (peers of one cluster, or one server), for the store
    /// named `name` (which need not exist yet): the collection its alias points to, or the
    /// collection of that name; a new store is the collection `{name}-0` under the alias
    /// `name`.
    pub(crate) async fn connect(
        urls: &[String],
        name: &str,
        api_key: Option<&str>,
        timeout: Duration,
        layout: Layout,
    ) -> Result<Self> {
        let probe = Self::connect_exact(urls, name, api_key, timeout, layout).await?;
        let (collection, alias) = match probe.named(name).await? {
            Named::Alias(collection) => (collection, Some(name.to_owned())),
            Named::Collection => (name.to_owned(), None),
            Named::Nothing => (format!("{name}{FIRST_GENERATION}"), Some(name.to_owned())),
        };
        Ok(Self {
            collection,
            alias,
            ..probe
        })
    }

    /// Connects to the server at `urls`, for exactly the collection `collection` (a generation
    /// being built by `rag reindex`, which no alias names yet).
    pub(crate) async fn connect_exact(
        urls: &[String],
        collection: &str,
        api_key: Option<&str>,
        timeout: Duration,
        layout: Layout,
    ) -> Result<Self> {
        Ok(Self {
            peers: Peers::connect(urls, api_key, timeout).await?,
            collection: collection.to_owned(),
            alias: None,
            layout,
        })
    }

    /// [`Peers::call`], with a failure mapped as [`Self::error`] maps it.
    async fn call<T, F, Fut>(&self, what: impl Display, op: F) -> Result<T>
    where
        F: Fn(Qdrant) -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>>,
    {
        self.peers.call(op).await.map_err(|e| self.error(what, e))
    }

    fn point_key(&self, id: qdrant_client::qdrant::PointId) -> Result<PointKey> {
        match id.point_id_options {
            Some(PointIdOptions::Num(n)) => Ok(PointKey::Num(n)),
            Some(PointIdOptions::Uuid(u)) => u.parse().map(PointKey::Uuid).map_err(|e| {
                StoreError::Operation(format!("{}: point id {u:?}: {e}", self.describe()))
            }),
            None => Err(StoreError::Operation(format!(
                "{}: a point without an id",
                self.describe()
            ))),
        }
    }

    /// Maps a client error: transport trouble is `Unavailable` (retrying may help), anything
    /// the server answered is `Operation`.
    fn error(&self, what: impl Display, e: QdrantError) -> StoreError {
        let message = format!("{}: {what}: {}", self.describe(), detail(&e));
        if is_transient(&e) {
            StoreError::Unavailable(message)
        } else {
            StoreError::Operation(message)
        }
    }
}

#[async_trait::async_trait]
impl Backend for ServerBackend {
    /// Other processes (`rag ingest`, other services) write to the same collection.
    fn exclusive(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        match &self.alias {
            Some(alias) => format!(
                "collection {} (alias {alias}) on Qdrant server {}",
                self.collection,
                self.peers.uri()
            ),
            None => format!(
                "collection {} on Qdrant server {}",
                self.collection,
                self.peers.uri()
            ),
        }
    }

    async fn upsert(&self, points: Vec<NewPoint>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = points
            .into_iter()
            .map(|p| {
                let vectors = p
                    .vectors
                    .into_iter()
                    .fold(NamedVectors::default(), |vectors, v| {
                        vectors.add_vector(v.name, to_vector(v.vector))
                    });
                PointStruct::new(p.id.to_string(), vectors, to_payload(p.payload))
            })
            .collect();
        let request = UpsertPointsBuilder::new(self.collection.as_str(), points)
            .wait(true)
            .build();
        self.call("upsert", |c| {
            let request = request.clone();
            async move { c.upsert_points(request).await }
        })
        .await?;
        Ok(())
    }

    async fn query(&self, request: QueryRequest) -> Result<Vec<Scored>> {
        let filter = to_filter(&request.filter);
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let mut query = QueryPointsBuilder::new(self.collection.as_str())
            .limit(as_u64(request.limit))
            .with_payload(false)
            .with_vectors(VectorsSelector {
                names: vec![request.with_vector.clone()],
            });
        query = query
            .query(nearest(request.nearest.vector))
            .using(request.nearest.name.as_str());
        if let Some(filter) = filter {
            query = query.filter(filter);
        }
        let query = query.build();
        let points = self
            .call("search", |c| {
                let query = query.clone();
                async move { c.query(query).await }
            })
            .await?
            .result;
        let name = request.with_vector;
        points
            .into_iter()
            .map(|p| {
                Ok(Scored {
                    id: self.point_key(p.id.unwrap_or_default())?,
                    score: p.score,
                    vector: dense_vector(p.vectors.as_ref(), Some(&name)),
                })
            })
            .collect()
    }

    async fn payloads(
        &self,
        ids: Vec<PointKey>,
    ) -> Result<Vec<(PointKey, crate::backend::Payload)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<PointId> = ids.into_iter().map(to_point_id).collect();
        let request = GetPointsBuilder::new(self.collection.as_str(), ids)
            .with_payload(true)
            .with_vectors(false)
            .build();
        let points = self
            .call("read payloads", |c| {
                let request = request.clone();
                async move { c.get_points(request).await }
            })
            .await?
            .result;
        points
            .into_iter()
            .map(|p| {
                Ok((
                    self.point_key(p.id.unwrap_or_default())?,
                    to_json_map(p.payload),
                ))
            })
            .collect()
    }

    async fn scroll(&self, request: ScrollRequest) -> Result<Page> {
        let mut scroll = ScrollPointsBuilder::new(self.collection.as_str())
            .limit(u32::try_from(request.limit).unwrap_or(u32::MAX))
            .with_payload(PayloadIncludeSelector {
                fields: request.fields.iter().map(|f| (*f).to_owned()).collect(),
            });
        scroll = match &request.with_vector {
            Some(name) => scroll.with_vectors(VectorsSelector {
                names: vec![name.clone()],
            }),
            None => scroll.with_vectors(false),
        };
        if let Some(filter) = to_filter(&request.filter) {
            scroll = scroll.filter(filter);
        }
        if let Some(offset) = request.offset {
            scroll = scroll.offset(to_point_id(offset));
        }
        let scroll = scroll.build();
        let page = self
            .call("scroll", |c| {
                let scroll = scroll.clone();
                async move { c.scroll(scroll).await }
            })
            .await?;
        let next = page
            .next_page_offset
            .map(|id| self.point_key(id))
            .transpose()?;
        let name = request.with_vector;
        Ok(Page {
            records: page
                .result
                .into_iter()
                .map(|p| Record {
                    vector: dense_vector(p.vectors.as_ref(), name.as_deref()),
                    payload: to_json_map(p.payload),
                })
                .collect(),
            next,
        })
    }

    async fn count(&self, filter: &Filter) -> Result<u64> {
        let mut request = CountPointsBuilder::new(self.collection.as_str()).exact(true);
        if let Some(filter) = to_filter(filter) {
            request = request.filter(filter);
        }
        let request = request.build();
        self.call("count", |c| {
            let request = request.clone();
            async move { c.count(request).await }
        })
        .await?
        .result
        .map(|r| r.count)
        .ok_or_else(|| {
            StoreError::Operation(format!("{}: count without a result", self.describe()))
        })
    }

    async fn delete(&self, filter: &Filter) -> Result<()> {
        let filter = to_filter(filter).unwrap_or_default();
        let request = DeletePointsBuilder::new(self.collection.as_str())
            .points(filter)
            .wait(true)
            .build();
        self.call("delete", |c| {
            let request = request.clone();
            async move { c.delete_points(request).await }
        })
        .await?;
        Ok(())
    }

    async fn schema(&self) -> Result<Option<SchemaRecord>> {
        self.read_schema().await
    }

    async fn set_schema(&self, record: &SchemaRecord) -> Result<()> {
        let mut request = UpdateCollectionBuilder::new(self.collection.as_str()).build();
        request.metadata = to_metadata(record);
        self.call("record schema version", |c| {
            let request = request.clone();
            async move { c.update_collection(request).await }
        })
        .await?;
        Ok(())
    }

    async fn apply(&self, migration: &str, step: &Step, target: &Target) -> Result<()> {
        self.apply_step(migration, step, target).await
    }

    async fn dense_size(&self, name: &str) -> Result<Option<usize>> {
        if !self.exists().await? {
            return Ok(None);
        }
        Ok(dense_size(&self.collection_config().await?, name))
    }

    async fn flush(&self) -> Result<()> {
        // Every write waits until the server has applied it; the server's WAL makes it durable.
        Ok(())
    }

    async fn optimize(&self) -> Result<bool> {
        // The server runs its optimizers by itself, in the background: wait until it reports
        // them done (green), so that a finished ingest is searchable at full speed on both
        // backends alike. Grey: optimisations are pending but the server starts them only on
        // the next write; nothing to wait for.
        let mut waited = false;
        loop {
            let collection = self.collection.as_str();
            let status = self
                .call("collection info", |c| async move {
                    c.collection_info(collection).await
                })
                .await?
                .result
                .map(|info| info.status())
                .unwrap_or(CollectionStatus::Green);
            match status {
                CollectionStatus::Yellow => {
                    waited = true;
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                CollectionStatus::Red => {
                    return Err(StoreError::Operation(format!(
                        "{}: the server reports the collection's optimisation failed (status red)",
                        self.describe()
                    )));
                }
                _ => return Ok(waited),
            }
        }
    }

    async fn export(&self, offset: Option<PointKey>, limit: usize) -> Result<ExportPage> {
        self.export_page(offset, limit).await
    }

    async fn drop_collection(&self) -> Result<()> {
        let collection = self.collection.as_str();
        self.call("delete collection", |c| async move {
            c.delete_collection(collection).await
        })
        .await?;
        Ok(())
    }
}
