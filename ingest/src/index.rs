//! The indexer: keeps a store in step with a folder, plans that without doing it, or takes one
//! document sent as bytes. It runs the stages (`survey`, `prepare`, `write`); what each stage
//! does lives in its module.
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

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rag_embed::Embedder;
use rag_store::{Store, Visibility};
use tokio::sync::{Semaphore, mpsc};

use crate::chunk::Chunker;
use crate::config::IngestConfig;
use crate::counters;
use crate::document::{IncomingDocument, doc_id_for};
use crate::error::IndexError;
use crate::extract::PdfExtractor;
use crate::manifest::{Manifest, Stat};
use crate::outcome::{Event, Failure, Outcome, Plan, Summary};
use crate::prepare::{self, Prepared, Preparer};
use crate::stored::{Decision, StoredVersions};
use crate::survey::Survey;
use crate::walk::{Found, Selection};
use crate::write::{Finished, VersionWriter};

pub struct Indexer {
    embedder: Arc<Embedder>,
    /// The store as `ingest.tenant` sees it: folder runs write there; documents sent over the
    /// API go to their caller's tenant.
    store: Arc<Store>,
    preparer: Preparer,
    /// What a folder manifest must have been written under to vouch for a file: the
    /// pipeline, the tenant and the group rules (a changed rule re-reads and rewrites).
    folder_fingerprint: String,
    config: IngestConfig,
    /// Where folder manifests live; `None`: every file is read on every run.
    manifest_dir: Option<PathBuf>,
    /// Read every file even where the manifest vouches for it (the manifest is rewritten).
    rehash: bool,
}

impl Indexer {
    /// An indexer with the chunking `config` describes (chunks sized by the tokenizer at
    /// `tokenizer_file`) and PDFs read by this executable's extraction worker.
    pub fn configured(
        embedder: Arc<Embedder>,
        store: Arc<Store>,
        tokenizer_file: &Path,
        config: IngestConfig,
    ) -> Result<Self, crate::ChunkerError> {
        let chunker = Chunker::new(tokenizer_file, config.chunk_tokens, config.overlap_tokens)?;
        let pdf = crate::PdfExtractor::with_current_exe(std::time::Duration::from_secs(
            config.pdf_timeout_secs,
        ));
        Ok(Self::new(embedder, store, chunker, pdf, config))
    }

