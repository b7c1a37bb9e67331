//! What a sentence must share with a source to count as said by it: content words and numbers.
//!
//! Retrieval's lexical side matches Korean (and other CJK) text by character bigrams, which is
//! right for finding candidates but far too weak for proof: broken output such as
//! "직무와 관련 된 식계의 10이 필요힌 포칰다" shares bigrams with any page about 직무 or 관련.
//! Here a CJK word counts only as a whole word (a whitespace token with its particle or ending
//! removed) found in the source, and every number a sentence states must occur in the source.

use rag_lexical::is_cjk;
use std::collections::HashSet;
use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;

/// Korean particles and endings, longest first: removed from the end of a word (once) so that
/// `근무는` and `근무일마다` meet in `근무`.
const KOREAN_SUFFIXES: &[&str] = &[
    "에서는",
    "으로는",
    "에게서",
    "까지는",
    "부터는",
    "입니다",
    "합니다",
    "됩니다",
    "습니다",
    "이라는",
    "이라고",
    "에서",
    "에게",
    "으로",
    "까지",
    "부터",
    "처럼",
    "보다",
    // A follow-up's closing ("배우자는요?"): the word without it.
    "은요",
    "는요",
    "도요",
    "이요",
    "마다",
    "이며",
    "하고",
    "하는",
    "하여",
    "해서",
    "하다",
    "한다",
    "된다",
    "되는",
    "니다",
    "은",
    "는",
    "이",
    "가",
    "을",
    "를",
    "에",
    "의",
    "로",
    "와",
    "과",
    "도",
    "만",
    "요",
    "다",
];

/// English number words a source may spell out where an answer writes digits ("three days" for
/// "3 days"). Answers are held to their digits only: "one" is as often a pronoun as a number.
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("fifteen", "15"),
    ("twenty", "20"),
    ("thirty", "30"),
    ("forty", "40"),
    ("fifty", "50"),
    ("sixty", "60"),
    ("seventy", "70"),
    ("eighty", "80"),
    ("ninety", "90"),
    ("hundred", "100"),
];

/// Stems that claim nothing a source could confirm: the words small models wrap a citation in
/// ("as stated in [1]", "according to the source") and function words retrieval keeps ("not",
/// "must", "only") but which any page has. "The company does not allow pets" must not find
/// its evidence in "not" and "allowed" on a page about laptops.
const NO_CLAIM_TERMS: &[&str] = &[
    "accord", "state", "mention", "sourc", "not", "no", "yes", "may", "must", "should", "would",
    "could", "might", "also", "onli", "all", "ani", "each", "everi", "per", "than", "then", "but",
    "so", "up", "more", "most", "other", "after", "befor", "get",
];

/// Stems that point to a source instead of saying what it says: "Instructions for X are
/// described in [2]", "see [1]". No claim either; a sentence holding one is a pointer.
const POINTER_TERMS: &[&str] = &[
    "describ", "explain", "refer", "see", "provid", "instruct", "inform", "detail",
];

/// Korean words that point to a source, matched at the word's start whatever its ending:
/// "…는 [2]에서 설명되어 있습니다" (is described in [2]), "…를 참조하십시오" (see …).
const POINTER_WORDS: &[&str] = &["설명", "참조", "참고", "제공", "안내", "나와", "나옵"];

/// Korean words that carry a sentence's grammar rather than a claim, at the word's start:
/// "…은 가능합니다" (can be done), "…과 같습니다" (is as …), "있습니다". A yes to a yes/no
/// question is made of them ("건강검진은 회사 비용으로 받을 수 있습니다"), so they still count as
/// its words; only in a pointer sentence do they count for nothing.
const GRAMMAR_WORDS: &[&str] = &[
    "있습", "있으", "있는", "있다", "가능", "방법", "내용", "다음", "됩니", "합니", "입니", "하십",
    "하세", "자세", "정보", "같습", "같은", "것",
];

/// Whether a Korean word (of [`Claims::words`]) is grammar, not a claim ([`GRAMMAR_WORDS`]).
pub fn is_grammar(word: &str) -> bool {
    GRAMMAR_WORDS.iter().any(|p| word.starts_with(p))
}

