//! `rag`: index a folder, serve questions over gRPC, and ask them.

mod bench;
mod bench_store;
mod client;
mod config;
mod engine;
mod eval;
mod feedback;
mod ingest;
mod keys;
mod load;
mod logfmt;
mod reindex;
mod serve;
mod snapshot;
#[cfg(feature = "otlp")]
mod telemetry;
mod tls;
mod watch;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "rag",
    version,
    about = "Retrieval-augmented answers over your documents"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./rag.toml if it exists.
    #[arg(long, global = true, env = "RAG_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of the embedded store (overrides `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Log as JSON lines instead of text (logs go to stderr; filter with RUST_LOG).
    #[arg(long, global = true)]
    log_json: bool,
    /// API key the client commands (search, ask, delete, status, load) send to the service
    /// (overrides `client.api_key`).
    #[arg(long, global = true, env = "RAG_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Index a folder: new files are added, changed ones replaced, removed ones deleted.
    Ingest(ingest::IngestArgs),
    /// Run the query service: gRPC, and with `--http-listen` the HTTP API and chat page.
    Serve(serve::ServeArgs),
    /// Show the chunks that best match a query (asks a running service).
    Search(client::SearchArgs),
    /// Ask a question and print the grounded answer with its sources (asks a running service).
    Ask(client::AskArgs),
    /// Remove a document from the index (asks a running service).
    Delete(client::DeleteArgs),
    /// Check whether the service is up and ready (exit 0 only when SERVING).
    Status(client::StatusArgs),
    /// Print the effective configuration as TOML.
    Config,
    /// Measure ingest, search and ask against raw embedding and raw llama.cpp decoding.
    Bench(bench::BenchArgs),
    /// Measure the store alone with synthetic chunks: upsert rate, Search p50/p99 before and
    /// after the search index is built.
    BenchStore(bench_store::BenchStoreArgs),
    /// Retrieval quality and refusal on a labelled question set (recall@k, MRR, calibration).
    Eval(eval::EvalArgs),
    /// Drive a running service with many concurrent clients (Search, Ask, ingest) for a while.
    Load(load::LoadArgs),
    /// API keys for the service (`auth.keys`).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Feedback from the chat page: `export` writes it as a question set for `rag eval`.
    #[command(subcommand)]
    Feedback(feedback::FeedbackCommand),
    /// Rebuild the store for a new embedding model or chunking recipe beside the current one,
    /// then switch to it in one step (see README "Changing the embedding model").
    Reindex(reindex::ReindexArgs),
    /// Backups of the store: `create FILE` writes one, `restore FILE` fills an empty store.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Internal: extract a PDF's pages as JSON, in a disposable process.
    #[command(hide = true)]
    ExtractPdf { file: PathBuf },
}

/// Retrieval flags shared by `search` and `ask`.
#[derive(Debug, Args)]
struct RetrievalArgs {
    /// Number of chunks to retrieve (default: the service's).
    #[arg(long)]
    top_k: Option<u32>,
    /// Minimum cosine similarity of a chunk (default: the service's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Only documents whose source path starts with this.
    #[arg(long)]
    path_prefix: Option<String>,
    /// Only these documents (repeatable).
    #[arg(long = "doc-id")]
    doc_ids: Vec<String>,
}

fn main() -> ExitCode {
    // llama.cpp's OpenMP workers busy-wait by default, which starves ONNX Runtime and tokio on
    // small machines. Set before any thread exists.
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        // SAFETY: no other thread has been started yet.
        unsafe { std::env::set_var("OMP_WAIT_POLICY", "passive") };
    }
    let cli = Cli::parse();
    if let Command::ExtractPdf { file } = &cli.command {
        return extract_pdf(file);
    }
    // Declared before the runtime, so dropped after it: flushing the span exporter blocks.
    let _telemetry = init_logging(&cli);
    let overrides: Vec<(&str, toml::Value)> = cli
        .data_dir
        .as_ref()
        .map(|d| {
            (
                "data_dir",
                toml::Value::String(d.to_string_lossy().into_owned()),
            )
        })
        .into_iter()
        .collect();
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(mut c) => {
            if cli.api_key.is_some() {
                c.client.api_key = cli.api_key.clone();
            }
            c
        }
        Err(e) => {
            eprintln!("rag: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rag: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Ingest(args) => ingest::run(config, args).await,
            Command::Serve(args) => {
                let file = cli.config.clone();
                let reload: serve::Reload =
                    std::sync::Arc::new(move || Config::load(file.as_deref(), &overrides));
                serve::run(config, args, reload)
                    .await
                    .map(|()| ExitCode::SUCCESS)
            }
            Command::Search(args) => client::search(&config, args).await,
            Command::Ask(args) => client::ask(&config, args).await,
            Command::Delete(args) => client::delete(&config, args).await,
            Command::Status(args) => client::status(&config, args).await,
            Command::Bench(args) => bench::run(config, args).await.map(|()| ExitCode::SUCCESS),
            Command::BenchStore(args) => bench_store::run(config, args)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Eval(args) => eval::run(config, args).await.map(|()| ExitCode::SUCCESS),
            Command::Load(args) => load::run(&config, args).await.map(|()| ExitCode::SUCCESS),
            Command::Keys(command) => keys::run(command).map(|()| ExitCode::SUCCESS),
            Command::Feedback(command) => {
                feedback::run(&config, command).map(|()| ExitCode::SUCCESS)
            }
            Command::Reindex(args) => reindex::run(&config, args)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Snapshot(command) => snapshot::run(&config, command)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Config => {
                print!("{}", config.to_redacted_toml()?);
                Ok(ExitCode::SUCCESS)
            }
            Command::ExtractPdf { .. } => unreachable!("handled before start-up"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rag: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What must live until the process exits: the OTLP span exporter, when exporting.
struct Telemetry {
    #[cfg(feature = "otlp")]
    _otlp: Option<telemetry::Guard>,
}

fn init_logging(cli: &Cli) -> Telemetry {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let default = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    // qdrant-edge warns on every segment that its (server-only) feature flags are unset, and
    // once that a server-side mmap check never ran; neither means anything in-process, and
    // neither can be set from outside the crate.
    let mut quiet = vec![
        "qdrant_edge::common::flags=error",
        "qdrant_edge::common::mmap=error",
    ];
    // llama.cpp logs every model load in detail (devices, layers, buffers): shown on request.
    if !std::env::var("RUST_LOG").is_ok_and(|f| f.contains("llama")) {
        quiet.push("llama-cpp-2=warn");
    }
    let filter = quiet.into_iter().fold(
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        |filter, directive| filter.add_directive(directive.parse().expect("valid directive")),
    );
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if cli.log_json {
        fmt.json().boxed()
    } else {
        // Values escaped: a newline sent in a request cannot split a line or forge another.
        fmt.fmt_fields(logfmt::EscapedFields).boxed()
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otlp")]
    {
        let (layer, guard) = telemetry::layer().unzip();
        subscriber.with(layer).init();
        Telemetry { _otlp: guard }
    }
    #[cfg(not(feature = "otlp"))]
    {
        subscriber.init();
        Telemetry {}
    }
}

/// The isolated pdf-extract run: whatever the parser does (panic, overflow, hang), only this
/// process suffers it.
fn extract_pdf(file: &std::path::Path) -> ExitCode {
    match rag_ingest::extract::extract_pdf_in_this_process(file) {
        Ok(output) => {
            println!(
                "{}",
                serde_json::to_string(&output).expect("pages serialise")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
