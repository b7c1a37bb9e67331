//! `rag reindex`: a new embedding model or chunking recipe, without downtime. The configuration
//! names the new model and recipe; the store it names is rebuilt beside the current one (every
//! folder indexed into it, for its tenant, read again from disk; every document sent over the
//! API re-embedded from its stored chunks), its search index built, and then the store's name
//! is switched to it in one step (see [`rag_store::generation`]). The old generation is kept
//! until `--drop-old`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use rag_ingest::{API_ROOT, Event, IngestConfig, Selection, StoredDocument};
use rag_store::generation::{self, Generation};
use rag_store::{Store, StoreConfig, Visibility};

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
}

pub async fn run(config: &Config, args: ReindexArgs) -> anyhow::Result<()> {
    let store_config = config.store();
    let Some(current) = generation::current(&store_config).await? else {
        anyhow::bail!("there is no store to re-index yet: run `rag ingest FOLDER` first");
    };
    // Holds the embedded store's data directory for the whole run: one process at a time.
    let old = rag_store::open_existing(&store_config)
        .await
        .map_err(explain_store_error)?;
    let old_stats = old.stats().await?;
    let contents = generation::contents(&old, API_ROOT).await?;
    let mut old = Some(old);
    let chunks: usize = contents.documents.iter().map(|(_, c)| c.len()).sum();
    let embedder = load_embedder(config).await?;
    let plain = matches!((&store_config, &current),
        (StoreConfig::Server { collection, .. }, Generation::Collection(c)) if c == collection);

    println!(
        "current: {current}: {} documents, {} chunks, embedding model {} ({} dimensions)",
        old_stats.documents, old_stats.chunks, old_stats.embedding_model, old_stats.vector_size
    );
    println!(
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
    );
    let mut missing = Vec::new();
    for (tenant, root) in &contents.folders {
        let exists = Path::new(root).is_dir();
        println!(
            "  folder {root} (tenant {tenant}){}",
            if exists { "" } else { ": MISSING" }
        );
        if !exists {
            missing.push(root.clone());
        }
    }
    println!(
        "  {} documents sent over the API ({chunks} chunks): re-embedded from their stored chunks",
        contents.documents.len()
    );
    let others = generation::others(&store_config).await?;
    for other in &others {
        println!("  also present: {other} (an old generation, or an interrupted run)");
    }
    if !missing.is_empty() && !args.skip_missing {
        anyhow::bail!(
            "{} indexed folder(s) no longer exist ({}): their documents would be lost; restore \
             them, or run with --skip-missing",
            missing.len(),
            missing.join(", ")
        );
    }
    if plain && !args.drop_old {
        anyhow::bail!(
            "{current} is a plain collection (made before stores were aliases): the switch must \
             delete it, which stops the services using it. Stop them, then run with --drop-old"
        );
    }
    if args.dry_run {
        println!("dry run: nothing written");
        return Ok(());
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
    println!("building {next}");
    for (tenant, root) in &contents.folders {
        if missing.contains(root) {
            continue;
        }
        let ingest = IngestConfig {
            tenant: tenant.clone(),
            ..config.ingest.clone()
        };
        let indexer = indexer_over(config, embedder.clone(), store.clone(), ingest)?;
        let progress = Progress::new(true);
        let on_event = |event: Event<'_>| progress.on_event(event);
        let summary = indexer
            .index_folder(Path::new(root), &Selection::default(), &on_event)
            .await
            .with_context(|| format!("indexing {root} into {next}"))?;
        progress.finish();
        print!("  {root}: ");
        print_summary(&summary);
    }
    let copied: BTreeSet<(String, String, String)> = contents
        .documents
        .iter()
        .map(|(tenant, chunks)| version_of(tenant, chunks))
        .collect();
    copy_api_documents(config, &embedder, &store, contents.documents).await?;
    store.optimize().await?;
    let new_stats = store.stats().await?;
    println!(
        "built {next} in {:.1} s: {} documents, {} chunks (all tenants: {} before)",
        started.elapsed().as_secs_f64(),
        new_stats.documents,
        new_stats.chunks,
        contents.points
    );

    if plain {
        // The old collection goes with the switch: nothing may hold it.
        old.take();
    }
    generation::switch(&store_config, &next, plain).await?;
    // Services on the old generation took documents over the API while this one was built:
    // those sent or deleted until the switch are carried over.
    if let Some(old) = &old {
        let late = generation::contents(old, API_ROOT).await?.documents;
        catch_up(config, &embedder, &store, &copied, late).await?;
    }
    // Closes the old generation (and, embedded, frees the data directory).
    old.take();
    println!(
        "switched: the store now is {next}. Services started from now on use it; a running \
         service keeps the generation it started with until it is restarted (with this \
         configuration)"
    );
    if args.drop_old {
        drop_others(&store_config).await?;
    } else {
        println!(
            "kept {current}: remove it with `rag reindex --drop-old` or by hand once no service uses it"
        );
    }
    Ok(())
}

/// Re-embeds the API's documents into `store`, one document at a time, with a line per 100.
async fn copy_api_documents(
    config: &Config,
    embedder: &Arc<rag_embed::Embedder>,
    store: &Arc<Store>,
    documents: Vec<(String, Vec<rag_store::ChunkPayload>)>,
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
            println!("  API documents: {}/{total} ({written} chunks)", i + 1);
        }
    }
    Ok(())
}

/// A stored document version: (tenant, document id, version hash).
fn version_of(tenant: &str, chunks: &[rag_store::ChunkPayload]) -> (String, String, String) {
    (
        tenant.to_owned(),
        chunks[0].doc_id.clone(),
        chunks[0].doc_hash.clone(),
    )
}

/// Brings the API's documents of `store` in step with `late` (what the old generation holds
/// now), given the versions already `copied`: new and replaced ones are copied, deleted ones
/// deleted.
async fn catch_up(
    config: &Config,
    embedder: &Arc<rag_embed::Embedder>,
    store: &Arc<Store>,
    copied: &BTreeSet<(String, String, String)>,
    late: Vec<(String, Vec<rag_store::ChunkPayload>)>,
) -> anyhow::Result<()> {
    let now: BTreeSet<(String, String)> = late
        .iter()
        .map(|(tenant, chunks)| (tenant.clone(), chunks[0].doc_id.clone()))
        .collect();
    let fresh: Vec<_> = late
        .into_iter()
        .filter(|(tenant, chunks)| !copied.contains(&version_of(tenant, chunks)))
        .collect();
    let keep: Vec<(String, String, String)> = fresh.iter().map(|(t, c)| version_of(t, c)).collect();
    copy_api_documents(config, embedder, store, fresh).await?;
    // Older versions of the replaced ones, then those deleted meanwhile.
    for (tenant, doc_id, hash) in &keep {
        store
            .for_tenant(tenant)
            .delete_document(doc_id, Some(hash), &Visibility::All)
            .await?;
    }
    for (tenant, doc_id, _) in copied {
        if !now.contains(&(tenant.clone(), doc_id.clone())) {
            store
                .for_tenant(tenant)
                .delete_document(doc_id, None, &Visibility::All)
                .await?;
            println!("  {doc_id} (tenant {tenant}) was deleted meanwhile: deleted");
        }
    }
    Ok(())
}

/// Deletes every generation the store's name does not point to.
async fn drop_others(config: &StoreConfig) -> anyhow::Result<()> {
    for old in generation::others(config).await? {
        generation::remove(config, &old).await?;
        println!("removed {old}");
    }
    Ok(())
}
