//! `rag bench`: the pipeline measured against its raw parts on the same inputs.
//!
//! - ingest: chunks/s of `rag ingest` (walk, extract, chunk, embed, upsert) vs. embedding the very
//!   same chunk texts with the same model and batch size, and nothing else (in document order,
//!   and sorted by length as the pipeline batches them); files/s, MB/s, padding, peak RSS; the
//!   unchanged re-run; the same files under another folder (content-addressed reuse);
//! - search: latency of the gRPC Search call (embed + retrieve + transport), p50/p99;
//! - ask: time to first token and tokens/s of the gRPC Ask call vs. the same prompt decoded
//!   directly by the llama.cpp worker (greedy, same max_tokens), without retrieval or gRPC.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rag_api::Loaded;
use rag_ingest::{Chunker, Indexer, Padding, PdfExtractor, batch, extract, walk};
use rag_proto::v1 as pb;

use crate::config::Config;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The folder to index.
    #[arg(long, default_value = "examples/docs")]
    corpus: PathBuf,
    /// Questions, one per line (default: questions about the sample folder).
    #[arg(long)]
    questions: Option<PathBuf>,
    /// Timed Search calls.
    #[arg(long, default_value_t = 200)]
    searches: usize,
    /// Timed Ask calls (each also decoded raw).
    #[arg(long, default_value_t = 5)]
    asks: usize,
    /// Answer length for Ask, in tokens.
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// Only the ingest part (no search or ask).
    #[arg(long)]
    ingest_only: bool,
    /// Concurrent Ask levels to measure against raw batched decoding (e.g. 1,2,4,8,16);
    /// empty: none.
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Tokens per answer in the decoding part of `--concurrency` (end-of-generation ignored).
    #[arg(long, default_value_t = 128)]
    decode_tokens: usize,
}

pub async fn run(config: Config, args: BenchArgs) -> anyhow::Result<()> {
    let questions = crate::workload::questions(args.questions.as_deref())?;
    let scratch = tempfile::tempdir()?;
    let mut config = config;
    config.data_dir = scratch.path().join("data");
    // Every Ask is timed through generation: a question asked again (the raw comparison, the
    // concurrency levels reuse them) would otherwise come from the answer cache.
    config.query.engine.answer_cache = 0;

    println!("# rag bench");
    println!();
    println!("corpus: {}", args.corpus.display());
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_name()
    );
    println!();

    let (embedder, store, indexer, chunks) = ingest(&config, &args, scratch.path()).await?;
    if args.ingest_only {
        return Ok(());
    }

    // --- serve in-process on loopback --------------------------------------------------------
    let engine = crate::engine::load(&config, embedder, store).await?;
    let generator = engine.generator().clone();
    let retrieval = engine.default_retrieval();
    // Prompts for the raw comparison, built exactly as Ask builds them.
    let mut retrieval_prompts = Vec::new();
    for q in questions.iter() {
        // The questions are English: no translation to excerpt by.
        let hits = engine.retrieve(q, &retrieval).await?;
        retrieval_prompts.push(
            engine
                .prompt(q, None, None, hits, args.max_tokens as usize, None)
                .await,
        );
    }
    let raw_prompts: Vec<_> = retrieval_prompts
        .iter()
        .cycle()
        .take(args.asks)
        .cloned()
        .collect();
    let loaded = Loaded {
        engine,
        indexer: Arc::new(indexer),
    };
    let (mut client, stop, server) = serve_in_process(loaded, &questions[0]).await?;

    // --- search latency ----------------------------------------------------------------------
    search_latency(
        &mut client,
        &questions,
        &args,
        chunks,
        config.query.engine.top_k,
    )
    .await?;

    // --- ask vs raw decoding -----------------------------------------------------------------
    ask_vs_raw(
        &mut client,
        &generator,
        &questions,
        raw_prompts,
        &args,
        &config,
    )
    .await?;

    if !args.concurrency.is_empty() {
        concurrent_asks(&config, &client, &questions, &retrieval_prompts, &args).await?;
        decoding_together(&config, &generator, &retrieval_prompts, &args).await?;
        shared_prefix(&config, &retrieval_prompts).await?;
    }
    println!("peak RSS of this process: {:.0} MB", peak_rss_mb());

    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}

