//! file -> text -> chunks: everything about a document before embedding, run on blocking
//! threads so several files are read and extracted while the model embeds others.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::IngestConfig;
use crate::chunk::{Chunk, Chunker};
use crate::extract::{self, ExtractError, MediaType, PdfExtractor};
use crate::index::IndexError;
use crate::manifest::Stat;
use crate::walk::Found;

/// A document version whose chunks wait for vectors.
#[derive(Debug)]
pub(crate) struct Ready {
    pub doc_id: String,
    pub root: String,
    pub source: String,
    pub media: MediaType,
    pub title: String,
    pub metadata: BTreeMap<String, String>,
    pub doc_hash: String,
    pub pages: u32,
    pub chunks: Vec<Chunk>,
    /// The file's stat when it was read (folder ingests), for the manifest.
    pub stat: Option<Stat>,
}

/// What preparing one file came to.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// The stored version is this one: nothing to embed. `stale` when an interrupted run left
    /// another version of the document behind, to be swept.
    Unchanged {
        relative: String,
        doc_id: String,
        doc_hash: String,
        stat: Option<Stat>,
        stale: bool,
    },
    Ready(Box<Ready>),
    Failed {
        relative: String,
        error: IndexError,
    },
}

/// The settings and tools of the stages before embedding; cheap to clone into tasks.
#[derive(Clone)]
pub(crate) struct Preparer {
    pub pdf: PdfExtractor,
    pub chunker: Arc<Chunker>,
    pub max_file_bytes: u64,
    /// Everything besides the bytes that shapes a document's points: a change re-indexes.
    pub fingerprint: Arc<str>,
}

impl Preparer {
    pub fn new(pdf: PdfExtractor, chunker: Chunker, config: &IngestConfig, model: &str) -> Self {
        Self {
            pdf,
            chunker: Arc::new(chunker),
            max_file_bytes: config.max_file_bytes,
            // v2: chunks carry their Markdown heading path. v3: and a lexical (BM25) vector.
            fingerprint: format!(
                "v3|{model}|{}|{}",
                config.chunk_tokens, config.overlap_tokens
            )
            .into(),
        }
    }

    pub fn doc_hash(&self, bytes: &[u8]) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.fingerprint.as_bytes());
        hasher.update(&[0]);
        hasher.update(bytes);
        hasher.finalize().to_hex().to_string()
    }

    /// Reads, hashes, extracts and chunks one file of a folder. Blocking.
    pub fn prepare_file(
        &self,
        root: &str,
        doc_id: String,
        file: &Found,
        stored: &HashSet<String>,
    ) -> Prepared {
        let relative = file.relative.clone();
        let failed = |error| Prepared::Failed {
            relative: relative.clone(),
            error,
        };
        let (bytes, stat) = match self.read(file) {
            Ok(read) => read,
            Err(e) => return failed(e),
        };
        let doc_hash = self.doc_hash(&bytes);
        if stored.contains(&doc_hash) {
            return Prepared::Unchanged {
                relative,
                doc_id,
                doc_hash,
                stat: Some(stat),
                stale: stored.len() > 1,
            };
        }
        let fallback = title_from_path(&file.relative);
        match self.extract_and_chunk(file.media, &bytes, Some(&file.path), &relative, fallback) {
            Ok((chunks, pages, title)) => Prepared::Ready(Box::new(Ready {
                doc_id,
                root: root.to_owned(),
                source: relative,
                media: file.media,
                title,
                metadata: BTreeMap::new(),
                doc_hash,
                pages,
                chunks,
                stat: Some(stat),
            })),
            Err(e) => failed(e),
        }
    }

    /// The file's stat and bytes, refused above the size limit before anything is read.
    pub fn stat(&self, file: &Found) -> Result<Stat, IndexError> {
        let metadata = fs_err::metadata(&file.path).map_err(|source| IndexError::Read {
            path: file.relative.clone(),
            source,
        })?;
        let stat = Stat::of(&metadata);
        if stat.size > self.max_file_bytes {
            return Err(IndexError::TooLarge {
                path: file.relative.clone(),
                size: stat.size,
                limit: self.max_file_bytes,
            });
        }
        Ok(stat)
    }

    pub fn read(&self, file: &Found) -> Result<(Vec<u8>, Stat), IndexError> {
        let stat = self.stat(file)?;
        let bytes = fs_err::read(&file.path).map_err(|source| IndexError::Read {
            path: file.relative.clone(),
            source,
        })?;
        Ok((bytes, stat))
    }

    /// Text and chunks of one document; `(chunks, pages, title)`. Blocking.
    pub fn extract_and_chunk(
        &self,
        media: MediaType,
        bytes: &[u8],
        on_disk: Option<&Path>,
        source: &str,
        title_fallback: String,
    ) -> Result<(Vec<Chunk>, u32, String), IndexError> {
        let failed = |e| IndexError::Extract {
            path: source.to_owned(),
            source: e,
        };
        let extracted = extract::extract(media, bytes, on_disk, &self.pdf).map_err(failed)?;
        let chunks = self.chunker.chunk(media, &extracted);
        if chunks.is_empty() {
            return Err(failed(ExtractError::NoText));
        }
        let pages = extracted.pages.iter().filter(|p| p.number > 0).count() as u32;
        Ok((chunks, pages, extracted.title.unwrap_or(title_fallback)))
    }
}

/// Runs `prepare` on a blocking thread; a panic in a parser becomes this file's failure.
pub(crate) async fn on_blocking_thread(
    relative: String,
    prepare: impl FnOnce() -> Prepared + Send + 'static,
) -> Prepared {
    match tokio::task::spawn_blocking(prepare).await {
        Ok(prepared) => prepared,
        Err(e) => Prepared::Failed {
            error: IndexError::Crashed {
                path: relative.clone(),
                reason: if e.is_panic() {
                    "the extractor panicked".into()
                } else {
                    e.to_string()
                },
            },
            relative,
        },
    }
}

pub(crate) fn title_from_path(source: &str) -> String {
    Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['_', '-'], " "))
        .unwrap_or_else(|| source.to_owned())
}
