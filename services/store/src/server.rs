//! The scale-out backend: a Qdrant server or cluster over gRPC.
//!
//! It behaves like the embedded backend so the service cannot tell them apart: same payload,
//! same filters, same migrations. Where the embedded backend keeps `schema.json` next to its
//! shard, a server has no directory of ours to write to, so the applied schema version, vector
//! size and embedding model live in the collection's own metadata (Qdrant 1.16 or newer). That
//! record travels with the collection through snapshots and restores, and a collection without
//! it was made by something else and is left alone.
//!
//! Every write waits until the server has applied it, so a search right after an ingest sees
//! it, as with the embedded engine, and there is nothing left for [`VectorStore::flush`] to do.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::time::Duration;

use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    CollectionConfig, Condition, CountPointsBuilder, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, CreateVectorNameRequestBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, ListValue, Modifier, NamedVectors, PayloadIncludeSelector,
    PointId, PointStruct, PrefetchQueryBuilder, Query, QueryPointsBuilder, RepeatedStrings,
    RrfBuilder, ScrollPointsBuilder, SparseVectorCreationConfigBuilder, Struct,
    UpdateCollectionBuilder, UpsertPointsBuilder, Value, Vector, VectorParamsBuilder,
    VectorParamsMap, VectorsConfig, VectorsSelector, vector_output, vectors_config,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

use crate::migrations::{self, IndexKind, SparseModifier, Step, Target};
use crate::point::{RRF_K, cosine, parse_payload, prefetch_limit, prefix_keys, stored_payload};
use crate::{
    ChunkPoint, DocumentVersion, Hit, Query as SearchQuery, Result, SearchFilter, StoreError,
    VectorStore,
};

/// Collection metadata keys of the schema record. Flat keys, because an update merges metadata
/// key by key.
const META_VERSION: &str = "rag_schema_version";
const META_VECTOR_SIZE: &str = "rag_vector_size";
const META_MODEL: &str = "rag_embedding_model";

/// Points per upsert request: keeps each gRPC message a few MiB, far below the server's limit,
/// whatever the size of the document being indexed.
const UPSERT_BATCH: usize = 256;

/// Points per scroll page when listing document versions.
const SCROLL_PAGE: u32 = 1024;

/// Per-request deadline. The client's default (5 s) is too short for creating a collection on
/// a cluster or for an upsert that waits for indexing.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ServerStore {
    client: Qdrant,
    collection: String,
    dense: String,
    lexical: Option<String>,
}

/// What the collection's metadata says about its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SchemaRecord {
    version: u32,
    vector_size: usize,
    embedding_model: String,
}

impl SchemaRecord {
    fn to_metadata(&self) -> HashMap<String, Value> {
        HashMap::from([
            (
                META_VERSION.to_owned(),
                Value::from(i64::from(self.version)),
            ),
            (
                META_VECTOR_SIZE.to_owned(),
                Value::from(i64::try_from(self.vector_size).unwrap_or(i64::MAX)),
            ),
            (
                META_MODEL.to_owned(),
                Value::from(self.embedding_model.clone()),
            ),
        ])
    }

    /// `Ok(None)` when the metadata holds no record at all.
    fn from_metadata(
        metadata: &HashMap<String, Value>,
    ) -> std::result::Result<Option<Self>, String> {
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
        Ok(Some(Self {
            version,
            vector_size,
            embedding_model,
        }))
    }
}

