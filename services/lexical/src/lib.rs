//! text -> terms -> sparse vector: the exact-term side of hybrid retrieval.
//!
//! Dense embeddings blur rare tokens (error codes, option flags, product names) into their
//! neighbourhood; a BM25-style sparse vector matches them exactly. The store multiplies each
//! query term by its inverse document frequency (Qdrant's `idf` modifier), so this crate only
//! supplies term frequencies, and both backends score the same way.
//!
//! Terms:
//! - Latin-script and other alphabetic words: lower-cased, NFKC-normalised, English stems
//!   (Snowball), without a short list of English function words.
//! - Compounds such as `NWC-412`, `--debounce-ms`, `debian/control` or `1.2.3` are also kept
//!   whole, so the exact code outranks documents that merely mention `412`.
//! - Korean, Chinese and Japanese runs become overlapping character bigrams: Korean attaches
//!   particles to words (`휴가는`, `휴가를`), so whitespace tokens would never match the bare
//!   noun, while the bigram `휴가` does.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;

/// A sparse vector: term ids (sorted, unique) and their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVector {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVector {
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// BM25's term-frequency saturation and length normalisation.
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Typical number of terms in a chunk (chunks hold up to ~250 model tokens): length
/// normalisation is relative to it. A constant, because chunks are written one document at a
/// time and the collection's true average is not known then.
const AVG_TERMS: f32 = 150.0;
/// Longer "words" are hashes, base64 or minified code: noise, not terms.
const MAX_TERM_CHARS: usize = 40;

/// The vector stored with a chunk: BM25 term weights without IDF (the store applies it).
pub fn document_vector(text: &str) -> SparseVector {
    let terms = terms(text);
    let length = terms.len() as f32;
    let norm = K1 * (1.0 - B + B * length / AVG_TERMS);
    weighted(&terms, |tf| tf * (K1 + 1.0) / (tf + norm))
}

/// The vector a query searches with: each distinct term once (the store applies IDF).
pub fn query_vector(text: &str) -> SparseVector {
    weighted(&terms(text), |_| 1.0)
}

/// The query's identifiers only: codes, paths, dotted and snake_case names, versions, words
/// mixing letters and digits (`NWC-412`, `debian/control`, `embed_window`, `x86`, `2049`). Searched as a ranking of its own next to the
/// dense and the full lexical one: a chunk that holds the exact identifier asked about then
/// leads two of the three rankings, so the fusion puts it first even when the embedding sees
/// nothing special in it and every other chunk shares the query's common words.
pub fn identifier_vector(text: &str) -> SparseVector {
    let identifiers: Vec<String> = terms(text)
        .into_iter()
        .filter(|t| is_identifier(t))
        .collect();
    weighted(&identifiers, |_| 1.0)
}

fn is_identifier(term: &str) -> bool {
    let digits = term.chars().filter(char::is_ascii_digit).count();
    let letters = term.chars().filter(|c| c.is_alphabetic()).count();
    // Hyphenated words ("long-term", "built-in") are ordinary language, not identifiers; paths,
    // dotted names and snake_case are.
    term.contains(['_', '.', '/']) || (digits > 0 && letters > 0) || digits >= 3
}

fn weighted(terms: &[String], weight: impl Fn(f32) -> f32) -> SparseVector {
    let mut counts: BTreeMap<u32, f32> = BTreeMap::new();
    for term in terms {
        *counts.entry(term_id(term)).or_default() += 1.0;
    }
    let (indices, values) = counts.into_iter().map(|(id, tf)| (id, weight(tf))).unzip();
    SparseVector { indices, values }
}

/// A term's dimension: its hash, so no vocabulary needs storing or sharing between the ingest
/// worker and the query service. Two terms colliding in 2^32 only blur those two terms.
pub fn term_id(term: &str) -> u32 {
    let hash = blake3::hash(term.as_bytes());
    u32::from_le_bytes(hash.as_bytes()[..4].try_into().expect("32-byte hash"))
}

/// The terms of `text`, in order, repeats kept.
pub fn terms(text: &str) -> Vec<String> {
    let normalised: String = text.nfkc().flat_map(char::to_lowercase).collect();
    let mut out = Vec::new();
    let mut chars = normalised.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_cjk(c) {
            let mut run = Vec::new();
            while let Some(&(_, c)) = chars.peek() {
                if !is_cjk(c) {
                    break;
                }
                run.push(c);
                chars.next();
            }
            cjk_terms(&run, &mut out);
        } else if c.is_alphanumeric() {
            // A word, or a compound of words joined by - _ . / (a joiner counts only between
            // two word characters).
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if c.is_alphanumeric() && !is_cjk(c) {
                    end = i + c.len_utf8();
                    chars.next();
                } else if is_joiner(c)
                    && normalised[i + c.len_utf8()..]
                        .chars()
                        .next()
                        .is_some_and(|n| n.is_alphanumeric() && !is_cjk(n))
                {
                    chars.next();
                } else {
                    break;
                }
            }
            word_terms(&normalised[start..end], &mut out);
        } else {
            chars.next();
        }
    }
    out
}

