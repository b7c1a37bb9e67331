//! The indexer: keeps a store in step with a folder, or takes one document sent as bytes.
//!
//! A folder ingest runs as a pipeline of bounded stages:
//! walk -> prepare (read, hash, extract, chunk: several files at once on blocking threads) ->
//! embed (windows of chunks across documents, reused by content hash, batched by length) ->
//! write (per document version).
//!
//! Every point of a document version carries that version's `doc_hash`. Chunk 0 of a version is
//! written last and serves as its commit marker: a version whose marker is stored is complete.
//! A new version is written before the old one is deleted, so a reader never sees the document
//! missing, and an interrupted run leaves at worst an unmarked partial version that the next run
//! overwrites (point ids are deterministic) and then sweeps away.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rag_embed::Embedder;
use rag_store::{Store, StoreError};
use tokio::sync::{Semaphore, mpsc};

use crate::IngestConfig;
use crate::chunk::Chunker;
use crate::extract::{ExtractError, MediaType, PdfExtractor};
use crate::manifest::{Manifest, Stat};
use crate::prepare::{self, Prepared, Preparer, Ready, title_from_path};
use crate::walk::{Found, Selection, Skipped, walk};
use crate::write::{EmbedStats, Finished, VersionWriter};

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
        "{path}: unsupported media type {media_type:?} (expected text/plain, text/markdown, text/html, application/pdf or a DOCX document)"
    )]
    Unsupported { path: String, media_type: String },
    #[error("{path}: embedding failed: {reason}")]
    Embed { path: String, reason: String },
    #[error("{path}: extraction crashed: {reason}")]
    Crashed { path: String, reason: String },
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
    /// Files read this run (the others were unchanged by their stat, per the manifest).
    pub files_read: usize,
    pub bytes_read: u64,
    /// Embedding work: chunks embedded, chunks whose vector was reused, padded tokens.
    pub embedding: EmbedStats,
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
    /// Chunks embedded so far this run.
    Embedded {
        chunks: u64,
    },
}