/// The evidence a sentence offers for checking.
#[derive(Debug, Default, PartialEq)]
pub struct Claims {
    /// Latin-script (and other alphabetic) terms, stemmed as retrieval's lexical side has them.
    pub terms: HashSet<String>,
    /// CJK words without their particle or ending, each at least two characters.
    pub words: HashSet<String>,
    /// The numbers written in digits ("2,500" as "2500", "09" as "9").
    pub numbers: HashSet<String>,
    /// Numbers with the CJK counter written right after them ("1일", "100만"): "1일" (one day)
    /// is not "1회" (once) nor "1만" (ten thousand).
    pub counted: HashSet<String>,
    /// It points to a source ("described in [2]", "[1]을 참조하십시오"); the pointer words are
    /// not among its terms and words.
    pub points: bool,
}

impl Claims {
    pub fn of(sentence: &str) -> Self {
        let text = normalise(sentence);
        let mut terms = alphabetic_terms(&text);
        terms.retain(|t| !NO_CLAIM_TERMS.contains(&t.as_str()));
        let mut words = cjk_words(&text);
        // A particle left alone once a citation is taken out ("[2]에서" → "에서") is no word.
        words.retain(|w| !KOREAN_SUFFIXES.contains(&w.as_str()));
        let (before_terms, before_words) = (terms.len(), words.len());
        terms.retain(|t| !POINTER_TERMS.contains(&t.as_str()));
        words.retain(|w| !POINTER_WORDS.iter().any(|p| w.starts_with(p)));
        Self {
            points: terms.len() < before_terms || words.len() < before_words,
            terms,
            words,
            numbers: digits(&text),
            counted: counted(&text),
        }
    }

    /// What this sentence says beyond `asked` (the question): its terms, words and numbers that
    /// the question does not have. An answer repeats its question ("The daily food allowance
    /// when you travel is 45 euros"); only the rest is its claim.
    pub fn beyond(&self, asked: &Claims) -> Claims {
        Claims {
            terms: self.terms.difference(&asked.terms).cloned().collect(),
            words: self.words.difference(&asked.words).cloned().collect(),
            numbers: self.numbers.difference(&asked.numbers).cloned().collect(),
            counted: self.counted.difference(&asked.counted).cloned().collect(),
            points: self.points,
        }
    }

    /// Content words to check (terms and CJK words).
    pub fn len(&self) -> usize {
        self.terms.len() + self.words.len()
    }
}

/// Korean counters and the English unit a source in English states the same quantity with:
/// against an English page "주 3일" (three days a week) must find "three days", not any 3.
/// Counters of two syllables come first: "1시간" is an hour, not 1 and "시" (o'clock).
/// Counters not listed (만, 원, 회, 시, ...) are held to their number alone there.
const COUNTER_UNITS: &[(&str, &str)] = &[
    ("시간", "hour"),
    ("개월", "month"),
    ("일", "day"),
    ("주", "week"),
    ("년", "year"),
    ("분", "minute"),
    ("자", "character"),
    ("박", "night"),
    ("유", "euro"),
];

/// The English unit words of [`COUNTER_UNITS`] as terms ("day", "minut"): they say what a number
/// counts, which the number check holds them to, not what a question is about.
pub static UNIT_TERMS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COUNTER_UNITS
        .iter()
        .flat_map(|(_, unit)| alphabetic_terms(unit))
        .collect()
});

/// Month names; a word of three letters or more that begins one ("feb", "sept") names it too.
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// How many words after a number its unit may come ("20 working days", "5 unused days").
const UNIT_REACH: usize = 2;

/// A source as the check reads it.
#[derive(Debug)]
pub struct Said {
    text: String,
    terms: HashSet<String>,
    numbers: HashSet<String>,
    /// "number unit" pairs the text states in English ("3 day" for "three days").
    quantities: HashSet<String>,
    /// Whether the text is written in a CJK script (a Korean page), or not (an English one).
    cjk: bool,
}

