//! rankings -> one ranking: the only place where ranked lists are combined.
//!
//! A search fuses its dense, lexical and identifier rankings here ([`crate::Store::search`]),
//! and the engine fuses a question's hits with its translation's through [`fuse_hits`]: one
//! formula for both, so a weight means the same wherever it is set.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::Hit;

/// How a hybrid search combines its rankings (dense, lexical, identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionMethod {
    /// Weighted reciprocal rank: a hit's score is the sum over the rankings of
    /// `weight / (RRF_K + rank)` (rank 0-based).
    Rrf,
    /// Weighted normalised scores: the dense cosine similarity (known for every candidate) and
    /// the lexical scores, each min-max normalised over the candidates, summed by weight.
    Score,
}

/// The fusion method and the weight of each ranking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fusion {
    pub method: FusionMethod,
    pub dense_weight: f32,
    pub lexical_weight: f32,
    pub identifier_weight: f32,
}

impl Default for Fusion {
    /// Dense leads; the lexical and the identifier scores, each normalised to 0..1, add 0.3 of
    /// a point each. Chosen on ten question sets (BENCHMARKS.md, "Retrieval on natural
    /// questions (issue 13): after"): at or above dense retrieval and equal-weight RRF on every
    /// one; 0.5 gains 3.6 points on the Debian Policy headings but falls below dense on
    /// Korean questions over English pages, 1.0 below dense on Korean over Korean.
    fn default() -> Self {
        Self {
            method: FusionMethod::Score,
            dense_weight: 1.0,
            lexical_weight: 0.3,
            identifier_weight: 0.3,
        }
    }
}

impl Fusion {
    fn ranking(&self, list: List) -> Ranking {
        let weight = match list {
            List::Dense => self.dense_weight,
            List::Lexical => self.lexical_weight,
            List::Identifiers => self.identifier_weight,
        };
        Ranking {
            weight,
            by_similarity: list == List::Dense,
        }
    }
}

/// Reciprocal rank fusion's constant: a hit's fused score is the sum over the rankings of
/// weight / (RRF_K + rank). 60 is the value from the original paper; it keeps one side's first
/// place from drowning the other side's evidence.
pub const RRF_K: usize = 60;

/// Candidates each side contributes before fusion: enough that a chunk ranked well by one side
/// only still reaches the fused list.
pub(crate) fn prefetch_limit(limit: usize) -> usize {
    (limit * 4).max(32)
}

/// One of the rankings a search fuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Dense,
    Lexical,
    Identifiers,
}

/// One ranking as the fusion sees it.
#[derive(Debug, Clone, Copy)]
struct Ranking {
    weight: f32,
    /// Score fusion normalises this ranking by the candidates' cosine similarity (known for
    /// every candidate) rather than by its own scores (known only for those it found).
    by_similarity: bool,
}

/// Where one candidate stands: its cosine similarity to the question and, per ranking, its
/// (0-based rank, engine score) there, `None` where that ranking did not find it.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub similarity: f32,
    pub places: Vec<Option<(usize, f32)>>,
}

/// Each candidate's fused score for a search over `lists` (a dense-only search keeps the
/// cosine similarity). Scores need no payload: the fusion sees every candidate, while payloads
/// are read only for the few that make the cut.
pub(crate) fn search_scores(fusion: &Fusion, lists: &[List], standings: &[&Standing]) -> Vec<f32> {
    if lists.len() <= 1 {
        return standings.iter().map(|s| s.similarity).collect();
    }
    let rankings: Vec<Ranking> = lists.iter().map(|&l| fusion.ranking(l)).collect();
    scores(fusion.method, &rankings, standings)
}

