//! The embedded backend: Qdrant's engine in this process, persisted in a data directory.
//!
//! Layout of the data directory: `chunks/` is the shard, `schema.json` records which migrations
//! were applied and for which embedding model and vector size. The shard's WAL holds an
//! exclusive lock, so one process owns a data directory at a time.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use qdrant_edge::{
    Condition, CreateIndex, CreateVectorName, Distance, EdgeConfig, EdgeShard, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, Filter, Fusion, JsonPath, Match, Modifier, NamedQuery,
    Payload, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStructPersisted, PrefetchBuilder, QueryEnum, QueryRequestBuilder,
    ScoringQuery, ScrollRequestBuilder, SparseVectorConfig, UpdateOperation, ValueVariants,
    VectorInternal, VectorNameConfig, VectorNameOperations, VectorPersisted, VectorStructInternal,
    VectorStructPersisted, WithPayloadInterface, WithVector,
};
use serde::{Deserialize, Serialize};

use crate::migrations::{self, IndexKind, SparseModifier, Step, Target};
use crate::point::{RRF_K, cosine, parse_payload, prefetch_limit, prefix_keys, stored_payload};
use crate::{
    ChunkPayload, ChunkPoint, DocumentVersion, Hit, Query, Result, SearchFilter, StoreError,
    VectorStore,
};

const SHARD_DIR: &str = "chunks";
const SCHEMA_FILE: &str = "schema.json";

