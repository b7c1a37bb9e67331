//! A store rebuilt for a new embedding model or chunking recipe, without downtime (`rag
//! reindex`): the next generation built beside the current one (every folder indexed into it,
//! for its tenant, read again from disk; every document sent over the API re-embedded from its
//! stored chunks), the documents sent meanwhile carried over, and the old generations removed
//! when asked. The switch itself is [`rag_store::generation::switch`]; when to make it is the
//! caller's: the CLI against a store no process holds or a Qdrant server, a running service
//! (Reindex) against the embedded store it serves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rag_embed::Embedder;
use rag_ingest::{API_ROOT, Event, Indexer, IngestConfig, Selection, StoredDocument, Summary};
use rag_store::generation::{self, Generation};
use rag_store::{ChunkPayload, Store, StoreConfig, Visibility};

/// What a rebuild is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Say what would be rebuilt, and write nothing.
    pub dry_run: bool,
    /// After the switch, delete the old generations.
    pub drop_old: bool,
    /// Go on when a folder indexed into the store no longer exists.
    pub skip_missing: bool,
}

/// What the next generation is made with: the new embedding model and the chunking recipe.
pub struct Recipe {
    pub embedder: Arc<Embedder>,
    /// The embedding model's tokenizer, which sizes the chunks.
    pub tokenizer_file: PathBuf,
    pub ingest: IngestConfig,
}

impl Recipe {
    /// An indexer writing `tenant`'s documents into `store` with this recipe.
    pub fn indexer(&self, store: &Arc<Store>, tenant: &str) -> anyhow::Result<Indexer> {
        let ingest = IngestConfig {
            tenant: tenant.to_owned(),
            ..self.ingest.clone()
        };
        Ok(Indexer::configured(
            self.embedder.clone(),
            store.clone(),
            &self.tokenizer_file,
            ingest,
        )?)
    }
}

/// Where progress goes: stdout in the CLI, the Reindex stream in a service.
pub type Say<'a> = &'a (dyn Fn(String) + Send + Sync);

/// How a rebuild reports: its lines, and each folder's indexing events and summary.
pub struct Report<'a> {
    pub say: Say<'a>,
    pub on_event: &'a (dyn Fn(Event<'_>) + Send + Sync),
    pub on_folder: &'a (dyn Fn(&Summary) + Send + Sync),
}

/// The next generation, built and indexed, not yet switched to.
pub struct Built {
    pub next: Generation,
    pub store: Arc<Store>,
    /// The version (hash) of each API document copied, by (tenant, document id).
    copied: BTreeMap<(String, String), String>,
    /// The current store is the configured name itself (a server collection made before
    /// aliases): the switch must delete it.
    pub plain: bool,
}

/// Says what will be rebuilt and builds it; `None` for a dry run.
pub async fn build(
    store_config: &StoreConfig,
    old: &Arc<Store>,
    recipe: &Recipe,
    options: &Options,
    report: &Report<'_>,
) -> anyhow::Result<Option<Built>> {
    let say = report.say;
    let current = generation::current(store_config)
        .await?
        .context("the store has gone")?;
    let old_stats = old.stats().await?;
    let contents = generation::contents(old, API_ROOT).await?;
    let chunks: usize = contents.documents.iter().map(|(_, c)| c.len()).sum();
    let embedder = &recipe.embedder;
    let ingest = &recipe.ingest;
    let plain = generation::is_the_name(store_config, &current);

    say(format!(
        "current: {current}: {} documents, {} chunks, embedding model {} ({} dimensions)",
        old_stats.documents, old_stats.chunks, old_stats.embedding_model, old_stats.vector_size
    ));
    say(format!(
        "next:    embedding model {} ({} dimensions), chunks of at most {} tokens with {} overlap{}",
        embedder.model_name(),
        embedder.dimension(),
        ingest.chunk_tokens,
        ingest.overlap_tokens,
        if ingest.chunk_headers {
            ", title and headings embedded with each chunk"
        } else {
            ""
        }
    ));
    let mut missing = Vec::new();
    for (tenant, root) in contents.folders.keys() {
        let exists = Path::new(root).is_dir();
        say(format!(
            "  folder {root} (tenant {tenant}){}",
            if exists { "" } else { ": MISSING" }
        ));
        if !exists {
            missing.push(root.clone());
        }
    }
    say(format!(
        "  {} documents sent over the API ({chunks} chunks): re-embedded from their stored chunks",
        contents.documents.len()
    ));
    for other in generation::others(store_config).await? {
        say(format!(
            "  also present: {other} (an old generation, or an interrupted run)"
        ));
    }
    if !missing.is_empty() && !options.skip_missing {
        anyhow::bail!(
            "{} indexed folder(s) no longer exist ({}): their documents would be lost; restore \
             them, or run with --skip-missing",
            missing.len(),
            missing.join(", ")
        );
    }
    if plain && !options.drop_old {
        anyhow::bail!(
            "{current} is a plain collection (made before stores were aliases): the switch must \
             delete it, which stops the services using it. Stop them, then run with --drop-old"
        );
    }
    if options.dry_run {
        say("dry run: nothing written".into());
        return Ok(None);
    }

    let started = Instant::now();
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string();
    let (next, store) = generation::create(
        store_config,
        &stamp,
        embedder.dimension(),
        embedder.model_name(),
    )
    .await?;
    say(format!("building {next}"));
    for ((tenant, root), sources) in &contents.folders {
        if missing.contains(root) {
            continue;
        }
        let indexer = recipe.indexer(&store, tenant)?;
        // The files the store holds from this folder, not whatever else it has now: a run
        // may have left some out (`--include`, `--exclude`); the worker adds new ones later.
        let selection = Selection {
            include: sources.iter().map(|s| exact_path_glob(s)).collect(),
            exclude: Vec::new(),
        };
        let summary = indexer
            .index_folder(Path::new(root), &selection, report.on_event)
            .await
            .with_context(|| format!("indexing {root} into {next}"))?;
        say(format!(
            "  {root}: {} files indexed, {} failed; {} chunks written, {} embedded",
            summary.indexed,
            summary.failed.len(),
            summary.chunks_written,
            summary.embedding.chunks_embedded
        ));
        (report.on_folder)(&summary);
    }
    let copied: BTreeMap<(String, String), String> = contents
        .documents
        .iter()
        .map(|(tenant, chunks)| version_of(tenant, chunks))
        .collect();
    copy_api_documents(recipe, &store, contents.documents, say).await?;
    store.optimize().await?;
    let new_stats = store.stats().await?;
    say(format!(
        "built {next} in {:.1} s: {} documents, {} chunks (all tenants: {} before)",
        started.elapsed().as_secs_f64(),
        new_stats.documents,
        new_stats.chunks,
        contents.points
    ));
    Ok(Some(Built {
        next,
        store,
        copied,
        plain,
    }))
}