impl Said {
    pub fn of(source: &str) -> Self {
        let text = normalise(source);
        let mut numbers = digits(&text);
        let value = |word: &str| {
            NUMBER_WORDS
                .iter()
                .find(|(w, _)| *w == word)
                .map(|(_, n)| n.parse::<u32>().expect("a number"))
        };
        for word in text.split(|c: char| !c.is_alphabetic() && c != '-') {
            // A month named is its number: "2월" is February. Not "may", which is mostly the
            // verb: a page saying "you may" must not state a 5.
            if let Some(month) = MONTHS.iter().position(|m| {
                word != "may" && (word == *m || (word.len() >= 3 && m.starts_with(word)))
            }) {
                numbers.insert((month + 1).to_string());
            }
            // "twenty-five" is 25, not 20 and 5.
            let parts: Vec<Option<u32>> = word.split('-').map(value).collect();
            match parts.as_slice() {
                [Some(tens), Some(unit)] if tens % 10 == 0 && *tens >= 20 && *unit < 10 => {
                    numbers.insert((tens + unit).to_string());
                }
                _ => numbers.extend(parts.into_iter().flatten().map(|n| n.to_string())),
            }
        }
        let letters = text.chars().filter(|c| c.is_alphabetic()).count();
        let cjk = text.chars().filter(|&c| is_cjk(c)).count();
        Self {
            terms: alphabetic_terms(&text),
            numbers,
            quantities: quantities(&text),
            cjk: cjk * 2 > letters,
            text,
        }
    }

    /// Whether the text is mostly in a CJK script.
    pub fn is_cjk(&self) -> bool {
        self.cjk
    }

    /// Share of the claim's content words, numbers and counted numbers ("5일") found here,
    /// 0..=1 (0 when it has none).
    pub fn overlap_with_numbers(&self, claims: &Claims) -> f32 {
        let total = claims.len() + claims.numbers.len() + claims.counted.len();
        if total == 0 {
            return 0.0;
        }
        let found = claims.terms.iter().filter(|t| self.has_term(t)).count()
            + claims.words.iter().filter(|w| self.has_word(w)).count()
            + claims.numbers.intersection(&self.numbers).count()
            + claims
                .counted
                .iter()
                .filter(|c| self.has_counted(c))
                .count();
        found as f32 / total as f32
    }

    /// Whether a counted number ("5일") is stated here: as written in CJK text, or with its
    /// unit in English text ("5 days").
    fn has_counted(&self, counted: &str) -> bool {
        if self.text.chars().any(is_cjk) {
            return self.text.contains(counted);
        }
        let number = counted.trim_end_matches(|ch: char| !ch.is_ascii_digit());
        let counter = &counted[number.len()..];
        let number = number.trim_start_matches('0');
        match COUNTER_UNITS.iter().find(|(k, _)| *k == counter) {
            Some((_, unit)) => self.quantities.contains(&format!("{number} {unit}")),
            None => self.numbers.contains(number),
        }
    }

    /// Whether every number the claim states occurs here; with its counter, when both are in
    /// CJK text (against an English source "3일" is held to "3" or "three").
    pub fn has_numbers(&self, claims: &Claims) -> bool {
        if !claims.numbers.is_subset(&self.numbers) {
            return false;
        }
        // In an English source a counted number whose unit it would name ("1일" → "1 day")
        // must be stated with that unit.
        claims.counted.iter().all(|c| self.has_counted(c))
    }

    /// Share of `terms` found here, 0..=1 (0 when there are none).
    pub fn share_of_terms(&self, terms: &HashSet<String>) -> f32 {
        if terms.is_empty() {
            return 0.0;
        }
        let found = terms.iter().filter(|t| self.has_term(t)).count();
        found as f32 / terms.len() as f32
    }

    pub fn has_term(&self, term: &str) -> bool {
        self.terms.contains(term)
    }

    /// A CJK word occurs inside any word here (the source's own particles do not matter).
    pub fn has_word(&self, word: &str) -> bool {
        self.text.contains(word)
    }
}

fn normalise(text: &str) -> String {
    text.nfkc().collect::<String>().to_lowercase()
}

/// The "number unit" pairs of English text: a number (digits or a number word) followed within
/// [`UNIT_REACH`] words by a unit word, singular ("25 days of leave" → "25 day").
fn quantities(text: &str) -> HashSet<String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | ':'))
        .filter(|w| !w.is_empty())
        .collect();
    let value = |word: &str| -> Option<String> {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
        if !word.is_empty() && word.chars().all(|c| c.is_ascii_digit() || c == ',') {
            let n = word.replace(',', "");
            let n = n.trim_start_matches('0');
            return Some(if n.is_empty() { "0".into() } else { n.into() });
        }
        let parts: Vec<Option<u32>> = word
            .split('-')
            .map(|p| {
                NUMBER_WORDS
                    .iter()
                    .find(|(w, _)| *w == p)
                    .map(|(_, n)| n.parse().expect("a number"))
            })
            .collect();
        match parts.as_slice() {
            [Some(n)] => Some(n.to_string()),
            [Some(tens), Some(unit)] if tens % 10 == 0 && *unit < 10 => {
                Some((tens + unit).to_string())
            }
            _ => None,
        }
    };
    let mut out = HashSet::new();
    for (i, word) in words.iter().enumerate() {
        let Some(number) = value(word) else { continue };
        for next in words.iter().skip(i + 1).take(UNIT_REACH) {
            let next = next.trim_matches(|c: char| !c.is_alphabetic());
            let singular = next.strip_suffix('s').unwrap_or(next);
            if let Some((_, unit)) = COUNTER_UNITS.iter().find(|(_, u)| *u == singular) {
                out.insert(format!("{number} {unit}"));
                break;
            }
        }
    }
    out
}

