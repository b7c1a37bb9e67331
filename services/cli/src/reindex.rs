//! `rag reindex`: a new embedding model or chunking recipe, without downtime. The configuration
//! names the new model and recipe; the store it names is rebuilt beside the current one (every
//! folder indexed into it, for its tenant, read again from disk; every document sent over the
//! API re-embedded from its stored chunks), its search index built, and then the store's name
//! is switched to it in one step (see [`rag_store::generation`]). The old generation is kept
//! until `--drop-old`.
//!
//! Two places run it. This command, against a Qdrant server (services keep running on the
//! collection they started with) or an embedded store no process holds. And a running service
//! that holds the embedded store, asked by this command over gRPC (Reindex): it rebuilds beside
//! the store it serves and then answers from the new one, without stopping ([`in_service`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use rag_api::{Current, Loaded};
use rag_embed::Embedder;
use rag_ingest::{API_ROOT, Event, IngestConfig, Selection, StoredDocument};
use rag_proto::v1 as pb;
use rag_store::generation::{self, Generation};
use rag_store::{ChunkPayload, Store, StoreConfig, StoreError, Visibility};
use tokio_stream::StreamExt;

use crate::config::Config;
use crate::ingest::{Progress, explain_store_error, indexer_over, load_embedder, print_summary};

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Say what would be rebuilt, from which folders and documents, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// After the switch, delete the old generation (and any left by an interrupted run).
    /// Services still running on it fail from then on: restart them first.
    #[arg(long)]
    drop_old: bool,
    /// Go on when a folder indexed into the store no longer exists (its documents are then
    /// not in the new generation).
    #[arg(long)]
    skip_missing: bool,
    /// The service to ask when one holds the embedded store (default: `client.addr`).
    #[arg(long)]
    addr: Option<String>,
}

impl From<&ReindexArgs> for pb::ReindexRequest {
    fn from(args: &ReindexArgs) -> Self {
        Self {
            dry_run: args.dry_run,
            drop_old: args.drop_old,
            skip_missing: args.skip_missing,
        }
    }
}

/// Where progress goes: stdout here, the Reindex stream in a service.
type Say<'a> = &'a (dyn Fn(String) + Send + Sync);

pub async fn run(config: &Config, args: ReindexArgs) -> anyhow::Result<()> {
    let store_config = config.store();
    if generation::current(&store_config).await?.is_none() {
        anyhow::bail!("there is no store to re-index yet: run `rag ingest FOLDER` first");
    }
    let old = match rag_store::open_existing(&store_config).await {
        Ok(old) => old,
        // A service holds the embedded store: it rebuilds, and switches without stopping.
        Err(StoreError::Locked { .. }) => return through_service(config, &args).await,
        Err(e) => return Err(explain_store_error(e)),
    };
    let say = |line: String| println!("{line}");
    let options = pb::ReindexRequest::from(&args);
    let Some(built) = build(config, &old, &options, &say, true).await? else {
        return Ok(());
    };
    if built.plain {
        // The old collection goes with the switch: nothing may hold it.
        drop(old);
        generation::switch(&store_config, &built.next, true).await?;
    } else {
        generation::switch(&store_config, &built.next, false).await?;
        // Services on the old generation took documents over the API while this one was
        // built: those sent or deleted until the switch are carried over.
        catch_up(config, &built, &old, &say).await?;
        drop(old);
    }
    say(if store_config.shared() {
        format!(
            "switched: the store now is {}. Services started from now on use it; a running \
             service keeps the generation it started with until it is restarted (with this \
             configuration)",
            built.next
        )
    } else {
        format!(
            "switched: the store now is {}; `rag serve` opens it from now on",
            built.next
        )
    });
    finish(&store_config, &built, &options, &say).await
}

/// Asks the service holding the embedded store to rebuild it, printing its progress.
async fn through_service(config: &Config, args: &ReindexArgs) -> anyhow::Result<()> {
    println!(
        "a running service holds {}: asking it to rebuild (it goes on answering)",
        config.data_dir.display()
    );
    let mut client = crate::client::connect(config, args.addr.as_deref()).await?;
    let mut progress = client
        .reindex(pb::ReindexRequest::from(args))
        .await
        .map_err(|e| anyhow::anyhow!("Reindex: {:?}: {}", e.code(), e.message()))?
        .into_inner();
    while let Some(line) = progress.next().await {
        match line {
            Ok(line) => println!("{}", line.line),
            Err(e) => anyhow::bail!("{}", e.message()),
        }
    }
    Ok(())
}

/// A service's Reindex: rebuilds beside the store it serves (`served`), switches the data
/// directory to the new generation, then answers from it — calls already running finish on the
/// old one. The configuration is read again (`reload`): the new model and recipe are what it
/// says now; it must still name the same store.
pub async fn in_service(
    reload: &(dyn Fn() -> anyhow::Result<Config> + Send + Sync),
    served: &StoreConfig,
    current: &Current,
    options: pb::ReindexRequest,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let config = reload()?;
    if config.store() != *served {
        anyhow::bail!(
            "the configuration now names another store than the one this service serves \
             ({served:?}); restart the service to move it"
        );
    }
    let serving = current
        .get()
        .context("the service is still loading its models")?;
    let old = serving.engine.store().clone();
    let Some(built) = build(&config, &old, &options, say, false).await? else {
        return Ok(());
    };
    // Everything that can fail is made before the switch.
    let indexer = indexer_over(
        &config,
        built.embedder.clone(),
        built.store.clone(),
        config.ingest.clone(),
    )?
    .with_manifest_dir(config.data_dir.join("manifests"));
    let retriever =
        crate::engine::retriever(&config, built.embedder.clone(), built.store.clone()).await?;
    let engine = rag_engine::Engine::new(retriever, serving.engine.generator().clone());
    drop(serving);
    // With no document being written, carry over what was sent to the old store during the
    // rebuild, then switch: no write can land on the old store after it was read, nor on the
    // new one before.
    let paused = current.pause_writes().await;
    catch_up(&config, &built, &old, say).await?;
    generation::switch(served, &built.next, false).await?;
    let previous = current.replace(Loaded {
        engine,
        indexer: Arc::new(indexer),
    });
    drop(paused);
    drop(old);
    say(format!(
        "switched: the service answers from {} (the chat model and [llm] settings stay as \
         they were loaded)",
        built.next
    ));
    // The old store is removed only once no call uses it.
    let released = match previous {
        Some(previous) => wait_until_unused(previous).await,
        None => true,
    };
    if options.drop_old && !released {
        say("calls on the old store are still running: it is kept; run `rag reindex --drop-old` again later".into());
        return Ok(());
    }
    finish(served, &built, &options, say).await
}

