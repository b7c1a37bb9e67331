//! answer -> checked answer: which sentences the given sources support.
//!
//! A sentence is supported by a source when most of its content terms occur in it (lexical
//! overlap, the same terms as retrieval's lexical side, so Korean works through bigrams) or when
//! its embedding is close to one of the source's chunks. A sentence is checked against the
//! sources it cites first; an uncited sentence, or one whose citations do not hold, is checked
//! against every source, so the client learns which source (if any) would have backed it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::citations;
use crate::context::Source;

/// Thresholds of the check. Configurable because they depend on the embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportConfig {
    /// Share of a sentence's distinct terms that must occur in the source.
    pub min_lexical_overlap: f32,
    /// Cosine similarity between the sentence and one of the source's chunks.
    pub min_similarity: f32,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            min_lexical_overlap: 0.6,
            min_similarity: 0.7,
        }
    }
}

/// Fewer distinct terms than this and a sentence is not checked (and so not supported).
const MIN_TERMS: usize = 2;

/// One sentence of an answer and how the sources back it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// As written, citations included.
    pub text: String,
    /// Valid source numbers cited in the sentence.
    pub cited: Vec<u32>,
    /// The source that supports it best (1-based), when one passes the thresholds.
    pub supported_by: Option<u32>,
    /// Overlap and similarity with the best source checked (supporting or not).
    pub lexical_overlap: f32,
    pub similarity: f32,
}

/// Splits `answer` into sentences: after `.`, `!`, `?` or `。` followed by a space or the end
/// (citations right after the mark stay with their sentence), and at line breaks.
pub fn sentences(answer: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = answer.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            push(&mut out, &mut current);
            i += 1;
            continue;
        }
        current.push(c);
        if matches!(c, '.' | '!' | '?' | '。' | '！' | '？') {
            // Trailing citations ("... here. [2]") belong to the sentence they follow.
            let mut j = i + 1;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            while j < chars.len() && chars[j] == '[' {
                let Some(close) = chars[j..].iter().position(|&c| c == ']') else {
                    break;
                };
                let inside: String = chars[j + 1..j + close].iter().collect();
                if citations::numbers(&inside).is_none() {
                    break;
                }
                current.extend(&chars[i + 1..j + close + 1]);
                i = j + close;
                j = i + 1;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
            }
            // Chinese and Japanese put no space after a full stop.
            let full_width = matches!(c, '。' | '！' | '？');
            if full_width || i + 1 >= chars.len() || chars[i + 1].is_whitespace() {
                push(&mut out, &mut current);
            }
        }
        i += 1;
    }
    push(&mut out, &mut current);
    out
}

fn push(out: &mut Vec<String>, current: &mut String) {
    let s = current.trim();
    if strip_citations(s).chars().any(char::is_alphanumeric) {
        out.push(s.to_owned());
    }
    current.clear();
}

/// Checks each sentence; `embeddings[i]` is the embedding of `sentences[i]` (without its
/// citations), and `cited[i]` its valid citation numbers.
pub fn check(
    sentences: &[String],
    cited: &[Vec<u32>],
    embeddings: &[Vec<f32>],
    sources: &[Source],
    config: &SupportConfig,
) -> Vec<Sentence> {
    let source_terms: Vec<HashSet<String>> = sources
        .iter()
        .map(|s| {
            rag_lexical::terms(&s.hit.payload.text)
                .into_iter()
                .collect()
        })
        .collect();
    sentences
        .iter()
        .zip(cited)
        .zip(embeddings)
        .map(|((text, cited), embedding)| {
            let terms: HashSet<String> = rag_lexical::terms(&strip_citations(text))
                .into_iter()
                .collect();
            let measure = |n: u32| {
                let i = n as usize - 1;
                let overlap = if terms.is_empty() {
                    0.0
                } else {
                    terms.intersection(&source_terms[i]).count() as f32 / terms.len() as f32
                };
                let similarity = sources[i]
                    .vectors
                    .iter()
                    .map(|v| rag_store::cosine(embedding, v))
                    .fold(0.0f32, f32::max);
                (n, overlap, similarity)
            };
            // "1.", "Yes [1]." and the like say too little to be checked, so they support
            // nothing: an answer made only of them is refused.
            let checkable = terms.len() >= MIN_TERMS;
            let passes = |&(_, overlap, similarity): &(u32, f32, f32)| {
                checkable
                    && (overlap >= config.min_lexical_overlap
                        || similarity >= config.min_similarity)
            };
            let strength = |&(_, overlap, similarity): &(u32, f32, f32)| overlap.max(similarity);
            // A source that passes beats one that does not, whatever their raw numbers.
            let best = |ns: &mut dyn Iterator<Item = u32>| {
                ns.map(measure).max_by(|a, b| {
                    passes(a)
                        .cmp(&passes(b))
                        .then(strength(a).total_cmp(&strength(b)))
                })
            };
            let by_citation = best(&mut cited.iter().copied()).filter(passes);
            let any = || best(&mut (1..=sources.len() as u32));
            let chosen = by_citation.or_else(any);
            let (supported_by, lexical_overlap, similarity) = match chosen {
                Some(m) if passes(&m) => (Some(m.0), m.1, m.2),
                Some((_, overlap, similarity)) => (None, overlap, similarity),
                None => (None, 0.0, 0.0),
            };
            Sentence {
                text: text.clone(),
                cited: cited.clone(),
                supported_by,
                lexical_overlap,
                similarity,
            }
        })
        .collect()
}