impl ServerStore {
    /// Connects to the server at `url` and brings collection `collection` up to the latest
    /// schema for `target`, creating it when missing.
    pub async fn connect(
        url: &str,
        collection: &str,
        api_key: Option<&str>,
        target: Target,
    ) -> Result<Self> {
        // The compatibility check blocks the calling thread on a private runtime and prints to
        // stdout; the health check below answers the question that matters here.
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .skip_compatibility_check()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("Qdrant server {url}: {e}")))?;
        let health = client
            .health_check()
            .await
            .map_err(|e| StoreError::Unavailable(format!("Qdrant server {url}: {}", detail(&e))))?;
        tracing::debug!(url, version = %health.version, "connected to Qdrant server");

        let store = Self {
            client,
            collection: collection.to_owned(),
            dense: migrations::dense_vector_name()?,
            lexical: migrations::lexical_vector_name()?,
        };
        store.migrate(&target).await?;
        Ok(store)
    }

    /// Applies every pending migration, recording the version after each, then checks that the
    /// collection fits `target`.
    async fn migrate(&self, target: &Target) -> Result<()> {
        let recorded = self.read_schema().await?;
        if let Some(r) = &recorded {
            self.check_target(r, target)?;
        }
        let applied = recorded.as_ref().map_or(0, |r| r.version);
        if applied > migrations::latest() {
            return Err(StoreError::SchemaMismatch(format!(
                "{} is at schema version {applied}, newer than this build knows ({})",
                self.describe(),
                migrations::latest()
            )));
        }

        // A record at version 0 means a collection created by an attempt that stopped before
        // finishing its first migration: its steps are repeated, creating the collection aside.
        let mut exists = recorded.is_some();
        for migration in migrations::pending(applied)? {
            for step in &migration.steps {
                match step {
                    Step::CreateCollection {
                        dense_vector,
                        distance,
                    } => {
                        if !exists {
                            self.create_collection(dense_vector, *distance, target, applied)
                                .await?;
                            exists = true;
                        }
                    }
                    Step::CreatePayloadIndex { field, kind } => {
                        if !exists {
                            return Err(StoreError::Migration {
                                name: migration.name.clone(),
                                reason: "payload index before the collection exists".into(),
                            });
                        }
                        let field_type = match kind {
                            IndexKind::Keyword => FieldType::Keyword,
                            IndexKind::Integer => FieldType::Integer,
                        };
                        self.client
                            .create_field_index(
                                CreateFieldIndexCollectionBuilder::new(
                                    self.collection.as_str(),
                                    field.as_str(),
                                    field_type,
                                )
                                .wait(true),
                            )
                            .await
                            .map_err(|e| {
                                self.error(format!("{}: index {field}", migration.name), e)
                            })?;
                    }
                    Step::CreateSparseVector { name, modifier } => {
                        if !exists {
                            return Err(StoreError::Migration {
                                name: migration.name.clone(),
                                reason: "sparse vector before the collection exists".into(),
                            });
                        }
                        self.create_sparse_vector(name, *modifier)
                            .await
                            .map_err(|e| {
                                self.error(format!("{}: sparse vector {name}", migration.name), e)
                            })?;
                    }
                }
            }
            self.record(&SchemaRecord {
                version: migration.version,
                vector_size: target.vector_size,
                embedding_model: target.embedding_model.clone(),
            })
            .await?;
            tracing::info!(
                migration = %migration.name,
                collection = %self.collection,
                "applied migration"
            );
        }
        if !exists {
            return Err(StoreError::Migration {
                name: "migrations/".into(),
                reason: "no migration creates the collection".into(),
            });
        }

        let config = self.collection_config().await?;
        let recorded = SchemaRecord::from_metadata(&config.metadata)
            .map_err(|e| StoreError::SchemaMismatch(format!("{}: {e}", self.describe())))?;
        match recorded {
            Some(r) => self.check_target(&r, target)?,
            None => return Err(self.metadata_dropped()),
        }
        let size = dense_size(&config, &self.dense);
        if size != Some(target.vector_size) {
            return Err(StoreError::SchemaMismatch(format!(
                "{}: stored vectors {:?} have {size:?} dimensions, the model makes {}",
                self.describe(),
                self.dense,
                target.vector_size
            )));
        }
        Ok(())
    }

    /// Adds the sparse vector `name` unless a crashed earlier attempt already did.
    async fn create_sparse_vector(
        &self,
        name: &str,
        modifier: SparseModifier,
    ) -> std::result::Result<(), QdrantError> {
        let config = self
            .client
            .collection_info(self.collection.as_str())
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
        self.client
            .create_vector_name(
                CreateVectorNameRequestBuilder::new(
                    self.collection.as_str(),
                    name,
                    SparseVectorCreationConfigBuilder::new().modifier(modifier as i32),
                )
                .wait(true),
            )
            .await?;
        Ok(())
    }

    /// The schema record of the collection; `None` when the collection does not exist.
    async fn read_schema(&self) -> Result<Option<SchemaRecord>> {
        let exists = self
            .client
            .collection_exists(self.collection.as_str())
            .await
            .map_err(|e| self.error("collection exists", e))?;
        if !exists {
            return Ok(None);
        }
        let config = self.collection_config().await?;
        match SchemaRecord::from_metadata(&config.metadata) {
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
        self.client
            .collection_info(self.collection.as_str())
            .await
            .map_err(|e| self.error("collection info", e))?
            .result
            .and_then(|info| info.config)
            .ok_or_else(|| {
                StoreError::Operation(format!(
                    "{}: collection info without a config",
                    self.describe()
                ))
            })
    }

    fn check_target(&self, recorded: &SchemaRecord, target: &Target) -> Result<()> {
        if recorded.vector_size != target.vector_size
            || recorded.embedding_model != target.embedding_model
        {
            return Err(StoreError::SchemaMismatch(format!(
                "{} was built with embedding model {} ({} dimensions) but {} ({} dimensions) \
                 is configured; use another collection or re-index from scratch",
                self.describe(),
                recorded.embedding_model,
                recorded.vector_size,
                target.embedding_model,
                target.vector_size
            )));
        }
        Ok(())
    }

    /// Creates the collection with its schema record at version `applied`, so that a crash
    /// before the migration completes leaves a collection this code recognises and finishes.
    async fn create_collection(
        &self,
        dense_vector: &str,
        distance: migrations::Distance,
        target: &Target,
        applied: u32,
    ) -> Result<()> {
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
        let record = SchemaRecord {
            version: applied,
            vector_size: target.vector_size,
            embedding_model: target.embedding_model.clone(),
        };
        // The builder's `metadata` takes serde_json values only with qdrant-client's `serde`
        // feature; the request's field takes them as they are.
        let mut request = CreateCollectionBuilder::new(self.collection.as_str())
            .vectors_config(vectors)
            .build();
        request.metadata = record.to_metadata();

        if let Err(e) = self.client.create_collection(request).await {
            // Another process may have created it since we looked: fine if it is ours and fits.
            match self.read_schema().await {
                Ok(Some(r)) => return self.check_target(&r, target),
                Ok(None) => return Err(self.error("create collection", e)),
                Err(other) => return Err(other),
            }
        }
        match self.read_schema().await? {
            Some(_) => Ok(()),
            None => Err(self.metadata_dropped()),
        }
    }

    /// Records `record` in the collection's metadata.
    async fn record(&self, record: &SchemaRecord) -> Result<()> {
        let mut request = UpdateCollectionBuilder::new(self.collection.as_str()).build();
        request.metadata = record.to_metadata();
        self.client
            .update_collection(request)
            .await
            .map_err(|e| self.error("record schema version", e))?;
        Ok(())
    }

    fn metadata_dropped(&self) -> StoreError {
        StoreError::SchemaMismatch(format!(
            "{}: the server did not keep the collection metadata that records the schema; \
             Qdrant 1.16 or newer is needed",
            self.describe()
        ))
    }

    fn describe(&self) -> String {
        format!(
            "collection {} on Qdrant server {}",
            self.collection, self.client.config.uri
        )
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

    async fn count_where(&self, filter: Option<Filter>) -> Result<u64> {
        let mut request = CountPointsBuilder::new(self.collection.as_str()).exact(true);
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        self.client
            .count(request)
            .await
            .map_err(|e| self.error("count", e))?
            .result
            .map(|r| r.count)
            .ok_or_else(|| {
                StoreError::Operation(format!("{}: count without a result", self.describe()))
            })
    }

    /// The payload `fields` of every point matching `filter`, page by page.
    async fn scroll_payloads(
        &self,
        filter: Filter,
        fields: &[&str],
    ) -> Result<Vec<HashMap<String, Value>>> {
        let fields = PayloadIncludeSelector {
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        };
        let mut all = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(self.collection.as_str())
                .limit(SCROLL_PAGE)
                .filter(filter.clone())
                .with_payload(fields.clone())
                .with_vectors(false);
            if let Some(o) = offset.take() {
                request = request.offset(o);
            }
            let page = self
                .client
                .scroll(request)
                .await
                .map_err(|e| self.error("scroll", e))?;
            all.extend(page.result.into_iter().map(|p| p.payload));
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(all),
            }
        }
    }

    async fn delete_where(&self, filter: Filter) -> Result<u64> {
        let n = self.count_where(Some(filter.clone())).await?;
        if n > 0 {
            self.client
                .delete_points(
                    DeletePointsBuilder::new(self.collection.as_str())
                        .points(filter)
                        .wait(true),
                )
                .await
                .map_err(|e| self.error("delete", e))?;
        }
        Ok(n)
    }
}