pub struct Indexer {
    embedder: Arc<Embedder>,
    store: Arc<Store>,
    preparer: Preparer,
    config: IngestConfig,
    /// Where folder manifests live; `None`: every file is read on every run.
    manifest_dir: Option<PathBuf>,
    /// Read every file even where the manifest vouches for it (the manifest is rewritten).
    rehash: bool,
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
        store: Arc<Store>,
        chunker: Chunker,
        pdf: PdfExtractor,
        config: IngestConfig,
    ) -> Self {
        let preparer = Preparer::new(pdf, chunker, &config, embedder.model_name());
        Self {
            embedder,
            store,
            preparer,
            config,
            manifest_dir: None,
            rehash: false,
        }
    }

    /// Keeps a manifest per folder in `dir`, so unchanged files are not read on re-runs.
    pub fn with_manifest_dir(mut self, dir: PathBuf) -> Self {
        self.manifest_dir = Some(dir);
        self
    }

    /// Reads and hashes every file on the next runs, ignoring what the manifest says.
    pub fn rehash(mut self, rehash: bool) -> Self {
        self.rehash = rehash;
        self
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
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
        let run_start = SystemTime::now();
        let survey = self.survey(root, selection).await?;
        on_event(Event::Walked {
            files: survey.found.len(),
        });
        let mut manifest = Manifest::load(
            self.manifest_dir.as_deref(),
            &survey.root_key,
            &self.preparer.fingerprint,
            run_start,
        );

        let workers = self.config.extract_workers.max(1);
        let (tx, rx) = mpsc::channel(2 * workers);
        let (produced, consumed) = tokio::join!(
            self.prepare_all(&survey, &manifest, workers, tx),
            self.embed_and_write(rx, on_event)
        );
        let (mut summary, records) = consumed?;
        summary.files = survey.found.len();
        summary.files_read = produced.files_read;
        summary.bytes_read = produced.bytes_read;
        summary.skipped = survey.skipped;

        // Documents whose file is gone. A file that failed this time keeps its last good
        // version: an unreadable moment should not make a document vanish from answers.
        for doc_id in survey
            .stored
            .keys()
            .filter(|id| !produced.seen.contains(*id))
        {
            summary.points_deleted += self.store.delete_document(doc_id, None).await?;
            summary.deleted += 1;
        }
        // Unfinished versions of files that are gone (never complete, so never "stored").
        for doc_id in survey
            .unclean
            .iter()
            .filter(|id| !produced.seen.contains(*id) && !survey.stored.contains_key(*id))
        {
            summary.points_deleted += self.store.delete_document(doc_id, None).await?;
        }
        self.store.flush().await?;
        // Only now that the store is durable may the manifest vouch for what it holds.
        for (relative, stat, doc_hash) in records {
            manifest.record(&relative, stat, &doc_hash);
        }
        if let Err(e) = manifest.save() {
            tracing::warn!(error = %e, "manifest not saved; the next run reads every file");
        }
        summary.points_total = self.store.count().await?;
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// The prepare stage: sends every file of the survey, prepared, to the embed stage, with
    /// at most `workers` files in preparation at once.
    async fn prepare_all(
        &self,
        survey: &Survey,
        manifest: &Manifest,
        workers: usize,
        tx: mpsc::Sender<Prepared>,
    ) -> Produced {
        let permits = Arc::new(Semaphore::new(workers));
        let mut produced = Produced::default();
        let no_versions = HashSet::new();
        for file in &survey.found {
            let doc_id = doc_id_for(&survey.root_key, &file.relative);
            produced.seen.insert(doc_id.clone());
            if tx.is_closed() {
                // The embed stage stopped on a store error: the run is over.
                continue;
            }
            let stored = survey
                .stored
                .get(&doc_id)
                .map_or(&no_versions, |d| &d.hashes);
            // A stat error or an over-size file is reported by the prepare step itself.
            if let Ok(stat) = self.preparer.stat(file) {
                let unchanged = self.unchanged_by_stat(file, &stat, &doc_id, stored, manifest);
                if let Some(mut unchanged) = unchanged {
                    if let Prepared::Unchanged { stale, .. } = &mut unchanged {
                        *stale |= survey.unclean.contains(&doc_id);
                    }
                    if tx.send(unchanged).await.is_err() {
                        break;
                    }
                    continue;
                }
                produced.files_read += 1;
                produced.bytes_read += stat.size;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (preparer, tx, file) = (self.preparer.clone(), tx.clone(), file.clone());
            let (root, stored) = (survey.root_key.clone(), stored.clone());
            let unclean = survey.unclean.contains(&doc_id);
            tokio::spawn(async move {
                if tx.is_closed() {
                    return;
                }
                let relative = file.relative.clone();
                let mut prepared = prepare::on_blocking_thread(relative, move || {
                    preparer.prepare_file(&root, doc_id, &file, &stored)
                })
                .await;
                if let Prepared::Unchanged { stale, .. } = &mut prepared {
                    *stale |= unclean;
                }
                // A closed channel means the run stopped on a store error.
                let _ = tx.send(prepared).await;
                drop(permit);
            });
        }
        produced
    }

    /// The manifest's answer for a file whose stat has not changed, if the store still holds
    /// the version it names.
    fn unchanged_by_stat(
        &self,
        file: &Found,
        stat: &Stat,
        doc_id: &str,
        stored: &HashSet<String>,
        manifest: &Manifest,
    ) -> Option<Prepared> {
        if self.rehash {
            return None;
        }
        let doc_hash = manifest.hash_if_unchanged(&file.relative, stat)?;
        stored.contains(doc_hash).then(|| Prepared::Unchanged {
            relative: file.relative.clone(),
            doc_id: doc_id.to_owned(),
            doc_hash: doc_hash.to_owned(),
            stat: Some(*stat),
            stale: stored.len() > 1,
        })
    }

    /// The embed and write stages: takes prepared files until the channel closes. Returns the
    /// summary so far and the manifest records of the files now stored.
    async fn embed_and_write(
        &self,
        mut rx: mpsc::Receiver<Prepared>,
        on_event: &(dyn Fn(Event<'_>) + Send + Sync),
    ) -> Result<(Summary, Vec<(String, Stat, String)>), IndexError> {
        let mut writer =
            VersionWriter::new(self.embedder.clone(), self.store.clone(), &self.config);
        let mut summary = Summary::default();
        let mut records = Vec::new();
        let mut settle = |finished: Finished| -> Result<(), IndexError> {
            on_event(Event::File {
                path: &finished.source,
                result: &finished.result,
            });
            summary.points_deleted += finished.points_deleted;
            match finished.result {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Indexed { chunks, .. } => {
                            summary.indexed += 1;
                            summary.chunks_written += u64::from(chunks);
                        }
                        Outcome::Unchanged => summary.unchanged += 1,
                    }
                    if let Some(stat) = finished.stat {
                        records.push((finished.source, stat, finished.doc_hash));
                    }
                }
                Err(e) if e.is_per_document() => summary.failed.push(Failure {
                    path: finished.source,
                    reason: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
            Ok(())
        };
        let mut open = true;
        loop {
            while open && !writer.window_full() {
                let Some(prepared) = rx.recv().await else {
                    open = false;
                    break;
                };
                match prepared {
                    Prepared::Unchanged {
                        relative,
                        doc_id,
                        doc_hash,
                        stat,
                        stale,
                    } => {
                        let points_deleted = if stale {
                            // A run stopped between writing this version and sweeping the old.
                            self.store.delete_document(&doc_id, Some(&doc_hash)).await?
                        } else {
                            0
                        };
                        settle(Finished {
                            points_deleted,
                            source: relative,
                            doc_hash,
                            stat,
                            result: Ok(Outcome::Unchanged),
                        })?;
                    }
                    Prepared::Failed { relative, error } => settle(Finished {
                        points_deleted: 0,
                        source: relative,
                        doc_hash: String::new(),
                        stat: None,
                        result: Err(error),
                    })?,
                    Prepared::Ready(ready) => {
                        for finished in writer.admit(*ready).await? {
                            settle(finished)?;
                        }
                    }
                }
            }
            if writer.queued() == 0 {
                break;
            }
            for finished in writer.embed_next().await? {
                settle(finished)?;
            }
            on_event(Event::Embedded {
                chunks: writer.stats.chunks_embedded,
            });
        }
        summary.embedding = writer.stats;
        Ok((summary, records))
    }

    /// What [`Indexer::index_folder`] would do. Reads and hashes the files whose stat changed
    /// since the last run; writes nothing.
    pub async fn plan_folder(
        &self,
        root: &Path,
        selection: &Selection,
    ) -> Result<Plan, IndexError> {
        let survey = self.survey(root, selection).await?;
        let manifest = Manifest::load(
            self.manifest_dir.as_deref(),
            &survey.root_key,
            &self.preparer.fingerprint,
            SystemTime::now(),
        );
        let mut plan = Plan::default();
        let mut seen = HashSet::new();
        let no_versions = HashSet::new();
        for file in &survey.found {
            let doc_id = doc_id_for(&survey.root_key, &file.relative);
            seen.insert(doc_id.clone());
            let stored = survey
                .stored
                .get(&doc_id)
                .map_or(&no_versions, |d| &d.hashes);
            let stat = self.preparer.stat(file);
            if stat.as_ref().is_ok_and(|stat| {
                self.unchanged_by_stat(file, stat, &doc_id, stored, &manifest)
                    .is_some()
            }) {
                plan.unchanged.push(file.relative.clone());
                continue;
            }
            let list = match self.preparer.read(file) {
                Err(e) => {
                    plan.failed.push(Failure {
                        path: file.relative.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
                Ok(_) if stored.is_empty() => &mut plan.add,
                Ok((bytes, _)) if stored.contains(&self.preparer.doc_hash(&bytes)) => {
                    &mut plan.unchanged
                }
                Ok(_) => &mut plan.change,
            };
            list.push(file.relative.clone());
        }
        plan.delete = survey
            .stored
            .iter()
            .filter(|(id, _)| !seen.contains(*id))
            .map(|(_, doc)| doc.source.clone())
            .collect();
        plan.delete.sort();
        plan.skipped = survey.skipped;
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
        let mut complete_points = 0u64;
        for v in self.store.document_versions(Some(&root_key), None).await? {
            complete_points += u64::from(v.chunk_count);
            let doc = stored.entry(v.doc_id).or_insert_with(|| StoredDoc {
                source: v.source,
                hashes: HashSet::new(),
            });
            doc.hashes.insert(v.doc_hash);
        }
        // More points than the complete versions hold: a run was interrupted while writing a
        // version (no commit marker yet). Find those documents so they are swept, whatever
        // becomes of their files.
        let mut unclean = HashSet::new();
        if self.store.count_in_root(&root_key).await? > complete_points {
            for (doc_id, doc_hash) in self.store.point_versions(&root_key).await? {
                if !stored
                    .get(&doc_id)
                    .is_some_and(|d| d.hashes.contains(&doc_hash))
                {
                    unclean.insert(doc_id);
                }
            }
        }
        Ok(Survey {
            root_key,
            found,
            skipped,
            stored,
            unclean,
        })
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
        let doc_hash = self.preparer.doc_hash(&doc.content);
        if stored.contains(&doc_hash) {
            if stored.len() > 1 {
                self.store.delete_document(&doc_id, Some(&doc_hash)).await?;
                self.store.flush().await?;
            }
            return Ok((doc_id, Outcome::Unchanged));
        }

        let IncomingDocument {
            file_name,
            content,
            metadata,
            ..
        } = doc;
        let preparer = self.preparer.clone();
        let (id, hash) = (doc_id.clone(), doc_hash);
        let prepared = prepare::on_blocking_thread(file_name.clone(), move || {
            let fallback = title_from_path(&file_name);
            match preparer.extract_and_chunk(media, &content, None, &file_name, fallback) {
                Ok((chunks, pages, title)) => Prepared::Ready(Box::new(Ready {
                    doc_id: id,
                    root: API_ROOT.to_owned(),
                    source: file_name,
                    media,
                    title,
                    metadata,
                    doc_hash: hash,
                    pages,
                    chunks,
                    stat: None,
                })),
                Err(error) => Prepared::Failed {
                    relative: file_name,
                    error,
                },
            }
        })
        .await;
        let ready = match prepared {
            Prepared::Ready(ready) => *ready,
            Prepared::Failed { error, .. } => return Err(error),
            Prepared::Unchanged { .. } => unreachable!("extraction never reports unchanged"),
        };
        let mut writer =
            VersionWriter::new(self.embedder.clone(), self.store.clone(), &self.config);
        let mut finished = writer.admit(ready).await?;
        finished.extend(writer.finish().await?);
        self.store.flush().await?;
        let outcome = finished
            .pop()
            .ok_or_else(|| IndexError::Folder("the document left the writer unwritten".into()))?
            .result?;
        Ok((doc_id, outcome))
    }
}

/// What the prepare stage saw.
#[derive(Default)]
struct Produced {
    /// Every document id of the folder's files, read or not, failed or not.
    seen: HashSet<String>,
    files_read: usize,
    bytes_read: u64,
}

/// A folder's files next to what the store holds for it.
struct Survey {
    root_key: String,
    found: Vec<Found>,
    skipped: Vec<Skipped>,
    /// By doc_id.
    stored: HashMap<String, StoredDoc>,
    /// Documents with points of an unfinished version, to be swept.
    unclean: HashSet<String>,
}

struct StoredDoc {
    source: String,
    /// One per stored version; more than one only after an interrupted run.
    hashes: HashSet<String>,
}
