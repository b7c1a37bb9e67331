//! `rag bench-store`: the configured store alone, with synthetic chunks
//! ([`rag_store::synthetic`]) at sizes no corpus here can be embedded to: upsert throughput,
//! then Search latency (the real hybrid search: dense and lexical rankings fused, the tenant
//! and groups filter applied) as written, and again after the search index is built, with the
//! share of the exact top 10 that the indexed search still returns.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use rag_store::synthetic::Synthetic;
use rag_store::{SearchFilter, StoreConfig, Visibility};

use crate::bench::{cpu_name, pct, proc_status_mb};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct BenchStoreArgs {
    /// Store sizes to measure, in chunks.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000])]
    points: Vec<u64>,
    /// Dimensions of the dense vectors (the default embedding model's: 384).
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Timed searches per size and state.
    #[arg(long, default_value_t = 200)]
    searches: usize,
    /// Results per search.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Where the embedded stores are built (default: a temporary directory); each size gets
    /// its own, removed afterwards. The server backend uses a collection per size instead,
    /// named after `store.collection`, and drops it afterwards.
    #[arg(long)]
    scratch: Option<PathBuf>,
}

const POINTS_PER_UPSERT: u64 = 1024;
const MODEL: &str = "synthetic";

pub async fn run(config: Config, args: BenchStoreArgs) -> anyhow::Result<()> {
    let scratch = match &args.scratch {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    println!("# rag bench-store");
    println!();
    println!(
        "machine: {} cores, {}; {}-dimensional vectors; {} searches of {} results per row",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_name(),
        args.dim,
        args.searches,
        args.limit
    );
    println!();
    println!(
        "| backend | chunks | upsert chunks/s | Search p50 / p99, as written | index build | Search p50 / p99, indexed | top-{} kept | disk | RSS |",
        args.limit
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &points in &args.points {
        // The configured backend, with a store of its own for each size.
        let store_config = config
            .store()
            .beside(scratch.path(), &format!("bench-{points}"));
        let row = measure(&store_config, points, &args).await?;
        println!("{row}");
    }
    Ok(())
}

async fn measure(
    config: &StoreConfig,
    points: u64,
    args: &BenchStoreArgs,
) -> anyhow::Result<String> {
    let store = rag_store::open(config, args.dim, MODEL).await?;
    anyhow::ensure!(
        store.count().await? == 0,
        "{}: not empty; the benchmark needs a store of its own",
        store.stats().await?.backend
    );
    let data = std::sync::Arc::new(Synthetic::new(args.dim, MODEL, points));

    // Upsert: batches generated off the clock (on another thread, one batch ahead).
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let generator = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            let mut start = 0;
            while start < points {
                let end = (start + POINTS_PER_UPSERT).min(points);
                let batch: Vec<_> = (start..end).map(|i| data.point(i)).collect();
                if tx.blocking_send(batch).is_err() {
                    return;
                }
                start = end;
            }
        })
    };
    let mut writing = Duration::ZERO;
    while let Some(batch) = rx.recv().await {
        let started = Instant::now();
        store.upsert(batch).await?;
        writing += started.elapsed();
    }
    generator.await?;
    let started = Instant::now();
    store.flush().await?;
    writing += started.elapsed();
    anyhow::ensure!(store.count().await? == points, "points lost in the upsert");
    let upsert_rate = points as f64 / writing.as_secs_f64();

    let targets: Vec<u64> = (0..args.searches as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) % points)
        .collect();
    let (plain, exact) = searches(&store, &data, &targets, args.limit).await?;
    let started = Instant::now();
    store.optimize().await?;
    let build = started.elapsed();
    let (indexed, found) = searches(&store, &data, &targets, args.limit).await?;
    let kept = exact
        .iter()
        .zip(&found)
        .map(|(e, f)| e.iter().filter(|id| f.contains(id)).count())
        .sum::<usize>() as f64
        / exact.iter().map(Vec::len).sum::<usize>().max(1) as f64;

    let (backend, disk) = match config.data_dir() {
        Some(data_dir) => ("embedded", dir_size(data_dir)),
        None => ("Qdrant server", 0),
    };
    let rss = proc_status_mb("VmRSS:");
    match config.data_dir() {
        Some(data_dir) => {
            drop(store);
            fs_err::remove_dir_all(data_dir)?;
        }
        None => store.drop_collection().await?,
    }
    Ok(format!(
        "| {backend} | {points} | {upsert_rate:.0} | {:.1} / {:.1} ms | {:.1} s | {:.1} / {:.1} ms | {:.3} | {} | {rss:.0} MB |",
        pct(&plain, 50.0),
        pct(&plain, 99.0),
        build.as_secs_f64(),
        pct(&indexed, 50.0),
        pct(&indexed, 99.0),
        kept,
        if disk > 0 {
            format!("{:.0} MB", disk as f64 / 1e6)
        } else {
            "(server)".into()
        },
    ))
}

/// One search per target, one at a time: sorted latencies and each search's result ids.
async fn searches(
    store: &rag_store::Store,
    data: &Synthetic,
    targets: &[u64],
    limit: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Vec<(String, u32)>>)> {
    let filter = SearchFilter {
        path_prefix: None,
        doc_ids: vec![],
        // What a key limited to some groups searches with: the filter is part of the cost.
        visibility: Visibility::Groups(vec!["staff".into()]),
    };
    let mut times = Vec::with_capacity(targets.len());
    let mut results = Vec::with_capacity(targets.len());
    for (i, &target) in targets.iter().enumerate() {
        let query = data.query(target, i as u64);
        let started = Instant::now();
        let hits = store.search(query, limit, &filter).await?;
        times.push(started.elapsed());
        results.push(
            hits.into_iter()
                .map(|h| (h.payload.doc_id, h.payload.chunk_index))
                .collect(),
        );
    }
    times.sort();
    Ok((times, results))
}

/// Bytes a directory takes on disk.
fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.filter_map(Result::ok).map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        use std::os::unix::fs::MetadataExt;
        // Allocated, not apparent: sparse memory-mapped files are mostly holes.
        meta.blocks() * 512
    }
}