/// Retrieval's terms without the CJK bigrams (CJK text is checked by [`cjk_words`]).
fn alphabetic_terms(text: &str) -> HashSet<String> {
    rag_lexical::terms(text)
        .into_iter()
        .filter(|t| !t.chars().any(is_cjk) && t.chars().any(char::is_alphabetic))
        .collect()
}

/// The CJK runs of `text`, one per whitespace word, each without a trailing particle. A run
/// right after digits is a counter ("1일까지"), checked with its number instead.
fn cjk_words(text: &str) -> HashSet<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    let mut after_digit = false;
    let mut previous = ' ';
    for c in text.chars().chain([' ']) {
        if is_cjk(c) {
            if run.is_empty() {
                after_digit = previous.is_ascii_digit();
            }
            run.push(c);
        } else if !run.is_empty() {
            if !after_digit {
                runs.push(std::mem::take(&mut run));
            }
            run.clear();
        }
        previous = c;
    }
    runs.iter()
        .map(|run| korean_stem(run))
        .filter(|stem| stem.chars().count() >= 2)
        .map(str::to_owned)
        .collect()
}

/// A Korean word without its trailing particle or ending (once; at least two characters stay):
/// "근무는" → "근무", "방문객은요" → "방문객".
pub(crate) fn korean_stem(word: &str) -> &str {
    KOREAN_SUFFIXES
        .iter()
        .find_map(|s| word.strip_suffix(s).filter(|r| r.chars().count() >= 2))
        .unwrap_or(word)
}

/// Digit runs directly followed by a CJK character, with that character.
fn counted(text: &str) -> HashSet<String> {
    let chars: Vec<char> = text.chars().collect();
    // (where the number starts, where its counter ends, the counter's first character) in
    // order. A counter is one character, or two where two make one ("시간", "개월").
    let mut found: Vec<(usize, usize, char)> = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        if is_cjk(*c) && i > 0 && chars[i - 1].is_ascii_digit() {
            let start = chars[..i]
                .iter()
                .rposition(|c| !c.is_ascii_digit())
                .map_or(0, |p| p + 1);
            let long = COUNTER_UNITS.iter().any(|(k, _)| {
                k.chars().count() == 2 && chars[i..].iter().take(2).copied().eq(k.chars())
            });
            found.push((start, i + usize::from(long), *c));
        }
    }
    // "2027년 2월 15일" is a date, not a count of years and days: an English page writes it
    // "15 February 2027", with no unit to find. A year or a day next to a month is a date part.
    let adjacent = |a: &(usize, usize, char), b: &(usize, usize, char)| {
        chars[a.1 + 1..b.0].iter().all(|c| c.is_whitespace())
    };
    let date_part = |k: usize| {
        let (_, _, counter) = found[k];
        let month_after = found
            .get(k + 1)
            .is_some_and(|next| next.2 == '월' && adjacent(&found[k], next));
        let month_before = k > 0 && found[k - 1].2 == '월' && adjacent(&found[k - 1], &found[k]);
        (counter == '년' && month_after) || (counter == '일' && month_before)
    };
    (0..found.len())
        .filter(|&k| !date_part(k))
        .map(|k| chars[found[k].0..=found[k].1].iter().collect())
        .collect()
}

