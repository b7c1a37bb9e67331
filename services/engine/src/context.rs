//! hits -> sources: what the model is shown. The same passage is shown once, and neighbouring
//! chunks of one document become one source, so the model reads a passage whole instead of two
//! overlapping fragments under two numbers.

use std::collections::{HashMap, HashSet};

use rag_store::Hit;

/// One numbered source: a passage of one document, made of one or more consecutive chunks.
#[derive(Debug, Clone)]
pub struct Source {
    /// The first chunk's payload with the passage's whole text; scores are the best of its
    /// chunks.
    pub hit: Hit,
    /// The dense vector of each chunk of the passage, for checking answer sentences.
    pub vectors: Vec<Vec<f32>>,
    /// The chunk indexes the passage covers, in order.
    pub chunks: Vec<u32>,
}

/// Chunk overlaps shorter than this are coincidence, not the splitter's overlap.
const MIN_OVERLAP_BYTES: usize = 16;

/// Sources from ranked hits: duplicates of an already kept text dropped, consecutive chunks of
/// the same document version merged, ordered by the best rank among their chunks.
pub fn assemble(hits: Vec<Hit>) -> Vec<Source> {
    let mut seen = HashSet::new();
    let hits: Vec<(usize, Hit)> = hits
        .into_iter()
        // By the text itself: `chunk_hash` also covers the header a chunk was embedded with,
        // so one text under two titles has two hashes.
        .filter(|h| seen.insert(h.payload.text.clone()))
        .enumerate()
        .collect();

    let mut groups: HashMap<(String, String), Vec<(usize, Hit)>> = HashMap::new();
    for (rank, hit) in hits {
        let key = (hit.payload.doc_id.clone(), hit.payload.doc_hash.clone());
        groups.entry(key).or_default().push((rank, hit));
    }

    let mut ranked: Vec<(usize, Source)> = Vec::new();
    for (_, mut members) in groups {
        members.sort_by_key(|(_, h)| h.payload.chunk_index);
        let mut run: Vec<(usize, Hit)> = Vec::new();
        for member in members {
            let follows = run
                .last()
                .is_some_and(|(_, h)| h.payload.chunk_index + 1 == member.1.payload.chunk_index);
            if !follows && !run.is_empty() {
                ranked.push(merge(std::mem::take(&mut run)));
            }
            run.push(member);
        }
        if !run.is_empty() {
            ranked.push(merge(run));
        }
    }
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, source)| source).collect()
}

fn merge(run: Vec<(usize, Hit)>) -> (usize, Source) {
    let rank = run.iter().map(|(r, _)| *r).min().expect("non-empty run");
    let mut parts = run.into_iter().map(|(_, h)| h);
    let mut hit = parts.next().expect("non-empty run");
    let mut vectors = vec![std::mem::take(&mut hit.vector)];
    let mut chunks = vec![hit.payload.chunk_index];
    for next in parts {
        append_without_overlap(&mut hit.payload.text, &next.payload.text);
        hit.score = hit.score.max(next.score);
        hit.similarity = hit.similarity.max(next.similarity);
        vectors.push(next.vector);
        chunks.push(next.payload.chunk_index);
    }
    (
        rank,
        Source {
            hit,
            vectors,
            chunks,
        },
    )
}

/// The sources that answer the question as closely as the best one: those whose similarity to
/// the question is within `margin` of the closest source's in the same script, and always the
/// first-ranked one (fusion may rank a source first for its exact terms or identifiers). A
/// distant source beside a close one is the model's favourite wrong page to cite: it shares the
/// question's words but not its subject. Similarities are compared within one script only: a
/// question's similarity to pages in its own language and to pages in another (found by its
/// translation) are on different scales, with a multilingual model as with an English-only one.
pub fn relevant(sources: Vec<Source>, margin: f32) -> Vec<Source> {
    let script = |s: &Source| rag_lexical::non_latin_script(&s.hit.payload.text);
    let mut best: Vec<(Option<&'static str>, f32)> = Vec::new();
    for source in &sources {
        let key = script(source);
        match best.iter_mut().find(|(k, _)| *k == key) {
            Some((_, b)) => *b = b.max(source.hit.similarity),
            None => best.push((key, source.hit.similarity)),
        }
    }
    let best_of = |key: Option<&'static str>| {
        best.iter()
            .find(|(k, _)| *k == key)
            .map_or(f32::MIN, |(_, b)| *b)
    };
    let keep: Vec<bool> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| i == 0 || s.hit.similarity >= best_of(script(s)) - margin)
        .collect();
    sources
        .into_iter()
        .zip(keep)
        .filter_map(|(s, keep)| keep.then_some(s))
        .collect()
}

