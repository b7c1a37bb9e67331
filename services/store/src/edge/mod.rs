//! The embedded backend: Qdrant's engine in this process, persisted in a data directory.
//!
//! Layout of a store folder: `chunks/` is the shard, `schema.json` is the [`SchemaRecord`]. The
//! store folder is the data directory itself, or, once `rag reindex` has switched generations,
//! the folder that the data directory's `CURRENT` file names (`generations/{stamp}`; see
//! [`crate::generation`]). One process owns a store at a time: this backend holds an exclusive
//! lock on the store folder (as the shard's WAL does on its own folder), so a second opener is
//! told [`StoreError::Locked`] before it touches anything.

pub(crate) mod generations;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use qdrant_edge::{
    CreateIndex, CreateVectorName, Distance, EdgeConfig, EdgeShard, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, IsEmptyCondition, JsonPath, KeywordIndexParamsBuilder,
    Match, Modifier, NamedQuery, PayloadFieldSchema, PayloadOps, PayloadSchemaParams,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStructPersisted,
    QueryEnum, QueryRequestBuilder, RetrieveRequestBuilder, ScoringQuery, ScrollRequestBuilder,
    SetPayloadOp, SparseVectorConfig, UpdateOperation, ValueVariants, VectorInternal,
    VectorNameConfig, VectorNameOperations, VectorPersisted, VectorStructInternal,
    VectorStructPersisted, WithPayloadInterface, WithVector,
};

use crate::backend::{
    Backend, Condition, ExportPage, Filter, NamedVector, NewPoint, Page, Payload, PointKey,
    QueryRequest, Record, Scored, ScrollRequest, VectorData,
};
use crate::migrations::{self, IndexKind, SparseModifier, Step, Target};
use crate::schema::SchemaRecord;
use crate::{Result, StoreError};

pub(crate) const SHARD_DIR: &str = "chunks";
pub(crate) const SCHEMA_FILE: &str = "schema.json";
/// Where the engine's optimizers build a segment before swapping it in.
const TEMP_SEGMENTS: &str = "temp_segments";

pub(crate) struct EdgeBackend {
    /// The store folder: the data directory, or the generation its `CURRENT` file names.
    store_dir: PathBuf,
    /// Writes are refused while the file system has less free (see [`StoreError::Full`]).
    min_free_bytes: u64,
    /// Set once the collection exists: at open for a migrated store, else by the migration
    /// that creates it.
    shard: OnceLock<Arc<EdgeShard>>,
    /// The store folder's lock, held for the backend's lifetime; the lock goes with the file.
    /// Declared after `shard` so that it is released only once the shard is closed.
    _lock: fs_err::File,
}

/// The file in a data directory that names its current generation folder, relative to it.
pub(crate) const CURRENT_FILE: &str = "CURRENT";