/// After the switch: removes the old generations when asked, else says how.
pub async fn finish(
    store_config: &StoreConfig,
    built: &Built,
    options: &Options,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let others = generation::others(store_config).await?;
    if options.drop_old {
        for old in others {
            generation::remove(store_config, &old).await?;
            say(format!("removed {old}"));
        }
    } else {
        for old in others {
            say(format!(
                "kept {old}: remove it with `rag reindex --drop-old` once no service uses it"
            ));
        }
    }
    built.store.flush().await?;
    Ok(())
}

/// Re-embeds the API's documents into `store`, one document at a time, with a line per 100.
async fn copy_api_documents(
    recipe: &Recipe,
    store: &Arc<Store>,
    documents: Vec<(String, Vec<ChunkPayload>)>,
    say: Say<'_>,
) -> anyhow::Result<()> {
    if documents.is_empty() {
        return Ok(());
    }
    let indexer = recipe.indexer(store, &recipe.ingest.tenant)?;
    let total = documents.len();
    let mut written = 0;
    for (i, (tenant, chunks)) in documents.into_iter().enumerate() {
        written += indexer
            .copy_document(StoredDocument { tenant, chunks })
            .await?;
        if (i + 1) % 100 == 0 || i + 1 == total {
            say(format!(
                "  API documents: {}/{total} ({written} chunks)",
                i + 1
            ));
        }
    }
    Ok(())
}

/// A glob (gitignore syntax) matching exactly the file at `relative` under the folder.
fn exact_path_glob(relative: &str) -> String {
    let mut glob = String::from("/");
    for c in relative.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | '{' | '}' | '!') {
            glob.push('\\');
        }
        glob.push(c);
    }
    glob
}

/// A stored document version: ((tenant, document id), version hash).
fn version_of(tenant: &str, chunks: &[ChunkPayload]) -> ((String, String), String) {
    (
        (tenant.to_owned(), chunks[0].doc_id.clone()),
        chunks[0].doc_hash.clone(),
    )
}

/// Brings the API's documents of the new store in step with `old` as it is now: those sent
/// since they were copied are copied, replaced ones replaced, deleted ones deleted — but never
/// a document the new store has had written since (by a service already on it): that one is
/// newer than anything here.
pub async fn catch_up(
    recipe: &Recipe,
    built: &Built,
    old: &Store,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let late = generation::contents(old, API_ROOT).await?.documents;
    let now: BTreeSet<(String, String)> = late
        .iter()
        .map(|(tenant, chunks)| (tenant.clone(), chunks[0].doc_id.clone()))
        .collect();
    // Untouched in the new store since the rebuild: it holds the copied version or nothing.
    let untouched = |(tenant, doc_id): (String, String)| {
        let store = built.store.for_tenant(&tenant);
        let copied = built.copied.get(&(tenant, doc_id.clone())).cloned();
        async move {
            let versions = store.document_versions(None, Some(&doc_id)).await?;
            Ok::<_, rag_store::StoreError>(
                versions
                    .iter()
                    .all(|v| Some(&v.doc_hash) == copied.as_ref()),
            )
        }
    };
    let mut fresh = Vec::new();
    for (tenant, chunks) in late {
        let (key, hash) = version_of(&tenant, &chunks);
        if built.copied.get(&key) != Some(&hash) && untouched(key).await? {
            fresh.push((tenant, chunks));
        }
    }
    let keep: Vec<((String, String), String)> =
        fresh.iter().map(|(t, c)| version_of(t, c)).collect();
    copy_api_documents(recipe, &built.store, fresh, say).await?;
    // Older versions of the replaced ones, then those deleted meanwhile.
    for ((tenant, doc_id), hash) in &keep {
        built
            .store
            .for_tenant(tenant)
            .delete_document(doc_id, Some(hash), &Visibility::All)
            .await?;
    }
    for key in built.copied.keys() {
        if !now.contains(key) && untouched(key.clone()).await? {
            let (tenant, doc_id) = key;
            built
                .store
                .for_tenant(tenant)
                .delete_document(doc_id, None, &Visibility::All)
                .await?;
            say(format!(
                "  {doc_id} (tenant {tenant}) was deleted meanwhile: deleted"
            ));
        }
    }
    Ok(())
}
