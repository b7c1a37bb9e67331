//! `rag ingest --watch`: the worker mode. Indexes the folder, then re-runs the (incremental)
//! ingest whenever files change, once the folder has been quiet for the debounce interval.
//! Each run costs a walk and a stat per file plus the work for what changed, so a burst of
//! edits becomes one run.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use rag_ingest::{Event, Indexer, Selection, Summary};
use tokio::sync::mpsc;

/// Runs until SIGINT or SIGTERM. `report` gets every run's summary.
pub async fn run(
    indexer: &Indexer,
    folder: &Path,
    selection: &Selection,
    debounce: Duration,
    on_event: &(dyn Fn(Event<'_>) + Send + Sync),
    report: &dyn Fn(&Summary),
) -> anyhow::Result<()> {
    let (tx, mut changes) = mpsc::unbounded_channel();
    // Watching starts before the first run, so nothing changed during it is missed.
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Our own reads raise access events; only changes matter.
            Ok(e) if matches!(e.kind, EventKind::Access(_) | EventKind::Other) => {}
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(e) => tracing::warn!(error = %e, "file watch"),
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(folder, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", folder.display()))?;
    tracing::info!(folder = %folder.display(), "watching for changes");

    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        match indexer.index_folder(folder, selection, on_event).await {
            Ok(summary) => report(&summary),
            // The store may come back (a restarting Qdrant server): keep watching.
            Err(e) => tracing::error!(error = %format!("{e:#}"), "ingest run failed"),
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
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