/// The store folder of data directory `data_dir`: the generation its `CURRENT` file names, or
/// the directory itself.
pub(crate) fn store_dir(data_dir: &Path) -> Result<PathBuf> {
    let current = data_dir.join(CURRENT_FILE);
    match fs_err::read_to_string(&current) {
        Ok(name) => {
            let name = name.trim();
            // Only a folder under the data directory: a damaged file must not lead elsewhere.
            let valid = !name.is_empty()
                && Path::new(name)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !valid {
                return Err(StoreError::Operation(format!(
                    "{}: {name:?} is not a folder under the data directory",
                    current.display()
                )));
            }
            Ok(data_dir.join(name))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(data_dir.to_owned()),
        Err(e) => Err(io(&current)(e)),
    }
}

impl EdgeBackend {
    pub(crate) async fn open(data_dir: PathBuf, min_free_bytes: u64) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::open_blocking(data_dir, min_free_bytes))
            .await
            .map_err(|e| StoreError::Unavailable(format!("open task: {e}")))?
    }

    fn open_blocking(data_dir: PathBuf, min_free_bytes: u64) -> Result<Self> {
        fs_err::create_dir_all(&data_dir).map_err(io(&data_dir))?;
        // The lock is the store folder's, not the data directory's: a service rebuilding its
        // store (`rag reindex`) holds the old generation and the new one at once, and keeps
        // the new one's when it lets the old one go.
        let (store_dir, lock) = loop {
            let store_dir = store_dir(&data_dir)?;
            let lock = lock_exclusively(&store_dir)?;
            // A switch between reading `CURRENT` and taking the lock: take the new one.
            if crate::edge::store_dir(&data_dir)? == store_dir {
                break (store_dir, lock);
            }
        };
        let backend = Self {
            store_dir,
            min_free_bytes,
            shard: OnceLock::new(),
            _lock: lock,
        };
        // Loading a shard writes too (its write-ahead log), through memory maps.
        backend.check_space()?;
        if backend.read_schema()?.is_some_and(|r| r.version > 0) {
            let shard_dir = backend.shard_dir();
            // What an optimisation that a crash interrupted was building: the segments it
            // replaces are still in place, and nothing reads these. They would only hold disk.
            let unfinished = shard_dir.join(TEMP_SEGMENTS);
            if unfinished.exists() {
                tracing::warn!(path = %unfinished.display(), "removing an interrupted optimisation");
                fs_err::remove_dir_all(&unfinished).map_err(io(&unfinished))?;
            }
            let shard = EdgeShard::load(&shard_dir, None).map_err(unavailable(&shard_dir))?;
            let _ = backend.shard.set(Arc::new(shard));
        }
        Ok(backend)
    }

    /// Refuses a write while the data directory's file system has less than the reserve
    /// free. Checked before every write, so a disk filling up (by this store or by anything
    /// else) ends a run with an error between two writes instead of a crash inside one.
    fn check_space(&self) -> Result<()> {
        ensure_free_space(&self.store_dir, self.min_free_bytes)
    }

    fn shard_dir(&self) -> PathBuf {
        self.store_dir.join(SHARD_DIR)
    }

    fn schema_path(&self) -> PathBuf {
        self.store_dir.join(SCHEMA_FILE)
    }

    fn read_schema(&self) -> Result<Option<SchemaRecord>> {
        let path = self.schema_path();
        match fs_err::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::SchemaMismatch(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn shard(&self) -> Result<Arc<EdgeShard>> {
        self.shard.get().cloned().ok_or_else(|| {
            StoreError::Operation(format!(
                "{}: the collection does not exist",
                self.describe()
            ))
        })
    }

    /// Runs `f` on the shard off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EdgeShard) -> qdrant_edge::OperationResult<T> + Send + 'static,
    ) -> Result<T> {
        let shard = self.shard()?;
        tokio::task::spawn_blocking(move || f(&shard))
            .await
            .map_err(|e| StoreError::Operation(format!("store task: {e}")))?
            .map_err(|e| StoreError::Operation(e.to_string()))
    }

    async fn create_collection(
        &self,
        dense_vector: &str,
        distance: Distance,
        target: &Target,
    ) -> Result<()> {
        if self.shard.get().is_some() {
            return Ok(());
        }
        let config = EdgeConfig::builder()
            .vector(
                dense_vector.to_owned(),
                EdgeVectorParams::builder(target.vector_size, distance).build(),
            )
            .build();
        let shard_dir = self.shard_dir();
        let shard = tokio::task::spawn_blocking(move || {
            fs_err::create_dir_all(&shard_dir).map_err(io(&shard_dir))?;
            // `load` with a config creates the shard in an empty directory and checks the
            // config against one a crashed earlier attempt left behind.
            EdgeShard::load(&shard_dir, Some(config)).map_err(unavailable(&shard_dir))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("open task: {e}")))??;
        let _ = self.shard.set(Arc::new(shard));
        Ok(())
    }
}