fn word_terms(compound: &str, out: &mut Vec<String>) {
    let mut pieces = 0;
    for piece in compound.split(is_joiner) {
        if piece.chars().count() > MAX_TERM_CHARS || STOPWORDS.contains(&piece) {
            continue;
        }
        pieces += 1;
        if piece.chars().all(|c| c.is_ascii_digit()) {
            out.push(piece.to_owned());
        } else {
            out.push(STEMMER.stem(piece).into_owned());
        }
    }
    if compound.contains(is_joiner) && pieces > 0 && compound.chars().count() <= MAX_TERM_CHARS {
        out.push(compound.to_owned());
    }
}

fn cjk_terms(run: &[char], out: &mut Vec<String>) {
    match run {
        [] => {}
        [single] => out.push(single.to_string()),
        _ => out.extend(run.windows(2).map(|w| w.iter().collect())),
    }
}

fn is_joiner(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | '/')
}

/// The writing system most of `text`'s letters are in, when it is not the Latin alphabet:
/// "Korean (Hangul)", "Japanese (kana)", "Chinese characters (Han)", "Cyrillic", ... `None` for
/// text mostly in Latin letters (or without letters: codes and numbers).
pub fn non_latin_script(text: &str) -> Option<&'static str> {
    script_of(text, 1)
}

/// The writing system of the language `text` is written in, when it is not the Latin alphabet:
/// "LibreOffice의 접근성 향상 도구" is Korean with an English product name in it, although it
/// holds more Latin letters than Hangul. A syllable or ideograph carries what two to four Latin
/// letters do, so each counts as three here. For what the asker reads (the prompt's language,
/// whether an answer is in the question's language); [`non_latin_script`] is for what an
/// English-only embedder can read.
pub fn asker_script(text: &str) -> Option<&'static str> {
    script_of(text, 3)
}

/// The most frequent non-Latin script of `text` if its letters, each syllable or ideograph
/// counted `syllable_weight` times, outnumber the Latin ones.
fn script_of(text: &str, syllable_weight: usize) -> Option<&'static str> {
    let mut latin = 0usize;
    let mut others: Vec<(&'static str, usize)> = Vec::new();
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        let script = match c {
            'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' => {
                latin += 1;
                continue;
            }
            '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}' | '\u{AC00}'..='\u{D7A3}' => {
                "Korean (Hangul)"
            }
            '\u{3040}'..='\u{30FF}' => "Japanese (kana)",
            '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' => {
                "Chinese characters (Han)"
            }
            '\u{0400}'..='\u{052F}' => "Cyrillic",
            '\u{0370}'..='\u{03FF}' => "Greek",
            '\u{0590}'..='\u{05FF}' => "Hebrew",
            '\u{0600}'..='\u{06FF}' => "Arabic",
            '\u{0900}'..='\u{097F}' => "Devanagari",
            '\u{0E00}'..='\u{0E7F}' => "Thai",
            _ => "a non-Latin script",
        };
        let weight = if is_cjk(c) { syllable_weight } else { 1 };
        match others.iter_mut().find(|(name, _)| *name == script) {
            Some((_, n)) => *n += weight,
            None => others.push((script, weight)),
        }
    }
    let foreign: usize = others.iter().map(|(_, n)| n).sum();
    if foreign <= latin {
        return None;
    }
    // Japanese mixes kana with Han: any kana makes it Japanese.
    if others.iter().any(|(name, _)| *name == "Japanese (kana)") {
        return Some("Japanese (kana)");
    }
    others
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(name, _)| name)
}