/// Appends `next` to `text`, dropping the start of `next` that repeats the end of `text` (the
/// splitter's overlap between neighbouring chunks).
fn append_without_overlap(text: &mut String, next: &str) {
    let longest = text.len().min(next.len());
    let overlap = (MIN_OVERLAP_BYTES..=longest)
        .rev()
        .filter(|&n| next.is_char_boundary(n) && text.is_char_boundary(text.len() - n))
        .find(|&n| text.ends_with(&next[..n]))
        .unwrap_or(0);
    let rest = &next[overlap..];
    if overlap == 0 {
        text.push('\n');
    }
    text.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::tests::hit;

    fn chunk(doc: &str, index: u32, text: &str) -> Hit {
        let mut h = hit(doc, 1, text);
        h.payload.chunk_index = index;
        h.payload.chunk_hash = format!("{doc}-{index}");
        h
    }

    #[test]
    fn sources_far_below_the_closest_are_dropped_but_the_first_stays() {
        let mut hits = vec![
            chunk("lexical-first.md", 0, "ranked first by its exact terms"),
            chunk("close.md", 0, "the closest in meaning"),
            chunk("near.md", 0, "almost as close"),
            chunk("far.md", 0, "shares a word, not the subject"),
        ];
        for (hit, similarity) in hits.iter_mut().zip([0.2, 0.5, 0.45, 0.3]) {
            hit.similarity = similarity;
        }
        let kept: Vec<String> = relevant(assemble(hits.clone()), 0.1)
            .into_iter()
            .map(|s| s.hit.payload.source)
            .collect();
        assert_eq!(kept, ["lexical-first.md", "close.md", "near.md"]);
        assert_eq!(
            relevant(assemble(hits), 2.0).len(),
            4,
            "a wide margin keeps all"
        );
        assert!(relevant(Vec::new(), 0.1).is_empty());
    }

    #[test]
    fn similarities_are_compared_within_one_script() {
        // A Korean question: the Korean page found by its own words scores on another scale
        // than the English pages found by its translation; each is held to the best of its kind.
        let mut hits = vec![
            chunk(
                "en-first.md",
                0,
                "Employees receive 25 vacation days per year.",
            ),
            chunk("ko.md", 0, "직원은 연간 휴가를 받습니다."),
            chunk("en-near.md", 0, "Unused vacation days carry over."),
            chunk("en-far.md", 0, "The office opens at nine."),
        ];
        for (hit, similarity) in hits.iter_mut().zip([0.5, 0.9, 0.45, 0.3]) {
            hit.similarity = similarity;
        }
        let kept: Vec<String> = relevant(assemble(hits), 0.1)
            .into_iter()
            .map(|s| s.hit.payload.source)
            .collect();
        assert_eq!(kept, ["en-first.md", "ko.md", "en-near.md"]);
    }

    #[test]
    fn neighbouring_chunks_merge_without_repeating_their_overlap() {
        let hits = vec![
            chunk(
                "a.md",
                4,
                "The overlap sentence is here. Then the second part.",
            ),
            chunk("b.md", 0, "Another document."),
            chunk(
                "a.md",
                3,
                "First part of the passage. The overlap sentence is here.",
            ),
            chunk("a.md", 9, "Far away in the same document."),
        ];
        let sources = assemble(hits);
        let texts: Vec<&str> = sources
            .iter()
            .map(|s| s.hit.payload.text.as_str())
            .collect();
        assert_eq!(
            texts,
            [
                "First part of the passage. The overlap sentence is here. Then the second part.",
                "Another document.",
                "Far away in the same document.",
            ]
        );
        assert_eq!(sources[0].chunks, [3, 4]);
        assert_eq!(sources[0].vectors.len(), 2);
        assert_eq!(sources[0].hit.payload.chunk_index, 3);
    }

    #[test]
    fn the_same_text_is_shown_once() {
        // Another document, another header embedded with it: another chunk hash, same text.
        let copy = chunk("copy.md", 0, "Same words.");
        let sources = assemble(vec![chunk("a.md", 0, "Same words."), copy]);
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].hit.payload.source, "a.md");
    }

    #[test]
    fn chunks_without_overlap_are_joined_on_a_new_line() {
        let sources = assemble(vec![chunk("a.md", 0, "One."), chunk("a.md", 1, "Two.")]);
        assert_eq!(sources[0].hit.payload.text, "One.\nTwo.");
    }
}
