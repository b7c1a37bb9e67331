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

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    CollectionConfig, CollectionStatus, CountPointsBuilder, CreateAliasBuilder,
    CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, CreateVectorNameRequestBuilder,
    DeletePointsBuilder, Distance, FieldType, GetPointsBuilder, KeywordIndexParamsBuilder,
    ListValue, Modifier, NamedVectors, PayloadIncludeSelector, PointId, PointStruct, Query,
    QueryPointsBuilder, RepeatedStrings, ScrollPointsBuilder, SetPayloadPointsBuilder,
    SparseVectorCreationConfigBuilder, Struct, UpdateCollectionBuilder, UpsertPointsBuilder, Value,
    Vector, VectorParamsBuilder, VectorParamsMap, VectorsConfig, VectorsSelector, vector_output,
    vectors_config, vectors_output,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

use crate::backend::{
    Backend, Condition, ExportPage, Filter, NamedVector, NewPoint, Page, PointKey, QueryRequest,
    Record, Scored, ScrollRequest, VectorData,
};
use crate::migrations::{self, IndexKind, SparseModifier, Step, Target};
use crate::schema::SchemaRecord;
use crate::{Layout, Result, StoreError};

/// Collection metadata keys of the schema record. Flat keys, because an update merges metadata
/// key by key.
const META_VERSION: &str = "rag_schema_version";
const META_VECTOR_SIZE: &str = "rag_vector_size";
const META_MODEL: &str = "rag_embedding_model";

/// Per-request deadline. The client's default (5 s) is too short for creating a collection on
/// a cluster or for an upsert that waits for indexing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Suffix of the first collection behind a new store's name: every store made since aliases
/// came is an alias over a collection, so that `rag reindex` can switch it in one request.
const FIRST_GENERATION: &str = "-0";

/// What a configured name is on the server.
pub(crate) enum Named {
    /// An alias of this collection.
    Alias(String),
    /// A collection of that name (a store made before aliases).
    Collection,
    Nothing,
}

fn to_metadata(record: &SchemaRecord) -> HashMap<String, Value> {
    HashMap::from([
        (
            META_VERSION.to_owned(),
            Value::from(i64::from(record.version)),
        ),
        (
            META_VECTOR_SIZE.to_owned(),
            Value::from(i64::try_from(record.vector_size).unwrap_or(i64::MAX)),
        ),
        (
            META_MODEL.to_owned(),
            Value::from(record.embedding_model.clone()),
        ),
    ])
}

/// `Ok(None)` when the metadata holds no record at all.
fn from_metadata(
    metadata: &HashMap<String, Value>,
) -> std::result::Result<Option<SchemaRecord>, String> {
    if ![META_VERSION, META_VECTOR_SIZE, META_MODEL]
        .iter()
        .any(|k| metadata.contains_key(*k))
    {
        return Ok(None);
    }
    let integer = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_integer)
            .ok_or_else(|| format!("metadata {key} is missing or not an integer"))
    };
    let version = u32::try_from(integer(META_VERSION)?)
        .map_err(|_| format!("metadata {META_VERSION} is out of range"))?;
    let vector_size = usize::try_from(integer(META_VECTOR_SIZE)?)
        .map_err(|_| format!("metadata {META_VECTOR_SIZE} is out of range"))?;
    let embedding_model = metadata
        .get(META_MODEL)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("metadata {META_MODEL} is missing or not a string"))?
        .clone();
    Ok(Some(SchemaRecord {
        version,
        vector_size,
        embedding_model,
    }))
}

/// The peers this process may talk to, and the one it talks to now.
struct Peers {
    clients: Vec<Qdrant>,
    current: AtomicUsize,
}

