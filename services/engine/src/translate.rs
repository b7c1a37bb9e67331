//! question in another script -> question + its English translation -> hits of both.
//!
//! A small multilingual embedding model places a Korean question near Korean text on its topic
//! more readily than near the English page that answers it (BENCHMARKS.md, issue 13: recall@5
//! 0.43 Korean over English against 0.88 Korean over Korean). The chat model, loaded anyway,
//! translates the question when the question's own hits are mostly in another language; both
//! the question and its translation are then searched and their rankings fused, so Korean
//! documents are still found by the Korean question and English ones by the English question.

use std::sync::LazyLock;

use rag_store::Hit;
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError, Retrieval};

/// `[query.translation]`: search questions in a non-Latin script in English too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranslationConfig {
    pub enabled: bool,
    /// The translation's ranking against the question's own in the fusion (reciprocal rank,
    /// the question's own weighs 1). Above 1: when the documents answer in another language,
    /// the translation's order is the better one (measured: 1 → 1.5 lifts Korean over English
    /// recall@5 from 0.62 to 0.69 on the GIMP set; 2 gives the same).
    pub weight: f32,
}

impl Default for TranslationConfig {
    fn default() -> Self {
        Self {
            // On: with the default English-only model a Korean question is otherwise refused,
            // and with a multilingual one it finds the English page that answers it more often
            // (BENCHMARKS.md, eighth and twelfth sessions). It costs one short generation, for
            // questions in a non-Latin script only.
            enabled: true,
            weight: 1.5,
        }
    }
}

/// A translated question is about as long as the question; longer is the model answering.
const TRANSLATION_TOKENS: usize = 64;

/// The worked example of [`INSTRUCTION`]: a question and its English.
const EXAMPLE: (&str, &str) = (
    "연차 휴가는 며칠 받을 수 있나요?",
    "How many days of annual leave can I take?",
);

/// The instruction and one worked example ([`EXAMPLE`]). Told only "translate this text", the
/// default model answered every third Korean question instead ("호주의 수도는 어디인가요?" became
/// "The capital of the Kingdom of Saudi Arabia is Riyadh.") and turned words into others ("경비
/// 청구" into a police report); shown a question translated as a question, it keeps to the task
/// (BENCHMARKS.md, twelfth session). They go in the system turn, the same for every
/// translation, so the scheduler reads them once.
pub(crate) static INSTRUCTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "Translate the question into English. Do not answer it: reply with the English question \
         only.\n\nQuestion: {}\nEnglish: {}",
        EXAMPLE.0, EXAMPLE.1
    )
});

/// Openings of a reply that is no translation: the model declining, asking for the text, or
/// talking about the task ("To translate the question … I would say:").
const NOT_A_TRANSLATION: &[&str] = &[
    "i'm sorry",
    "i am sorry",
    "sorry",
    "i cannot",
    "i can't",
    "please provide",
    "to translate",
];

impl Engine {
    /// The best chunks for `query` and, when it is written in a non-Latin script and
    /// translation is on, for its English translation too, fused by rank: always with an
    /// English-only embedding model (which cannot read the question), and with a multilingual
    /// one when most of the question's own hits are not in its script. Also the translation,
    /// when one was searched: the English sources are excerpted by it.
    pub(crate) async fn retrieve_translated(
        &self,
        query: &str,
        retrieval: &Retrieval,
        deadline: Option<std::time::Instant>,
    ) -> Result<(Vec<Hit>, Option<String>), EngineError> {
        let config = &self.config().translation;
        let Some(script) = rag_lexical::non_latin_script(query).filter(|_| config.enabled) else {
            return Ok((self.retriever.retrieve(query, retrieval).await?, None));
        };
        let own = if self.retriever.embedder().multilingual() {
            // Judged on the nearest chunks whatever their similarity: at the threshold a Korean
            // question over English documents often keeps only the Korean page it wrongly
            // prefers. Both rankings are of the one search.
            let candidates = self.retriever.candidates(query, retrieval).await?;
            let nearest = Retrieval {
                score_threshold: f32::MIN,
                ..retrieval.clone()
            };
            let nearest = crate::rank::rank(&self.retriever, &candidates, &nearest).await?;
            let own = crate::rank::rank(&self.retriever, &candidates, retrieval).await?;
            if answered_in(&nearest, script) {
                return Ok((own, None)); // the documents answer in its language: no translation
            }
            Ok(own)
        } else {
            // The English-only model finds only the pages in the question's script that hold
            // its words, and the passages holding its exact codes; the English pages are the
            // translation's to find. When such pages fill half the places, the documents answer
            // in the question's language, as above; a question naming a code is answered by
            // the passages that hold it ("KRX-9051 오류는 무엇인가요?").
            let names_a_code = !rag_lexical::identifier_vector(query).is_empty();
            match self.retriever.retrieve(query, retrieval).await {
                Ok(own)
                    if 2 * own.len() >= retrieval.top_k || (names_a_code && !own.is_empty()) =>
                {
                    return Ok((own, None));
                }
                Err(unread @ EngineError::UnsupportedLanguage { .. }) => Err(unread),
                own => Ok(own?),
            }
        };
        let started = std::time::Instant::now();
        // A full queue or a failed generation costs the question its translation, not its
        // search: it is searched as written.
        let (translation, outcome) = match self.translate(query, deadline).await {
            Ok(Some(english)) => (Some(english), "translated"),
            Ok(None) => (None, "kept"),
            Err(error) => {
                tracing::warn!(%error, "translating the question failed; searching it as written");
                (None, "failed")
            }
        };
        crate::metrics::translated(outcome, started.elapsed());
        let Some(english) = translation else {
            return Ok((own?, None));
        };
        tracing::debug!(%english, "searching the translated question too");
        let translated = self.retriever.retrieve(&english, retrieval).await?;
        let hits = crate::rank::merge_translated(
            own.unwrap_or_default(),
            translated,
            &crate::retrieve::Worded::of(query),
            script,
            config.weight,
            retrieval.top_k,
        );
        Ok((hits, Some(english)))
    }

