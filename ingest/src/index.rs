//! chunks -> vectors -> points, and keeping the store in step with the source.
//!
//! Every point of a document version carries that version's `doc_hash`. Chunk 0 of a version is
//! written last and serves as its commit marker: a version whose marker is stored is complete.
//! A new version is written before the old one is deleted, so a reader never sees the document
//! missing, and an interrupted run leaves at worst an unmarked partial version that the next run
//! overwrites (point ids are deterministic) and then sweeps away.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rag_embed::Embedder;
use rag_store::{ChunkPayload, ChunkPoint, StoreError, VectorStore, point_id};

use crate::IngestConfig;
use crate::chunk::Chunker;
use crate::extract::{self, ExtractError, MediaType, PdfExtractor};
use crate::walk::{Found, Selection, Skipped, walk};

/// The `root` of documents that arrived over the API rather than from a folder.
pub const API_ROOT: &str = "api:";

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {size} bytes is over the limit of {limit} bytes")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: {source}")]
    Extract {
        path: String,
        #[source]
        source: ExtractError,
    },
    #[error(
        "{path}: unsupported media type {media_type:?} (expected text/plain, text/markdown or application/pdf)"
    )]
    Unsupported { path: String, media_type: String },
    #[error("{path}: embedding failed: {source}")]
    Embed {
        path: String,
        #[source]
        source: rag_embed::EmbedError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Folder(String),
}

impl IndexError {
    /// Whether the error concerns one document only, so a batch goes on without it.
    pub fn is_per_document(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Folder(_))
    }
}

/// A document sent as bytes.
#[derive(Debug, Clone)]
pub struct IncomingDocument {
    pub file_name: String,
    /// Empty: inferred from `file_name`.
    pub media_type: String,
    pub content: Vec<u8>,
    /// Empty: derived from `file_name`.
    pub document_id: String,
    pub metadata: BTreeMap<String, String>,
}

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
    /// Points in the store after the run, all folders together.
    pub points_total: u64,
    pub seconds: f64,
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
}

pub struct Indexer {
    embedder: Arc<Embedder>,
    store: Arc<dyn VectorStore>,
    chunker: Arc<Chunker>,
    pdf: PdfExtractor,
    config: IngestConfig,
    /// Everything besides the bytes that shapes a document's points: a change here re-indexes.
    fingerprint: String,
}

/// Deterministic document id for a source path under a root.
pub fn doc_id_for(root: &str, source: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(root.as_bytes());
    hasher.update(&[0]);
    hasher.update(source.as_bytes());
    hasher.finalize().to_hex()[..32].to_owned()
}