/// `rag ingest` over the corpus against embedding its chunks raw, printed as a table; the
/// embedder, store and indexer it leaves, and the chunks it wrote.
async fn ingest(
    config: &Config,
    args: &BenchArgs,
    scratch: &std::path::Path,
) -> anyhow::Result<(
    Arc<rag_embed::Embedder>,
    Arc<rag_store::Store>,
    Indexer,
    u64,
)> {
    let embed_config = config.embedding.clone();
    let started = Instant::now();
    let embedder = Arc::new(
        tokio::task::spawn_blocking(move || rag_embed::Embedder::load(&embed_config)).await??,
    );
    let embedder_load = started.elapsed();
    let chunker = Chunker::new(
        &config.embedding.tokenizer_file(),
        config.ingest.chunk_tokens,
        config.ingest.overlap_tokens,
    )?;
    let pdf = PdfExtractor::with_current_exe(Duration::from_secs(config.ingest.pdf_timeout_secs));

    let corpus = args.corpus.clone();
    let (texts, chunker, bytes) = {
        let pdf = pdf.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let (files, _) = walk(&corpus, &Default::default()).map_err(anyhow::Error::msg)?;
            let mut texts = Vec::new();
            let mut bytes = 0u64;
            for f in files {
                let data = fs_err::read(&f.path)?;
                bytes += data.len() as u64;
                if let Ok(doc) = extract::extract(f.media, &data, Some(&f.path), &pdf) {
                    texts.extend(chunker.chunk(f.media, &doc));
                }
            }
            Ok((texts, chunker, bytes))
        })
        .await??
    };
    anyhow::ensure!(!texts.is_empty(), "the corpus produced no chunks");
    let n_chunks = texts.len();
    let batch = config.ingest.embed_batch.max(1);
    let lengths: Vec<u32> = texts.iter().map(|c| c.tokens).collect();
    let strings: Vec<String> = texts.iter().map(|c| c.text.clone()).collect();
    let [(raw, doc_order_padding), (raw_sorted, sorted_padding)] =
        raw_embedding(embedder.clone(), &lengths, &strings, batch).await?;

    let store =
        rag_store::open(&config.store(), embedder.dimension(), embedder.model_name()).await?;
    let indexer = Indexer::new(
        embedder.clone(),
        store.clone(),
        chunker,
        pdf,
        config.ingest.clone(),
    )
    .with_manifest_dir(scratch.join("manifests"));
    let summary = indexer
        .index_folder(&args.corpus, &Default::default(), &|_| {})
        .await?;
    let rss_after_ingest = peak_rss_mb();
    let rerun = indexer
        .index_folder(&args.corpus, &Default::default(), &|_| {})
        .await?;
    // The same files under another folder: every chunk is already stored.
    let moved = scratch.join("moved-corpus");
    copy_tree(&args.corpus, &moved)?;
    let moved_run = indexer
        .index_folder(&moved, &Default::default(), &|_| {})
        .await?;

    let raw_rate = n_chunks as f64 / raw.as_secs_f64();
    let raw_sorted_rate = n_chunks as f64 / raw_sorted.as_secs_f64();
    let ingest_rate = summary.chunks_written as f64 / summary.seconds;
    let mb = bytes as f64 / 1e6;
    println!(
        "## Ingest ({} files, {mb:.1} MB, {} chunks)",
        summary.files, n_chunks
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| embedding model load | {:.2} s |",
        embedder_load.as_secs_f64()
    );
    println!(
        "| raw embedding, document order (batch {batch}) | {raw_rate:.1} chunks/s ({:.2} s); {:.1} % of tokens padding |",
        raw.as_secs_f64(),
        doc_order_padding.wasted_share() * 100.0
    );
    println!(
        "| raw embedding, sorted by length (batch {batch}) | {raw_sorted_rate:.1} chunks/s ({:.2} s); {:.1} % of tokens padding |",
        raw_sorted.as_secs_f64(),
        sorted_padding.wasted_share() * 100.0
    );
    println!(
        "| `rag ingest` pipeline, first run | {ingest_rate:.1} chunks/s ({:.2} s); {:.1} files/s, {:.2} MB/s |",
        summary.seconds,
        summary.files as f64 / summary.seconds,
        mb / summary.seconds
    );
    println!(
        "| pipeline: chunks embedded / reused by content / padding | {} / {} / {:.1} % of tokens |",
        summary.embedding.chunks_embedded,
        summary.embedding.chunks_reused,
        summary.embedding.padding.wasted_share() * 100.0
    );
    println!(
        "| pipeline / raw (document order) | {:.1} % |",
        100.0 * ingest_rate / raw_rate
    );
    println!(
        "| pipeline / raw (sorted by length) | {:.1} % |",
        100.0 * ingest_rate / raw_sorted_rate
    );
    println!(
        "| unchanged re-run | {:.3} s, {} files read, {} chunks written |",
        rerun.seconds, rerun.files_read, rerun.chunks_written
    );
    println!(
        "| same files under a new folder | {:.2} s, {} chunks written, {} embedded |",
        moved_run.seconds, moved_run.chunks_written, moved_run.embedding.chunks_embedded
    );
    println!("| failed files | {} |", summary.failed.len());
    println!("| peak RSS after the first run | {rss_after_ingest:.0} MB |");
    println!();
    Ok((embedder, store, indexer, summary.chunks_written))
}

