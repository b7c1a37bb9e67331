//! follow-up + earlier turns -> standalone question: what retrieval and the grounded prompt see.
//!
//! "And for part-time staff?" retrieves nothing useful on its own. The chat model rewrites it
//! with the conversation in view ("How many vacation days do part-time staff get?"); the rewrite
//! is then checked, because a small model may drop the follow-up's point or answer instead of
//! asking. A rewrite that fails the check is replaced by the previous question joined with the
//! follow-up: cruder, but it keeps every term the user wrote.

use std::collections::HashSet;

use crate::{Engine, EngineError};

/// One earlier exchange of a conversation, oldest first in a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub question: String,
    /// The answer the user saw (may be empty, e.g. when it was cancelled).
    pub answer: String,
}

/// The question retrieval and the prompt use, and how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub question: String,
    pub by: RewriteBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteBy {
    /// The chat model's rewrite, checked.
    Model,
    /// The model's rewrite failed the check: the previous question and the follow-up, joined.
    Joined,
    /// The follow-up names its subject and points nowhere back: used as asked, no rewrite made.
    AsAsked,
}

impl RewriteBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Joined => "joined",
            Self::AsAsked => "as_asked",
        }
    }
}

/// Only the latest turns matter for what a follow-up refers to, and each costs prompt time.
const TURNS_SHOWN: usize = 3;
/// An answer is shown to the rewriter cut to this many characters: its subject is at the start.
/// (160 instead: no faster on the follow-up sets, whose answers are short, and one rewrite more
/// failed its check; BENCHMARKS.md, fourteenth session.)
const ANSWER_CHARS: usize = 300;
/// A standalone question is one line; a longer rewrite is the model answering instead.
const REWRITE_TOKENS: usize = 64;

/// Words of a follow-up that name no subject ("what about London?"): a rewrite need not keep
/// them. (The lexical stopwords are left out already.)
const FILLER: &[&str] = &[
    "about", "also", "again", "another", "else", "instead", "just", "many", "me", "more", "much",
    "my", "only", "other", "our", "please", "same", "so", "tell", "them", "then", "they", "those",
    "us", "we",
];

/// The terms of a question that name something: its words without Korean particles, the
/// fillers aside. What a follow-up stands on, what a rewrite must keep and what an answer to a
/// joined follow-up must speak to.
fn subject_terms(question: &str) -> Vec<String> {
    let filler: HashSet<String> = FILLER.iter().flat_map(|w| rag_lexical::terms(w)).collect();
    rag_lexical::terms(&without_particles(question))
        .into_iter()
        .filter(|t| !filler.contains(t))
        .collect()
}

/// Rewrites kept for conversation turns asked again (a retry, a regenerated answer).
pub(crate) const REWRITES_KEPT: usize = 1024;
/// Terms naming a subject that a follow-up needs to stand alone: "How many days?" does not.
const STANDALONE_TERMS: usize = 2;

/// Share of the follow-up's terms a rewrite must keep.
const KEPT_SHARE: f32 = 0.6;

/// Said last, right before the reply: the model follows best what it read last. The whole
/// instruction is in the system turn, with the examples.
const REMINDER: &str = "Reply with the standalone question only.";

/// The rewrite's system turn: the instruction, then worked rewrites. Small models copy a short
/// follow-up unchanged unless shown what a rewrite adds (and that a new subject stays as it
/// is). The examples are made up, and in both languages the service is used in most. The same
/// for every rewrite, so the scheduler reads them once and restores them (shown as worked chat
/// turns instead, with the instruction first, the default model returned five of six follow-ups
/// unchanged). The instruction was last in the user turn until the fifteenth session: moved
/// here, it is read once too (BENCHMARKS.md).
pub(crate) const INSTRUCTIONS: &str = concat!(
    "Rewrite the follow-up question as one standalone question that can be understood without \
     the conversation: bring in what it refers to from the conversation, keep the language of \
     the follow-up question, and leave a question about something new as it is. Reply with the \
     question only.\n\n",
    "Examples:\n\
User: When does the cafeteria open?\n\
Follow-up question: And on weekends?\n\
Standalone question: When does the cafeteria open on weekends?\n\n\
User: 주차 등록은 어떻게 하나요?\n\
Follow-up question: 방문객은요?\n\
Standalone question: 방문객 주차 등록은 어떻게 하나요?\n\n\
User: How do I reset my password?\n\
Follow-up question: Who won the 1998 World Cup?\n\
Standalone question: Who won the 1998 World Cup?"
);

