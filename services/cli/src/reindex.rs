//! `rag reindex`: a new embedding model or chunking recipe, without downtime. The configuration
//! names the new model and recipe; the store it names is rebuilt beside the current one
//! ([`rag_reindex`]), and then the store's name is switched to it in one step (see
//! [`rag_store::generation`]). The old generation is kept until `--drop-old`.
//!
//! Two places run it. This command, against a Qdrant server (services keep running on the
//! collection they started with) or an embedded store no process holds. And a running service
//! that holds the embedded store, asked by this command over gRPC (Reindex): it rebuilds beside
//! the store it serves and then answers from the new one, without stopping ([`in_service`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rag_api::{Current, Loaded};
use rag_proto::v1 as pb;
use rag_reindex::{Options, Recipe, Report, Say, build, catch_up, finish};
use rag_store::generation;
use rag_store::{StoreConfig, StoreError};
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

fn options(request: &pb::ReindexRequest) -> Options {
    Options {
        dry_run: request.dry_run,
        drop_old: request.drop_old,
        skip_missing: request.skip_missing,
    }
}

/// The new model and recipe `config` names.
async fn recipe(config: &Config) -> anyhow::Result<Recipe> {
    Ok(Recipe {
        embedder: load_embedder(config).await?,
        tokenizer_file: config.embedding.tokenizer_file(),
        ingest: config.ingest.clone(),
    })
}

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
    let options = options(&pb::ReindexRequest::from(&args));
    let recipe = recipe(config).await?;
    let progress = Progress::new(true);
    let report = Report {
        say: &say,
        on_event: &|event| progress.on_event(event),
        on_folder: &|summary| {
            progress.finish();
            print_summary(summary);
        },
    };
    let built = build(&store_config, &old, &recipe, &options, &report).await;
    progress.finish();
    let Some(built) = built.map_err(explain)? else {
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
        catch_up(&recipe, &built, &old, &say).await?;
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
    let options = self::options(&options);
    let recipe = recipe(&config).await?;
    let report = Report {
        say,
        on_event: &|_| {},
        on_folder: &|_| {},
    };
    let Some(built) = build(served, &old, &recipe, &options, &report).await? else {
        return Ok(());
    };
    // Everything that can fail is made before the switch.
    let indexer = indexer_over(
        &config,
        recipe.embedder.clone(),
        built.store.clone(),
        config.ingest.clone(),
    )?
    .with_manifest_dir(config.data_dir.join("manifests"));
    let retriever =
        crate::engine::retriever(&config, recipe.embedder.clone(), built.store.clone()).await?;
    let engine = rag_engine::Engine::new(retriever, serving.engine.generator().clone());
    drop(serving);
    // With no document being written, carry over what was sent to the old store during the
    // rebuild, then switch: no write can land on the old store after it was read, nor on the
    // new one before.
    let paused = current.pause_writes().await;
    catch_up(&recipe, &built, &old, say).await?;
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

/// A rebuild's error, with the likely cause of a store error operators hit first.
fn explain(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<StoreError>() {
        Ok(store) => explain_store_error(store),
        Err(e) => e,
    }
}