/// The chunk texts embedded with nothing else, in batches of `batch`: in document order, then
/// sorted by length as the pipeline batches them; each plan's time and padding.
async fn raw_embedding(
    embedder: Arc<rag_embed::Embedder>,
    lengths: &[u32],
    texts: &[String],
    batch: usize,
) -> anyhow::Result<[(Duration, Padding); 2]> {
    let padding_of = |by_length: bool| {
        let mut total = Padding::default();
        for b in batch::plan(lengths, batch, by_length) {
            total.add(batch::padding(lengths, &b));
        }
        total
    };
    let paddings = [padding_of(false), padding_of(true)];
    let raw_batches = |by_length: bool| -> Vec<Vec<String>> {
        batch::plan(lengths, batch, by_length)
            .into_iter()
            .map(|b| b.into_iter().map(|i| texts[i].clone()).collect())
            .collect()
    };
    let (in_order, sorted) = (raw_batches(false), raw_batches(true));
    let (raw, raw_sorted) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        // Warm ONNX Runtime up first, as the pipeline run below benefits from a warm session too.
        embedder.embed(in_order[0].clone())?;
        let mut timed = Vec::new();
        for batches in [in_order, sorted] {
            let started = Instant::now();
            for b in batches {
                embedder.embed(b)?;
            }
            timed.push(started.elapsed());
        }
        Ok((timed[0], timed[1]))
    })
    .await??;
    let [in_order, sorted] = paddings;
    Ok([(raw, in_order), (raw_sorted, sorted)])
}