/// Maximal digit runs, thousands separators removed, leading zeros dropped.
fn digits(text: &str) -> HashSet<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = HashSet::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut number = String::new();
        while i < chars.len() {
            let c = chars[i];
            let joins = (c == ',' || c == '.')
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !number.is_empty();
            if c.is_ascii_digit() {
                number.push(c);
            } else if joins && c == '.' {
                number.push('.');
            } else if !joins {
                break;
            }
            i += 1;
        }
        let trimmed = number.trim_start_matches('0');
        out.insert(if trimmed.is_empty() || trimmed.starts_with('.') {
            format!("0{trimmed}")
        } else {
            trimmed.to_owned()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn numbers_are_read_as_written() {
        assert_eq!(
            digits("2,500 euros, 09:00 to 15:00, version 1.2, 100만 원"),
            set(&["2500", "9", "0", "15", "1.2", "100"])
        );
        assert_eq!(digits("no digits"), set(&[]));
    }

    #[test]
    fn korean_words_lose_their_particles() {
        assert_eq!(
            cjk_words("원격 근무는 주 1일까지 가능합니다"),
            set(&["원격", "근무", "가능"])
        );
        // Too short once stripped: kept whole.
        assert_eq!(cjk_words("회의는"), set(&["회의"]));
    }

    #[test]
    fn a_source_spells_numbers_the_answer_writes_in_digits() {
        let said = Said::of("Employees may work remotely up to three days per week.");
        assert!(said.has_numbers(&Claims::of("You can work remotely 3 days a week.")));
        assert!(!said.has_numbers(&Claims::of("You can work remotely 4 days a week.")));
        let said = Said::of("Paid time off: twenty-five days.");
        assert!(said.has_numbers(&Claims::of("You get 25 days.")));
        assert!(!said.has_numbers(&Claims::of("You get 20 days.")));
        // "10" is not "100".
        let said = Said::of("직무와 관련된 교육은 연간 100만 원까지 지원합니다. 연 1회 검진.");
        assert!(!said.has_numbers(&Claims::of("식계의 10이 필요합니다.")));
        // One day is not once.
        assert!(!said.has_numbers(&Claims::of("주 1일까지 가능합니다.")));
        assert!(said.has_numbers(&Claims::of("검진은 연 1회입니다.")));
        assert_eq!(
            counted("주 1일, 100만 원, 3 days, 2시간, 6개월, 10시"),
            set(&["1일", "100만", "2시간", "6개월", "10시"])
        );
    }

    #[test]
    fn a_korean_date_is_no_count_of_days() {
        let said = Said::of("The Busan office opens on 15 February 2027.");
        let claims = Claims::of("부산 사무소는 2027년 2월 15일 문을 엽니다.");
        assert!(said.has_numbers(&claims), "{claims:?}");
        // A count of days is still held to its unit.
        let claims = Claims::of("부산 사무소는 15일 동안 문을 엽니다.");
        assert!(!said.has_numbers(&claims), "{claims:?}");
    }

    #[test]
    fn a_korean_quantity_is_held_to_its_unit_in_an_english_source() {
        let remote = Said::of(
            "Employees may work remotely for up to three days per week. Each employee \
             receives a one-time home office stipend of 600 euros. Working from another \
             country is allowed for up to 20 working days per year.",
        );
        assert!(!remote.is_cjk());
        assert!(remote.has_numbers(&Claims::of("원격 근무는 주 3일까지 가능합니다.")));
        // "one-time" states a 1, but not one day.
        assert!(!remote.has_numbers(&Claims::of("원격 근무는 주 1일까지 가능합니다.")));
        assert!(remote.has_numbers(&Claims::of("해외 근무는 연 20일까지 가능합니다.")));
        assert!(remote.has_numbers(&Claims::of("지원금은 600유로입니다.")));
        assert!(!remote.has_numbers(&Claims::of("지원금은 500유로입니다.")));
        assert_eq!(
            quantities("25 days of paid leave, 5 unused days, 14 characters"),
            set(&["25 day", "5 day", "14 character"])
        );
        assert!(Said::of("연차 휴가는 25일입니다.").is_cjk());
        // Two-syllable counters: an hour and a month, not "1" and its first syllable.
        let device = Said::of(
            "A lost device must be reported within one hour. Passwords expire every 6 months.",
        );
        assert!(device.has_numbers(&Claims::of("분실은 1시간 안에 신고해야 합니다.")));
        assert!(!device.has_numbers(&Claims::of("분실은 1개월 안에 신고해야 합니다.")));
        assert!(device.has_numbers(&Claims::of("비밀번호는 6개월마다 만료됩니다.")));
        assert!(!device.has_numbers(&Claims::of("비밀번호는 6시간마다 만료됩니다.")));
    }
}
