//! The one place the query engine is built from the configuration (serve, eval and bench).

use std::sync::Arc;

use rag_embed::Embedder;
use rag_engine::{Engine, Retriever};
use rag_store::Store;

use crate::config::Config;

/// The engine over an open embedder and store: the retriever and the chat model.
pub async fn load(
    config: &Config,
    embedder: Arc<Embedder>,
    store: Arc<Store>,
) -> anyhow::Result<Engine> {
    let retriever = retriever(config, embedder, store).await?;
    with_generator(config, retriever).await
}

/// Retrieval only (no chat model): the embedder, the store and, when configured, the reranker.
pub async fn retriever(
    config: &Config,
    embedder: Arc<Embedder>,
    store: Arc<Store>,
) -> anyhow::Result<Retriever> {
    Ok(Retriever::new(
        embedder,
        load_reranker(config).await?,
        store,
        config.query.engine.clone(),
    ))
}

/// The engine over `retriever`, with the configured chat model loaded.
pub async fn with_generator(config: &Config, retriever: Retriever) -> anyhow::Result<Engine> {
    let llm_config = config.llm.clone();
    let generator =
        tokio::task::spawn_blocking(move || rag_llm::Generator::start(&llm_config)).await??;
    Ok(Engine::new(retriever, Arc::new(generator)))
}

/// The configured cross-encoder, or `None` when reranking is off.
async fn load_reranker(config: &Config) -> anyhow::Result<Option<Arc<rag_embed::Reranker>>> {
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