impl Peers {
    /// A client for each of `urls`; the first that answers a health check becomes the current
    /// peer, so that a process started while a peer is down starts at all.
    async fn connect(urls: &[String], api_key: Option<&str>, timeout: Duration) -> Result<Self> {
        if urls.is_empty() {
            return Err(StoreError::Operation(
                "no Qdrant server address: set store.url".into(),
            ));
        }
        let mut clients = Vec::with_capacity(urls.len());
        for url in urls {
            // The compatibility check blocks the calling thread on a private runtime and
            // prints to stdout; the health check below answers the question that matters here.
            clients.push(
                Qdrant::from_url(url)
                    .api_key(api_key)
                    .timeout(timeout)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .skip_compatibility_check()
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("Qdrant server {url}: {e}")))?,
            );
        }
        let mut failures = Vec::new();
        for (index, client) in clients.iter().enumerate() {
            match client.health_check().await {
                Ok(health) => {
                    tracing::debug!(url = %urls[index], version = %health.version, "connected to Qdrant server");
                    return Ok(Self {
                        clients,
                        current: AtomicUsize::new(index),
                    });
                }
                Err(e) => failures.push(format!("Qdrant server {}: {}", urls[index], detail(&e))),
            }
        }
        Err(StoreError::Unavailable(failures.join("; ")))
    }

    /// The address of the peer in use.
    fn uri(&self) -> &str {
        &self.clients[self.current.load(Ordering::Relaxed)]
            .config
            .uri
    }

    /// Runs `op` against the current peer and, when that peer cannot be reached or breaks off
    /// the call, against each other peer in turn; the first that answers becomes the current
    /// one. Safe because every operation of this backend may run twice: writes are upserts and
    /// deletes by point id or filter, and the admin steps check what exists first. An error the
    /// server answered (not transport trouble) is returned at once: another peer would say
    /// the same.
    async fn call<T, F, Fut>(&self, op: F) -> std::result::Result<T, QdrantError>
    where
        F: Fn(Qdrant) -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>>,
    {
        let first = self.current.load(Ordering::Relaxed);
        let mut step = 0;
        loop {
            let index = (first + step) % self.clients.len();
            match op(self.clients[index].clone()).await {
                Ok(value) => {
                    if step > 0 {
                        self.current.store(index, Ordering::Relaxed);
                        metrics::counter!(crate::FAILOVERS).increment(1);
                        tracing::warn!(
                            from = %self.clients[first].config.uri,
                            to = %self.clients[index].config.uri,
                            "the Qdrant peer in use could not be reached; moved to the next peer"
                        );
                    }
                    return Ok(value);
                }
                Err(e) if is_transient(&e) && step + 1 < self.clients.len() => {
                    tracing::debug!(peer = %self.clients[index].config.uri, error = %detail(&e), "Qdrant peer failed; trying the next");
                    step += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
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

    /// What `name` is on the server now.
    pub(crate) async fn named(&self, name: &str) -> Result<Named> {
        let aliases = self
            .call("list aliases", |c| async move { c.list_aliases().await })
            .await?
            .aliases;
        if let Some(alias) = aliases.into_iter().find(|a| a.alias_name == name) {
            return Ok(Named::Alias(alias.collection_name));
        }
        // Asked after the aliases: the server answers `true` for an alias too.
        let exists = self
            .call("collection exists", |c| async move {
                c.collection_exists(name).await
            })
            .await?;
        Ok(if exists {
            Named::Collection
        } else {
            Named::Nothing
        })
    }

    /// Points alias `name` at this backend's collection, in one request: the server applies
    /// it atomically, replacing the alias if it pointed elsewhere.
    pub(crate) async fn point_alias(&self, name: &str) -> Result<()> {
        let collection = self.collection.as_str();
        self.call(format!("point alias {name}"), |c| async move {
            c.create_alias(CreateAliasBuilder::new(collection, name))
                .await
        })
        .await?;
        Ok(())
    }

    /// Deletes collection `name` (not through an alias: the server ignores that).
    pub(crate) async fn delete_collection(&self, name: &str) -> Result<()> {
        self.call(format!("delete collection {name}"), |c| async move {
            c.delete_collection(name).await
        })
        .await?;
        Ok(())
    }

    /// Collections whose names start with `prefix`.
    pub(crate) async fn collections_named(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .call(
                "list collections",
                |c| async move { c.list_collections().await },
            )
            .await?
            .collections
            .into_iter()
            .map(|c| c.name)
            .filter(|n| n.starts_with(prefix))
            .collect())
    }

    async fn exists(&self) -> Result<bool> {
        let collection = self.collection.as_str();
        self.call("collection exists", |c| async move {
            c.collection_exists(collection).await
        })
        .await
    }

    /// The schema record of the collection; `None` when the collection does not exist.
    async fn read_schema(&self) -> Result<Option<SchemaRecord>> {
        if !self.exists().await? {
            return Ok(None);
        }
        let config = self.collection_config().await?;
        match from_metadata(&config.metadata) {
            Ok(Some(record)) => Ok(Some(record)),
            Ok(None) => Err(StoreError::SchemaMismatch(format!(
                "collection {} exists but was not created by rag; configure another collection",
                self.collection
            ))),
            Err(e) => Err(StoreError::SchemaMismatch(format!(
                "{}: {e}",
                self.describe()
            ))),
        }
    }

    async fn collection_config(&self) -> Result<CollectionConfig> {
        let collection = self.collection.as_str();
        self.call("collection info", |c| async move {
            c.collection_info(collection).await
        })
        .await?
        .result
        .and_then(|info| info.config)
        .ok_or_else(|| {
            StoreError::Operation(format!(
                "{}: collection info without a config",
                self.describe()
            ))
        })
    }

    /// Creates the collection with a schema record at version 0, so that a crash before the
    /// first migration completes leaves a collection this code recognises and finishes.
    async fn create_collection(
        &self,
        dense_vector: &str,
        distance: migrations::Distance,
        target: &Target,
    ) -> Result<()> {
        if self.exists().await? {
            // A crash may have come between creating the collection and naming it.
            return self.name_new_collection().await;
        }
        let distance = match distance {
            migrations::Distance::Cosine => Distance::Cosine,
            migrations::Distance::Dot => Distance::Dot,
            migrations::Distance::Euclid => Distance::Euclid,
        };
        let size = u64::try_from(target.vector_size).map_err(|_| {
            StoreError::SchemaMismatch(format!("vector size {} is too large", target.vector_size))
        })?;
        let vectors = VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                map: HashMap::from([(
                    dense_vector.to_owned(),
                    VectorParamsBuilder::new(size, distance).build(),
                )]),
            })),
        };
        // The builder's `metadata` takes serde_json values only with qdrant-client's `serde`
        // feature; the request's field takes them as they are.
        let mut builder =
            CreateCollectionBuilder::new(self.collection.as_str()).vectors_config(vectors);
        if let Some(n) = self.layout.shards {
            builder = builder.shard_number(n);
        }
        if let Some(n) = self.layout.replication_factor {
            builder = builder.replication_factor(n);
        }
        if let Some(n) = self.layout.write_consistency {
            builder = builder.write_consistency_factor(n);
        }
        let mut request = builder.build();
        request.metadata = to_metadata(&SchemaRecord::new(0, target));

        let created = self
            .peers
            .call(|c| {
                let request = request.clone();
                async move { c.create_collection(request).await }
            })
            .await;
        if let Err(e) = created {
            // Another process may have created it since we looked: fine if it is ours and fits.
            return match self.read_schema().await? {
                Some(r) => r.check(target, &self.describe()),
                None => Err(self.error("create collection", e)),
            };
        }
        match from_metadata(&self.collection_config().await?.metadata) {
            Ok(Some(_)) => self.name_new_collection().await,
            _ => Err(StoreError::SchemaMismatch(format!(
                "{}: the server did not keep the collection metadata that records the schema; \
                 Qdrant 1.16 or newer is needed",
                self.describe()
            ))),
        }
    }

    /// Puts the configured name on a collection this process created for a new store.
    async fn name_new_collection(&self) -> Result<()> {
        match &self.alias {
            Some(name) => self.point_alias(name).await,
            None => Ok(()),
        }
    }

    /// Adds the sparse vector `name` unless a crashed earlier attempt already did.
    async fn create_sparse_vector(
        &self,
        name: &str,
        modifier: SparseModifier,
    ) -> std::result::Result<(), QdrantError> {
        let collection = self.collection.as_str();
        let config = self
            .peers
            .call(|c| async move { c.collection_info(collection).await })
            .await?;
        let present = config
            .result
            .and_then(|info| info.config)
            .and_then(|c| c.params)
            .and_then(|p| p.sparse_vectors_config)
            .is_some_and(|s| s.map.contains_key(name));
        if present {
            return Ok(());
        }
        let modifier = match modifier {
            SparseModifier::None => Modifier::None,
            SparseModifier::Idf => Modifier::Idf,
        };
        let request = CreateVectorNameRequestBuilder::new(
            collection,
            name,
            SparseVectorCreationConfigBuilder::new().modifier(modifier as i32),
        )
        .wait(true)
        .build();
        self.peers
            .call(|c| {
                let request = request.clone();
                async move { c.create_vector_name(request).await }
            })
            .await?;
        Ok(())
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
        let missing = |what: &str| StoreError::before_collection(migration, what);
        match step {
            Step::CreateCollection {
                dense_vector,
                distance,
            } => {
                self.create_collection(dense_vector, *distance, target)
                    .await
            }
            Step::CreatePayloadIndex {
                field,
                kind,
                is_tenant,
            } => {
                if !self.exists().await? {
                    return Err(missing("payload index"));
                }
                let field_type = match kind {
                    IndexKind::Keyword => FieldType::Keyword,
                    IndexKind::Integer => FieldType::Integer,
                };
                let mut request = CreateFieldIndexCollectionBuilder::new(
                    self.collection.as_str(),
                    field.as_str(),
                    field_type,
                )
                .wait(true);
                if *is_tenant {
                    request = request
                        .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true));
                }
                let request = request.build();
                self.call(format!("{migration}: index {field}"), |c| {
                    let request = request.clone();
                    async move { c.create_field_index(request).await }
                })
                .await?;
                Ok(())
            }
            Step::FillMissing { field, value } => {
                if !self.exists().await? {
                    return Err(missing("payload field"));
                }
                let payload = HashMap::from([(field.clone(), to_value(value.clone()))]);
                let missing = to_filter(&Filter::must(Condition::IsEmpty {
                    field: field.clone(),
                }))
                .expect("a filter with a condition");
                let request = SetPayloadPointsBuilder::new(self.collection.as_str(), payload)
                    .points_selector(missing)
                    .wait(true)
                    .build();
                self.call(format!("{migration}: fill {field}"), |c| {
                    let request = request.clone();
                    async move { c.set_payload(request).await }
                })
                .await?;
                Ok(())
            }
            Step::CreateSparseVector { name, modifier } => {
                if !self.exists().await? {
                    return Err(missing("sparse vector"));
                }
                self.create_sparse_vector(name, *modifier)
                    .await
                    .map_err(|e| self.error(format!("{migration}: sparse vector {name}"), e))
            }
        }
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
        let mut scroll = ScrollPointsBuilder::new(self.collection.as_str())
            .limit(u32::try_from(limit).unwrap_or(u32::MAX))
            .with_payload(true)
            .with_vectors(true);
        if let Some(offset) = offset {
            scroll = scroll.offset(to_point_id(offset));
        }
        let scroll = scroll.build();
        let page = self
            .call("export", |c| {
                let scroll = scroll.clone();
                async move { c.scroll(scroll).await }
            })
            .await?;
        let next = page
            .next_page_offset
            .map(|id| self.point_key(id))
            .transpose()?;
        let points = page
            .result
            .into_iter()
            .map(|p| {
                let id = match p.id.map(|id| self.point_key(id)).transpose()? {
                    Some(PointKey::Uuid(id)) => id,
                    other => {
                        return Err(StoreError::Operation(format!(
                            "{}: point {other:?} has no UUID; rag writes only UUIDs",
                            self.describe()
                        )));
                    }
                };
                let vectors = match p.vectors.and_then(|v| v.vectors_options) {
                    Some(vectors_output::VectorsOptions::Vectors(named)) => named
                        .vectors
                        .into_iter()
                        .filter_map(|(name, vector)| {
                            let vector = match vector.into_vector() {
                                vector_output::Vector::Dense(v) => VectorData::Dense(v.data),
                                vector_output::Vector::Sparse(v) => {
                                    VectorData::Sparse(rag_lexical::SparseVector {
                                        indices: v.indices,
                                        values: v.values,
                                    })
                                }
                                vector_output::Vector::MultiDense(_) => return None,
                            };
                            Some(NamedVector { name, vector })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(NewPoint {
                    id,
                    vectors,
                    payload: to_json_map(p.payload),
                })
            })
            .collect::<Result<_>>()?;
        Ok(ExportPage { points, next })
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

/// Exact keyword match. `Condition::matches` with a `String` would turn a value containing
/// whitespace (a path like "hr/leave policy.md") into a full-text match.
fn to_condition(condition: &Condition) -> qdrant_client::qdrant::Condition {
    use qdrant_client::qdrant::Condition as Q;
    match condition {
        Condition::Keyword { field, value } => {
            Q::matches(*field, MatchValue::Keyword(value.clone()))
        }
        Condition::AnyKeyword { field, values } => Q::matches(
            *field,
            MatchValue::Keywords(RepeatedStrings {
                strings: values.clone(),
            }),
        ),
        Condition::Integer { field, value } => Q::matches(*field, *value),
        Condition::IsEmpty { field } => Q::is_empty(field.as_str()),
    }
}

fn to_filter(filter: &Filter) -> Option<qdrant_client::qdrant::Filter> {
    if filter.is_empty() {
        return None;
    }
    let mut out = qdrant_client::qdrant::Filter::must(filter.must.iter().map(to_condition));
    out.must_not = filter.must_not.iter().map(to_condition).collect();
    Some(out)
}

fn nearest(vector: VectorData) -> Query {
    match vector {
        VectorData::Dense(v) => Query::new_nearest(v),
        VectorData::Sparse(v) => {
            let pairs: Vec<(u32, f32)> = v.indices.into_iter().zip(v.values).collect();
            Query::from(pairs)
        }
    }
}

fn to_vector(vector: VectorData) -> Vector {
    match vector {
        VectorData::Dense(v) => Vector::new_dense(v),
        VectorData::Sparse(v) => Vector::new_sparse(v.indices, v.values),
    }
}

fn dense_vector(
    vectors: Option<&qdrant_client::qdrant::VectorsOutput>,
    name: Option<&str>,
) -> Option<Vec<f32>> {
    match vectors?.get_vector_by_name(name?)? {
        vector_output::Vector::Dense(v) => Some(v.data),
        _ => None,
    }
}

/// Dimensions of the named dense vector `name`, if the collection has one.
fn dense_size(config: &CollectionConfig, name: &str) -> Option<usize> {
    let vectors = config
        .params
        .as_ref()?
        .vectors_config
        .as_ref()?
        .config
        .as_ref()?;
    match vectors {
        vectors_config::Config::ParamsMap(map) => usize::try_from(map.map.get(name)?.size).ok(),
        // A single unnamed vector: not the layout the migrations create.
        vectors_config::Config::Params(_) => None,
    }
}

fn is_transient(e: &QdrantError) -> bool {
    use tonic::Code;
    match e {
        QdrantError::ResponseError { status } => match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::ResourceExhausted => true,
            // The client's channel pool reports a failed connect as `Internal`.
            Code::Internal => status.message().starts_with("Failed to connect"),
            // tonic's answer for a connection that broke under a request in flight (the
            // server was killed mid-call): the server never answered.
            Code::Unknown => status.message().starts_with("transport error"),
            _ => false,
        },
        QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => true,
        _ => false,
    }
}

/// The error without the gRPC metadata map that `QdrantError`'s `Display` appends.
fn detail(e: &QdrantError) -> String {
    match e {
        QdrantError::ResponseError { status } => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    }
}

// qdrant-client converts between its `Value` and serde_json only with its `serde` feature; these
// mirror those conversions so the crate does not depend on that feature.

fn to_payload(map: serde_json::Map<String, serde_json::Value>) -> Payload {
    Payload::from(
        map.into_iter()
            .map(|(k, v)| (k, to_value(v)))
            .collect::<HashMap<String, Value>>(),
    )
}

fn to_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(values) => Kind::ListValue(ListValue {
            values: values.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

fn to_point_id(key: PointKey) -> PointId {
    match key {
        PointKey::Num(n) => PointId::from(n),
        PointKey::Uuid(u) => PointId::from(u.to_string()),
    }
}

fn to_json_map(payload: HashMap<String, Value>) -> serde_json::Map<String, serde_json::Value> {
    payload.into_iter().map(|(k, v)| (k, to_json(v))).collect()
}

fn to_json(value: Value) -> serde_json::Value {
    match value.kind {
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::IntegerValue(i)) => serde_json::Value::from(i),
        Some(Kind::DoubleValue(d)) => serde_json::Value::from(d),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.into_iter().map(to_json).collect())
        }
        Some(Kind::StructValue(s)) => serde_json::Value::Object(to_json_map(s.fields)),
        Some(Kind::NullValue(_)) | None => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_qdrant_values() {
        let json = serde_json::json!({
            "s": "hr/leave policy.md",
            "i": 42,
            "neg": -3,
            "f": 1.5,
            "b": true,
            "n": null,
            "list": ["a", "b/"],
            "obj": {"k": "v", "nested": [1, 2]},
        });
        let serde_json::Value::Object(map) = json.clone() else {
            unreachable!()
        };
        let payload: HashMap<String, Value> = to_payload(map).into();
        assert_eq!(serde_json::Value::Object(to_json_map(payload)), json);
    }

    #[test]
    fn schema_record_round_trips_and_foreign_metadata_is_none() {
        let record = SchemaRecord {
            version: 1,
            vector_size: 384,
            embedding_model: "m".into(),
        };
        assert_eq!(from_metadata(&to_metadata(&record)), Ok(Some(record)));
        let foreign = HashMap::from([("owner".to_owned(), Value::from("someone"))]);
        assert_eq!(from_metadata(&foreign), Ok(None));
        let broken = HashMap::from([(META_VERSION.to_owned(), Value::from("one"))]);
        assert!(from_metadata(&broken).is_err());
    }

    #[test]
    fn keyword_conditions_stay_exact_with_spaces() {
        let condition = to_condition(&Condition::keyword(
            crate::fields::SOURCE,
            "hr/leave policy.md",
        ));
        let Some(qdrant_client::qdrant::condition::ConditionOneOf::Field(field)) =
            condition.condition_one_of
        else {
            panic!("field condition expected")
        };
        let value = field.r#match.and_then(|m| m.match_value);
        assert_eq!(
            value,
            Some(MatchValue::Keyword("hr/leave policy.md".into()))
        );
    }

    #[test]
    fn filters_translate_must_and_must_not() {
        assert!(to_filter(&Filter::default()).is_none());
        let filter = to_filter(
            &Filter::must(Condition::keyword(crate::fields::DOC_ID, "d"))
                .and(Condition::Integer {
                    field: crate::fields::CHUNK_INDEX,
                    value: 0,
                })
                .and_not(Condition::keyword(crate::fields::DOC_HASH, "h")),
        )
        .expect("filter");
        assert_eq!(filter.must.len(), 2);
        assert_eq!(filter.must_not.len(), 1);
    }

    #[test]
    fn transport_errors_are_unavailable() {
        let down = QdrantError::ResponseError {
            status: tonic::Status::internal("Failed to connect to http://x: refused"),
        };
        assert!(is_transient(&down));
        let unavailable = QdrantError::ResponseError {
            status: tonic::Status::unavailable("gone"),
        };
        assert!(is_transient(&unavailable));
        let broken = QdrantError::ResponseError {
            status: tonic::Status::unknown("transport error"),
        };
        assert!(is_transient(&broken));
        let bad = QdrantError::ResponseError {
            status: tonic::Status::invalid_argument("wrong vector size"),
        };
        assert!(!is_transient(&bad));
        assert_eq!(
            detail(&bad),
            "InvalidArgument: wrong vector size".to_owned()
        );
    }
}