impl Engine {
    /// The standalone form of `question` given the earlier `history` (oldest first). Called
    /// only with a non-empty history; uses the chat model's queue like an answer does.
    pub async fn standalone_question(
        &self,
        history: &[Turn],
        question: &str,
        deadline: Option<std::time::Instant>,
    ) -> Result<Rewrite, EngineError> {
        let started = std::time::Instant::now();
        if stands_alone(question) {
            let rewrite = Rewrite {
                question: question.to_owned(),
                by: RewriteBy::AsAsked,
            };
            crate::metrics::rewritten(rewrite.by, started.elapsed());
            return Ok(rewrite);
        }
        let previous = history.last().map_or("", |t| t.question.as_str());
        if !self.config().rewrite_follow_ups {
            let rewrite = joined(previous, question);
            crate::metrics::rewritten(rewrite.by, started.elapsed());
            return Ok(rewrite);
        }
        let shown = &history[history.len().saturating_sub(TURNS_SHOWN)..];
        let mut conversation = String::new();
        for turn in shown {
            conversation.push_str(&format!("User: {}\n", turn.question.trim()));
            let answer: String = turn.answer.trim().chars().take(ANSWER_CHARS).collect();
            if !answer.is_empty() {
                conversation.push_str(&format!("Assistant: {answer}\n"));
            }
        }
        let user = format!(
            "Conversation so far:\n{conversation}\nFollow-up question: {question}\n\n{REMINDER}"
        );
        // The rewrite is greedy and reads nothing but the prompt: the same prompt, the same
        // rewrite.
        if let Some(rewrite) = self.rewrites.get(&user) {
            ::metrics::counter!(crate::metrics::REWRITES_REUSED).increment(1);
            crate::metrics::rewritten(rewrite.by, started.elapsed());
            return Ok(rewrite);
        }
        let text = self
            .reply(INSTRUCTIONS, user.clone(), REWRITE_TOKENS, deadline)
            .await?;
        let rewrite = check(&text, question, previous);
        self.rewrites.put(user, rewrite.clone());
        crate::metrics::rewritten(rewrite.by, started.elapsed());
        Ok(rewrite)
    }
}

/// Whether a follow-up can be searched as asked: it points nowhere back into the conversation
/// ("it", "the same", "and for …?") and names a subject of its own (two terms besides
/// fillers). Such a follow-up ("Is MFA required as well?", "Who wrote Hamlet?") comes back from
/// the rewrite unchanged, or with the earlier subject wrongly added, after seconds of generation
/// on a CPU. Korean leaves out the subject a conversation already has ("배우자도 받을 수
/// 있나요?": can spouses get it too?), so a Korean follow-up is always rewritten.
fn stands_alone(question: &str) -> bool {
    if refers_back(question) || question.chars().any(rag_lexical::is_cjk) {
        return false;
    }
    let subject: HashSet<String> = subject_terms(question).into_iter().collect();
    subject.len() >= STANDALONE_TERMS
}