/// Takes the data directory for this process, or says who has it. Checked here, by the lock
/// call's own answer, because the shard's WAL reports its lock failure only as text.
pub(crate) fn lock_exclusively(data_dir: &Path) -> Result<fs_err::File> {
    let dir = fs_err::File::open(data_dir).map_err(io(data_dir))?;
    match dir.file().try_lock() {
        Ok(()) => Ok(dir),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: data_dir.to_owned(),
        }),
        // A platform without directory locks: the WAL's own lock still keeps a second opener
        // out, only with a less specific error.
        Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            Ok(dir)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(data_dir)(e)),
    }
}

#[async_trait::async_trait]
impl Backend for EdgeBackend {
    fn exclusive(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("embedded store {}", self.store_dir.display())
    }

    async fn upsert(&self, points: Vec<NewPoint>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        self.check_space()?;
        let points = points
            .into_iter()
            .map(|p| PointStructPersisted {
                id: PointId::Uuid(p.id),
                vector: VectorStructPersisted::Named(
                    p.vectors
                        .into_iter()
                        .map(|v| (v.name, persisted(v.vector)))
                        .collect::<HashMap<_, _>>(),
                ),
                payload: Some(qdrant_edge::Payload::from(p.payload)),
            })
            .collect();
        self.blocking(move |shard| {
            shard.update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
        })
        .await
    }

    async fn query(&self, request: QueryRequest) -> Result<Vec<Scored>> {
        let filter = to_filter(&request.filter)?;
        let mut builder = QueryRequestBuilder::new(request.limit)
            .with_payload(WithPayloadInterface::Bool(false))
            .with_vector(WithVector::Selector(vec![request.with_vector.clone()]));
        builder = builder.query(nearest(request.nearest));
        if let Some(filter) = filter {
            builder = builder.filter(filter);
        }
        let query = builder.build();
        let points = self.blocking(move |shard| shard.query(query)).await?;
        let name = request.with_vector;
        Ok(points
            .into_iter()
            .map(|p| Scored {
                id: point_key(p.id),
                score: p.score,
                vector: record(None, p.vector, Some(&name)).vector,
            })
            .collect())
    }