pub struct EdgeStore {
    shard: Arc<EdgeShard>,
    dense: String,
    lexical: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SchemaRecord {
    version: u32,
    vector_size: usize,
    embedding_model: String,
}

impl EdgeStore {
    pub async fn open(data_dir: PathBuf, target: Target) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::open_blocking(&data_dir, &target))
            .await
            .map_err(|e| StoreError::Unavailable(format!("open task: {e}")))?
    }

    fn open_blocking(data_dir: &Path, target: &Target) -> Result<Self> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let schema_path = data_dir.join(SCHEMA_FILE);
        let recorded: Option<SchemaRecord> = match std::fs::read(&schema_path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::SchemaMismatch(format!("{}: {e}", schema_path.display()))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&schema_path)(e)),
        };
        if let Some(r) = &recorded
            && (r.vector_size != target.vector_size || r.embedding_model != target.embedding_model)
        {
            return Err(StoreError::SchemaMismatch(format!(
                "{} was built with embedding model {} ({} dimensions) but {} ({} dimensions) \
                 is configured; use another data directory or re-index from scratch",
                data_dir.display(),
                r.embedding_model,
                r.vector_size,
                target.embedding_model,
                target.vector_size
            )));
        }
        let applied = recorded.as_ref().map_or(0, |r| r.version);
        if applied > migrations::latest() {
            return Err(StoreError::SchemaMismatch(format!(
                "{} is at schema version {applied}, newer than this build knows ({})",
                data_dir.display(),
                migrations::latest()
            )));
        }

        let shard_dir = data_dir.join(SHARD_DIR);
        let op = |e: qdrant_edge::OperationError| {
            StoreError::Unavailable(format!("{}: {e}", shard_dir.display()))
        };
        let dense = migrations::dense_vector_name()?;
        let mut shard = if applied > 0 {
            Some(EdgeShard::load(&shard_dir, None).map_err(op)?)
        } else {
            None
        };
        for migration in migrations::pending(applied)? {
            for step in &migration.steps {
                match step {
                    Step::CreateCollection {
                        dense_vector,
                        distance,
                    } => {
                        let distance = match distance {
                            migrations::Distance::Cosine => Distance::Cosine,
                            migrations::Distance::Dot => Distance::Dot,
                            migrations::Distance::Euclid => Distance::Euclid,
                        };
                        let config = EdgeConfig::builder()
                            .vector(
                                dense_vector.clone(),
                                EdgeVectorParams::builder(target.vector_size, distance).build(),
                            )
                            .build();
                        std::fs::create_dir_all(&shard_dir).map_err(io(&shard_dir))?;
                        // `load` with a config creates the shard in an empty directory and checks
                        // the config against one a crashed earlier attempt left behind.
                        shard = Some(EdgeShard::load(&shard_dir, Some(config)).map_err(op)?);
                    }
                    Step::CreatePayloadIndex { field, kind } => {
                        let shard = shard.as_ref().ok_or_else(|| StoreError::Migration {
                            name: migration.name.clone(),
                            reason: "payload index before the collection exists".into(),
                        })?;
                        let schema = match kind {
                            IndexKind::Keyword => PayloadSchemaType::Keyword,
                            IndexKind::Integer => PayloadSchemaType::Integer,
                        };
                        shard
                            .update(UpdateOperation::FieldIndexOperation(
                                FieldIndexOperations::CreateIndex(CreateIndex {
                                    field_name: json_path(field)?,
                                    field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                                }),
                            ))
                            .map_err(op)?;
                    }
                    Step::CreateSparseVector { name, modifier } => {
                        let shard = shard.as_ref().ok_or_else(|| StoreError::Migration {
                            name: migration.name.clone(),
                            reason: "sparse vector before the collection exists".into(),
                        })?;
                        let modifier = match modifier {
                            SparseModifier::None => Modifier::None,
                            SparseModifier::Idf => Modifier::Idf,
                        };
                        // Repeating it after a crash is a no-op: same name, same parameters.
                        shard
                            .update(UpdateOperation::VectorNameOperation(
                                VectorNameOperations::CreateVectorName(CreateVectorName {
                                    vector_name: name.clone(),
                                    config: VectorNameConfig::sparse(SparseVectorConfig {
                                        modifier: Some(modifier),
                                        datatype: None,
                                    }),
                                }),
                            ))
                            .map_err(op)?;
                    }
                }
            }
            let record = SchemaRecord {
                version: migration.version,
                vector_size: target.vector_size,
                embedding_model: target.embedding_model.clone(),
            };
            if let Some(shard) = &shard {
                shard.flush().map_err(op)?;
            }
            write_atomically(
                &schema_path,
                &serde_json::to_vec_pretty(&record).expect("json"),
            )
            .map_err(io(&schema_path))?;
            tracing::info!(migration = %migration.name, "applied migration");
        }
        let shard = shard.ok_or_else(|| StoreError::Migration {
            name: "migrations/".into(),
            reason: "no migration creates the collection".into(),
        })?;
        let size = shard.config().vectors.get(&dense).map(|v| v.size);
        if size != Some(target.vector_size) {
            return Err(StoreError::SchemaMismatch(format!(
                "{}: stored vectors have {size:?} dimensions, the model makes {}",
                shard_dir.display(),
                target.vector_size
            )));
        }
        Ok(Self {
            shard: Arc::new(shard),
            dense,
            lexical: migrations::lexical_vector_name()?,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EdgeShard) -> qdrant_edge::OperationResult<T> + Send + 'static,
    ) -> Result<T> {
        let shard = self.shard.clone();
        tokio::task::spawn_blocking(move || f(&shard))
            .await
            .map_err(|e| StoreError::Operation(format!("store task: {e}")))?
            .map_err(|e| StoreError::Operation(e.to_string()))
    }

    fn count_blocking(shard: &EdgeShard, filter: Filter) -> qdrant_edge::OperationResult<u64> {
        shard
            .count(
                qdrant_edge::CountRequestBuilder::new()
                    .filter(filter)
                    .build(),
            )
            .map(|n| n as u64)
    }

    /// The payload `fields` of every point matching `filter`, page by page.
    fn scroll_payloads(
        shard: &EdgeShard,
        filter: Filter,
        fields: Vec<JsonPath>,
    ) -> qdrant_edge::OperationResult<Vec<Payload>> {
        let mut all = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollRequestBuilder::new()
                .limit(1024)
                .filter(filter.clone())
                .with_payload(WithPayloadInterface::Fields(fields.clone()))
                .with_vector(WithVector::Bool(false));
            if let Some(o) = offset {
                request = request.offset(o);
            }
            let (records, next) = shard.scroll(request.build())?;
            all.extend(records.into_iter().filter_map(|r| r.payload));
            match next {
                Some(n) => offset = Some(n),
                None => return Ok(all),
            }
        }
    }

    async fn delete_where(&self, filter: Filter) -> Result<u64> {
        self.blocking(move |shard| {
            let n = Self::count_blocking(shard, filter.clone())?;
            if n > 0 {
                shard.update(UpdateOperation::PointOperation(
                    PointOperations::DeletePointsByFilter(filter),
                ))?;
            }
            Ok(n)
        })
        .await
    }
}