#[async_trait::async_trait]
impl VectorStore for ServerStore {
    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<()> {
        let mut points = points.into_iter().peekable();
        // Batches go one after another, each applied before the next is sent, so later points
        // overwrite earlier ones with the same id, as in one embedded update.
        while points.peek().is_some() {
            let batch: Vec<PointStruct> = points
                .by_ref()
                .take(UPSERT_BATCH)
                .map(|p| {
                    let mut vectors = NamedVectors::default()
                        .add_vector(self.dense.clone(), Vector::new_dense(p.vector));
                    if let Some(name) = &self.lexical
                        && !p.lexical.is_empty()
                    {
                        vectors = vectors.add_vector(
                            name.clone(),
                            Vector::new_sparse(p.lexical.indices, p.lexical.values),
                        );
                    }
                    PointStruct::new(
                        p.id.to_string(),
                        vectors,
                        to_payload(stored_payload(&p.payload)),
                    )
                })
                .collect();
            self.client
                .upsert_points(UpsertPointsBuilder::new(self.collection.as_str(), batch).wait(true))
                .await
                .map_err(|e| self.error("upsert", e))?;
        }
        Ok(())
    }

    async fn search(
        &self,
        query: SearchQuery,
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<Hit>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = to_filter(filter);
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let mut request = QueryPointsBuilder::new(self.collection.as_str())
            .limit(as_u64(limit))
            .with_payload(true)
            .with_vectors(VectorsSelector {
                names: vec![self.dense.clone()],
            });
        let mut sides = Vec::new();
        if let Some(name) = &self.lexical {
            for terms in [query.lexical, query.identifiers].into_iter().flatten() {
                if !terms.is_empty() {
                    let pairs: Vec<(u32, f32)> =
                        terms.indices.into_iter().zip(terms.values).collect();
                    sides.push(
                        PrefetchQueryBuilder::default()
                            .query(Query::from(pairs))
                            .using(name.as_str()),
                    );
                }
            }
        }
        let hybrid = !sides.is_empty();
        if hybrid {
            let dense = PrefetchQueryBuilder::default()
                .query(Query::new_nearest(query.dense.clone()))
                .using(self.dense.as_str());
            for side in std::iter::once(dense).chain(sides) {
                let mut side = side.limit(as_u64(prefetch_limit(limit)));
                if let Some(filter) = &filter {
                    side = side.filter(filter.clone());
                }
                request = request.add_prefetch(side);
            }
            request = request.query(Query::new_rrf(RrfBuilder::with_k(RRF_K as u32)));
        } else {
            request = request
                .query(Query::new_nearest(query.dense.clone()))
                .using(self.dense.as_str());
        }
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        let points = self
            .client
            .query(request)
            .await
            .map_err(|e| self.error("search", e))?
            .result;
        points
            .into_iter()
            .map(|p| {
                let vector = match p
                    .vectors
                    .as_ref()
                    .and_then(|v| v.get_vector_by_name(&self.dense))
                {
                    Some(vector_output::Vector::Dense(v)) => v.data,
                    _ => Vec::new(),
                };
                let similarity = cosine(&query.dense, &vector);
                Ok(Hit {
                    score: if hybrid { p.score } else { similarity },
                    similarity,
                    vector,
                    payload: parse_payload(to_json_map(p.payload))?,
                })
            })
            .collect()
    }

