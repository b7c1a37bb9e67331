use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rag_ingest::{Event, Indexer, Outcome, Plan, Selection, SkipKind, Skipped, Summary};

use crate::config::Config;

/// Exit code when the run finished but some files could not be indexed.
pub const EXIT_SOME_FAILED: u8 = 3;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The folder to index (honours .gitignore, .ignore and .ragignore files).
    folder: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also write the summary as JSON to this file (every failed file with its reason).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// List what would be added, changed and deleted, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only files matching this glob (gitignore syntax, relative to the folder; repeatable).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Leave out files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Read and hash every file, even those whose size and mtime are unchanged since the last
    /// run (for files rewritten with their old mtime kept, e.g. `rsync --times`).
    #[arg(long)]
    rehash: bool,
    /// Keep running: re-index whenever files in the folder change (the worker mode). With
    /// --json, one summary per run, one JSON object per line.
    #[arg(long, conflicts_with = "dry_run")]
    watch: bool,
    /// With --watch: how long the folder must be quiet before a run starts.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    debounce_ms: u64,
}

pub async fn run(config: Config, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let indexer = open_indexer(&config).await?.rehash(args.rehash);
    let selection = Selection {
        include: args.include.clone(),
        exclude: args.exclude.clone(),
    };
    if args.dry_run {
        let plan = indexer
            .plan_folder(&args.folder, &selection)
            .await
            .with_context(|| format!("planning {}", args.folder.display()))?;
        print_plan(&plan, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }

    if args.watch {
        let progress = Progress::new(false);
        let on_event = |event: Event<'_>| progress.on_event(event);
        let report = |summary: &Summary| {
            if args.json {
                println!("{}", summary_json(summary));
            } else {
                print_summary(summary);
            }
        };
        crate::watch::run(
            &indexer,
            &args.folder,
            &selection,
            Duration::from_millis(args.debounce_ms),
            Some(config.data_dir.clone()),
            &on_event,
            &report,
        )
        .await?;
        return Ok(ExitCode::SUCCESS);
    }

    let progress = Progress::new(!args.json);
    let on_event = |event: Event<'_>| progress.on_event(event);
    let summary = indexer
        .index_folder(&args.folder, &selection, &on_event)
        .await
        .with_context(|| format!("indexing {}", args.folder.display()))?;
    progress.finish();
    let json = serde_json::to_string_pretty(&summary_json(&summary))?;
    if let Some(path) = &args.report {
        fs_err::write(path, format!("{json}\n"))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_summary(&summary);
    }
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SOME_FAILED)
    })
}

/// A progress bar (files, chunks, rate, ETA) on a terminal; log lines otherwise.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    chunks: AtomicU64,
}

