//! question -> vectors -> hits.

use std::collections::HashMap;
use std::sync::Arc;

use rag_embed::{Embedder, QueryBatcher, Reranker};
use rag_store::{
    DEFAULT_TENANT, Fusion, Hit, Query, SearchFilter, SparseVector, Store, Visibility,
};

use crate::{EngineError, QueryConfig, Retrieval, metrics, rescore};

/// The embedding model, the optional reranker and the store: everything Search needs, and
/// `rag eval` without generation (no chat model is loaded for it).
#[derive(Clone)]
pub struct Retriever {
    embedder: Arc<Embedder>,
    /// Concurrent questions share embedding calls.
    queries: QueryBatcher,
    /// Cross-encoder reranking of fused candidates, when configured.
    reranker: Option<Arc<Reranker>>,
    store: Arc<Store>,
    config: Arc<QueryConfig>,
}

impl Retriever {
    /// Call within a tokio runtime: the question batcher runs as a task on it.
    pub fn new(
        embedder: Arc<Embedder>,
        reranker: Option<Arc<Reranker>>,
        store: Arc<Store>,
        config: QueryConfig,
    ) -> Self {
        let queries = QueryBatcher::start(
            embedder.clone(),
            config.query_batch,
            std::time::Duration::from_micros((config.query_batch_wait_ms * 1000.0) as u64),
        );
        Self {
            embedder,
            queries,
            reranker,
            store,
            config: Arc::new(config),
        }
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Retrieval as configured, over every document of the default tenant: for local tools
    /// (`rag eval`, benchmarks). A service call replaces `tenant` and `filter` with its
    /// caller's.
    pub fn default_retrieval(&self) -> Retrieval {
        Retrieval {
            top_k: self.config.top_k,
            score_threshold: self.config.score_threshold,
            hybrid: self.config.hybrid,
            tenant: DEFAULT_TENANT.to_owned(),
            filter: SearchFilter::visible(Visibility::All),
        }
    }

    /// The best chunks for `query`, best first.
    ///
    /// Hybrid by default: the dense, the lexical and the identifier rankings fused as
    /// `query.fusion` says. The fused score ranks but says nothing about absolute relevance, so what is kept is
    /// decided by the cosine similarity: a chunk below `score_threshold` is dropped unless it
    /// holds one of the question's identifiers (an error code, a flag) verbatim. When nothing is
    /// left, the documents do not answer the question.
    ///
    /// With a reranker, more fused candidates are fetched and the cross-encoder's order decides
    /// which `top_k` are kept (their `score` becomes the reranker's).
    #[tracing::instrument(name = "retrieve", skip_all, fields(top_k = retrieval.top_k))]
    pub async fn retrieve(
        &self,
        query: &str,
        retrieval: &Retrieval,
    ) -> Result<Vec<Hit>, EngineError> {
        let started = std::time::Instant::now();
        // An English-only model places a question in another script near unrelated passages,
        // with confident scores: its similarity means nothing there. Only the question's own
        // words still find passages, as exact identifiers (codes, paths) or as words of pages
        // written in its script; with neither, the question is refused, naming the
        // configuration to use (the engine searches its translation instead, when it can).
        let foreign = if self.embedder.multilingual() {
            None
        } else {
            rag_lexical::non_latin_script(query)
        };
        let identifiers = if retrieval.hybrid || foreign.is_some() {
            rag_lexical::identifier_vector(query)
        } else {
            Default::default()
        };
        let worded = foreign.map(|_| Worded::of(query));
        let vector = self.embed_query(query).await?;
        let rescoring = self.config.rescore.enabled.then(|| vector.clone());
        let search = Query {
            dense: vector,
            lexical: (retrieval.hybrid || foreign.is_some())
                .then(|| rag_lexical::query_vector(query)),
            identifiers: Some(identifiers.clone()).filter(|i| !i.is_empty()),
            // The model cannot read the question: its similarity would only blur the ranking
            // the question's words make.
            fusion: match foreign {
                Some(_) => Fusion {
                    dense_weight: 0.0,
                    lexical_weight: 1.0,
                    ..self.config.fusion
                },
                None => self.config.fusion,
            },
        };
        let per_document = self.config.per_document;
        // A cap per document needs candidates beyond `top_k` to fill the places it frees.
        let wanted = if per_document > 0 {
            retrieval.top_k * PER_DOCUMENT_CANDIDATES
        } else {
            retrieval.top_k
        };
        let limit = match (&self.reranker, &rescoring) {
            (Some(r), _) => wanted.max(r.candidates()),
            (None, Some(_)) => wanted.max(self.config.rescore.candidates),
            (None, None) => wanted,
        };
        let hits = self
            .store
            .for_tenant(&retrieval.tenant)
            .search(search, limit, &retrieval.filter)
            .await?;
        let hits: Vec<Hit> = hits
            .into_iter()
            .filter(|h| {
                let exact = holds_identifier(&h.payload.text, &identifiers);
                exact
                    || match (&worded, foreign) {
                        (Some(worded), Some(script)) => worded.found_in(&h.payload.text, script),
                        _ => h.similarity >= retrieval.score_threshold,
                    }
            })
            .collect();
        if let Some(script) = foreign
            && hits.is_empty()
        {
            return Err(EngineError::UnsupportedLanguage {
                script,
                model: self.embedder.model_name().to_owned(),
            });
        }
        // Reordered whole: the cap per document below decides which `top_k` are kept.
        let hits = match (&self.reranker, rescoring) {
            (Some(r), _) => rerank(r, query, hits).await?,
            (None, Some(vector)) => {
                let config = &self.config.rescore;
                rescore::rescore(&self.embedder, config, &vector, hits).await?
            }
            (None, None) => hits,
        };
        let hits = at_most_per_document(newest_versions_only(hits), per_document, retrieval.top_k);
        metrics::retrieved(started.elapsed());
        Ok(hits)
    }

    async fn embed_query(&self, query: &str) -> Result<Vec<f32>, EngineError> {
        Ok(self.queries.embed_query(query.to_owned()).await?)
    }
}

/// `hits` ordered by the cross-encoder's score for (query, chunk text).
async fn rerank(
    reranker: &Arc<Reranker>,
    query: &str,
    mut hits: Vec<Hit>,
) -> Result<Vec<Hit>, EngineError> {
    let texts: Vec<String> = hits.iter().map(|h| h.payload.text.clone()).collect();
    let reranker = reranker.clone();
    let query = query.to_owned();
    let scores = tokio::task::spawn_blocking(move || reranker.score(&query, &texts))
        .await
        .map_err(|e| EngineError::Internal(format!("reranking task: {e}")))??;
    for (hit, score) in hits.iter_mut().zip(scores) {
        hit.score = score;
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

/// Candidates fetched per place in the top `k` when a cap per document is set.
const PER_DOCUMENT_CANDIDATES: usize = 4;

/// The first `keep` of `hits` (best first) with at most `per_document` from any one document
/// (0: no cap).
fn at_most_per_document(mut hits: Vec<Hit>, per_document: usize, keep: usize) -> Vec<Hit> {
    if per_document == 0 {
        hits.truncate(keep);
        return hits;
    }
    let mut taken: HashMap<String, usize> = HashMap::new();
    hits.into_iter()
        .filter(|h| {
            let n = taken.entry(h.payload.doc_id.clone()).or_default();
            *n += 1;
            *n <= per_document
        })
        .take(keep)
        .collect()
}

fn holds_identifier(text: &str, identifiers: &SparseVector) -> bool {
    !identifiers.is_empty()
        && rag_lexical::terms(text)
            .iter()
            .any(|t| identifiers.indices.contains(&rag_lexical::term_id(t)))
}

/// The words of a question in a script the embedding model cannot read, for finding the
/// passages written in that script by their words alone.
pub(crate) struct Worded {
    terms: std::collections::HashSet<String>,
}

/// Share of the question's distinct terms a passage in its script must hold to be kept when
/// the embedding model cannot read either. Korean terms are character bigrams, and the common
/// ones ("인가", "나요") are in every page: one shared bigram is no evidence. Measured on the
/// Korean sets (BENCHMARKS.md, twelfth session): the page a natural question was written from
/// holds 0.33-0.54 of its terms, the best wrong page and out-of-corpus questions' best up to
/// 0.30; LibreOffice ko titles keep 0.94 of their pages at this share.
const MIN_WORDED_SHARE: f32 = 1.0 / 3.0;

impl Worded {
    pub(crate) fn of(question: &str) -> Self {
        Self {
            terms: rag_lexical::terms(question).into_iter().collect(),
        }
    }

    /// Whether `text` is written in `script` and holds enough of the question's terms.
    pub(crate) fn found_in(&self, text: &str, script: &str) -> bool {
        if self.terms.is_empty() || rag_lexical::non_latin_script(text) != Some(script) {
            return false;
        }
        let held: std::collections::HashSet<String> =
            rag_lexical::terms(text).into_iter().collect();
        let shared = self.terms.iter().filter(|t| held.contains(*t)).count();
        shared as f32 >= MIN_WORDED_SHARE * self.terms.len() as f32
    }
}

/// Drops hits from a document's older version while a re-index is swapping versions (the new
/// one is written before the old one is deleted), so no answer cites a document twice.
fn newest_versions_only(hits: Vec<Hit>) -> Vec<Hit> {
    let mut newest: HashMap<&str, u64> = HashMap::new();
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
        let mut hit = crate::prompt::tests::hit(doc, 0, "text");
        hit.payload.doc_hash = hash.into();
        hit.payload.indexed_at_ms = at;
        hit
    }

    #[test]
    fn a_page_in_the_question_script_is_found_by_enough_of_its_words() {
        let worded = Worded::of("연차 휴가는 며칠인가요?");
        let script = "Korean (Hangul)";
        assert!(worded.found_in("연차 휴가는 1년에 25일입니다.", script));
        // Common bigrams alone ("인가", "가요") are in every Korean page.
        assert!(!worded.found_in("사무실은 어디인가요? 본관 3층입니다.", script));
        // An English page is the translation's to find, whatever it shares.
        assert!(!worded.found_in("연차 휴가 Vacation: 25 days per year.", script));
    }

    #[test]
    fn a_cap_per_document_lets_the_next_documents_in() {
        let hits = ["a", "a", "a", "b", "a", "c", "d"]
            .map(|d| hit(d, "h", 1))
            .to_vec();
        let docs = |hits: Vec<Hit>| -> Vec<String> {
            hits.into_iter().map(|h| h.payload.doc_id).collect()
        };
        assert_eq!(
            docs(at_most_per_document(hits.clone(), 2, 4)),
            ["a", "a", "b", "c"]
        );
        assert_eq!(
            docs(at_most_per_document(hits.clone(), 1, 3)),
            ["a", "b", "c"]
        );
        assert_eq!(docs(at_most_per_document(hits, 0, 4)), ["a", "a", "a", "b"]);
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
