//! What ingesting did: per document ([`Outcome`], [`Failure`]), per folder run ([`Summary`]),
//! per dry run ([`Plan`]), and the progress reported on the way ([`Event`]).

use crate::batch::Padding;
use crate::error::IndexError;
use crate::walk::{SkipKind, Skipped};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Indexed {
        chunks: u32,
        pages: u32,
    },
    /// This exact version was already stored; nothing was written.
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub path: String,
    pub reason: String,
}

/// What the embedding stage computed and what it saved.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbedStats {
    pub chunks_embedded: u64,
    /// Chunks whose vector came from the store or from earlier in the run.
    pub chunks_reused: u64,
    pub padding: Padding,
    pub embed_seconds: f64,
}

/// What a folder ingest did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: usize,
    pub indexed: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub failed: Vec<Failure>,
    pub skipped: Vec<Skipped>,
    pub chunks_written: u64,
    pub points_deleted: u64,
    /// Files read this run (the others were unchanged by their stat, per the manifest).
    pub files_read: usize,
    pub bytes_read: u64,
    /// Embedding work: chunks embedded, chunks whose vector was reused, padded tokens.
    pub embedding: EmbedStats,
    /// Points in the store after the run, all folders together.
    pub points_total: u64,
    /// Time spent building search indexes at the end of the run (0: there was nothing to do).
    pub index_seconds: f64,
    pub seconds: f64,
}

impl Summary {
    /// How many paths the walk left out for `kind` (e.g. symbolic links, not followed).
    pub fn skipped_of(&self, kind: SkipKind) -> usize {
        count(&self.skipped, kind)
    }
}

/// What an ingest of a folder would do, without doing it (`rag ingest --dry-run`).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub add: Vec<String>,
    pub change: Vec<String>,
    pub unchanged: Vec<String>,
    /// Source paths of stored documents whose file is gone.
    pub delete: Vec<String>,
    /// Files that could not be read or are over the size limit.
    pub failed: Vec<Failure>,
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// How many paths the walk left out for `kind`.
    pub fn skipped_of(&self, kind: SkipKind) -> usize {
        count(&self.skipped, kind)
    }
}

fn count(skipped: &[Skipped], kind: SkipKind) -> usize {
    skipped.iter().filter(|s| s.kind == kind).count()
}

/// Progress of a folder ingest, for a progress bar or a log.
#[derive(Debug)]
pub enum Event<'a> {
    Walked {
        files: usize,
    },
    File {
        path: &'a str,
        result: &'a Result<Outcome, IndexError>,
    },
    /// Chunks embedded so far this run.
    Embedded {
        chunks: u64,
    },
    /// Everything is written; the store builds its search indexes for what changed.
    Indexing,
}