/// The model's `draft` if it is a question that keeps most terms of the follow-up, else the
/// previous question joined with the follow-up.
fn check(draft: &str, question: &str, previous: &str) -> Rewrite {
    // The first line with something after its label ("Standalone question:" may stand alone).
    let line = draft
        .lines()
        .map(|l| strip_label(l.trim()).trim())
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .trim_matches(|c| matches!(c, '"' | '\'' | '“' | '”' | '`'));
    let line = line.trim();
    let line_terms = rag_lexical::terms(line);
    let kept = {
        let have: HashSet<&String> = line_terms.iter().collect();
        let wanted = subject_terms(question);
        let found = wanted.iter().filter(|t| have.contains(t)).count();
        // Most, not all: a rewrite may drop a word the follow-up needed only in context.
        wanted.is_empty() || found as f32 >= KEPT_SHARE * wanted.len() as f32
    };
    // Returned as it came although it points back ("who approves it?", "and for part-time
    // staff?"): not made standalone.
    let unchanged = line_terms == rag_lexical::terms(question) && refers_back(question);
    // A question stays a question: a statement is the model answering.
    let asks = |t: &str| t.trim_end().ends_with(['?', '？']);
    let still_asks = !asks(question) || asks(line);
    // Far longer than the two questions together is an answer or a ramble, not a question.
    let bounded =
        line.chars().count() <= 2 * (question.chars().count() + previous.chars().count()) + 40;
    if !line.is_empty() && kept && bounded && !unchanged && still_asks {
        return Rewrite {
            question: line.to_owned(),
            by: RewriteBy::Model,
        };
    }
    tracing::info!(
        draft,
        "the model's rewrite failed the check; joining the follow-up to the last question"
    );
    joined(previous, question)
}

/// The previous question and the follow-up as one: every term the user wrote.
pub(crate) fn joined(previous: &str, question: &str) -> Rewrite {
    Rewrite {
        question: format!("{} {}", previous.trim(), question.trim())
            .trim()
            .to_owned(),
        by: RewriteBy::Joined,
    }
}

/// Whether an answer to a follow-up joined to its earlier question (no rewrite) speaks to the
/// follow-up rather than only to the earlier question. Reading the two as one, the model answers
/// the earlier question where the documents are silent on the follow-up ("a password must be
/// at least 14 characters" to "and how often must it be changed?"), and the support check passes
/// it: the sentence is the page's. Such an answer holds none of the follow-up's own terms (those
/// the earlier question lacks) and no number the earlier turn did not say; a right one holds
/// either ("London", "carried over", "20 working days"). A follow-up with no term of its own
/// ("and where is it?") is not held to this.
pub(crate) fn speaks_to(answer: &str, follow_up: &str, earlier: &Turn) -> bool {
    let earlier_question: HashSet<String> =
        rag_lexical::terms(&earlier.question).into_iter().collect();
    let own: HashSet<String> = subject_terms(follow_up)
        .into_iter()
        .filter(|t| !earlier_question.contains(t))
        .collect();
    if own.is_empty() {
        return true;
    }
    let before: HashSet<String> = earlier_question
        .into_iter()
        .chain(rag_lexical::terms(&earlier.answer))
        .collect();
    let said = rag_lexical::terms(&crate::support::strip_citations(answer));
    said.iter()
        .any(|t| own.contains(t) || (t.chars().all(|c| c.is_ascii_digit()) && !before.contains(t)))
}

/// Words that point back into the conversation: a question holding one is not standalone.
const REFERRING: &[&str] = &[
    "it", "its", "this", "that", "these", "those", "they", "them", "their", "there", "he", "she",
    "his", "her", "one", "ones", "same", "such",
];
/// Korean demonstratives ("그거", "거기", "이것", ...) open the word they are in.
const REFERRING_KO: &[&str] = &[
    "그것", "그거", "거기", "그곳", "그분", "이것", "이거", "저것", "그런", "그럼",
];

/// Openings that continue the last question ("and for part-time staff?", "what about London?").
const CONTINUING: &[&str] = &["and", "also", "what about", "how about", "but", "or"];
/// Words that make a question whole on their own.
const QUESTION_WORDS: &[&str] = &[
    "what", "who", "whom", "whose", "when", "where", "which", "why", "how", "is", "are", "was",
    "were", "do", "does", "did", "can", "could", "should", "must", "may", "will", "would",
];
/// Korean endings that continue it ("배우자는요?", "방문객도요?").
const CONTINUING_KO: &[&str] = &["은요", "는요", "도요", "이요", "요"];