    async fn payloads(&self, ids: Vec<PointKey>) -> Result<Vec<(PointKey, Payload)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let request = RetrieveRequestBuilder::new(ids.into_iter().map(point_id).collect())
            .with_payload(WithPayloadInterface::Bool(true))
            .with_vector(WithVector::Bool(false))
            .build();
        let records = self.blocking(move |shard| shard.retrieve(request)).await?;
        Ok(records
            .into_iter()
            .map(|r| (point_key(r.id), record(r.payload, None, None).payload))
            .collect())
    }

    async fn scroll(&self, request: ScrollRequest) -> Result<Page> {
        let mut builder = ScrollRequestBuilder::new()
            .limit(request.limit)
            .with_payload(WithPayloadInterface::Fields(
                request
                    .fields
                    .iter()
                    .map(|f| json_path(f))
                    .collect::<Result<_>>()?,
            ))
            .with_vector(match &request.with_vector {
                Some(name) => WithVector::Selector(vec![name.clone()]),
                None => WithVector::Bool(false),
            });
        if let Some(filter) = to_filter(&request.filter)? {
            builder = builder.filter(filter);
        }
        if let Some(offset) = request.offset {
            builder = builder.offset(point_id(offset));
        }
        let scroll = builder.build();
        let (records, next) = self.blocking(move |shard| shard.scroll(scroll)).await?;
        let name = request.with_vector;
        Ok(Page {
            records: records
                .into_iter()
                .map(|r| record(r.payload, r.vector, name.as_deref()))
                .collect(),
            next: next.map(point_key),
        })
    }

    async fn count(&self, filter: &Filter) -> Result<u64> {
        let filter = to_filter(filter)?.unwrap_or_default();
        self.blocking(move |shard| {
            shard
                .count(
                    qdrant_edge::CountRequestBuilder::new()
                        .filter(filter)
                        .build(),
                )
                .map(|n| n as u64)
        })
        .await
    }

    async fn delete(&self, filter: &Filter) -> Result<()> {
        let filter = to_filter(filter)?.unwrap_or_default();
        self.blocking(move |shard| {
            shard.update(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(filter),
            ))
        })
        .await
    }

    async fn schema(&self) -> Result<Option<SchemaRecord>> {
        self.read_schema()
    }

    async fn set_schema(&self, record: &SchemaRecord) -> Result<()> {
        let path = self.schema_path();
        write_atomically(&path, &serde_json::to_vec_pretty(record).expect("json"))
            .map_err(io(&path))
    }

    async fn apply(&self, migration: &str, step: &Step, target: &Target) -> Result<()> {
        let missing = |what: &str| StoreError::before_collection(migration, what);
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
                self.create_collection(dense_vector, distance, target).await
            }
            Step::CreatePayloadIndex {
                field,
                kind,
                is_tenant,
            } => {
                if self.shard.get().is_none() {
                    return Err(missing("payload index"));
                }
                let schema = match (kind, is_tenant) {
                    (IndexKind::Keyword, true) => {
                        PayloadFieldSchema::FieldParams(PayloadSchemaParams::Keyword(
                            KeywordIndexParamsBuilder::new().is_tenant(true).build(),
                        ))
                    }
                    (IndexKind::Keyword, false) => {
                        PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)
                    }
                    (IndexKind::Integer, _) => {
                        PayloadFieldSchema::FieldType(PayloadSchemaType::Integer)
                    }
                };
                let field_name = json_path(field)?;
                self.blocking(move |shard| {
                    shard.update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name,
                            field_schema: Some(schema),
                        }),
                    ))
                })
                .await
            }
            Step::FillMissing { field, value } => {
                if self.shard.get().is_none() {
                    return Err(missing("payload field"));
                }
                self.check_space()?;
                let mut payload = serde_json::Map::new();
                payload.insert(field.clone(), value.clone());
                let filter = to_filter(&Filter::must(Condition::IsEmpty {
                    field: field.clone(),
                }))?;
                self.blocking(move |shard| {
                    shard.update(UpdateOperation::PayloadOperation(PayloadOps::SetPayload(
                        SetPayloadOp {
                            payload: qdrant_edge::Payload::from(payload),
                            points: None,
                            filter,
                            key: None,
                        },
                    )))
                })
                .await
            }
            Step::CreateSparseVector { name, modifier } => {
                if self.shard.get().is_none() {
                    return Err(missing("sparse vector"));
                }
                let modifier = match modifier {
                    SparseModifier::None => Modifier::None,
                    SparseModifier::Idf => Modifier::Idf,
                };
                let vector_name = name.clone();
                // Repeating it after a crash is a no-op: same name, same parameters.
                self.blocking(move |shard| {
                    shard.update(UpdateOperation::VectorNameOperation(
                        VectorNameOperations::CreateVectorName(CreateVectorName {
                            vector_name,
                            config: VectorNameConfig::sparse(SparseVectorConfig {
                                modifier: Some(modifier),
                                datatype: None,
                            }),
                        }),
                    ))
                })
                .await
            }
        }
    }

    async fn dense_size(&self, name: &str) -> Result<Option<usize>> {
        Ok(self
            .shard
            .get()
            .and_then(|shard| shard.config().vectors.get(name).map(|v| v.size)))
    }

    async fn flush(&self) -> Result<()> {
        if self.shard.get().is_none() {
            return Ok(());
        }
        self.blocking(|shard| shard.flush()).await
    }

    async fn optimize(&self) -> Result<bool> {
        if self.shard.get().is_none() {
            return Ok(false);
        }
        // An optimisation writes a whole new segment before it swaps it in.
        self.check_space()?;
        self.blocking(|shard| {
            let changed = shard.optimize()?;
            // The swapped segment set is on disk in the manifest; make the rest durable too.
            shard.flush()?;
            Ok(changed)
        })
        .await
    }

    async fn export(&self, offset: Option<PointKey>, limit: usize) -> Result<ExportPage> {
        let mut builder = ScrollRequestBuilder::new()
            .limit(limit)
            .with_payload(WithPayloadInterface::Bool(true))
            .with_vector(WithVector::Bool(true));
        if let Some(offset) = offset {
            builder = builder.offset(point_id(offset));
        }
        let scroll = builder.build();
        let (records, next) = self.blocking(move |shard| shard.scroll(scroll)).await?;
        let points = records
            .into_iter()
            .map(|r| {
                let PointId::Uuid(id) = r.id else {
                    return Err(StoreError::Operation(format!(
                        "{}: point {} has a numeric id; rag writes only UUIDs",
                        self.describe(),
                        r.id
                    )));
                };
                let vectors = match r.vector {
                    Some(VectorStructInternal::Named(named)) => named
                        .into_iter()
                        .filter_map(|(name, vector)| {
                            let vector = match vector {
                                VectorInternal::Dense(v) => VectorData::Dense(v),
                                VectorInternal::Sparse(v) => {
                                    VectorData::Sparse(rag_lexical::SparseVector {
                                        indices: v.indices,
                                        values: v.values,
                                    })
                                }
                                VectorInternal::MultiDense(_) => return None,
                            };
                            Some(NamedVector { name, vector })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(NewPoint {
                    id,
                    vectors,
                    payload: r.payload.map(|p| p.0).unwrap_or_default(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(ExportPage {
            points,
            next: next.map(point_key),
        })
    }

    async fn drop_collection(&self) -> Result<()> {
        Err(StoreError::Operation(format!(
            "{}: the embedded store is its data directory; stop what uses it and remove it",
            self.describe()
        )))
    }
}

/// Refuses a write into `dir` ([`StoreError::Full`]) while its file system has less than
/// `min_free_bytes` (`store.min_free_mb`) free; 0: no check. The one reserve check of
/// everything the service writes under its data directory: the embedded store before each
/// write, the feedback log before each line.
pub fn ensure_free_space(dir: &Path, min_free_bytes: u64) -> Result<()> {
    if min_free_bytes == 0 {
        return Ok(());
    }
    let free = free_bytes(dir).map_err(io(dir))?;
    if free < min_free_bytes {
        return Err(StoreError::Full {
            path: dir.to_owned(),
            free,
            reserve: min_free_bytes,
        });
    }
    Ok(())
}

/// Bytes available to this process on the file system holding `path`.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated path and `stat` a properly sized out-parameter.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { path, source }
}

fn unavailable(shard_dir: &Path) -> impl FnOnce(qdrant_edge::OperationError) -> StoreError {
    let shard_dir = shard_dir.to_owned();
    move |e| StoreError::Unavailable(format!("{}: {e}", shard_dir.display()))
}

fn json_path(field: &str) -> Result<JsonPath> {
    field
        .parse()
        .map_err(|()| StoreError::Operation(format!("invalid payload field name {field:?}")))
}

fn to_filter(filter: &Filter) -> Result<Option<qdrant_edge::Filter>> {
    if filter.is_empty() {
        return Ok(None);
    }
    let conditions = |conditions: &[Condition]| -> Result<Option<Vec<qdrant_edge::Condition>>> {
        if conditions.is_empty() {
            return Ok(None);
        }
        conditions
            .iter()
            .map(to_condition)
            .collect::<Result<_>>()
            .map(Some)
    };
    Ok(Some(qdrant_edge::Filter {
        must: conditions(&filter.must)?,
        must_not: conditions(&filter.must_not)?,
        ..qdrant_edge::Filter::default()
    }))
}

fn to_condition(condition: &Condition) -> Result<qdrant_edge::Condition> {
    if let Condition::IsEmpty { field } = condition {
        return Ok(qdrant_edge::Condition::IsEmpty(IsEmptyCondition::from(
            json_path(field)?,
        )));
    }
    let (field, matching) = match condition {
        Condition::Keyword { field, value } => (
            field,
            Match::new_value(ValueVariants::String(value.clone())),
        ),
        Condition::AnyKeyword { field, values } => (field, Match::from(values.clone())),
        Condition::Integer { field, value } => (field, Match::from(*value)),
        Condition::IsEmpty { .. } => unreachable!("handled above"),
    };
    let field: &str = field;
    Ok(qdrant_edge::Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        matching,
    )))
}

fn nearest(vector: NamedVector) -> ScoringQuery {
    let query = match vector.vector {
        VectorData::Dense(v) => VectorInternal::from(v),
        VectorData::Sparse(v) => VectorInternal::from(sparse(v)),
    };
    ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery::new(query, vector.name)))
}

fn persisted(vector: VectorData) -> VectorPersisted {
    match vector {
        VectorData::Dense(v) => VectorPersisted::Dense(v),
        VectorData::Sparse(v) => VectorPersisted::Sparse(sparse(v)),
    }
}

fn sparse(v: rag_lexical::SparseVector) -> qdrant_edge::SparseVector {
    // rag-lexical makes sorted, unique indices with one value each.
    qdrant_edge::SparseVector {
        indices: v.indices,
        values: v.values,
    }
}

fn record(
    payload: Option<qdrant_edge::Payload>,
    vector: Option<VectorStructInternal>,
    name: Option<&str>,
) -> Record {
    let vector = match (vector, name) {
        (Some(VectorStructInternal::Named(mut named)), Some(name)) => match named.remove(name) {
            Some(VectorInternal::Dense(v)) => Some(v),
            _ => None,
        },
        _ => None,
    };
    Record {
        payload: payload.map(|p| p.0).unwrap_or_default(),
        vector,
    }
}

fn point_id(key: PointKey) -> PointId {
    match key {
        PointKey::Num(n) => PointId::NumId(n),
        PointKey::Uuid(u) => PointId::Uuid(u),
    }
}

fn point_key(id: PointId) -> PointKey {
    match id {
        PointId::NumId(n) => PointKey::Num(n),
        PointId::Uuid(u) => PointKey::Uuid(u),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs_err::write(&tmp, bytes)?;
    fs_err::File::open(&tmp)?.sync_all()?;
    fs_err::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread")]
    async fn fill_missing_sets_a_field_only_where_it_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let backend = EdgeBackend::open(dir.path().to_owned(), 0).await.unwrap();
        let target = Target {
            vector_size: 2,
            embedding_model: "m".into(),
        };
        let create = Step::CreateCollection {
            dense_vector: "dense".into(),
            distance: migrations::Distance::Cosine,
        };
        backend.apply("0001", &create, &target).await.unwrap();
        let point = |n: u128, payload: serde_json::Value| NewPoint {
            id: uuid::Uuid::from_u128(n),
            vectors: vec![NamedVector {
                name: "dense".into(),
                vector: VectorData::Dense(vec![1.0, 0.0]),
            }],
            payload: payload.as_object().unwrap().clone(),
        };
        // A point from before tenants existed, and one that has its tenant.
        backend
            .upsert(vec![
                point(1, json!({"doc_id": "old"})),
                point(2, json!({"doc_id": "new", "tenant": "acme"})),
            ])
            .await
            .unwrap();
        let fill = Step::FillMissing {
            field: "tenant".into(),
            value: json!("default"),
        };
        // Repeating the step (a crash before the version was recorded) changes nothing.
        for _ in 0..2 {
            backend.apply("0004", &fill, &target).await.unwrap();
            for (tenant, doc) in [("default", "old"), ("acme", "new")] {
                let filter = Filter::must(Condition::keyword(fields::TENANT, tenant))
                    .and(Condition::keyword(fields::DOC_ID, doc));
                assert_eq!(backend.count(&filter).await.unwrap(), 1, "{tenant} {doc}");
            }
        }
    }
}