fn scores(method: FusionMethod, rankings: &[Ranking], standings: &[&Standing]) -> Vec<f32> {
    // Score fusion: each ranking's scores over the candidates, min-max normalised; the dense
    // similarity is known for every candidate (its vector comes back), a lexical score only for
    // the candidates that ranking found (0 for the others: below its cut).
    let (low, high) = standings
        .iter()
        .map(|s| s.similarity)
        .fold((f32::MAX, f32::MIN), |(l, h), s| (l.min(s), h.max(s)));
    let top: Vec<f32> = (0..rankings.len())
        .map(|i| {
            standings
                .iter()
                .filter_map(|s| s.places[i].map(|(_, score)| score))
                .fold(0.0f32, f32::max)
        })
        .collect();
    standings
        .iter()
        .map(|s| match method {
            FusionMethod::Rrf => rankings
                .iter()
                .zip(&s.places)
                .filter_map(|(ranking, place)| {
                    place.map(|(rank, _)| ranking.weight / (RRF_K + rank) as f32)
                })
                .sum(),
            FusionMethod::Score => rankings
                .iter()
                .zip(&s.places)
                .zip(&top)
                .map(|((ranking, place), &top)| {
                    let normalised = match place {
                        _ if ranking.by_similarity && high > low => {
                            (s.similarity - low) / (high - low)
                        }
                        _ if ranking.by_similarity => 1.0,
                        Some((_, score)) if top > 0.0 => score / top,
                        _ => 0.0,
                    };
                    ranking.weight * normalised
                })
                .sum(),
        })
        .collect()
}

/// Which chunk of which document version a hit is: the same in every list of hits.
pub fn chunk_key(hit: &Hit) -> (String, String, u32) {
    (
        hit.payload.doc_id.clone(),
        hit.payload.doc_hash.clone(),
        hit.payload.chunk_index,
    )
}

/// Lists of hits, each ranked best first and weighted, fused by reciprocal rank into one list
/// of distinct chunks, best first (a hit's `score` becomes its fused score). A chunk found by
/// several lists keeps the highest of its similarities: it passed the threshold for at least
/// one of them. Equal scores keep the order of the lists as given.
pub fn fuse_hits(lists: Vec<(Vec<Hit>, f32)>) -> Vec<Hit> {
    let rankings: Vec<Ranking> = lists
        .iter()
        .map(|(_, weight)| Ranking {
            weight: *weight,
            by_similarity: false,
        })
        .collect();
    let mut hits: Vec<Hit> = Vec::new();
    let mut standings: Vec<Standing> = Vec::new();
    let mut at: HashMap<(String, String, u32), usize> = HashMap::new();
    for (i, (list, _)) in lists.into_iter().enumerate() {
        for (rank, hit) in list.into_iter().enumerate() {
            let n = *at.entry(chunk_key(&hit)).or_insert_with(|| {
                standings.push(Standing {
                    similarity: hit.similarity,
                    places: vec![None; rankings.len()],
                });
                hits.push(hit.clone());
                hits.len() - 1
            });
            let standing = &mut standings[n];
            standing.similarity = standing.similarity.max(hit.similarity);
            standing.places[i] = Some((rank, hit.score));
        }
    }
    let standings: Vec<&Standing> = standings.iter().collect();
    let scores = scores(FusionMethod::Rrf, &rankings, &standings);
    let mut fused: Vec<Hit> = hits
        .into_iter()
        .zip(standings.iter().zip(scores))
        .map(|(mut hit, (standing, score))| {
            hit.score = score;
            hit.similarity = standing.similarity;
            hit
        })
        .collect();
    // Stable: equal scores keep the order of the lists.
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str, similarity: f32) -> Hit {
        let mut payload = crate::point::tests::sample_payload("a.md");
        payload.doc_id = doc.into();
        Hit {
            score: similarity,
            similarity,
            vector: Vec::new(),
            payload,
        }
    }

    fn docs(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.payload.doc_id.as_str()).collect()
    }

    #[test]
    fn a_chunk_both_lists_find_leads_with_its_best_similarity() {
        let own = vec![hit("ko", 0.8), hit("both", 0.7)];
        let translated = vec![hit("en", 0.9), hit("both", 0.75)];
        let fused = fuse_hits(vec![(own, 1.0), (translated, 1.0)]);
        assert_eq!(docs(&fused), ["both", "ko", "en"]);
        assert_eq!(fused[0].similarity, 0.75);
    }

    #[test]
    fn a_heavier_list_wins_a_tie_of_places() {
        let fused = fuse_hits(vec![(vec![hit("a", 0.9)], 1.0), (vec![hit("b", 0.1)], 1.5)]);
        assert_eq!(docs(&fused), ["b", "a"]);
        assert!((fused[0].score - 1.5 / RRF_K as f32).abs() < 1e-6);
    }
}