    pub fn new(
        embedder: Arc<Embedder>,
        store: Arc<Store>,
        chunker: Chunker,
        pdf: PdfExtractor,
        config: IngestConfig,
    ) -> Self {
        let preparer = Preparer::new(pdf, chunker, &config, embedder.model_name());
        // Unchanged for the defaults, so manifests written before tenants existed still count.
        let folder_fingerprint =
            if config.tenant == rag_store::DEFAULT_TENANT && config.groups.is_empty() {
                preparer.fingerprint.to_string()
            } else {
                format!(
                    "{}|tenant={}|groups={:?}",
                    preparer.fingerprint, config.tenant, config.groups
                )
            };
        Self {
            embedder,
            store: store.for_tenant(&config.tenant),
            preparer,
            folder_fingerprint,
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

    pub(crate) fn preparer(&self) -> &Preparer {
        &self.preparer
    }

    /// Brings the store in step with `root`: returns what was done. Per-file problems are
    /// collected in the summary; only a store failure stops the run.
    pub async fn index_folder(
        &self,
        root: &Path,
        selection: &Selection,
        on_event: &(dyn Fn(Event<'_>) + Send + Sync),
    ) -> Result<Summary, IndexError> {
        self.config.check()?;
        let started = Instant::now();
        let run_start = SystemTime::now();
        let survey = Survey::take(self.store.as_ref(), root, selection).await?;
        on_event(Event::Walked {
            files: survey.found.len(),
        });
        let mut manifest = Manifest::load(
            self.manifest_dir.as_deref(),
            &survey.root_key,
            &self.folder_fingerprint,
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
            summary.points_deleted += self
                .store
                .delete_document(doc_id, None, &Visibility::All)
                .await?;
            summary.deleted += 1;
            counters::deleted();
        }
        // Unfinished versions of files that are gone (never complete, so never "stored").
        for doc_id in survey
            .unclean
            .iter()
            .filter(|id| !produced.seen.contains(*id) && !survey.stored.contains_key(*id))
        {
            summary.points_deleted += self
                .store
                .delete_document(doc_id, None, &Visibility::All)
                .await?;
        }
        self.store.flush().await?;
        // Only now that the store is durable may the manifest vouch for what it holds.
        for (relative, stat, doc_hash) in records {
            manifest.record(&relative, stat, &doc_hash);
        }
        if let Err(e) = manifest.save() {
            tracing::warn!(error = %e, "manifest not saved; the next run reads every file");
        }
        // Here, at the end of a writing run and never on a query, so that searches use an
        // index instead of comparing the query with every new chunk. Cheap when nothing is
        // due; an interrupted build is redone by the next run.
        on_event(Event::Indexing);
        let indexing = Instant::now();
        if self.store.optimize().await? {
            summary.index_seconds = indexing.elapsed().as_secs_f64();
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
        for file in &survey.found {
            let doc_id = doc_id_for(&survey.root_key, &file.relative);
            produced.seen.insert(doc_id.clone());
            if tx.is_closed() {
                // The embed stage stopped on a store error: the run is over.
                continue;
            }
            let stored = survey.versions(&doc_id);
            // A stat error or an over-size file is reported by the prepare step itself.
            if let Ok(stat) = self.preparer.stat(file) {
                if let Some(unchanged) =
                    self.unchanged_by_stat(file, &stat, &doc_id, &stored, manifest)
                {
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
            let root = survey.root_key.clone();
            let groups = self.config.groups_for(&file.relative);
            tokio::spawn(async move {
                if tx.is_closed() {
                    return;
                }
                let relative = file.relative.clone();
                let prepared = prepare::on_blocking_thread(relative, move || {
                    preparer.prepare_file(&root, doc_id, &file, groups, &stored)
                })
                .await;
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
        stored: &StoredVersions,
        manifest: &Manifest,
    ) -> Option<Prepared> {
        if self.rehash {
            return None;
        }
        let doc_hash = manifest.hash_if_unchanged(&file.relative, stat)?;
        let Decision::Unchanged { stale } = stored.decide(doc_hash) else {
            return None;
        };
        Some(Prepared::Unchanged {
            relative: file.relative.clone(),
            doc_id: doc_id.to_owned(),
            doc_hash: doc_hash.to_owned(),
            stat: Some(*stat),
            stale,
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
            counters::finished(finished.result.as_ref());
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
                            self.store
                                .delete_document(&doc_id, Some(&doc_hash), &Visibility::All)
                                .await?
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
        self.config.check()?;
        let survey = Survey::take(self.store.as_ref(), root, selection).await?;
        let manifest = Manifest::load(
            self.manifest_dir.as_deref(),
            &survey.root_key,
            &self.folder_fingerprint,
            SystemTime::now(),
        );
        let mut plan = Plan::default();
        let mut seen = HashSet::new();
        for file in &survey.found {
            let doc_id = doc_id_for(&survey.root_key, &file.relative);
            seen.insert(doc_id.clone());
            let stored = survey.versions(&doc_id);
            let stat = self.preparer.stat(file);
            if stat.as_ref().is_ok_and(|stat| {
                self.unchanged_by_stat(file, stat, &doc_id, &stored, &manifest)
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
                Ok((bytes, _)) => match stored.decide(
                    &self
                        .preparer
                        .doc_hash(&bytes, &self.config.groups_for(&file.relative)),
                ) {
                    Decision::New => &mut plan.add,
                    Decision::Changed => &mut plan.change,
                    Decision::Unchanged { .. } => &mut plan.unchanged,
                },
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

    /// Indexes one document sent as bytes. Returns its id and what was done.
    pub async fn index_document(
        &self,
        doc: IncomingDocument,
    ) -> Result<(String, Outcome), IndexError> {
        let result = self.index_incoming(doc).await;
        counters::finished(result.as_ref().map(|(_, outcome)| outcome));
        result
    }

    async fn index_incoming(&self, doc: IncomingDocument) -> Result<(String, Outcome), IndexError> {
        let store = self.store.for_tenant(&doc.tenant);
        let writer = doc.writer.clone();
        let (origin, content) = self.preparer.accept(doc)?;
        let doc_id = origin.doc_id.clone();
        let forbidden = |reason: String| IndexError::Forbidden {
            path: origin.source.clone(),
            reason,
        };
        if !writer.covers(&origin.groups) {
            return Err(forbidden(format!(
                "the key may not write documents for groups {:?}: only for its own groups",
                origin.groups
            )));
        }
        let versions = store.document_versions(None, Some(&doc_id)).await?;
        // Replacing a document deletes its old version: only for a caller who can read it.
        if versions.iter().any(|v| !writer.permits(&v.groups)) {
            return Err(forbidden(format!(
                "document id {doc_id:?} is taken by a document this key cannot read"
            )));
        }
        let hashes = versions.into_iter().map(|v| v.doc_hash).collect();
        // Unfinished versions are not looked for here (that takes a scan of the document's
        // points): the next write of the document sweeps them.
        let stored = StoredVersions::new(hashes, false);
        let preparer = self.preparer.clone();
        let prepared = prepare::on_blocking_thread(origin.source.clone(), move || {
            preparer.prepare(origin, &content, None, &stored)
        })
        .await;
        let ready = match prepared {
            Prepared::Ready(ready) => *ready,
            Prepared::Unchanged {
                doc_hash, stale, ..
            } => {
                if stale {
                    store
                        .delete_document(&doc_id, Some(&doc_hash), &Visibility::All)
                        .await?;
                    store.flush().await?;
                }
                return Ok((doc_id, Outcome::Unchanged));
            }
            Prepared::Failed { error, .. } => return Err(error),
        };
        let mut writer = VersionWriter::new(self.embedder.clone(), store.clone(), &self.config);
        let mut finished = writer.admit(ready).await?;
        finished.extend(writer.finish().await?);
        store.flush().await?;
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
