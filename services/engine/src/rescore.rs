//! fused candidates -> rescored candidates, with the embedding model already loaded.
//!
//! A chunk's vector averages everything it says, so a chunk that answers the question in one
//! sentence among ten on other things sits below a chunk that is about the question's topic
//! throughout. Reading each candidate sentence by sentence (late interaction at sentence
//! granularity) finds the one sentence that matches: a candidate's rescored rank blends its
//! fused score with its best sentence's similarity to the question. No model beyond the
//! embedder is needed (no cross-encoder ships in any package reachable here).

use std::sync::Arc;

use rag_embed::Embedder;
use rag_store::Hit;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// `[query.rescore]`: sentence-level rescoring of the fused candidates. A configured
/// cross-encoder (`[rerank]`) takes precedence: the two are not chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RescoreConfig {
    pub enabled: bool,
    /// Fused candidates read sentence by sentence; the best `top_k` of them are kept.
    pub candidates: usize,
    /// How much the best sentence counts against the fused score (both min-max normalised
    /// over the candidates): 0 keeps the fused order.
    pub weight: f32,
    /// Sentences read per candidate (its first ones): bounds the embedding work per question.
    pub max_sentences: usize,
}

impl Default for RescoreConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            candidates: 20,
            weight: 0.5,
            max_sentences: 12,
        }
    }
}

/// Sentences shorter than this are joined to the next one: a heading or list item of two
/// words matches a question by its topic alone.
const MIN_SENTENCE_CHARS: usize = 40;

/// `hits` ordered by fused score blended with each hit's best sentence similarity to
/// `query_vector` (the question's embedding, query prefix included).
pub async fn rescore(
    embedder: &Arc<Embedder>,
    config: &RescoreConfig,
    query_vector: &[f32],
    mut hits: Vec<Hit>,
) -> Result<Vec<Hit>, EngineError> {
    if hits.len() <= 1 || config.weight <= 0.0 {
        return Ok(hits);
    }
    let mut owners = Vec::new();
    let mut texts = Vec::new();
    for (i, hit) in hits.iter().enumerate() {
        for sentence in windows(&hit.payload.text, config.max_sentences) {
            owners.push(i);
            texts.push(sentence);
        }
    }
    let embedder = embedder.clone();
    let vectors = tokio::task::spawn_blocking(move || embedder.embed(texts))
        .await
        .map_err(|e| EngineError::Internal(format!("rescoring task: {e}")))??;
    // A chunk's own similarity stands in for a sentence: a short chunk is its one sentence.
    let mut best: Vec<f32> = hits.iter().map(|h| h.similarity).collect();
    for (owner, vector) in owners.into_iter().zip(&vectors) {
        best[owner] = best[owner].max(rag_store::cosine(query_vector, vector));
    }
    let fused = normalised(hits.iter().map(|h| h.score));
    let sentence = normalised(best.iter().copied());
    for (i, hit) in hits.iter_mut().enumerate() {
        hit.score = fused[i] + config.weight * sentence[i];
    }
    // Stable: equal scores keep the store's deterministic order.
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

/// The text's sentences (and lines), short ones joined to the next, at most `max` of them.
fn windows(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for sentence in crate::support::sentences(text) {
        if out.len() >= max {
            return out;
        }
        if !pending.is_empty() {
            pending.push(' ');
        }
        pending.push_str(sentence.trim_start_matches('#').trim());
        if pending.chars().count() >= MIN_SENTENCE_CHARS {
            out.push(std::mem::take(&mut pending));
        }
    }
    if !pending.trim().is_empty() && out.len() < max {
        out.push(pending);
    }
    out
}

/// Min-max normalised to [0, 1]; all equal → all 0.
fn normalised(values: impl Iterator<Item = f32>) -> Vec<f32> {
    let values: Vec<f32> = values.collect();
    let (lo, hi) = values
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = hi - lo;
    values
        .iter()
        .map(|v| if span > 0.0 { (v - lo) / span } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sentences_and_headings_join_the_next_one() {
        let text = "# Leave\n\nStaff get 25 days of paid leave a year. Ask early.\nCarry-over: up to \
                    five days move to the next year, approved by your manager.";
        assert_eq!(
            windows(text, 12),
            [
                "Leave Staff get 25 days of paid leave a year.",
                "Ask early. Carry-over: up to five days move to the next year, approved by your manager."
            ]
        );
        assert_eq!(windows(text, 1).len(), 1);
        assert!(windows(text, 0).is_empty());
    }

    #[test]
    fn normalises_to_the_unit_range() {
        assert_eq!(normalised([2.0, 4.0, 3.0].into_iter()), [0.0, 1.0, 0.5]);
        assert_eq!(normalised([1.0, 1.0].into_iter()), [0.0, 0.0]);
    }
}