/// The service on a loopback port of this process, serving `loaded`, and a client that has
/// seen it answer; the sender stops it.
async fn serve_in_process(
    loaded: Loaded,
    first_question: &str,
) -> anyhow::Result<(
    crate::client::Client,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), rag_grpc::server::ServeError>>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rag_grpc::server::run(
        listener,
        rag_listen::Limits::default(),
        // Loopback, in-process: no keys to check (a key check is one SHA-256 of a short string).
        std::sync::Arc::new(rag_auth::Gate::open()),
        None,
        async move { Ok(loaded) },
        rag_grpc::Serving::default(),
        async move {
            let _ = stopped.await;
        },
        tokio::sync::watch::channel(false).0,
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = crate::client::ApiKey::none().client(channel);
    // Wait for the engine to be installed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .search(search_request(first_question))
        .await
        .is_err_and(|e| e.code() == tonic::Code::Unavailable)
    {
        anyhow::ensure!(Instant::now() < deadline, "service did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    Ok((client, stop, server))
}

/// Timed gRPC Search calls, printed as percentiles.
async fn search_latency(
    client: &mut crate::client::Client,
    questions: &[String],
    args: &BenchArgs,
    chunks: u64,
    top_k: usize,
) -> anyhow::Result<()> {
    let mut latencies = Vec::with_capacity(args.searches);
    for q in questions.iter().cycle().take(args.searches) {
        let started = Instant::now();
        client.search(search_request(q)).await.context("search")?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "## Search over gRPC ({} calls, {} points, top_k {})",
        args.searches, chunks, top_k
    );
    println!();
    println!("| p50 | p90 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        pct(&latencies, 50.0),
        pct(&latencies, 90.0),
        pct(&latencies, 99.0),
        pct(&latencies, 100.0)
    );
    println!();

    Ok(())
}

/// Ask over gRPC against raw llama.cpp decoding of the same prompts, one row per question.
async fn ask_vs_raw(
    client: &mut crate::client::Client,
    generator: &rag_llm::Generator,
    questions: &[String],
    raw_prompts: Vec<rag_engine::Prompt>,
    args: &BenchArgs,
    config: &Config,
) -> anyhow::Result<()> {
    println!(
        "## Ask over gRPC vs raw llama.cpp decoding of the same prompt (greedy, max {} tokens, {} threads)",
        args.max_tokens,
        threads(config)
    );
    println!();
    println!(
        "| question | prompt tokens | answer tokens | Ask TTFT | raw TTFT | Ask tok/s | raw tok/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut sums = [0.0f64; 4];
    let mut counted = 0;
    for (q, prompt) in questions.iter().cycle().zip(raw_prompts) {
        let ask = timed_ask(client, q, args.max_tokens).await?;
        let raw = timed_raw(generator, &prompt, args.max_tokens as usize).await?;
        println!(
            "| {} | {} | {} | {:.0} ms | {:.0} ms | {:.1} | {:.1} |",
            q, raw.prompt_tokens, ask.tokens, ask.ttft_ms, raw.ttft_ms, ask.tps, raw.tps
        );
        sums[0] += ask.ttft_ms;
        sums[1] += raw.ttft_ms;
        sums[2] += ask.tps;
        sums[3] += raw.tps;
        counted += 1;
    }
    let n = counted.max(1) as f64;
    println!(
        "| **mean** | | | **{:.0} ms** | **{:.0} ms** | **{:.1}** | **{:.1}** |",
        sums[0] / n,
        sums[1] / n,
        sums[2] / n,
        sums[3] / n
    );
    println!();

    Ok(())
}

/// `c` Asks at once, for each level `c`, next to raw llama.cpp decoding of the same prompts
/// together (greedy, the same threads, step size and sequences: `parallel` at a time).
async fn concurrent_asks(
    config: &Config,
    client: &crate::client::Client,
    questions: &[String],
    prompts: &[rag_engine::Prompt],
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let parallel = config.llm.parallel;
    println!(
        "## Concurrent Asks over gRPC vs raw batched decoding (greedy, max {} tokens, {} threads, `llm.parallel` {parallel}, `llm.step_tokens` {}, shared prefix {})",
        args.max_tokens,
        threads(config),
        config.llm.step_tokens,
        if config.llm.share_prefix { "on" } else { "off" },
    );
    println!();
    println!(
        "| concurrent | answer tokens | Ask aggregate tok/s | raw aggregate tok/s | Ask / raw | per-request tok/s | TTFT p50 | TTFT p99 | wall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut one_stream = None;
    for &c in &args.concurrency {
        let started = Instant::now();
        let calls: Vec<_> = questions
            .iter()
            .cycle()
            .take(c)
            .map(|q| {
                let mut client = client.clone();
                let q = q.clone();
                let max_tokens = args.max_tokens;
                tokio::spawn(async move { timed_ask(&mut client, &q, max_tokens).await })
            })
            .collect();
        let mut timed = Vec::new();
        for call in calls {
            timed.push(call.await??);
        }
        let wall = started.elapsed();
        let tokens: u32 = timed.iter().map(|t| t.tokens).sum();
        let aggregate = f64::from(tokens) / wall.as_secs_f64();

        // The same prompts, `parallel` at a time, decoded together with nothing around them.
        let turns: Vec<rag_llm::Request> = prompts
            .iter()
            .cycle()
            .take(c)
            .map(|p| p.request(args.max_tokens as usize, 0.0, 0))
            .collect();
        let mut llm = config.llm.clone();
        llm.parallel = parallel.min(c);
        let max_tokens = args.max_tokens as usize;
        let raw = tokio::task::spawn_blocking(move || -> anyhow::Result<(usize, Duration)> {
            let mut tokens = 0;
            let mut took = Duration::ZERO;
            for wave in turns.chunks(llm.parallel) {
                let run = rag_llm::raw::decode_together(&llm, wave, max_tokens, false)?;
                tokens += run.completion_tokens;
                took += run.prompt_eval + run.generation;
            }
            Ok((tokens, took))
        })
        .await??;
        let raw_aggregate = raw.0 as f64 / raw.1.as_secs_f64();
        let mut ttft: Vec<Duration> = timed
            .iter()
            .map(|t| Duration::from_secs_f64(t.ttft_ms / 1e3))
            .collect();
        ttft.sort();
        let per_request = timed.iter().map(|t| t.tps).sum::<f64>() / timed.len() as f64;
        one_stream.get_or_insert(aggregate);
        println!(
            "| {c} | {tokens} (raw {}) | {aggregate:.1} | {raw_aggregate:.1} | {:.0} % | {per_request:.1} | {:.0} ms | {:.0} ms | {:.1} s |",
            raw.0,
            100.0 * aggregate / raw_aggregate,
            pct(&ttft, 50.0),
            pct(&ttft, 99.0),
            wall.as_secs_f64(),
        );
    }
    println!();
    println!(
        "Aggregate: answer tokens of all calls / wall time from the first call to the last answer (prompts included); raw: the same for `rag_llm::raw::decode_together`. Per-request: each answer's tokens after the first / its streaming time, averaged."
    );
    println!();
    Ok(())
}

/// Decoding alone, without the model's early stops: `c` answers of exactly `--decode-tokens`
/// tokens (end-of-generation ignored) through the scheduler, next to raw llama.cpp decoding of
/// the same prompts together. The scheduler's rate is taken while all `c` answers are being
/// generated (from the last first token to the first finished answer), the raw rate over its
/// decoding phase (all prompts read first).
async fn decoding_together(
    config: &Config,
    generator: &Arc<rag_llm::Generator>,
    prompts: &[rag_engine::Prompt],
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let tokens = args.decode_tokens;
    println!(
        "## Decoding together: the scheduler vs raw batched decoding ({tokens} tokens per answer, end-of-generation ignored, `llm.parallel` {})",
        config.llm.parallel
    );
    println!();
    println!(
        "| answers | scheduler tok/s (all generating) | raw decoding tok/s | scheduler / raw | per answer tok/s | TTFT p50 | TTFT p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &c in args
        .concurrency
        .iter()
        .filter(|&&c| c <= config.llm.parallel)
    {
        let started = Instant::now();
        let mut receivers = Vec::new();
        for p in prompts.iter().cycle().take(c) {
            let mut request = p.request(tokens, 0.0, 0);
            request.ignore_eos = true;
            receivers.push(generator.generate(request)?);
        }
        // Each answer read by its own task, so a token's time is when it arrived.
        let readers: Vec<_> = receivers
            .into_iter()
            .map(|mut rx| {
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    while let Some(event) = rx.recv().await {
                        match event {
                            rag_llm::Event::Token(_) => times.push(Instant::now()),
                            rag_llm::Event::Done(_) => break,
                            rag_llm::Event::Failed(e) => return Err(e),
                        }
                    }
                    Ok(times)
                })
            })
            .collect();
        let mut arrivals: Vec<Vec<Instant>> = Vec::new();
        for reader in readers {
            arrivals.push(reader.await??);
        }
        let all_generating = arrivals.iter().filter_map(|t| t.first()).max().copied();
        let first_done = arrivals.iter().filter_map(|t| t.last()).min().copied();
        // None when the first answer ended before the last one started (prompts still being
        // read while the first answers ran out): there was no moment with all generating.
        let steady = match (all_generating, first_done) {
            (Some(from), Some(to)) if to > from => {
                let inside: usize = arrivals
                    .iter()
                    .map(|t| t.iter().filter(|&&i| i > from && i <= to).count())
                    .sum();
                Some(inside as f64 / (to - from).as_secs_f64())
            }
            _ => None,
        };
        let mut ttft: Vec<Duration> = arrivals
            .iter()
            .filter_map(|t| t.first().map(|f| *f - started))
            .collect();
        ttft.sort();
        let per_answer = arrivals
            .iter()
            .filter(|t| t.len() > 1)
            .map(|t| (t.len() - 1) as f64 / (t[t.len() - 1] - t[0]).as_secs_f64())
            .sum::<f64>()
            / c as f64;

        let turns: Vec<rag_llm::Request> = prompts
            .iter()
            .cycle()
            .take(c)
            .map(|p| p.request(tokens, 0.0, 0))
            .collect();
        let llm = rag_llm::LlmConfig {
            parallel: c,
            ..config.llm.clone()
        };
        let raw = tokio::task::spawn_blocking(move || {
            rag_llm::raw::decode_together(&llm, &turns, tokens, true)
        })
        .await??;
        let (steady, ratio) = match steady {
            Some(s) => (
                format!("{s:.1}"),
                format!("{:.0} %", 100.0 * s / raw.tokens_per_second()),
            ),
            None => ("never all at once".to_owned(), "–".to_owned()),
        };
        println!(
            "| {c} | {steady} | {:.1} | {ratio} | {per_answer:.1} | {:.0} ms | {:.0} ms |",
            raw.tokens_per_second(),
            pct(&ttft, 50.0),
            pct(&ttft, 99.0),
        );
    }
    println!();
    Ok(())
}

/// Time to first token with the system turn shared (copied from sequence 0) and evaluated
/// with every prompt, on the same prompts, alternating, one answer at a time.
async fn shared_prefix(config: &Config, prompts: &[rag_engine::Prompt]) -> anyhow::Result<()> {
    let start = |share_prefix: bool| {
        let llm = rag_llm::LlmConfig {
            share_prefix,
            parallel: 1,
            ..config.llm.clone()
        };
        tokio::task::spawn_blocking(move || rag_llm::Generator::start(&llm))
    };
    let (shared, unshared) = (start(true).await??, start(false).await??);
    let mut sums = [Duration::ZERO; 2];
    let (mut shared_tokens, mut prompt_tokens, mut n) = (0, 0, 0);
    for round in 0..3 {
        for p in prompts {
            for (i, g) in [&shared, &unshared].into_iter().enumerate() {
                let mut rx = g.generate(p.request(1, 0.0, 0))?;
                while let Some(event) = rx.recv().await {
                    match event {
                        rag_llm::Event::Done(stats) => {
                            // The first round warms both up.
                            if round > 0 {
                                sums[i] += stats.first_token;
                                if i == 0 {
                                    shared_tokens += stats.shared_prompt_tokens;
                                    prompt_tokens += stats.prompt_tokens;
                                    n += 1;
                                }
                            }
                        }
                        rag_llm::Event::Failed(e) => return Err(e.into()),
                        rag_llm::Event::Token(_) => {}
                    }
                }
            }
        }
    }
    let n = n.max(1);
    let mean = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
    println!(
        "## Shared prefix: time to first token, system turn shared vs evaluated with each prompt"
    );
    println!();
    println!(
        "| prompts | mean prompt tokens | shared tokens | TTFT shared | TTFT not shared | gain |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {n} | {} | {} | {:.0} ms | {:.0} ms | {:.1} % |",
        prompt_tokens / n,
        shared_tokens / n,
        mean(sums[0]),
        mean(sums[1]),
        100.0 * (1.0 - sums[0].as_secs_f64() / sums[1].as_secs_f64())
    );
    println!();
    Ok(())
}

fn search_request(q: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        query: q.to_owned(),
        retrieval: None,
    }
}

struct Timed {
    ttft_ms: f64,
    tps: f64,
    tokens: u32,
    prompt_tokens: usize,
}

async fn timed_ask(
    client: &mut crate::client::Client,
    question: &str,
    max_tokens: u32,
) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let (first, tokens, last) =
        crate::workload::streamed_ask(client, question, max_tokens, started)
            .await
            .map_err(|code| anyhow::anyhow!("ask: {code:?}"))?;
    Ok(Timed {
        ttft_ms: first.as_secs_f64() * 1e3,
        tps: rate(tokens as usize, last.saturating_sub(first)),
        tokens,
        prompt_tokens: 0,
    })
}

async fn timed_raw(
    generator: &rag_llm::Generator,
    prompt: &rag_engine::Prompt,
    max_tokens: usize,
) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let mut rx = generator.generate(prompt.request(max_tokens, 0.0, 0))?;
    let mut first = None;
    let mut last = started.elapsed();
    while let Some(event) = rx.recv().await {
        match event {
            rag_llm::Event::Token(_) => {
                first.get_or_insert(started.elapsed());
                last = started.elapsed();
            }
            rag_llm::Event::Done(stats) => {
                let first = first.unwrap_or(last);
                return Ok(Timed {
                    ttft_ms: first.as_secs_f64() * 1e3,
                    tps: rate(stats.completion_tokens, last.saturating_sub(first)),
                    tokens: stats.completion_tokens as u32,
                    prompt_tokens: stats.prompt_tokens,
                });
            }
            rag_llm::Event::Failed(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("generation ended without a result")
}

/// Tokens after the first, per second of streaming.
fn rate(tokens: usize, streaming: Duration) -> f64 {
    if tokens < 2 || streaming.is_zero() {
        0.0
    } else {
        (tokens - 1) as f64 / streaming.as_secs_f64()
    }
}

pub(crate) fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn threads(config: &Config) -> u32 {
    if config.llm.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    } else {
        config.llm.threads
    }
}

pub(crate) fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub(crate) fn peak_rss_mb() -> f64 {
    proc_status_mb("VmHWM:")
}

/// A memory figure of this process from /proc/self/status ("VmHWM:", "VmRSS:"), in MB.
pub(crate) fn proc_status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    fs_err::create_dir_all(to)?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if entry.file_type()?.is_file() {
            fs_err::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