/// Scripts written without spaces between words, or (Korean) with particles attached to them.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{11FF}'   // Hangul Jamo
        | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
        | '\u{3130}'..='\u{318F}' // Hangul compatibility Jamo
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{AC00}'..='\u{D7A3}' // Hangul syllables
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
    )
}

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// English function words: frequent enough that IDF makes them nearly weightless in retrieval,
/// but they would make every sentence look "supported" in the lexical overlap check.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has",
    "have", "how", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the",
    "their", "there", "these", "this", "to", "was", "what", "when", "where", "which", "who", "why",
    "will", "with", "you", "your",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_of_a_question_is_named_when_it_is_not_latin() {
        assert_eq!(
            non_latin_script("원격 근무는 주 며칠까지 가능한가요?"),
            Some("Korean (Hangul)")
        );
        assert_eq!(
            non_latin_script("VPN 오류 NWC-412는 무슨 뜻인가요?"),
            Some("Korean (Hangul)")
        );
        assert_eq!(
            non_latin_script("有給休暇は何日ですか"),
            Some("Japanese (kana)")
        );
        assert_eq!(
            non_latin_script("年假有多少天"),
            Some("Chinese characters (Han)")
        );
        assert_eq!(non_latin_script("Сколько дней отпуска?"), Some("Cyrillic"));
        // More Latin letters than Hangul, but Korean is what the asker writes in.
        let mixed = "LibreOffice의 접근성 향상 도구";
        assert_eq!(non_latin_script(mixed), None);
        assert_eq!(asker_script(mixed), Some("Korean (Hangul)"));
        assert_eq!(asker_script("EXIF 데이터"), Some("Korean (Hangul)"));
        // A Korean word in an English sentence leaves it English.
        assert_eq!(
            asker_script("What does the 연차 policy say about carry-over?"),
            None
        );
        for latin in [
            "How many vacation days do I get?",
            "Wie viele Urlaubstage habe ich? Ça dépend.",
            "What does 원격 mean in the remote-work policy?",
            "NWC-412",
            "",
        ] {
            assert_eq!(non_latin_script(latin), None, "{latin:?}");
        }
    }

    #[test]
    fn english_words_are_stemmed_and_function_words_dropped() {
        assert_eq!(
            terms("What are the Packages' dependencies?"),
            ["packag", "depend"]
        );
        assert_eq!(terms("package depends"), ["packag", "depend"]);
    }

    #[test]
    fn codes_and_flags_are_kept_whole_as_well_as_in_pieces() {
        assert_eq!(terms("Error NWC-412."), ["error", "nwc", "412", "nwc-412"]);
        assert_eq!(
            terms("run with --debounce-ms 500"),
            ["run", "debounc", "ms", "debounce-ms", "500"]
        );
        assert_eq!(
            terms("see debian/control"),
            ["see", "debian", "control", "debian/control"]
        );
        // A sentence-ending dot is not a joiner.
        assert_eq!(terms("version 1.2."), ["version", "1", "2", "1.2"]);
    }

    #[test]
    fn korean_becomes_bigrams_so_particles_do_not_hide_the_noun() {
        assert_eq!(terms("휴가는"), ["휴가", "가는"]);
        let doc = query_vector("연차 휴가를 신청하려면");
        let query = query_vector("휴가 신청");
        let shared = query
            .indices
            .iter()
            .filter(|i| doc.indices.contains(i))
            .count();
        assert_eq!(shared, 2, "휴가 and 신청 match despite the particles");
        assert_eq!(
            terms("NWC-412번 오류"),
            ["nwc", "412", "nwc-412", "번", "오류"]
        );
    }

    #[test]
    fn identifiers_are_codes_flags_and_long_numbers() {
        let only = |text: &str| {
            terms(text)
                .into_iter()
                .filter(|t| is_identifier(t))
                .collect::<Vec<_>>()
        };
        assert_eq!(only("What does error NWC-412 mean?"), ["412", "nwc-412"]);
        assert_eq!(
            only("set embed_window on x86 since 2026, page 3"),
            ["embed_window", "x86", "2026"]
        );
        assert!(only("the long-term, built-in plan").is_empty());
        assert!(identifier_vector("how do I request leave").is_empty());
        assert_eq!(identifier_vector("NWC-412").indices.len(), 2);
    }

    #[test]
    fn full_width_forms_match_their_ascii_twins() {
        assert_eq!(terms("ＮＷＣ－４１２"), terms("nwc-412"));
    }

    #[test]
    fn document_weights_saturate_with_repetition() {
        let once = document_vector("kernel");
        let many = document_vector(&"kernel ".repeat(20));
        assert_eq!(once.indices, many.indices);
        assert!(many.values[0] > once.values[0]);
        assert!(many.values[0] < K1 + 1.0, "{}", many.values[0]);
    }

    #[test]
    fn vectors_have_sorted_unique_indices() {
        let v = document_vector("a b c apple apple banana 사과 사과 NWC-412 nwc");
        assert!(v.indices.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(v.indices.len(), v.values.len());
        assert!(query_vector("?! ...").is_empty());
    }
}
