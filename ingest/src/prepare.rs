//! file or bytes -> text -> chunks: everything about a document before embedding, run on
//! blocking threads so several files are read and extracted while the model embeds others.
//!
//! A folder's file ([`Preparer::read`]) and a document sent over the API
//! ([`Preparer::accept`]) pass the same checks, then the same [`Preparer::prepare`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::chunk::{Chunk, Chunker};
use crate::config::IngestConfig;
use crate::document::{IncomingDocument, Origin};
use crate::error::IndexError;
use crate::extract::{self, ExtractError, MediaType, PdfExtractor};
use crate::manifest::Stat;
use crate::stored::{Decision, StoredVersions};
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
    pub groups: Vec<String>,
    pub doc_hash: String,
    pub pages: u32,
    pub chunks: Vec<Chunk>,
    /// The file's stat when it was read (folder ingests), for the manifest.
    pub stat: Option<Stat>,
}

/// What preparing one document came to.
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
        let chunker = chunker.with_context(config.chunk_headers);
        Self {
            pdf,
            chunker: Arc::new(chunker),
            max_file_bytes: config.max_file_bytes,
            // v2: chunks carry their Markdown heading path. v3: and a lexical (BM25) vector.
            // v4: heading-only Markdown fragments merged into the body they head; `headers`:
            // the embedded text (and lexical vector) starts with the chunk's header line.
            fingerprint: format!(
                "v4|{model}|{}|{}{}",
                config.chunk_tokens,
                config.overlap_tokens,
                if config.chunk_headers { "|headers" } else { "" }
            )
            .into(),
        }
    }

    /// The version of a document: its bytes, the pipeline, and who may read it — so a
    /// changed permission rule rewrites the document's points (vectors are reused). Open
    /// documents hash as before permissions existed, so upgrading re-indexes nothing.
    pub fn doc_hash(&self, bytes: &[u8], groups: &[String]) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.fingerprint.as_bytes());
        hasher.update(&[0]);
        hasher.update(bytes);
        if groups != [rag_store::EVERYONE] {
            hasher.update(&[0]);
            hasher.update(groups.join("\n").as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    }

    /// Reads one file of a folder and prepares it. Blocking.
    pub fn prepare_file(
        &self,
        root: &str,
        doc_id: String,
        file: &Found,
        groups: Vec<String>,
        stored: &StoredVersions,
    ) -> Prepared {
        match self.read(file) {
            Ok((bytes, stat)) => self.prepare(
                Origin::file(root, doc_id, file, groups),
                &bytes,
                Some(stat),
                stored,
            ),
            Err(error) => Prepared::Failed {
                relative: file.relative.clone(),
                error,
            },
        }
    }

    /// The file's stat, refused above the size limit before anything is read.
    pub fn stat(&self, file: &Found) -> Result<Stat, IndexError> {
        let metadata = fs_err::metadata(&file.path).map_err(|source| IndexError::Read {
            path: file.relative.clone(),
            source,
        })?;
        let stat = Stat::of(&metadata);
        self.within_limit(&file.relative, stat.size)?;
        Ok(stat)
    }

    /// The file's bytes and stat, after the checks of [`Preparer::stat`].
    pub fn read(&self, file: &Found) -> Result<(Vec<u8>, Stat), IndexError> {
        let stat = self.stat(file)?;
        let bytes = fs_err::read(&file.path).map_err(|source| IndexError::Read {
            path: file.relative.clone(),
            source,
        })?;
        Ok((bytes, stat))
    }

    /// A document sent as bytes, with its media type known and its size within the limit.
    pub fn accept(&self, mut doc: IncomingDocument) -> Result<(Origin, Vec<u8>), IndexError> {
        doc.file_name = crate::document::source_name(&doc.file_name)?;
        crate::document::check_groups(&doc.groups).map_err(|reason| IndexError::BadGroups {
            path: doc.file_name.clone(),
            reason,
        })?;
        let media = doc.media()?;
        self.within_limit(&doc.file_name, doc.content.len() as u64)?;
        Ok(doc.into_origin(media))
    }

    fn within_limit(&self, source: &str, size: u64) -> Result<(), IndexError> {
        if size > self.max_file_bytes {
            return Err(IndexError::TooLarge {
                path: source.to_owned(),
                size,
                limit: self.max_file_bytes,
            });
        }
        Ok(())
    }

    /// bytes -> text -> chunks, unless the store already holds this version. Blocking.
    pub fn prepare(
        &self,
        origin: Origin,
        bytes: &[u8],
        stat: Option<Stat>,
        stored: &StoredVersions,
    ) -> Prepared {
        let doc_hash = self.doc_hash(bytes, &origin.groups);
        if let Decision::Unchanged { stale } = stored.decide(&doc_hash) {
            return Prepared::Unchanged {
                relative: origin.source,
                doc_id: origin.doc_id,
                doc_hash,
                stat,
                stale,
            };
        }
        match self.extract_and_chunk(&origin, bytes) {
            Ok((chunks, pages, title)) => Prepared::Ready(Box::new(Ready {
                doc_id: origin.doc_id,
                root: origin.root,
                source: origin.source,
                media: origin.media,
                title,
                metadata: origin.metadata,
                groups: origin.groups,
                doc_hash,
                pages,
                chunks,
                stat,
            })),
            Err(error) => Prepared::Failed {
                relative: origin.source,
                error,
            },
        }
    }

    /// Text and chunks of one document; `(chunks, pages, title)`. Blocking.
    fn extract_and_chunk(
        &self,
        origin: &Origin,
        bytes: &[u8],
    ) -> Result<(Vec<Chunk>, u32, String), IndexError> {
        let failed = |e| IndexError::Extract {
            path: origin.source.clone(),
            source: e,
        };
        let extracted = extract::extract(origin.media, bytes, origin.on_disk.as_deref(), &self.pdf)
            .map_err(failed)?;
        let mut chunks = self.chunker.chunk(origin.media, &extracted);
        if chunks.is_empty() {
            return Err(failed(ExtractError::NoText));
        }
        let pages = extracted.pages.iter().filter(|p| p.number > 0).count() as u32;
        self.chunker
            .add_headers(&mut chunks, extracted.title.as_deref());
        let title = extracted
            .title
            .unwrap_or_else(|| title_from_path(&origin.source));
        Ok((chunks, pages, title))
    }
}

/// Runs `prepare` on a blocking thread; a panic in a parser becomes this document's failure.
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
