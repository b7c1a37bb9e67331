//! question -> vector and terms -> one store search -> fused candidates (ranked by `rank.rs`).

use std::sync::Arc;

use rag_embed::{Embedder, QueryBatcher, Reranker};
use rag_store::{
    DEFAULT_TENANT, Fusion, Hit, Query, SearchFilter, SparseVector, Store, Visibility,
};

use crate::{EngineError, QueryConfig, Retrieval};

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

    /// The best chunks for `query`, best first: its candidates ([`Retriever::candidates`]),
    /// ranked as `retrieval` says ([`crate::rank`]).
    #[tracing::instrument(name = "retrieve", skip_all, fields(top_k = retrieval.top_k))]
    pub async fn retrieve(
        &self,
        query: &str,
        retrieval: &Retrieval,
    ) -> Result<Vec<Hit>, EngineError> {
        let candidates = self.candidates(query, retrieval).await?;
        crate::rank::rank(self, &candidates, retrieval).await
    }

    /// The one store search a question makes: the chunks its fused rankings put first, deep
    /// enough for every ranking step after it (the threshold, the reranker or the rescoring,
    /// the cap per document), which [`crate::rank::rank`] then applies, as often as a caller
    /// needs without searching again.
    ///
    /// Hybrid by default: the dense, the lexical and the identifier rankings fused as
    /// `query.fusion` says.
    pub(crate) async fn candidates(
        &self,
        query: &str,
        retrieval: &Retrieval,
    ) -> Result<Candidates, EngineError> {
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
        Ok(Candidates {
            query: query.to_owned(),
            hits,
            identifiers,
            foreign: foreign.map(|script| (script, Worded::of(query))),
            rescoring,
            started,
        })
    }

    pub(crate) fn reranker(&self) -> Option<&Arc<Reranker>> {
        self.reranker.as_ref()
    }

    async fn embed_query(&self, query: &str) -> Result<Vec<f32>, EngineError> {
        Ok(self.queries.embed_query(query.to_owned()).await?)
    }
}

/// A question's fused candidates, as one store search found them, and what ranking them
/// needs to know about the question.
pub(crate) struct Candidates {
    pub(crate) query: String,
    /// Best first, as fused by the store.
    pub(crate) hits: Vec<Hit>,
    /// The question's identifiers: a chunk holding one verbatim is kept at any similarity.
    pub(crate) identifiers: SparseVector,
    /// The question's script and words, when the embedding model cannot read it.
    pub(crate) foreign: Option<(&'static str, Worded)>,
    /// The question's vector, when the candidates are rescored sentence by sentence.
    pub(crate) rescoring: Option<Vec<f32>>,
    pub(crate) started: std::time::Instant,
}

/// Candidates fetched per place in the top `k` when a cap per document is set.
const PER_DOCUMENT_CANDIDATES: usize = 4;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