/// The sentence without `[n]` markers, for measuring it.
pub fn strip_citations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if citations::numbers(&after[..close]).is_some() => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Source;
    use crate::prompt::tests::hit;

    fn source(text: &str, vector: Vec<f32>) -> Source {
        Source {
            hit: hit("a.md", 0, text),
            vectors: vec![vector],
            chunks: vec![0],
        }
    }

    #[test]
    fn splits_sentences_keeping_trailing_citations() {
        assert_eq!(
            sentences("Leave is 25 days [1]. VPN uses WireGuard. [2]\nVersion 1.2 is out! 끝."),
            [
                "Leave is 25 days [1].",
                "VPN uses WireGuard. [2]",
                "Version 1.2 is out!",
                "끝."
            ]
        );
        assert!(sentences("  [1] ").is_empty());
        assert_eq!(
            sentences("Done. [Optional] restart it [2]."),
            ["Done.", "[Optional] restart it [2]."]
        );
        assert_eq!(
            sentences("休暇は25日です。申請は人事へ！"),
            ["休暇は25日です。", "申請は人事へ！"]
        );
    }

    #[test]
    fn strips_citation_markers_only() {
        assert_eq!(strip_citations("Yes [1, 2] and [x] [3]."), "Yes and [x] .");
    }

    #[test]
    fn a_sentence_is_supported_by_the_source_that_says_it() {
        let sources = [
            source(
                "Employees receive 25 days of paid annual leave per year.",
                vec![1.0, 0.0],
            ),
            source("The VPN uses WireGuard on port 51820.", vec![0.0, 1.0]),
        ];
        let config = SupportConfig::default();
        let said = [
            "Employees receive 25 days of paid leave [1].".to_owned(),
            "The VPN listens on port 51820 [1].".to_owned(),
            "The cafeteria serves pizza on Fridays [2].".to_owned(),
        ];
        let cited = [vec![1], vec![1], vec![2]];
        // Embeddings far from every chunk: only the lexical side can support.
        let embeddings = vec![vec![-1.0, -1.0]; 3];
        let checked = check(&said, &cited, &embeddings, &sources, &config);
        assert_eq!(checked[0].supported_by, Some(1));
        assert_eq!(
            checked[1].supported_by,
            Some(2),
            "wrong citation, but source 2 supports it"
        );
        assert_eq!(checked[2].supported_by, None, "{checked:?}");
        assert!(checked[2].lexical_overlap < 0.6);

        let short = check(
            &["1. [1]".to_owned()],
            &[vec![1]],
            &[vec![1.0, 0.0]],
            &sources,
            &config,
        );
        assert_eq!(short[0].supported_by, None, "too short to check: {short:?}");
    }

    #[test]
    fn a_passing_source_beats_a_closer_failing_one() {
        // Source 1: 2 of 5 terms, cosine 0.69 (fails both rules, but "stronger");
        // source 2: 3 of 5 terms (passes the lexical rule), cosine 0.
        let sources = [
            source(
                "alpha bravo zulu",
                vec![0.69, (1.0f32 - 0.69 * 0.69).sqrt()],
            ),
            source("alpha bravo charlie yankee", vec![0.0, 1.0]),
        ];
        let said = ["Alpha bravo charlie delta echo [1].".to_owned()];
        let checked = check(
            &said,
            &[vec![1]],
            &[vec![1.0, 0.0]],
            &sources,
            &SupportConfig::default(),
        );
        assert_eq!(checked[0].supported_by, Some(2), "{checked:?}");
    }

    #[test]
    fn embedding_similarity_supports_a_paraphrase() {
        let sources = [source("Paid time off: twenty-five days.", vec![1.0, 0.0])];
        let said = ["You get 25 vacation days a year [1].".to_owned()];
        let close = vec![vec![0.9, 0.1]];
        let checked = check(
            &said,
            &[vec![1]],
            &close,
            &sources,
            &SupportConfig::default(),
        );
        assert_eq!(checked[0].supported_by, Some(1));
        assert!(checked[0].similarity > 0.9);
    }

    #[test]
    fn korean_sentences_are_checked_through_bigrams() {
        let sources = [source(
            "연차 휴가는 연간 25일이며 팀장 승인이 필요합니다.",
            vec![1.0, 0.0],
        )];
        let said = ["연차 휴가는 25일입니다 [1].".to_owned()];
        let checked = check(
            &said,
            &[vec![1]],
            &[vec![0.0, 1.0]],
            &sources,
            &SupportConfig::default(),
        );
        assert_eq!(checked[0].supported_by, Some(1), "{checked:?}");
    }
}
