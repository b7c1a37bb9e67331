use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use rag_query::Engine;

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (overrides `query.listen`); port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

pub async fn run(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let addr = args.listen.unwrap_or(config.query.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // One line on stdout with the real address, for scripts and tests that asked for port 0.
    println!("rag: listening on {local}");
    std::io::stdout().flush()?;
    tracing::info!(%local, "listening; loading models");

    let load = async move { load_engine(config).await.map_err(|e| format!("{e:#}")) };
    rag_query::server::run(listener, load, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Models and store, loaded once at start-up.
pub async fn load_engine(config: Config) -> anyhow::Result<Engine> {
    let indexer = crate::ingest::open_indexer(&config).await?;
    let llm_config = config.llm.clone();
    let generator =
        tokio::task::spawn_blocking(move || rag_llm::Generator::start(&llm_config)).await??;
    Ok(Engine {
        reranker: load_reranker(&config).await?,
        embedder: indexer.embedder().clone(),
        store: indexer.store().clone(),
        generator: Arc::new(generator),
        indexer: Arc::new(indexer),
        config: config.query,
    })
}

/// The configured cross-encoder, or `None` when reranking is off.
pub async fn load_reranker(config: &Config) -> anyhow::Result<Option<Arc<rag_embed::Reranker>>> {
    if !config.rerank.enabled() {
        return Ok(None);
    }
    let rerank = config.rerank.clone();
    let runtime = config.embedding.onnxruntime.clone();
    let reranker =
        tokio::task::spawn_blocking(move || rag_embed::Reranker::load(&rerank, &runtime)).await??;
    tracing::info!(model = reranker.name(), "reranking fused candidates");
    Ok(Some(Arc::new(reranker)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
