//! `rag ingest --watch`: the worker mode. Indexes the folder, then re-runs the (incremental)
//! ingest whenever files change, once the folder has been quiet for the debounce interval.
//! Each run costs a walk and a stat per file plus the work for what changed, so a burst of
//! edits becomes one run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use rag_ingest::{Event, Indexer, Selection, Summary};
use tokio::sync::mpsc;

/// A failed run is retried after this, doubling up to [`MAX_RETRY`], even without changes.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Runs until SIGINT or SIGTERM. `report` gets every run's summary. Changes under `own_data`
/// (the store and manifests, should they sit inside the folder) are this process's own writes
/// and never start a run.
pub async fn run(
    indexer: &Indexer,
    folder: &Path,
    selection: &Selection,
    debounce: Duration,
    own_data: Option<PathBuf>,
    on_event: &(dyn Fn(Event<'_>) + Send + Sync),
    report: &dyn Fn(&Summary),
) -> anyhow::Result<()> {
    let (tx, mut changes) = mpsc::unbounded_channel();
    let own_data = own_data.and_then(|d| std::fs::canonicalize(d).ok());
    // Watching starts before the first run, so nothing changed during it is missed.
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Our own reads raise access events; only changes matter.
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => {}
            Ok(e)
                if !e.need_rescan()
                    && !e.paths.is_empty()
                    && e.paths
                        .iter()
                        .all(|p| own_data.as_ref().is_some_and(|d| p.starts_with(d))) => {}
            // Everything else, including a queue overflow (events were lost), means: look.
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "file watch; re-indexing to be safe");
                let _ = tx.send(());
            }
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(folder, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", folder.display()))?;
    tracing::info!(folder = %folder.display(), "watching for changes");

    let mut stop = std::pin::pin!(shutdown_signal());
    let mut retry = FIRST_RETRY;
    loop {
        // After a failure (a restarting Qdrant server, a full disk) the run is retried on a
        // timer too, so the changes that started it are not left waiting for the next one.
        let retry_after = match indexer.index_folder(folder, selection, on_event).await {
            Ok(summary) => {
                report(&summary);
                retry = FIRST_RETRY;
                None
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), retry_in_s = retry.as_secs(), "ingest run failed");
                let wait = retry;
                retry = (retry * 2).min(MAX_RETRY);
                Some(wait)
            }
        };
        let timer = async {
            match retry_after {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = timer => continue,
            change = changes.recv() => {
                if change.is_none() {
                    anyhow::bail!("the file watcher stopped");
                }
            }
        }
        // Debounce: wait until no change has arrived for `debounce`.
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                change = tokio::time::timeout(debounce, changes.recv()) => match change {
                    Ok(Some(())) => continue,
                    Ok(None) => anyhow::bail!("the file watcher stopped"),
                    Err(_quiet) => break,
                },
            }
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