impl Progress {
    pub(crate) fn new(allowed: bool) -> Self {
        let bar = (allowed && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files ({per_sec}, eta {eta}) {wide_msg}",
                )
                .expect("valid template"),
            );
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            chunks: AtomicU64::new(0),
        }
    }

    pub(crate) fn on_event(&self, event: Event<'_>) {
        match event {
            Event::Walked { files } => {
                // A rebuild walks one folder after another through the same bar.
                if let Some(bar) = &self.bar {
                    bar.reset();
                    bar.set_length(files as u64);
                }
            }
            Event::Embedded { chunks } => {
                self.chunks.store(chunks, Ordering::Relaxed);
                let rate = chunks as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                match &self.bar {
                    Some(bar) => bar.set_message(format!("{chunks} chunks embedded ({rate:.1}/s)")),
                    None => tracing::info!(chunks, rate = format!("{rate:.1}/s"), "embedded"),
                }
            }
            Event::Indexing => match &self.bar {
                Some(bar) => bar.set_message("building the search index"),
                None => tracing::info!("building the search index"),
            },
            Event::File { path, result } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                match result {
                    Ok(Outcome::Indexed { chunks, .. }) => tracing::info!(path, chunks, "indexed"),
                    Ok(Outcome::Unchanged) => tracing::debug!(path, "unchanged"),
                    Err(e) => {
                        let line = format!("rag: failed: {e}");
                        match &self.bar {
                            Some(bar) => bar.println(line),
                            None => eprintln!("{line}"),
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub(crate) fn print_summary(s: &Summary) {
    println!("{}", summary_line(s));
    let e = &s.embedding;
    if e.chunks_embedded + e.chunks_reused > 0 {
        println!(
            "  {} files read ({:.1} MB); {} chunks embedded, {} reused by content; {:.1} % of embedded tokens were padding",
            s.files_read,
            s.bytes_read as f64 / 1e6,
            e.chunks_embedded,
            e.chunks_reused,
            e.padding.wasted_share() * 100.0
        );
    }
    if s.index_seconds > 0.0 {
        println!("  search index built in {:.1} s", s.index_seconds);
    }
    for f in &s.failed {
        println!("  failed: {}: {}", f.path, f.reason);
    }
    for line in skipped_lines(&s.skipped) {
        println!("{line}");
    }
}

/// The summary's first line: counts of what the run did.
fn summary_line(s: &Summary) -> String {
    format!(
        "{} files: {} indexed, {} unchanged, {} failed, {} deleted; {} chunks written, {} removed; {}; {:.1} s",
        s.files,
        s.indexed,
        s.unchanged,
        s.failed.len(),
        s.deleted,
        s.chunks_written,
        s.points_deleted,
        skipped_counts(&s.skipped),
        s.seconds
    )
}

/// "N skipped (a unsupported type, b symbolic links, not followed, ...)".
fn skipped_counts(skipped: &[Skipped]) -> String {
    let parts: Vec<String> = SkipKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let n = skipped.iter().filter(|s| s.kind == kind).count();
            (n > 0).then(|| format!("{n} {}", skip_label(kind, n)))
        })
        .collect();
    if parts.is_empty() {
        return "0 skipped".into();
    }
    format!("{} skipped ({})", skipped.len(), parts.join(", "))
}

fn skip_label(kind: SkipKind, n: usize) -> &'static str {
    match (kind, n) {
        (SkipKind::Unsupported, _) => "unsupported type",
        (SkipKind::SymbolicLink, 1) => "symbolic link, not followed",
        (SkipKind::SymbolicLink, _) => "symbolic links, not followed",
        (SkipKind::SameName, _) => "same name as another file once Unicode-normalised",
        (SkipKind::Unreadable, _) => "unreadable",
    }
}

/// What was skipped for a reason the user may not expect (all but unsupported types), one
/// line each: a link the user meant to be indexed must not vanish without a word.
fn skipped_lines(skipped: &[Skipped]) -> Vec<String> {
    let mut lines: Vec<String> = skipped
        .iter()
        .filter(|s| s.kind == SkipKind::SymbolicLink)
        .map(|s| {
            format!(
                "  skipped symbolic link (not followed): {}",
                s.path.display()
            )
        })
        .collect();
    if !lines.is_empty() {
        let n = lines.len();
        lines.insert(
            0,
            format!(
                "  skipped {n} symbolic link{}: links are not followed; index the target folder itself to include it",
                if n == 1 { "" } else { "s" }
            ),
        );
    }
    lines.extend(
        skipped
            .iter()
            .filter(|s| matches!(s.kind, SkipKind::SameName | SkipKind::Unreadable))
            .map(|s| format!("  skipped: {}: {}", s.path.display(), s.reason)),
    );
    lines
}

fn print_plan(plan: &Plan, json: bool) -> anyhow::Result<()> {
    if json {
        let value = serde_json::json!({
            "add": plan.add,
            "change": plan.change,
            "unchanged": plan.unchanged.len(),
            "delete": plan.delete,
            "failed": plan.failed.iter().map(|f| serde_json::json!({"path": f.path, "reason": f.reason})).collect::<Vec<_>>(),
            "skipped_symbolic_links": plan.skipped_of(SkipKind::SymbolicLink),
            "skipped": skipped_json(&plan.skipped),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    for path in &plan.add {
        println!("add     {path}");
    }
    for path in &plan.change {
        println!("change  {path}");
    }
    for path in &plan.delete {
        println!("delete  {path}");
    }
    for f in &plan.failed {
        println!("fail    {}: {}", f.path, f.reason);
    }
    for line in skipped_lines(&plan.skipped) {
        println!("{line}");
    }
    println!(
        "dry run: {} to add, {} to change, {} to delete, {} unchanged, {} unreadable; nothing written",
        plan.add.len(),
        plan.change.len(),
        plan.delete.len(),
        plan.unchanged.len(),
        plan.failed.len()
    );
    Ok(())
}

fn summary_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "files": s.files,
        "indexed": s.indexed,
        "unchanged": s.unchanged,
        "deleted": s.deleted,
        "chunks_written": s.chunks_written,
        "points_deleted": s.points_deleted,
        "points_total": s.points_total,
        "seconds": s.seconds,
        "index_seconds": s.index_seconds,
        "files_read": s.files_read,
        "bytes_read": s.bytes_read,
        "chunks_embedded": s.embedding.chunks_embedded,
        "chunks_reused": s.embedding.chunks_reused,
        "tokens_real": s.embedding.padding.real,
        "tokens_computed": s.embedding.padding.computed,
        "embed_seconds": s.embedding.embed_seconds,
        "failed": s.failed.iter().map(|f| serde_json::json!({"path": f.path, "reason": f.reason})).collect::<Vec<_>>(),
        "skipped_symbolic_links": s.skipped_of(SkipKind::SymbolicLink),
        "skipped": skipped_json(&s.skipped),
    })
}

fn skipped_json(skipped: &[Skipped]) -> Vec<serde_json::Value> {
    skipped
        .iter()
        .map(|f| {
            serde_json::json!({
                "path": f.path.display().to_string(),
                "kind": f.kind.name(),
                "reason": f.reason,
            })
        })
        .collect()
}

/// The embedding model, the store and the indexer over them, as configured.
pub async fn open_indexer(config: &Config) -> anyhow::Result<Indexer> {
    let embedder = load_embedder(config).await?;
    let store = rag_store::open(&config.store(), embedder.dimension(), embedder.model_name())
        .await
        .map_err(explain_store_error)?;
    Ok(
        indexer_over(config, embedder, store, config.ingest.clone())?
            .with_manifest_dir(config.data_dir.join("manifests")),
    )
}

/// The configured embedding model, loaded.
pub async fn load_embedder(config: &Config) -> anyhow::Result<Arc<rag_embed::Embedder>> {
    let embed_config = config.embedding.clone();
    let embedder =
        tokio::task::spawn_blocking(move || rag_embed::Embedder::load(&embed_config)).await??;
    Ok(Arc::new(embedder))
}

/// An indexer over `store` with `embedder`, the configured chunking and `ingest` settings.
pub fn indexer_over(
    config: &Config,
    embedder: Arc<rag_embed::Embedder>,
    store: Arc<rag_store::Store>,
    ingest: rag_ingest::IngestConfig,
) -> anyhow::Result<Indexer> {
    Ok(Indexer::configured(
        embedder,
        store,
        &config.embedding.tokenizer_file(),
        ingest,
    )?)
}

/// Adds the likely cause to errors operators hit first.
pub fn explain_store_error(e: rag_store::StoreError) -> anyhow::Error {
    match e {
        rag_store::StoreError::Locked { .. } => anyhow::anyhow!(
            "{e}\nhint: another process (a running `rag serve`?) holds this data directory; \
             stop it, or send documents to it with IngestDocument"
        ),
        e => anyhow::Error::new(e),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn skipped(path: &str, kind: SkipKind) -> Skipped {
        Skipped {
            path: PathBuf::from(path),
            kind,
            reason: "why".into(),
        }
    }

    #[test]
    fn skipped_symbolic_links_are_counted_and_named_in_the_summary() {
        let summary = Summary {
            skipped: vec![
                skipped("/docs/image.png", SkipKind::Unsupported),
                skipped("/docs/vault.md", SkipKind::SymbolicLink),
                skipped("/docs/shared", SkipKind::SymbolicLink),
            ],
            ..Summary::default()
        };
        let line = summary_line(&summary);
        assert!(
            line.contains("; 3 skipped (1 unsupported type, 2 symbolic links, not followed);"),
            "{line}"
        );
        let lines = skipped_lines(&summary.skipped);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("  skipped 2 symbolic links:"),
            "{lines:?}"
        );
        assert!(lines[1].ends_with("/docs/vault.md"), "{lines:?}");
        let json = summary_json(&summary);
        assert_eq!(json["skipped_symbolic_links"], 2);
        assert_eq!(json["skipped"][1]["kind"], "symbolic_link");

        let none = summary_line(&Summary::default());
        assert!(none.contains("; 0 skipped;"), "{none}");
    }
}
