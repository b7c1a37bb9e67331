//! The ingestion worker's library: file -> text -> chunks -> vectors -> points.
//!
//! [`Indexer::index_folder`] keeps a store in step with a folder (new files indexed, changed ones
//! replaced, removed ones deleted, unchanged ones skipped); [`Indexer::index_document`] indexes
//! one document that arrived as bytes (the gRPC `IngestDocument` call).

pub mod batch;
mod chunk;
mod config;
pub mod extract;
mod index;
mod manifest;
mod prepare;
mod walk;
mod write;

pub use batch::Padding;
pub use chunk::{Chunk, Chunker, ChunkerError};
pub use config::IngestConfig;
pub use extract::{ExtractError, MediaType, PdfExtractor};
pub use index::{
    API_ROOT, Event, Failure, IncomingDocument, IndexError, Indexer, Outcome, Plan, Summary,
    doc_id_for,
};
pub use walk::{Found, Selection, Skipped, walk};
pub use write::EmbedStats;
