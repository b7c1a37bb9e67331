//! The query service: question -> vector -> hits -> prompt -> answer, served over gRPC.
//!
//! [`Engine`] holds the models and the store and knows nothing of gRPC; [`service`] validates
//! requests and maps them onto it; [`server`] runs tonic with health and reflection.

mod citations;
mod config;
mod error;
mod prompt;
pub mod server;
mod service;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rag_embed::Embedder;
use rag_ingest::Indexer;
use rag_llm::Generator;
use rag_store::{Hit, SearchFilter, VectorStore};

pub use config::QueryConfig;
pub use error::QueryError;
pub use prompt::Prompt;

/// What the model is told when retrieval finds nothing relevant enough, and what Ask answers.
pub const NOT_FOUND_ANSWER: &str =
    "The indexed documents do not contain an answer to this question.";

/// question -> vector -> hits: the best chunks for `query`, best first, and how long it took.
pub async fn retrieve(
    embedder: &Arc<Embedder>,
    store: &dyn VectorStore,
    query: &str,
    retrieval: &Retrieval,
) -> Result<(Vec<Hit>, Duration), QueryError> {
    let started = Instant::now();
    let embedder = embedder.clone();
    let text = query.to_owned();
    let vector = tokio::task::spawn_blocking(move || embedder.embed(vec![text]))
        .await
        .map_err(|e| QueryError::Internal(format!("embedding task: {e}")))??
        .pop()
        .ok_or_else(|| QueryError::Internal("embedder returned no vector".into()))?;
    let hits = store
        .search(
            vector,
            retrieval.top_k,
            Some(retrieval.score_threshold),
            &retrieval.filter,
        )
        .await?;
    Ok((hits, started.elapsed()))
}

/// How to retrieve: validated request options with the server defaults filled in.
#[derive(Debug, Clone)]
pub struct Retrieval {
    pub top_k: usize,
    pub score_threshold: f32,
    pub filter: SearchFilter,
}

pub struct Engine {
    pub embedder: Arc<Embedder>,
    pub store: Arc<dyn VectorStore>,
    pub generator: Arc<Generator>,
    pub indexer: Arc<Indexer>,
    pub config: QueryConfig,
}

impl Engine {
    /// The best chunks for `query`, best first, and how long retrieval took.
    pub async fn retrieve(
        &self,
        query: &str,
        retrieval: &Retrieval,
    ) -> Result<(Vec<Hit>, Duration), QueryError> {
        retrieve(&self.embedder, self.store.as_ref(), query, retrieval).await
    }

    /// The grounded prompt for `question`, leaving `max_tokens` of the window for the answer.
    pub fn prompt(&self, question: &str, hits: &[Hit], max_tokens: usize) -> Prompt {
        // Room for the chat template's own tokens around the two messages.
        const TEMPLATE_OVERHEAD: usize = 16;
        let budget = self
            .generator
            .context_size()
            .saturating_sub(max_tokens + TEMPLATE_OVERHEAD);
        let generator = self.generator.clone();
        prompt::build(question, hits, budget, &move |s| generator.count_tokens(s))
    }
}
