//! fused candidates -> the hits a question keeps, every step after the store's fusion in order:
//! the threshold, the cross-encoder or the sentence rescoring, newest versions only, the cap
//! per document; and the merge of a question's hits with its translation's.
//!
//! The steps run over the candidates of one store search ([`Retriever::candidates`]), so a
//! caller that needs them ranked twice (at any similarity, then at the threshold) searches
//! once.

use std::collections::HashMap;
use std::sync::Arc;

use rag_embed::Reranker;
use rag_store::{Hit, SparseVector, chunk_key, fuse_hits};

use crate::retrieve::{Candidates, Retriever, Worded};
use crate::{EngineError, Retrieval, metrics, rescore};

/// The best `retrieval.top_k` of `candidates`, best first.
///
/// The fused score ranks but says nothing about absolute relevance, so what is kept is
/// decided by the cosine similarity: a chunk below `score_threshold` is dropped unless it
/// holds one of the question's identifiers (an error code, a flag) verbatim. When the
/// embedding model cannot read the question, its similarity means nothing: a chunk is kept
/// when it holds an identifier or enough of the question's words in its script, and with
/// neither the question is refused ([`EngineError::UnsupportedLanguage`]).
///
/// With a reranker, the cross-encoder's order decides which `top_k` are kept (their `score`
/// becomes the reranker's); with rescoring on, each candidate's best sentence does.
pub(crate) async fn rank(
    retriever: &Retriever,
    candidates: &Candidates,
    retrieval: &Retrieval,
) -> Result<Vec<Hit>, EngineError> {
    let hits: Vec<Hit> = candidates
        .hits
        .iter()
        .filter(|h| {
            holds_identifier(&h.payload.text, &candidates.identifiers)
                || match &candidates.foreign {
                    Some((script, worded)) => worded.found_in(&h.payload.text, script),
                    None => h.similarity >= retrieval.score_threshold,
                }
        })
        .cloned()
        .collect();
    if let Some((script, _)) = &candidates.foreign
        && hits.is_empty()
    {
        return Err(EngineError::UnsupportedLanguage {
            script,
            model: retriever.embedder().model_name().to_owned(),
        });
    }
    // Reordered whole: the cap per document below decides which `top_k` are kept.
    let hits = match (retriever.reranker(), &candidates.rescoring) {
        (Some(r), _) => rerank(r, &candidates.query, hits).await?,
        (None, Some(vector)) => {
            let config = &retriever.config().rescore;
            rescore::rescore(retriever.embedder(), config, vector, hits).await?
        }
        (None, None) => hits,
    };
    let per_document = retriever.config().per_document;
    let hits = at_most_per_document(newest_versions_only(hits), per_document, retrieval.top_k);
    metrics::retrieved(candidates.started.elapsed());
    Ok(hits)
}

/// A question's own hits and its translation's, best `keep` first. A page in the question's
/// own language that holds its words answers it as asked: it leads, whatever the translation
/// finds (with one such page in a folder, the fusion put the translation's English pages above
/// it, and the model cited them). The rest are fused by reciprocal rank, the translation's
/// ranking weighing `weight` against the question's 1.
pub(crate) fn merge_translated(
    own: Vec<Hit>,
    translated: Vec<Hit>,
    worded: &Worded,
    script: &str,
    weight: f32,
    keep: usize,
) -> Vec<Hit> {
    let (mut hits, rest): (Vec<Hit>, Vec<Hit>) = own
        .into_iter()
        .partition(|h| worded.found_in(&h.payload.text, script));
    for hit in fuse_hits(vec![(rest, 1.0), (translated, weight)]) {
        if !hits.iter().any(|h| chunk_key(h) == chunk_key(&hit)) {
            hits.push(hit);
        }
    }
    hits.truncate(keep);
    hits
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
    fn a_page_in_the_question_language_that_holds_its_words_leads_the_merge() {
        let page = |doc: &str, text: &str| {
            let mut hit = hit(doc, "h", 1);
            hit.payload.text = text.into();
            hit
        };
        let worded = Worded::of("연차 휴가는 며칠인가요?");
        let own = vec![
            page("other-ko", "사무실은 어디인가요? 본관 3층입니다."),
            page("leave-ko", "연차 휴가는 1년에 25일입니다."),
        ];
        let translated = vec![
            page("leave-en", "Vacation: 25 days per year."),
            page("leave-ko", "연차 휴가는 1년에 25일입니다."),
        ];
        let merged = merge_translated(own, translated, &worded, "Korean (Hangul)", 1.5, 3);
        let docs: Vec<&str> = merged.iter().map(|h| h.payload.doc_id.as_str()).collect();
        assert_eq!(docs, ["leave-ko", "leave-en", "other-ko"]);
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