#[async_trait::async_trait]
impl VectorStore for EdgeStore {
    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let dense = self.dense.clone();
        let lexical = self.lexical.clone();
        let points = points
            .into_iter()
            .map(|p| {
                let payload = Payload::from(stored_payload(&p.payload));
                let mut vectors =
                    HashMap::from([(dense.clone(), VectorPersisted::Dense(p.vector))]);
                if let Some(name) = &lexical
                    && !p.lexical.is_empty()
                {
                    vectors.insert(name.clone(), VectorPersisted::Sparse(sparse(p.lexical)));
                }
                PointStructPersisted {
                    id: PointId::Uuid(p.id),
                    vector: VectorStructPersisted::Named(vectors),
                    payload: Some(payload),
                }
            })
            .collect();
        self.blocking(move |shard| {
            shard.update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
        })
        .await
    }

    async fn search(&self, query: Query, limit: usize, filter: &SearchFilter) -> Result<Vec<Hit>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = to_filter(filter)?;
        let dense = NamedQuery::new(
            VectorInternal::from(query.dense.clone()),
            self.dense.clone(),
        );
        let dense = ScoringQuery::Vector(QueryEnum::Nearest(dense));
        let sparse_query = |name: &String, terms: crate::SparseVector| {
            ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery::new(
                VectorInternal::from(sparse(terms)),
                name.clone(),
            )))
        };
        let mut sides = Vec::new();
        if let Some(name) = &self.lexical {
            for terms in [query.lexical, query.identifiers].into_iter().flatten() {
                if !terms.is_empty() {
                    sides.push(sparse_query(name, terms));
                }
            }
        }
        let hybrid = !sides.is_empty();
        let mut request = QueryRequestBuilder::new(limit)
            .with_payload(WithPayloadInterface::Bool(true))
            .with_vector(WithVector::Selector(vec![self.dense.clone()]));
        if hybrid {
            for side in std::iter::once(dense).chain(sides) {
                let mut prefetch = PrefetchBuilder::new(prefetch_limit(limit)).query(side);
                if let Some(filter) = &filter {
                    prefetch = prefetch.filter(filter.clone());
                }
                request = request.add_prefetch(prefetch.build());
            }
            request = request.query(ScoringQuery::Fusion(Fusion::Rrf {
                k: RRF_K,
                weights: None,
            }));
        } else {
            request = request.query(dense);
        }
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        let request = request.build();
        let points = self.blocking(move |shard| shard.query(request)).await?;
        let dense_name = self.dense.clone();
        points
            .into_iter()
            .map(|p| {
                let vector = match p.vector {
                    Some(VectorStructInternal::Named(mut named)) => match named.remove(&dense_name)
                    {
                        Some(VectorInternal::Dense(v)) => v,
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                let similarity = cosine(&query.dense, &vector);
                Ok(Hit {
                    score: if hybrid { p.score } else { similarity },
                    similarity,
                    vector,
                    payload: from_payload(p.payload)?,
                })
            })
            .collect()
    }

    async fn document_versions(
        &self,
        root: Option<&str>,
        doc_id: Option<&str>,
    ) -> Result<Vec<DocumentVersion>> {
        let mut must = vec![Condition::Field(FieldCondition::new_match(
            json_path("chunk_index")?,
            Match::from(0i64),
        ))];
        if let Some(root) = root {
            must.push(keyword("root", root)?);
        }
        if let Some(doc_id) = doc_id {
            must.push(keyword("doc_id", doc_id)?);
        }
        let fields = ["doc_id", "source", "root", "doc_hash", "chunk_count"]
            .into_iter()
            .map(json_path)
            .collect::<Result<Vec<_>>>()?;
        let filter = Filter {
            must: Some(must),
            ..Filter::default()
        };
        let records = self
            .blocking(move |shard| Self::scroll_payloads(shard, filter, fields))
            .await?;
        let mut versions = BTreeSet::new();
        for payload in records {
            let get = |k: &str| {
                payload
                    .0
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            versions.insert(DocumentVersion {
                doc_id: get("doc_id"),
                source: get("source"),
                root: get("root"),
                doc_hash: get("doc_hash"),
                chunk_count: payload
                    .0
                    .get("chunk_count")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0) as u32,
            });
        }
        Ok(versions.into_iter().collect())
    }

    async fn vectors_by_chunk_hash(
        &self,
        chunk_hashes: Vec<String>,
    ) -> Result<HashMap<String, Vec<f32>>> {
        if chunk_hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let wanted = chunk_hashes.len();
        let filter = Filter::new_must(Condition::Field(FieldCondition::new_match(
            json_path("chunk_hash")?,
            Match::from(chunk_hashes),
        )));
        let field = vec![json_path("chunk_hash")?];
        let dense = self.dense.clone();
        self.blocking(move |shard| {
            let mut found = HashMap::new();
            let mut offset: Option<PointId> = None;
            // Copies share a hash, so a page can hold fewer distinct hashes than points.
            loop {
                let mut request = ScrollRequestBuilder::new()
                    .limit(wanted.clamp(16, 1024))
                    .filter(filter.clone())
                    .with_payload(WithPayloadInterface::Fields(field.clone()))
                    .with_vector(WithVector::Selector(vec![dense.clone()]));
                if let Some(o) = offset {
                    request = request.offset(o);
                }
                let (records, next) = shard.scroll(request.build())?;
                for record in records {
                    let hash = record
                        .payload
                        .as_ref()
                        .and_then(|p| p.0.get("chunk_hash"))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                    let vector = match record.vector {
                        Some(VectorStructInternal::Named(mut named)) => named.remove(&dense),
                        _ => None,
                    };
                    if let (Some(hash), Some(VectorInternal::Dense(vector))) = (hash, vector) {
                        found.entry(hash).or_insert(vector);
                    }
                }
                match next {
                    Some(n) if found.len() < wanted => offset = Some(n),
                    _ => break,
                }
            }
            Ok(found)
        })
        .await
    }

    async fn delete_document(&self, doc_id: &str, keep_hash: Option<&str>) -> Result<u64> {
        let mut filter = Filter::new_must(keyword("doc_id", doc_id)?);
        if let Some(hash) = keep_hash {
            filter.must_not = Some(vec![keyword("doc_hash", hash)?]);
        }
        self.delete_where(filter).await
    }

    async fn delete_source(&self, source: &str) -> Result<u64> {
        self.delete_where(Filter::new_must(keyword("source", source)?))
            .await
    }

    async fn count(&self) -> Result<u64> {
        self.blocking(|shard| Self::count_blocking(shard, Filter::default()))
            .await
    }

    async fn count_in_root(&self, root: &str) -> Result<u64> {
        let filter = Filter::new_must(keyword("root", root)?);
        self.blocking(move |shard| Self::count_blocking(shard, filter))
            .await
    }

    async fn point_versions(&self, root: &str) -> Result<BTreeSet<(String, String)>> {
        let filter = Filter::new_must(keyword("root", root)?);
        let fields = vec![json_path("doc_id")?, json_path("doc_hash")?];
        let payloads = self
            .blocking(move |shard| Self::scroll_payloads(shard, filter, fields))
            .await?;
        Ok(payloads
            .into_iter()
            .map(|p| {
                let get = |k: &str| {
                    p.0.get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                (get("doc_id"), get("doc_hash"))
            })
            .collect())
    }

    async fn flush(&self) -> Result<()> {
        self.blocking(|shard| shard.flush()).await
    }
}

fn json_path(field: &str) -> Result<JsonPath> {
    field
        .parse()
        .map_err(|()| StoreError::Operation(format!("invalid payload field name {field:?}")))
}

fn keyword(field: &str, value: &str) -> Result<Condition> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        Match::new_value(ValueVariants::String(value.to_owned())),
    )))
}

fn to_filter(filter: &SearchFilter) -> Result<Option<Filter>> {
    let mut must = Vec::new();
    let keys = filter
        .path_prefix
        .as_deref()
        .map(prefix_keys)
        .unwrap_or_default();
    if !keys.is_empty() {
        must.push(Condition::Field(FieldCondition::new_match(
            json_path("path_prefixes")?,
            Match::from(keys),
        )));
    }
    if !filter.doc_ids.is_empty() {
        must.push(Condition::Field(FieldCondition::new_match(
            json_path("doc_id")?,
            Match::from(filter.doc_ids.clone()),
        )));
    }
    Ok((!must.is_empty()).then(|| Filter {
        must: Some(must),
        ..Filter::default()
    }))
}

fn sparse(v: crate::SparseVector) -> qdrant_edge::SparseVector {
    // rag-lexical makes sorted, unique indices with one value each.
    qdrant_edge::SparseVector {
        indices: v.indices,
        values: v.values,
    }
}

fn from_payload(payload: Option<Payload>) -> Result<ChunkPayload> {
    parse_payload(payload.map(|p| p.0).unwrap_or_default())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}