/// The next generation, built and indexed, not yet switched to.
struct Built {
    next: Generation,
    store: Arc<Store>,
    embedder: Arc<Embedder>,
    /// The version (hash) of each API document copied, by (tenant, document id).
    copied: BTreeMap<(String, String), String>,
    /// The current store is a plain collection (made before aliases).
    plain: bool,
}

/// Says what will be rebuilt and builds it; `None` for a dry run.
async fn build(
    config: &Config,
    old: &Arc<Store>,
    options: &pb::ReindexRequest,
    say: Say<'_>,
    bars: bool,
) -> anyhow::Result<Option<Built>> {
    let store_config = config.store();
    let current = generation::current(&store_config)
        .await?
        .context("the store has gone")?;
    let old_stats = old.stats().await?;
    let contents = generation::contents(old, API_ROOT).await?;
    let chunks: usize = contents.documents.iter().map(|(_, c)| c.len()).sum();
    let embedder = load_embedder(config).await?;
    let plain = generation::is_the_name(&store_config, &current);

    say(format!(
        "current: {current}: {} documents, {} chunks, embedding model {} ({} dimensions)",
        old_stats.documents, old_stats.chunks, old_stats.embedding_model, old_stats.vector_size
    ));
    say(format!(
        "next:    embedding model {} ({} dimensions), chunks of at most {} tokens with {} overlap{}",
        embedder.model_name(),
        embedder.dimension(),
        config.ingest.chunk_tokens,
        config.ingest.overlap_tokens,
        if config.ingest.chunk_headers {
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
    for other in generation::others(&store_config).await? {
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
        &store_config,
        &stamp,
        embedder.dimension(),
        embedder.model_name(),
    )
    .await
    .map_err(explain_store_error)?;
    say(format!("building {next}"));
    for ((tenant, root), sources) in &contents.folders {
        if missing.contains(root) {
            continue;
        }
        let ingest = IngestConfig {
            tenant: tenant.clone(),
            ..config.ingest.clone()
        };
        let indexer = indexer_over(config, embedder.clone(), store.clone(), ingest)?;
        let progress = Progress::new(bars);
        let on_event = |event: Event<'_>| progress.on_event(event);
        // The files the store holds from this folder, not whatever else it has now: a run
        // may have left some out (`--include`, `--exclude`); the worker adds new ones later.
        let selection = Selection {
            include: sources.iter().map(|s| exact_path_glob(s)).collect(),
            exclude: Vec::new(),
        };
        let summary = indexer
            .index_folder(Path::new(root), &selection, &on_event)
            .await
            .with_context(|| format!("indexing {root} into {next}"))?;
        progress.finish();
        say(format!(
            "  {root}: {} files indexed, {} failed; {} chunks written, {} embedded",
            summary.indexed,
            summary.failed.len(),
            summary.chunks_written,
            summary.embedding.chunks_embedded
        ));
        if bars {
            print_summary(&summary);
        }
    }
    let copied: BTreeMap<(String, String), String> = contents
        .documents
        .iter()
        .map(|(tenant, chunks)| version_of(tenant, chunks))
        .collect();
    copy_api_documents(config, &embedder, &store, contents.documents, say).await?;
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
        embedder,
        copied,
        plain,
    }))
}

/// After the switch: removes the old generations when asked, else says how.
async fn finish(
    store_config: &StoreConfig,
    built: &Built,
    options: &pb::ReindexRequest,
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

/// Waits (up to a minute) for the calls that started on the previous store to end, so that
/// it is closed before anything removes it. `false` when some are still running.
async fn wait_until_unused(mut previous: Arc<Loaded>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Arc::try_unwrap(previous) {
            Ok(loaded) => {
                drop(loaded);
                return true;
            }
            Err(still) if Instant::now() < deadline => {
                previous = still;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => return false,
        }
    }
}

/// Re-embeds the API's documents into `store`, one document at a time, with a line per 100.
async fn copy_api_documents(
    config: &Config,
    embedder: &Arc<Embedder>,
    store: &Arc<Store>,
    documents: Vec<(String, Vec<ChunkPayload>)>,
    say: Say<'_>,
) -> anyhow::Result<()> {
    if documents.is_empty() {
        return Ok(());
    }
    let indexer = indexer_over(
        config,
        embedder.clone(),
        store.clone(),
        config.ingest.clone(),
    )?;
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
async fn catch_up(config: &Config, built: &Built, old: &Store, say: Say<'_>) -> anyhow::Result<()> {
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
    copy_api_documents(config, &built.embedder, &built.store, fresh, say).await?;
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
