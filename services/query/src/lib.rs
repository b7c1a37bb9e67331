//! The query service: question -> vector -> hits -> prompt -> answer, served over gRPC.
//!
//! [`Engine`] holds the models and the store and knows nothing of gRPC; [`service`] validates
//! requests and maps them onto it; [`server`] runs tonic with health and reflection.

mod citations;
mod config;
pub mod context;
mod error;
mod prompt;
pub mod server;
mod service;
pub mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rag_embed::{Embedder, Reranker};
use rag_ingest::Indexer;
use rag_llm::Generator;
use rag_store::{Hit, Query, SearchFilter, Store};

pub use config::QueryConfig;
pub use error::QueryError;
pub use prompt::Prompt;

/// What the model is told when retrieval finds nothing relevant enough, and what Ask answers.
pub const NOT_FOUND_ANSWER: &str =
    "The indexed documents do not contain an answer to this question.";

/// question -> vectors -> hits: the best chunks for `query`, best first, and how long it took.
///
/// Hybrid by default: the dense, the lexical and the identifier rankings fused by reciprocal
/// rank. The fused score ranks but says nothing about absolute relevance, so what is kept is
/// decided by the cosine similarity: a chunk below `score_threshold` is dropped unless it holds
/// one of the question's identifiers (an error code, a flag) verbatim. When nothing is left,
/// the documents do not answer the question.
///
/// With a reranker, more fused candidates are fetched and the cross-encoder's order decides
/// which `top_k` are kept (their `score` becomes the reranker's).
pub async fn retrieve(
    embedder: &Arc<Embedder>,
    reranker: Option<&Arc<Reranker>>,
    store: &Store,
    query: &str,
    retrieval: &Retrieval,
) -> Result<(Vec<Hit>, Duration), QueryError> {
    let started = Instant::now();
    let embedder = embedder.clone();
    let text = query.to_owned();
    let vector = tokio::task::spawn_blocking(move || embedder.embed_queries(vec![text]))
        .await
        .map_err(|e| QueryError::Internal(format!("embedding task: {e}")))??
        .pop()
        .ok_or_else(|| QueryError::Internal("embedder returned no vector".into()))?;
    let identifiers = if retrieval.hybrid {
        rag_lexical::identifier_vector(query)
    } else {
        Default::default()
    };
    let search = Query {
        dense: vector,
        lexical: retrieval.hybrid.then(|| rag_lexical::query_vector(query)),
        identifiers: Some(identifiers.clone()).filter(|i| !i.is_empty()),
    };
    let limit = match reranker {
        Some(r) => retrieval.top_k.max(r.candidates()),
        None => retrieval.top_k,
    };
    let hits = store.search(search, limit, &retrieval.filter).await?;
    let hits: Vec<Hit> = hits
        .into_iter()
        .filter(|h| {
            h.similarity >= retrieval.score_threshold
                || holds_identifier(&h.payload.text, &identifiers)
        })
        .collect();
    let hits = match reranker {
        Some(r) => rerank(r, query, hits, retrieval.top_k).await?,
        None => hits,
    };
    Ok((newest_versions_only(hits), started.elapsed()))
}

/// The best `keep` of `hits` by the cross-encoder's score for (query, chunk text).
async fn rerank(
    reranker: &Arc<Reranker>,
    query: &str,
    mut hits: Vec<Hit>,
    keep: usize,
) -> Result<Vec<Hit>, QueryError> {
    let texts: Vec<String> = hits.iter().map(|h| h.payload.text.clone()).collect();
    let reranker = reranker.clone();
    let query = query.to_owned();
    let scores = tokio::task::spawn_blocking(move || reranker.score(&query, &texts))
        .await
        .map_err(|e| QueryError::Internal(format!("reranking task: {e}")))??;
    for (hit, score) in hits.iter_mut().zip(scores) {
        hit.score = score;
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(keep);
    Ok(hits)
}

fn holds_identifier(text: &str, identifiers: &rag_store::SparseVector) -> bool {
    !identifiers.is_empty()
        && rag_lexical::terms(text)
            .iter()
            .any(|t| identifiers.indices.contains(&rag_lexical::term_id(t)))
}

/// Drops hits from a document's older version while a re-index is swapping versions (the new
/// one is written before the old one is deleted), so no answer cites a document twice.
fn newest_versions_only(hits: Vec<Hit>) -> Vec<Hit> {
    let mut newest: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for hit in &hits {
        let at = newest.entry(hit.payload.doc_id.as_str()).or_default();
        *at = (*at).max(hit.payload.indexed_at_ms);
    }
    let keep: Vec<bool> = hits
        .iter()
        .map(|h| newest[h.payload.doc_id.as_str()] == h.payload.indexed_at_ms)
        .collect();
    hits.into_iter()
        .zip(keep)
        .filter_map(|(hit, keep)| keep.then_some(hit))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str, hash: &str, at: u64) -> Hit {
        let mut hit = prompt::tests::hit(doc, 0, "text");
        hit.payload.doc_hash = hash.into();
        hit.payload.indexed_at_ms = at;
        hit
    }

    #[test]
    fn a_document_mid_swap_is_seen_once_in_its_new_version() {
        let hits = vec![
            hit("a", "old", 100),
            hit("b", "only", 50),
            hit("a", "new", 200),
            hit("a", "new", 200),
        ];
        let kept: Vec<(String, String)> = newest_versions_only(hits)
            .into_iter()
            .map(|h| (h.payload.doc_id, h.payload.doc_hash))
            .collect();
        assert_eq!(
            kept,
            [("b", "only"), ("a", "new"), ("a", "new")].map(|(d, h)| (d.to_owned(), h.to_owned()))
        );
    }
}

