//! sources -> excerpts: what of each source the model reads.
//!
//! On a CPU the first token waits for the model to read the whole prompt (≈ 13 ms a token for
//! the 1.5B default on two cores), and most of a passage is about something next to the
//! question. A source longer than `query.source_tokens` is cut to its sentences closest to the
//! question, each with a neighbour for sense, in document order. The excerpt replaces the
//! passage's text everywhere after this step: the prompt, the support check and the sources the
//! client is sent all see the same words, so citations and the check stay exact.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use rag_embed::Embedder;

use crate::context::Source;

/// Units shorter than this are joined to the next one: a heading or a list item of two words
/// says little on its own (the same rule as the rescoring step's).
const MIN_UNIT_CHARS: usize = 40;
/// How much the share of the question's terms a sentence holds counts beside its similarity:
/// the English-only embedder places a sentence naming the question's code or command no nearer
/// than one about the same topic.
const TERM_WEIGHT: f32 = 0.25;
/// What stands where sentences were left out.
const GAP: &str = " … ";
/// Sentences read per source (its first ones): bounds the embedding work of one question, as
/// the rescoring step's `max_sentences` does. A chunk holds about ten.
const MAX_UNITS: usize = 16;

/// Most tokens of each source: the first-ranked one's, the others'; 0 keeps sources whole.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub first: usize,
    pub rest: usize,
}

impl Caps {
    fn of(self, index: usize) -> usize {
        if index == 0 { self.first } else { self.rest }
    }
}

/// Each source cut to at most about `caps` tokens (as `count` counts them) of its sentences
/// closest to `question`. With an English-only model, a question in another script is compared
/// with the English sources by its English translation (`english`, the one it was searched
/// with), when there is one; sources neither can be compared with are kept whole, as are
/// sources already within the cap. If embedding fails, or takes more than half the time left
/// before `deadline` (the answer needs the rest, and the client its stream before it), every
/// source is kept whole.
pub async fn excerpts(
    embedder: &Arc<Embedder>,
    question: &str,
    english: Option<&str>,
    mut sources: Vec<Source>,
    caps: Caps,
    count: &(dyn Fn(&str) -> usize + Sync),
    deadline: Option<std::time::Instant>,
) -> Vec<Source> {
    // The questions a source may be compared with: the question itself, then its translation.
    let script = rag_lexical::non_latin_script(question);
    let askers: Vec<&str> = std::iter::once(question)
        .chain(english.filter(|_| script.is_some() && !embedder.multilingual()))
        .collect();
    let compared_by = |text: &str| -> Option<usize> {
        let latin = rag_lexical::non_latin_script(text).is_none();
        if embedder.multilingual() || (script.is_none() && latin) {
            Some(0)
        } else if latin && askers.len() > 1 {
            Some(1)
        } else {
            None
        }
    };
    let mut cut: Vec<(usize, usize, Vec<Range<usize>>)> = Vec::new();
    let mut texts = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let text = &source.hit.payload.text;
        let cap = caps.of(i);
        if cap == 0 || count(text) <= cap {
            continue;
        }
        let Some(asker) = compared_by(text) else {
            continue;
        };
        let mut units = units(text);
        units.truncate(MAX_UNITS);
        if units.len() < 2 {
            continue;
        }
        texts.extend(units.iter().map(|u| text[u.clone()].to_owned()));
        cut.push((i, asker, units));
    }
    if cut.is_empty() {
        return sources;
    }
    let embedder = embedder.clone();
    let asked: Vec<String> = askers.iter().map(|a| (*a).to_owned()).collect();
    let embedding = tokio::task::spawn_blocking(move || {
        let questions = embedder.embed_queries(asked)?;
        Ok::<_, rag_embed::EmbedError>((questions, embedder.embed(texts)?))
    });
    let embedded = match deadline {
        Some(deadline) => {
            let half = deadline.saturating_duration_since(std::time::Instant::now()) / 2;
            match tokio::time::timeout(half, embedding).await {
                Ok(embedded) => embedded,
                Err(_) => {
                    tracing::info!("no time left to excerpt the sources; shown whole");
                    return sources;
                }
            }
        }
        None => embedding.await,
    };
    let (question_vectors, vectors) = match embedded {
        Ok(Ok((q, v))) if q.len() == askers.len() => (q, v),
        Ok(Ok(_)) => return sources,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "embedding source sentences; sources shown whole");
            return sources;
        }
        Err(e) => {
            tracing::warn!(error = %e, "embedding task failed; sources shown whole");
            return sources;
        }
    };
    let wanted: Vec<BTreeSet<String>> = askers
        .iter()
        .map(|a| rag_lexical::terms(a).into_iter().collect())
        .collect();
    let mut vectors = vectors.into_iter();
    for (i, asker, units) in cut {
        let text = &sources[i].hit.payload.text;
        let scores: Vec<f32> = units
            .iter()
            .zip(vectors.by_ref())
            .map(|(unit, vector)| {
                let held = term_share(&text[unit.clone()], &wanted[asker]);
                rag_store::cosine(&question_vectors[asker], &vector) + TERM_WEIGHT * held
            })
            .collect();
        if scores.len() != units.len() {
            break; // the embedder returned too few vectors: the rest stay whole
        }
        let excerpt = select(text, &units, &scores, caps.of(i), count);
        sources[i].hit.payload.text = excerpt;
    }
    sources
}