    /// The question in English, or `None` when the model's reply is not one.
    async fn translate(
        &self,
        question: &str,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<String>, EngineError> {
        let user = format!("Question: {question}\nEnglish:");
        let text = self
            .reply(&INSTRUCTION, user, TRANSLATION_TOKENS, deadline)
            .await?;
        let english = check(&text, question);
        if english.is_none() {
            tracing::debug!(reply = %text, "the translation was not used");
        }
        Ok(english)
    }
}

/// The model's reply as an English question: its first non-empty line without a label, in
/// Latin script, and not much longer than the question. Not a refusal or a remark on the task,
/// and not the worked example's English given back for another question: a title the model
/// could not read ("줄 바꿈 제거") came back as "How many days of annual leave can I take?", which
/// searched a company's leave policy for it (BENCHMARKS.md, nineteenth session).
fn check(reply: &str, question: &str) -> Option<String> {
    let line = reply.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = ["English:", "Question:", "Text:"]
        .iter()
        .find_map(|label| line.strip_prefix(label))
        .unwrap_or(line)
        .trim()
        .trim_matches('"');
    let lower = line.to_lowercase();
    if NOT_A_TRANSLATION.iter().any(|o| lower.starts_with(o))
        || (line == EXAMPLE.1 && !like_the_example(question))
    {
        return None;
    }
    let words = line.split_whitespace().count();
    // "To change it, use the following:" is the model starting an answer.
    let bounded = words > 0
        && !line.ends_with(':')
        && line.chars().count() <= 3 * question.chars().count() + 40;
    (bounded && rag_lexical::non_latin_script(line).is_none()).then(|| line.to_owned())
}

/// Whether `question` is mostly the worked example's words ("연차는 며칠 받나요?"), so that the
/// example's English may be its translation.
fn like_the_example(question: &str) -> bool {
    let example: std::collections::HashSet<String> =
        rag_lexical::terms(EXAMPLE.0).into_iter().collect();
    let terms = rag_lexical::terms(question);
    let shared = terms.iter().filter(|t| example.contains(*t)).count();
    !terms.is_empty() && 2 * shared >= terms.len()
}

/// Whether most of the question's own hits are written in its script: the documents answer in
/// the question's language, and a translation would only pull their untranslated passages
/// (and other pages through the embedding's cross-lingual blur) above them. Measured: with the
/// translation fused regardless, Korean over Korean lost 2–3 points of recall@5 and up to 15
/// of recall@1 (BENCHMARKS.md); asked only here, it costs neither set any recall@5.
fn answered_in(own: &[Hit], script: &str) -> bool {
    let same = own
        .iter()
        .filter(|h| rag_lexical::non_latin_script(&h.payload.text) == Some(script))
        .count();
    !own.is_empty() && 2 * same >= own.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(doc: &str, similarity: f32) -> Hit {
        let mut hit = crate::prompt::tests::hit(doc, 0, "text");
        hit.similarity = similarity;
        hit
    }

    #[test]
    fn keeps_an_english_line_and_drops_labels() {
        assert_eq!(
            check("English: Adding a layer mask\n", "레이어 마스크 추가하기").as_deref(),
            Some("Adding a layer mask")
        );
        assert_eq!(check("레이어 마스크", "레이어 마스크 추가하기"), None);
        assert_eq!(check("  \n", "질문"), None);
        let rambling = "Sure! ".repeat(40);
        assert_eq!(check(&rambling, "짧은 질문"), None);
        // Replies seen from the default model that are no translation of the question.
        for reply in [
            "How many days of annual leave can I take?",
            "I'm sorry, but I cannot assist with that request.",
            "Please provide the text you would like to input.",
            "To translate the question \"색 골라내기로 색상 바꾸기\" into English, I would say:",
        ] {
            assert_eq!(check(reply, "줄 바꿈 제거"), None, "{reply}");
        }
        // The example's English is the translation of a question like the example's.
        for question in [EXAMPLE.0, "연차는 며칠 받나요?"] {
            assert_eq!(
                check(EXAMPLE.1, question).as_deref(),
                Some(EXAMPLE.1),
                "{question}"
            );
        }
        assert_eq!(check(EXAMPLE.1, "휴가 신청은 어떻게 하나요?"), None);
        assert_eq!(
            check("Text: Setting the page border", "페이지 테두리 지정").as_deref(),
            Some("Setting the page border")
        );
    }

    #[test]
    fn a_question_whose_hits_are_in_its_own_script_is_not_translated() {
        let korean = |doc| {
            let mut hit = hit(doc, 0.8);
            hit.payload.text = "휴가 신청은 인사팀에 제출합니다".into();
            hit
        };
        let hangul = "Korean (Hangul)";
        assert!(answered_in(
            &[korean("a"), korean("b"), hit("en", 0.8)],
            hangul
        ));
        assert!(!answered_in(
            &[korean("a"), hit("en", 0.8), hit("en2", 0.7)],
            hangul
        ));
        assert!(!answered_in(&[], hangul));
    }
}
