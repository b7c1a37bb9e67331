//! What the store core needs from an engine, and nothing more: the domain operations
//! ([`crate::Store`]) and the migration driver ([`crate::migrate`]) are written once over this
//! trait, and each backend only translates these primitives and types into its own API.

use rag_lexical::SparseVector;

use crate::Result;
use crate::migrations::{Step, Target};
use crate::schema::SchemaRecord;

/// A stored payload, as JSON: the shape both engines accept and return.
pub type Payload = serde_json::Map<String, serde_json::Value>;

/// Which points an operation applies to. Empty: all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub must: Vec<Condition>,
    pub must_not: Vec<Condition>,
}

/// One test on a payload field. Field names are `&'static str` so that they come from
/// [`crate::fields`], not from a literal at the call site.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field equals `value` exactly (never a full-text match, even with spaces in it).
    Keyword {
        field: &'static str,
        value: String,
    },
    /// The field equals one of `values`.
    AnyKeyword {
        field: &'static str,
        values: Vec<String>,
    },
    Integer {
        field: &'static str,
        value: i64,
    },
    /// The field is missing, null or an empty array (points written before it existed).
    IsEmpty {
        field: String,
    },
}

impl Filter {
    pub fn must(condition: Condition) -> Self {
        Self {
            must: vec![condition],
            must_not: Vec::new(),
        }
    }

    pub fn and(mut self, condition: Condition) -> Self {
        self.must.push(condition);
        self
    }

    pub fn and_not(mut self, condition: Condition) -> Self {
        self.must_not.push(condition);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
    }
}

impl Condition {
    pub fn keyword(field: &'static str, value: &str) -> Self {
        Self::Keyword {
            field,
            value: value.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum VectorData {
    Dense(Vec<f32>),
    Sparse(SparseVector),
}

/// A vector of one of the collection's named vector spaces.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedVector {
    pub name: String,
    pub vector: VectorData,
}

/// A point as written: the core has already built its payload and chosen its vectors.
#[derive(Debug, Clone)]
pub struct NewPoint {
    pub id: uuid::Uuid,
    pub vectors: Vec<NamedVector>,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    /// Points are ranked by their nearness to this vector (fusion is the core's job, the same
    /// for every backend).
    pub nearest: NamedVector,
    pub filter: Filter,
    pub limit: usize,
    /// The dense vector returned with each point.
    pub with_vector: String,
}

/// A point as read: the requested payload fields and, when asked for, its dense vector.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub payload: Payload,
    pub vector: Option<Vec<f32>>,
}

/// A point as ranked: its id, score and dense vector, no payload (see [`Backend::query`]).
#[derive(Debug, Clone)]
pub struct Scored {
    pub id: PointKey,
    pub score: f32,
    pub vector: Option<Vec<f32>>,
}

/// A point's id; also where a scroll continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointKey {
    Num(u64),
    Uuid(uuid::Uuid),
}

#[derive(Debug, Clone)]
pub struct ScrollRequest {
    pub filter: Filter,
    pub fields: Vec<&'static str>,
    /// A dense vector to return with each point.
    pub with_vector: Option<String>,
    pub limit: usize,
    pub offset: Option<PointKey>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<Record>,
    pub next: Option<PointKey>,
}

/// The primitives of one engine. Calls never block the async runtime, and every write is
/// applied (visible to the next read) when it returns.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Where the data lives, for messages and `rag status`.
    fn describe(&self) -> String;

    /// Whether this process is the only writer (the embedded store, locked to one process): then
    /// the store's write counts ([`crate::Store::write_epoch`]) see every write.
    fn exclusive(&self) -> bool;

    /// Inserts or overwrites points by id, in order, in one request.
    async fn upsert(&self, points: Vec<NewPoint>) -> Result<()>;

    /// The `limit` points nearest to `request.nearest`, best first: ids, scores and the dense
    /// vector, without payloads. Reading payloads is most of a ranking's cost on a large
    /// embedded store (on-disk payload storage), and most candidates never make the cut: the
    /// core reads the few that do with [`Backend::payloads`].
    async fn query(&self, request: QueryRequest) -> Result<Vec<Scored>>;

    /// The full payloads of those of `ids` that exist (a point deleted since it was ranked is
    /// simply absent), in any order.
    async fn payloads(&self, ids: Vec<PointKey>) -> Result<Vec<(PointKey, Payload)>>;

    async fn scroll(&self, request: ScrollRequest) -> Result<Page>;

    /// Exact number of points matching `filter`.
    async fn count(&self, filter: &Filter) -> Result<u64>;

    async fn delete(&self, filter: &Filter) -> Result<()>;

    /// The recorded schema; `None` for a store that does not exist yet.
    async fn schema(&self) -> Result<Option<SchemaRecord>>;

    async fn set_schema(&self, record: &SchemaRecord) -> Result<()>;

    /// Applies one step of `migration` for `target`. Repeating a step that a crash interrupted
    /// must be harmless: progress is recorded per migration, not per step.
    async fn apply(&self, migration: &str, step: &Step, target: &Target) -> Result<()>;

    /// Dimensions of the dense vector `name`; `None` when there is no such vector or no
    /// collection.
    async fn dense_size(&self, name: &str) -> Result<Option<usize>>;

    /// Makes everything written so far durable.
    async fn flush(&self) -> Result<()>;

    /// Builds the search indexes (HNSW graph, payload indexes) of what was written since the
    /// last call, merges small segments and drops deleted points, as the engine's optimizers
    /// plan it; blocks until none is left to do. Reads and writes go on meanwhile. `true` when
    /// anything changed. An engine that optimises by itself (the server) is waited for.
    async fn optimize(&self) -> Result<bool>;

    /// Removes the collection and everything in it. Only the server has one to remove: the
    /// embedded store is its data directory, removed with the store closed.
    async fn drop_collection(&self) -> Result<()>;

    /// Whole points (id, every vector, the full payload) of all tenants, in id order: at most
    /// `limit` from `offset`, and where the next page starts. What a snapshot is made of:
    /// [`Backend::upsert`] takes them back unchanged.
    async fn export(&self, offset: Option<PointKey>, limit: usize) -> Result<ExportPage>;
}

/// A page of [`Backend::export`].
#[derive(Debug, Clone)]
pub struct ExportPage {
    pub points: Vec<NewPoint>,
    pub next: Option<PointKey>,
}