/// The share of the question's terms that `text` holds.
fn term_share(text: &str, wanted: &BTreeSet<String>) -> f32 {
    if wanted.is_empty() {
        return 0.0;
    }
    let have: BTreeSet<String> = rag_lexical::terms(text).into_iter().collect();
    wanted.intersection(&have).count() as f32 / wanted.len() as f32
}

/// The text's sentences and lines as byte ranges, trimmed, short ones joined to the next.
fn units(text: &str) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        let ends_sentence = matches!(c, '.' | '!' | '?' | '。' | '！' | '？')
            && chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if c == '\n' || ends_sentence {
            pieces.push(start..end);
            start = end;
        }
    }
    pieces.push(start..text.len());

    let mut units: Vec<Range<usize>> = Vec::new();
    let mut pending: Option<Range<usize>> = None;
    for piece in pieces {
        let Some(piece) = trimmed(text, piece) else {
            continue;
        };
        let joined = match pending.take() {
            Some(p) => p.start..piece.end,
            None => piece,
        };
        if text[joined.clone()].chars().count() >= MIN_UNIT_CHARS {
            units.push(joined);
        } else {
            pending = Some(joined);
        }
    }
    if let Some(rest) = pending {
        match units.last_mut() {
            Some(last) => last.end = rest.end,
            None => units.push(rest),
        }
    }
    units
}

fn trimmed(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let piece = &text[range.clone()];
    let start = range.start + (piece.len() - piece.trim_start().len());
    let end = range.end - (piece.len() - piece.trim_end().len());
    (start < end).then_some(start..end)
}

/// The best-scoring units, each tried with its next and then its previous neighbour, while the
/// excerpt stays within `cap` tokens; the best unit is kept even alone over the cap. Units keep
/// their document order; a gap between them is marked.
fn select(
    text: &str,
    units: &[Range<usize>],
    scores: &[f32],
    cap: usize,
    count: &(dyn Fn(&str) -> usize + Sync),
) -> String {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut chosen = BTreeSet::new();
    for (rank, &best) in order.iter().enumerate() {
        let neighbours = [Some(best + 1), best.checked_sub(1)];
        for unit in std::iter::once(Some(best)).chain(neighbours).flatten() {
            if unit >= units.len() || chosen.contains(&unit) {
                continue;
            }
            chosen.insert(unit);
            let fits = count(&assemble(text, units, &chosen)) <= cap;
            if !fits && (rank != 0 || unit != best) {
                chosen.remove(&unit);
            }
        }
    }
    assemble(text, units, &chosen)
}

