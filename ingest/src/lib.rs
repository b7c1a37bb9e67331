//! The ingestion worker's library: file -> text -> chunks -> vectors -> points.
//!
//! [`Indexer::index_folder`] keeps a store in step with a folder (new files indexed, changed ones
//! replaced, removed ones deleted, unchanged ones skipped); [`Indexer::index_document`] indexes
//! one document that arrived as bytes (the gRPC `IngestDocument` call).
//!
//! Modules, along the data path; each uses only those before it:
//! - `walk` (which files), `open` (a found file, opened without following links), `extract`
//!   (file -> text), `chunk` (text -> chunks), `batch` (chunks -> model batches), `manifest`
//!   (what the last run read): the tools.
//! - `error`, `outcome`, `document`, `stored`, `counters`: the shared vocabulary (errors,
//!   results, where a document comes from, whether a version is stored, metrics).
//! - `prepare` (file or bytes -> chunks), `write` (chunks -> vectors -> points), `survey`
//!   (a folder next to the store): the stages.
//! - `index`: runs the stages for a folder, a dry run or one document.

pub mod batch;
mod chunk;
mod config;
mod copy;
pub mod counters;
mod document;
mod error;
/// file -> text lives in its own crate (`ingest/extract`), so its parsers can be fuzzed alone.
pub use rag_extract as extract;
mod index;
mod manifest;
mod open;
mod outcome;
mod prepare;
mod stored;
mod survey;
mod walk;
mod write;

pub use batch::Padding;
pub use chunk::{Chunk, Chunker, ChunkerError};
pub use config::{GroupRule, IngestConfig};
pub use copy::StoredDocument;
pub use document::{API_ROOT, IncomingDocument, doc_id_for};
pub use error::IndexError;
pub use extract::{ExtractError, MediaType, PdfExtractor};
pub use index::Indexer;
pub use outcome::{EmbedStats, Event, Failure, Outcome, Plan, Summary};
pub use walk::{Found, Selection, SkipKind, Skipped, walk};