fn refers_back(question: &str) -> bool {
    let lower = question.trim().to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    // "and for part-time staff?" continues; "and what is the boiling point of mercury?" is a
    // whole question of its own after the "and".
    let opens = CONTINUING.iter().any(|c| {
        lower.starts_with(c)
            && lower[c.len()..].starts_with(|ch: char| !ch.is_alphanumeric())
            && !lower[c.len()..]
                .split(|ch: char| !ch.is_alphanumeric())
                .any(|w| QUESTION_WORDS.contains(&w))
    });
    let ends_ko = words.last().is_some_and(|w| {
        w.chars().any(rag_lexical::is_cjk) && CONTINUING_KO.iter().any(|e| w.ends_with(e))
    });
    opens
        || ends_ko
        || words
            .iter()
            .any(|w| REFERRING.contains(w) || REFERRING_KO.iter().any(|k| w.starts_with(k)))
}

/// The follow-up with its Korean words' particles off ("방문객은요" → "방문객"): a rewrite keeps
/// the word and rightly changes its particle, so only the stem has to be kept.
fn without_particles(question: &str) -> String {
    question
        .split_whitespace()
        .map(|word| {
            let core = word.trim_end_matches(|c: char| !c.is_alphanumeric());
            if !core.chars().any(rag_lexical::is_cjk) {
                return word.to_owned();
            }
            crate::evidence::korean_stem(core).to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Models like to label their reply: "Standalone question: ...".
fn strip_label(line: &str) -> &str {
    match line.split_once(':') {
        Some((label, rest))
            if label.to_lowercase().contains("question") && label.chars().count() <= 40 =>
        {
            rest
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_that_name_their_subject_are_searched_as_asked() {
        for question in [
            "Is MFA required as well?",
            "Who wrote Hamlet?",
            "What is the boiling point of mercury?",
            "And what is the hotel limit in Paris?",
        ] {
            assert!(stands_alone(question), "{question}");
        }
        for question in [
            "How quickly must I report it?",
            "Which team will work there?",
            "And from abroad?",
            "What about London?",
            "Do contractors get the same?",
            "How many days?",
            "What is the deadline?",
            "배우자도 받을 수 있나요?",
            "건강검진은 회사 비용으로 받을 수 있나요?",
        ] {
            assert!(!stands_alone(question), "{question}");
        }
    }

    #[test]
    fn an_answer_to_a_joined_follow_up_speaks_to_the_follow_up() {
        let password = Turn {
            question: "How long must a password be?".into(),
            answer: "Passwords must be at least 14 characters long [1].".into(),
        };
        let follow_up = "And how often must it be changed?";
        // The earlier question answered again, in other words: nothing about changing it.
        assert!(!speaks_to(
            "According to [1], a password must be at least 14 characters long and unique to each service.",
            follow_up,
            &password
        ));
        assert!(speaks_to(
            "Passwords must be changed every 90 days [1].",
            follow_up,
            &password
        ));
        // A number the earlier turn did not say answers, whatever the words.
        let remote = Turn {
            question: "How many days per week can I work remotely?".into(),
            answer: "Up to three days per week [1].".into(),
        };
        assert!(speaks_to(
            "Working from another country is allowed for up to 20 working days per year [1].",
            "And from abroad?",
            &remote
        ));
        assert!(!speaks_to(
            "Employees may work remotely for up to three days per week [1].",
            "And from abroad?",
            &remote
        ));
        // No term of its own: nothing to hold the answer to.
        let busan = Turn {
            question: "When does the new office in Busan open?".into(),
            answer: "In February 2027 [1].".into(),
        };
        assert!(speaks_to(
            "It opens in February 2027 [1].",
            "And where is it?",
            &busan
        ));
        let checkup = Turn {
            question: "건강검진은 회사 비용으로 받을 수 있나요?".into(),
            answer: "네, 직원은 매년 건강검진을 받을 수 있습니다 [1].".into(),
        };
        assert!(speaks_to(
            "배우자도 2년마다 받을 수 있습니다 [1].",
            "배우자는요?",
            &checkup
        ));
        assert!(!speaks_to(
            "직원은 매년 건강검진을 받을 수 있습니다 [1].",
            "배우자는요?",
            &checkup
        ));
    }

    #[test]
    fn keeps_a_rewrite_that_holds_the_follow_up() {
        let r = check(
            "Standalone question: \"How many vacation days do part-time staff get?\"\nMore.",
            "and for part-time staff?",
            "How many vacation days do I get?",
        );
        assert_eq!(r.by, RewriteBy::Model);
        assert_eq!(r.question, "How many vacation days do part-time staff get?");
    }

    #[test]
    fn joins_when_the_rewrite_drops_the_follow_up() {
        let r = check(
            "How many vacation days do I get?",
            "and for part-time staff?",
            "How many vacation days do I get?",
        );
        assert_eq!(r.by, RewriteBy::Joined);
        assert_eq!(
            r.question,
            "How many vacation days do I get? and for part-time staff?"
        );
    }

    #[test]
    fn joins_when_the_model_answers_at_length_or_says_nothing() {
        let long = format!("Part-time staff get {} days.", "many ".repeat(60));
        for draft in [long.as_str(), "", "  \n"] {
            let r = check(draft, "part-time?", "Vacation days?");
            assert_eq!(r.by, RewriteBy::Joined, "{draft:?}");
        }
    }

    #[test]
    fn a_follow_up_that_points_back_is_not_kept_unchanged() {
        let r = check(
            "Who approves it?",
            "Who approves it?",
            "Can I work remotely?",
        );
        assert_eq!(r.by, RewriteBy::Joined);
        let r = check(
            "그거 누가 승인하나요?",
            "그거 누가 승인하나요?",
            "재택근무 되나요?",
        );
        assert_eq!(r.by, RewriteBy::Joined);
        // A question about something new stays as it is.
        let r = check(
            "Who won the 1998 World Cup?",
            "Who won the 1998 World Cup?",
            "Can I work remotely?",
        );
        assert_eq!(r.by, RewriteBy::Model);
    }

    #[test]
    fn a_follow_up_copied_back_or_answered_is_joined() {
        for (draft, follow_up) in [
            ("and for part-time staff?", "and for part-time staff?"),
            ("배우자는요?", "배우자는요?"),
            ("Part-time staff get 10 days.", "and for part-time staff?"),
        ] {
            let r = check(draft, follow_up, "How many vacation days do I get?");
            assert_eq!(r.by, RewriteBy::Joined, "{draft:?}");
        }
        // A whole question after "and" is a new question, kept as the model returned it.
        let r = check(
            "What is the boiling point of mercury?",
            "And what is the boiling point of mercury?",
            "How many vacation days do I get?",
        );
        assert_eq!(r.by, RewriteBy::Model);
        let r = check(
            "Standalone question:\nHow many vacation days do part-time staff get?",
            "and for part-time staff?",
            "How many vacation days do I get?",
        );
        assert_eq!(r.by, RewriteBy::Model, "the label on a line of its own");
    }

    #[test]
    fn a_korean_rewrite_may_change_particles() {
        let r = check(
            "방문객 주차 등록은 어떻게 하나요?",
            "방문객은요?",
            "주차 등록은 어떻게 하나요?",
        );
        assert_eq!(r.by, RewriteBy::Model);
    }

    #[test]
    fn filler_words_need_not_be_kept() {
        let r = check(
            "What is the hotel limit per night in London?",
            "What about London?",
            "What is the hotel limit per night in Paris?",
        );
        assert_eq!(r.by, RewriteBy::Model);
        let r = check(
            "What about the hotel limit?",
            "What about London?",
            "What is the hotel limit per night in Paris?",
        );
        assert_eq!(r.by, RewriteBy::Joined, "London is the point");
    }

    #[test]
    fn korean_follow_up_keeps_its_terms() {
        let r = check(
            "재택근무는 주 며칠까지 가능한가요?",
            "재택근무는요?",
            "휴가는 며칠인가요?",
        );
        assert_eq!(r.by, RewriteBy::Model, "the particle 는요 may go");
        let r = check("휴가는 며칠인가요?", "재택근무는요?", "휴가는 며칠인가요?");
        assert_eq!(r.by, RewriteBy::Joined, "the follow-up's subject is gone");
        assert_eq!(r.question, "휴가는 며칠인가요? 재택근무는요?");
    }
}