/// The chosen units in order: neighbours as the text has them between, gaps marked.
fn assemble(text: &str, units: &[Range<usize>], chosen: &BTreeSet<usize>) -> String {
    let mut out = String::new();
    let mut last: Option<usize> = None;
    for &unit in chosen {
        match last {
            Some(previous) if previous + 1 == unit => {
                out.push_str(&text[units[previous].end..units[unit].end]);
            }
            Some(_) => {
                out.push_str(GAP);
                out.push_str(&text[units[unit].clone()]);
            }
            None => out.push_str(&text[units[unit].clone()]),
        }
        last = Some(unit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    const POLICY: &str = "# Leave Policy\n\nFull-time employees receive 25 days of paid annual \
                          leave per year. Part-time employees receive leave in proportion to \
                          their hours. Up to five unused days may be carried over into the next \
                          year. Carried-over days must be used by 31 March. Sick leave is \
                          reported to your manager on the first day of absence.";

    fn texts(text: &str, units: &[Range<usize>]) -> Vec<String> {
        units.iter().map(|u| text[u.clone()].to_owned()).collect()
    }

    #[test]
    fn units_are_sentences_and_lines_with_short_ones_joined() {
        let units = units(POLICY);
        assert_eq!(
            texts(POLICY, &units),
            [
                "# Leave Policy\n\nFull-time employees receive 25 days of paid annual leave per year.",
                "Part-time employees receive leave in proportion to their hours.",
                "Up to five unused days may be carried over into the next year.",
                "Carried-over days must be used by 31 March.",
                "Sick leave is reported to your manager on the first day of absence.",
            ]
        );
        // "e.g." and "3.5" do not end a sentence; a short tail joins the unit before it.
        let text = "Use version 3.5 or later, e.g. on Linux, for the new client. Done.";
        assert_eq!(texts(text, &self::units(text)), [text]);
        assert!(self::units("  \n ").is_empty());
    }

    #[test]
    fn the_best_sentence_comes_with_its_neighbour_in_document_order() {
        let units = units(POLICY);
        // The carry-over sentence is closest; the deadline after it is its neighbour.
        let scores = [0.3, 0.1, 0.9, 0.5, 0.0];
        let excerpt = select(POLICY, &units, &scores, 25, &words);
        assert_eq!(
            excerpt,
            "Up to five unused days may be carried over into the next year. Carried-over days \
             must be used by 31 March."
        );
        // More room: the neighbour before it too.
        let excerpt = select(POLICY, &units, &scores, 40, &words);
        assert_eq!(
            excerpt,
            "Part-time employees receive leave in proportion to their hours. Up to five unused \
             days may be carried over into the next year. Carried-over days must be used by 31 \
             March."
        );
        // A second best sentence away from the first: the gap is marked.
        let scores = [0.9, 0.0, 0.1, 0.2, 0.6];
        let excerpt = select(POLICY, &units, &scores, 40, &words);
        assert_eq!(
            excerpt,
            "# Leave Policy\n\nFull-time employees receive 25 days of paid annual leave per year. \
             Part-time employees receive leave in proportion to their hours. … Sick leave is \
             reported to your manager on the first day of absence."
        );
        assert!(words(&excerpt) <= 40);
    }

    #[test]
    fn the_best_sentence_is_kept_even_alone_over_the_cap() {
        let units = units(POLICY);
        let scores = [0.9, 0.1, 0.2, 0.1, 0.0];
        let excerpt = select(POLICY, &units, &scores, 3, &words);
        assert_eq!(excerpt, &POLICY[units[0].clone()]);
    }

    #[test]
    fn every_excerpt_is_made_of_the_sources_own_words() {
        let units = units(POLICY);
        for cap in [5, 15, 30, 60, 200] {
            let excerpt = select(POLICY, &units, &[0.1, 0.5, 0.2, 0.4, 0.3], cap, &words);
            for piece in excerpt.split(GAP) {
                assert!(POLICY.contains(piece), "{piece:?}");
            }
        }
    }

    #[test]
    fn the_first_ranked_source_has_a_cap_of_its_own() {
        let caps = Caps {
            first: 192,
            rest: 96,
        };
        assert_eq!(
            (0..3).map(|i| caps.of(i)).collect::<Vec<_>>(),
            [192, 96, 96]
        );
    }

    #[test]
    fn term_share_counts_the_questions_terms_held() {
        let wanted: BTreeSet<String> = rag_lexical::terms("What does error NWC-412 mean?")
            .into_iter()
            .collect();
        assert!(term_share("NWC-412: the VPN certificate expired.", &wanted) > 0.0);
        assert_eq!(term_share("Nothing related.", &BTreeSet::new()), 0.0);
    }
}