/// How to retrieve: validated request options with the server defaults filled in.
#[derive(Debug, Clone)]
pub struct Retrieval {
    pub top_k: usize,
    /// Candidates below this cosine similarity are dropped (unless they hold one of the
    /// question's identifiers); when none is left, the documents do not answer the question.
    pub score_threshold: f32,
    /// Fuse lexical (BM25) candidates with the dense ones; `false` searches dense vectors only.
    pub hybrid: bool,
    pub filter: SearchFilter,
}

/// What the check made of a generated answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// At least one sentence is supported by a given source.
    Answered,
    /// The model said the sources do not answer the question.
    NotFound,
    /// The model answered, but no sentence is supported: withheld.
    Unsupported,
}

/// answer -> checked answer.
#[derive(Debug, Clone)]
pub struct CheckedAnswer {
    pub status: Verdict,
    /// The answer without invalid citations; the not-found answer when withheld.
    pub text: String,
    /// The model's answer when withheld, else empty.
    pub draft: String,
    /// Valid citation numbers, in order of first appearance (none when withheld).
    pub citations: Vec<u32>,
    pub invalid_citations: Vec<u32>,
    pub sentences: Vec<support::Sentence>,
}

pub struct Engine {
    pub embedder: Arc<Embedder>,
    /// Cross-encoder reranking of fused candidates, when configured.
    pub reranker: Option<Arc<Reranker>>,
    pub store: Arc<Store>,
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
        retrieve(
            &self.embedder,
            self.reranker.as_ref(),
            self.store.as_ref(),
            query,
            retrieval,
        )
        .await
    }

    /// The grounded prompt for `question`, leaving `max_tokens` of the window for the answer:
    /// the hits assembled into sources (duplicates dropped, neighbours merged), as many as fit.
    pub fn prompt(&self, question: &str, hits: Vec<Hit>, max_tokens: usize) -> Prompt {
        // Room for the chat template's own tokens around the two messages.
        const TEMPLATE_OVERHEAD: usize = 16;
        let budget = self
            .generator
            .context_size()
            .saturating_sub(max_tokens + TEMPLATE_OVERHEAD);
        let generator = self.generator.clone();
        prompt::build(question, context::assemble(hits), budget, &move |s| {
            generator.count_tokens(s)
        })
    }

    /// Checks a generated answer against the sources it was given: citations of sources that
    /// were not given are removed and reported, each sentence is checked for support, and an
    /// answer none of whose sentences is supported is withheld.
    pub async fn check_answer(&self, answer: &str, sources: &[context::Source]) -> CheckedAnswer {
        let (valid, invalid) = citations::check(answer.trim(), sources.len());
        let text = citations::remove(answer.trim(), &invalid).trim().to_owned();
        let sentences = support::sentences(&text);
        let cited: Vec<Vec<u32>> = sentences
            .iter()
            .map(|s| citations::check(s, sources.len()).0)
            .collect();
        let embeddings = self.sentence_embeddings(&sentences).await;
        let sentences = support::check(
            &sentences,
            &cited,
            &embeddings,
            sources,
            &self.config.support,
        );
        // The model was told to use this exact sentence when the sources fall short.
        let status = if text.to_lowercase().starts_with("the documents do not say") {
            Verdict::NotFound
        } else if sentences.iter().any(|s| s.supported_by.is_some()) {
            Verdict::Answered
        } else {
            Verdict::Unsupported
        };
        let (text, draft, citations) = match status {
            Verdict::Unsupported => (NOT_FOUND_ANSWER.to_owned(), text, Vec::new()),
            _ => (text, String::new(), valid),
        };
        CheckedAnswer {
            status,
            text,
            draft,
            citations,
            invalid_citations: invalid,
            sentences,
        }
    }

    /// Embeddings of the sentences without their citation markers. When embedding fails the
    /// check falls back to lexical overlap alone (empty vectors match nothing).
    async fn sentence_embeddings(&self, sentences: &[String]) -> Vec<Vec<f32>> {
        let texts: Vec<String> = sentences
            .iter()
            .map(|s| support::strip_citations(s))
            .collect();
        let n = texts.len();
        let embedder = self.embedder.clone();
        match tokio::task::spawn_blocking(move || embedder.embed_queries(texts)).await {
            Ok(Ok(vectors)) if vectors.len() == n => vectors,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "embedding answer sentences; checking by terms only");
                vec![Vec::new(); n]
            }
            Ok(Ok(vectors)) => {
                tracing::warn!(
                    got = vectors.len(),
                    sentences = n,
                    "embedder returned the wrong number of vectors; checking by terms only"
                );
                vec![Vec::new(); n]
            }
            Err(e) => {
                tracing::warn!(error = %e, "embedding task failed; checking by terms only");
                vec![Vec::new(); n]
            }
        }
    }

    /// The whole answer to a prompt at once (no streaming), with the generation's statistics.
    pub async fn generate(
        &self,
        prompt: &Prompt,
        max_tokens: usize,
    ) -> Result<(String, rag_llm::Stats), QueryError> {
        let mut events = self
            .generator
            .generate(prompt.request(max_tokens, 0.0, 0))?;
        let mut text = String::new();
        while let Some(event) = events.recv().await {
            match event {
                rag_llm::Event::Token(piece) => text.push_str(&piece),
                rag_llm::Event::Done(stats) => return Ok((text, stats)),
                rag_llm::Event::Failed(e) => return Err(e.into()),
            }
        }
        Err(QueryError::Internal(
            "generation ended without a result".into(),
        ))
    }
}