    async fn document_versions(
        &self,
        root: Option<&str>,
        doc_id: Option<&str>,
    ) -> Result<Vec<DocumentVersion>> {
        let mut must = vec![Condition::matches("chunk_index", 0i64)];
        if let Some(root) = root {
            must.push(keyword("root", root));
        }
        if let Some(doc_id) = doc_id {
            must.push(keyword("doc_id", doc_id));
        }
        let fields = ["doc_id", "source", "root", "doc_hash", "chunk_count"];
        let mut versions = BTreeSet::new();
        for payload in self.scroll_payloads(Filter::must(must), &fields).await? {
            let get = |k: &str| {
                payload
                    .get(k)
                    .and_then(Value::as_str)
                    .cloned()
                    .unwrap_or_default()
            };
            versions.insert(DocumentVersion {
                doc_id: get("doc_id"),
                source: get("source"),
                root: get("root"),
                doc_hash: get("doc_hash"),
                chunk_count: payload
                    .get("chunk_count")
                    .and_then(Value::as_integer)
                    .unwrap_or(0) as u32,
            });
        }
        Ok(versions.into_iter().collect())
    }

    async fn vectors_by_chunk_hash(
        &self,
        chunk_hashes: Vec<String>,
    ) -> Result<HashMap<String, Vec<f32>>> {
        let mut found = HashMap::new();
        if chunk_hashes.is_empty() {
            return Ok(found);
        }
        let wanted = chunk_hashes.len();
        let filter = Filter::must([keywords("chunk_hash", chunk_hashes)]);
        let mut offset: Option<PointId> = None;
        // Copies share a hash, so a page can hold fewer distinct hashes than points.
        loop {
            let mut request = ScrollPointsBuilder::new(self.collection.as_str())
                .limit(wanted.clamp(16, 1024) as u32)
                .filter(filter.clone())
                .with_payload(PayloadIncludeSelector {
                    fields: vec!["chunk_hash".to_owned()],
                })
                .with_vectors(VectorsSelector {
                    names: vec![self.dense.clone()],
                });
            if let Some(o) = offset.take() {
                request = request.offset(o);
            }
            let page = self
                .client
                .scroll(request)
                .await
                .map_err(|e| self.error("scroll", e))?;
            for point in page.result {
                let hash = point.payload.get("chunk_hash").and_then(Value::as_str);
                let vector = point
                    .vectors
                    .as_ref()
                    .and_then(|v| v.get_vector_by_name(&self.dense));
                if let (Some(hash), Some(vector_output::Vector::Dense(dense))) = (hash, vector) {
                    found.entry(hash.clone()).or_insert(dense.data);
                }
            }
            match page.next_page_offset {
                Some(next) if found.len() < wanted => offset = Some(next),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn delete_document(&self, doc_id: &str, keep_hash: Option<&str>) -> Result<u64> {
        let mut filter = Filter::must([keyword("doc_id", doc_id)]);
        if let Some(hash) = keep_hash {
            filter.must_not = vec![keyword("doc_hash", hash)];
        }
        self.delete_where(filter).await
    }

    async fn delete_source(&self, source: &str) -> Result<u64> {
        self.delete_where(Filter::must([keyword("source", source)]))
            .await
    }

    async fn count(&self) -> Result<u64> {
        self.count_where(None).await
    }

    async fn count_in_root(&self, root: &str) -> Result<u64> {
        self.count_where(Some(Filter::must([keyword("root", root)])))
            .await
    }

    async fn point_versions(&self, root: &str) -> Result<BTreeSet<(String, String)>> {
        let payloads = self
            .scroll_payloads(
                Filter::must([keyword("root", root)]),
                &["doc_id", "doc_hash"],
            )
            .await?;
        Ok(payloads
            .into_iter()
            .map(|p| {
                let get = |k: &str| {
                    p.get(k)
                        .and_then(Value::as_str)
                        .cloned()
                        .unwrap_or_default()
                };
                (get("doc_id"), get("doc_hash"))
            })
            .collect())
    }

    async fn flush(&self) -> Result<()> {
        // Every write above waits until the server has applied it; the server's WAL makes it
        // durable.
        Ok(())
    }
}

/// Exact keyword match. `Condition::matches` with a `String` would turn a value containing
/// whitespace (a path like "hr/leave policy.md") into a full-text match.
fn keyword(field: &str, value: &str) -> Condition {
    Condition::matches(field, MatchValue::Keyword(value.to_owned()))
}

fn keywords(field: &str, values: Vec<String>) -> Condition {
    Condition::matches(
        field,
        MatchValue::Keywords(RepeatedStrings { strings: values }),
    )
}

fn to_filter(filter: &SearchFilter) -> Option<Filter> {
    let mut must = Vec::new();
    let keys = filter
        .path_prefix
        .as_deref()
        .map(prefix_keys)
        .unwrap_or_default();
    if !keys.is_empty() {
        must.push(keywords("path_prefixes", keys));
    }
    if !filter.doc_ids.is_empty() {
        must.push(keywords("doc_id", filter.doc_ids.clone()));
    }
    (!must.is_empty()).then(|| Filter::must(must))
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
        assert_eq!(
            SchemaRecord::from_metadata(&record.to_metadata()),
            Ok(Some(record))
        );
        let foreign = HashMap::from([("owner".to_owned(), Value::from("someone"))]);
        assert_eq!(SchemaRecord::from_metadata(&foreign), Ok(None));
        let broken = HashMap::from([(META_VERSION.to_owned(), Value::from("one"))]);
        assert!(SchemaRecord::from_metadata(&broken).is_err());
    }

    #[test]
    fn keyword_conditions_stay_exact_with_spaces() {
        let condition = keyword("source", "hr/leave policy.md");
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
    fn search_filter_uses_prefix_keys_and_doc_ids() {
        assert!(to_filter(&SearchFilter::default()).is_none());
        let only_root = SearchFilter {
            path_prefix: Some(" / ".into()),
            doc_ids: Vec::new(),
        };
        assert!(to_filter(&only_root).is_none());
        let filter = to_filter(&SearchFilter {
            path_prefix: Some("hr/".into()),
            doc_ids: vec!["d1".into()],
        })
        .expect("filter");
        assert_eq!(filter.must.len(), 2);
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