impl Indexer {
    pub fn new(
        embedder: Arc<Embedder>,
        store: Arc<dyn VectorStore>,
        chunker: Chunker,
        pdf: PdfExtractor,
        config: IngestConfig,
    ) -> Self {
        let fingerprint = format!(
            "v1|{}|{}|{}",
            embedder.model_name(),
            config.chunk_tokens,
            config.overlap_tokens
        );
        Self {
            embedder,
            store,
            chunker: Arc::new(chunker),
            pdf,
            config,
            fingerprint,
        }
    }

    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    fn doc_hash(&self, bytes: &[u8]) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.fingerprint.as_bytes());
        hasher.update(&[0]);
        hasher.update(bytes);
        hasher.finalize().to_hex().to_string()
    }

    /// Brings the store in step with `root`: returns what was done. Per-file problems are
    /// collected in the summary; only a store failure stops the run.
    pub async fn index_folder(
        &self,
        root: &Path,
        selection: &Selection,
        on_event: &(dyn Fn(Event<'_>) + Send + Sync),
    ) -> Result<Summary, IndexError> {
        let started = Instant::now();
        let Survey {
            root_key,
            found,
            skipped,
            stored,
        } = self.survey(root, selection).await?;
        on_event(Event::Walked { files: found.len() });

        let mut summary = Summary {
            files: found.len(),
            skipped,
            ..Summary::default()
        };
        let mut seen = HashSet::new();
        for file in &found {
            let doc_id = doc_id_for(&root_key, &file.relative);
            seen.insert(doc_id.clone());
            let result = self
                .index_file(
                    &root_key,
                    &doc_id,
                    file,
                    stored.get(&doc_id).map(|d| &d.hashes),
                )
                .await;
            on_event(Event::File {
                path: &file.relative,
                result: &result,
            });
            match result {
                Ok(Outcome::Indexed { chunks, .. }) => {
                    summary.indexed += 1;
                    summary.chunks_written += u64::from(chunks);
                }
                Ok(Outcome::Unchanged) => summary.unchanged += 1,
                Err(e) if e.is_per_document() => summary.failed.push(Failure {
                    path: file.relative.clone(),
                    reason: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }

        // Documents whose file is gone. A file that failed this time keeps its last good
        // version: an unreadable moment should not make a document vanish from answers.
        for doc_id in stored.keys().filter(|id| !seen.contains(*id)) {
            summary.points_deleted += self.store.delete_document(doc_id, None).await?;
            summary.deleted += 1;
        }
        self.store.flush().await?;
        summary.points_total = self.store.count().await?;
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// What [`Indexer::index_folder`] would do. Reads and hashes every file; writes nothing.
    pub async fn plan_folder(
        &self,
        root: &Path,
        selection: &Selection,
    ) -> Result<Plan, IndexError> {
        let Survey {
            root_key,
            found,
            skipped,
            stored,
        } = self.survey(root, selection).await?;
        let mut plan = Plan {
            skipped,
            ..Plan::default()
        };
        let mut seen = HashSet::new();
        for file in &found {
            let doc_id = doc_id_for(&root_key, &file.relative);
            let bytes = match self.read(file) {
                Ok(bytes) => bytes,
                Err(e) => {
                    plan.failed.push(Failure {
                        path: file.relative.clone(),
                        reason: e.to_string(),
                    });
                    seen.insert(doc_id);
                    continue;
                }
            };
            let list = match stored.get(&doc_id) {
                None => &mut plan.add,
                Some(doc) if doc.hashes.contains(&self.doc_hash(&bytes)) => &mut plan.unchanged,
                Some(_) => &mut plan.change,
            };
            list.push(file.relative.clone());
            seen.insert(doc_id);
        }
        plan.delete = stored
            .iter()
            .filter(|(id, _)| !seen.contains(*id))
            .map(|(_, doc)| doc.source.clone())
            .collect();
        plan.delete.sort();
        Ok(plan)
    }

    /// The folder's supported files and the document versions stored for it.
    async fn survey(&self, root: &Path, selection: &Selection) -> Result<Survey, IndexError> {
        let root = fs_err::canonicalize(root).map_err(|e| IndexError::Folder(e.to_string()))?;
        if !root.is_dir() {
            return Err(IndexError::Folder(format!(
                "{}: not a folder",
                root.display()
            )));
        }
        let root_key = root.to_string_lossy().into_owned();
        let selection = selection.clone();
        let (found, skipped) = tokio::task::spawn_blocking(move || walk(&root, &selection))
            .await
            .map_err(|e| IndexError::Folder(format!("walk: {e}")))?
            .map_err(IndexError::Folder)?;
        let mut stored: HashMap<String, StoredDoc> = HashMap::new();
        for v in self.store.document_versions(Some(&root_key), None).await? {
            let doc = stored.entry(v.doc_id).or_insert_with(|| StoredDoc {
                source: v.source,
                hashes: HashSet::new(),
            });
            doc.hashes.insert(v.doc_hash);
        }
        Ok(Survey {
            root_key,
            found,
            skipped,
            stored,
        })
    }

    /// A file's bytes, refused above the size limit before anything is read.
    fn read(&self, file: &Found) -> Result<Vec<u8>, IndexError> {
        let path = file.relative.clone();
        let size = fs_err::metadata(&file.path)
            .map_err(|source| IndexError::Read {
                path: path.clone(),
                source,
            })?
            .len();
        if size > self.config.max_file_bytes {
            return Err(IndexError::TooLarge {
                path,
                size,
                limit: self.config.max_file_bytes,
            });
        }
        fs_err::read(&file.path).map_err(|source| IndexError::Read { path, source })
    }

    async fn index_file(
        &self,
        root: &str,
        doc_id: &str,
        file: &Found,
        stored: Option<&HashSet<String>>,
    ) -> Result<Outcome, IndexError> {
        let bytes = self.read(file)?;
        let doc = Prepared {
            doc_id: doc_id.to_owned(),
            root: root.to_owned(),
            source: file.relative.clone(),
            media: file.media,
            title_fallback: title_from_path(&file.relative),
            on_disk: Some(file.path.clone()),
            metadata: BTreeMap::new(),
            bytes,
        };
        self.write_version(doc, stored).await
    }

    /// Indexes one document sent as bytes. Returns its id and what was done.
    pub async fn index_document(
        &self,
        doc: IncomingDocument,
    ) -> Result<(String, Outcome), IndexError> {
        let media = if doc.media_type.trim().is_empty() {
            MediaType::from_path(Path::new(&doc.file_name))
        } else {
            MediaType::from_mime(&doc.media_type)
        }
        .ok_or_else(|| IndexError::Unsupported {
            path: doc.file_name.clone(),
            media_type: if doc.media_type.is_empty() {
                doc.file_name.clone()
            } else {
                doc.media_type.clone()
            },
        })?;
        let size = doc.content.len() as u64;
        if size > self.config.max_file_bytes {
            return Err(IndexError::TooLarge {
                path: doc.file_name,
                size,
                limit: self.config.max_file_bytes,
            });
        }
        let doc_id = if doc.document_id.is_empty() {
            doc_id_for(API_ROOT, &doc.file_name)
        } else {
            doc.document_id
        };
        let stored: HashSet<String> = self
            .store
            .document_versions(None, Some(&doc_id))
            .await?
            .into_iter()
            .map(|v| v.doc_hash)
            .collect();
        let prepared = Prepared {
            doc_id: doc_id.clone(),
            root: API_ROOT.to_owned(),
            title_fallback: title_from_path(&doc.file_name),
            source: doc.file_name,
            media,
            on_disk: None,
            metadata: doc.metadata,
            bytes: doc.content,
        };
        let outcome = self.write_version(prepared, Some(&stored)).await?;
        self.store.flush().await?;
        Ok((doc_id, outcome))
    }

    /// Writes the version of `doc` unless it is already the only stored one, then removes any
    /// other stored version.
    async fn write_version(
        &self,
        doc: Prepared,
        stored: Option<&HashSet<String>>,
    ) -> Result<Outcome, IndexError> {
        let doc_hash = self.doc_hash(&doc.bytes);
        let stored_hashes = stored.cloned().unwrap_or_default();
        if stored_hashes.contains(&doc_hash) {
            if stored_hashes.len() > 1 {
                // A run stopped between writing this version and sweeping the old one.
                self.store
                    .delete_document(&doc.doc_id, Some(&doc_hash))
                    .await?;
            }
            return Ok(Outcome::Unchanged);
        }

        let (chunks, pages, title) = self.extract_and_chunk(&doc).await?;
        let n = chunks.len() as u32;
        let mut points = Vec::with_capacity(chunks.len());
        for (batch_start, batch) in chunks
            .chunks(self.config.embed_batch.max(1))
            .enumerate()
            .map(|(i, b)| (i * self.config.embed_batch.max(1), b))
        {
            let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
            let embedder = self.embedder.clone();
            let vectors = tokio::task::spawn_blocking(move || embedder.embed(texts))
                .await
                .map_err(|e| IndexError::Folder(format!("embedding task: {e}")))?
                .map_err(|source| IndexError::Embed {
                    path: doc.source.clone(),
                    source,
                })?;
            for (offset, (chunk, vector)) in batch.iter().zip(vectors).enumerate() {
                let chunk_index = (batch_start + offset) as u32;
                let chunk_hash = blake3::hash(chunk.text.as_bytes()).to_hex().to_string();
                points.push(ChunkPoint {
                    id: point_id(&doc.doc_id, chunk_index, &doc_hash),
                    vector,
                    payload: ChunkPayload {
                        doc_id: doc.doc_id.clone(),
                        source: doc.source.clone(),
                        root: doc.root.clone(),
                        doc_hash: doc_hash.clone(),
                        page: chunk.page,
                        chunk_index,
                        chunk_count: n,
                        chunk_hash,
                        text: chunk.text.clone(),
                        title: title.clone(),
                        media_type: doc.media.as_mime().to_owned(),
                        embedding_model: self.embedder.model_name().to_owned(),
                        metadata: doc.metadata.clone(),
                    },
                });
            }
        }
        // Chunk 0 goes last: its presence marks the version complete.
        points.rotate_left(1);
        let mut points = points.into_iter().peekable();
        while points.peek().is_some() {
            let batch: Vec<ChunkPoint> = points
                .by_ref()
                .take(self.config.upsert_batch.max(1))
                .collect();
            self.store.upsert(batch).await?;
        }
        self.store
            .delete_document(&doc.doc_id, Some(&doc_hash))
            .await?;
        Ok(Outcome::Indexed { chunks: n, pages })
    }

    async fn extract_and_chunk(
        &self,
        doc: &Prepared,
    ) -> Result<(Vec<crate::Chunk>, u32, String), IndexError> {
        let pdf = self.pdf.clone();
        let chunker = self.chunker.clone();
        let media = doc.media;
        let bytes = doc.bytes.clone();
        let on_disk = doc.on_disk.clone();
        let source = doc.source.clone();
        let fallback = doc.title_fallback.clone();
        tokio::task::spawn_blocking(move || {
            let extracted =
                extract::extract(media, &bytes, on_disk.as_deref(), &pdf).map_err(|e| {
                    IndexError::Extract {
                        path: source.clone(),
                        source: e,
                    }
                })?;
            let chunks = chunker.chunk(media, &extracted);
            if chunks.is_empty() {
                return Err(IndexError::Extract {
                    path: source,
                    source: ExtractError::NoText,
                });
            }
            let pages = extracted.pages.iter().filter(|p| p.number > 0).count() as u32;
            let title = extracted.title.unwrap_or(fallback);
            Ok((chunks, pages, title))
        })
        .await
        .map_err(|e| IndexError::Folder(format!("extraction task: {e}")))?
    }
}

/// A folder's files next to what the store holds for it.
struct Survey {
    root_key: String,
    found: Vec<Found>,
    skipped: Vec<Skipped>,
    /// By doc_id.
    stored: HashMap<String, StoredDoc>,
}

struct StoredDoc {
    source: String,
    /// One per stored version; more than one only after an interrupted run.
    hashes: HashSet<String>,
}

/// A document about to be written, wherever it came from.
struct Prepared {
    doc_id: String,
    root: String,
    source: String,
    media: MediaType,
    title_fallback: String,
    on_disk: Option<PathBuf>,
    metadata: BTreeMap<String, String>,
    bytes: Vec<u8>,
}

fn title_from_path(source: &str) -> String {
    Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['_', '-'], " "))
        .unwrap_or_else(|| source.to_owned())
}
