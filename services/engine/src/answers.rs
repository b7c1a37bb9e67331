//! Repeated questions: the checked answer to a question already answered over the same
//! documents, returned without generating again. Company bots are asked the same questions all
//! day; on a CPU each generation costs seconds.
//!
//! An answer is reused only when nothing it depended on can have changed: the same question
//! (whitespace and case aside), the same retrieval (tenant, groups, filters, options), the same
//! answer length, greedy decoding, no conversation before it, and no write to the tenant's
//! documents since (the store's write count; a store other processes write to, a Qdrant server,
//! has none, and nothing is reused there). A reindex makes a new engine, with an empty cache.

use rag_store::Hit;

use crate::AskOptions;
use crate::ask::Answer;
use crate::recent::Recent;

/// Counter: answers returned from the cache.
pub const HITS: &str = "rag_answer_cache_hits_total";

/// What a cached answer replays: its sources and its checked answer.
#[derive(Debug, Clone)]
pub struct Cached {
    pub sources: Vec<Hit>,
    pub answer: Answer,
}

/// The most recent `capacity` answers; 0 keeps none.
pub struct Answers {
    recent: Recent<Cached>,
}

impl Answers {
    pub fn new(capacity: usize) -> Self {
        Self {
            recent: Recent::new(capacity),
        }
    }

    /// The key of an answer to `question` with `options` over documents at `epoch` (their
    /// write count), or `None` when such an answer must not be reused.
    pub fn key(&self, question: &str, options: &AskOptions, epoch: Option<u64>) -> Option<String> {
        let epoch = epoch?;
        if self.recent.capacity() == 0 || !options.history.is_empty() || options.temperature > 0.0 {
            return None;
        }
        let question = question
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        Some(format!(
            "{epoch}\u{0}{}\u{0}{:?}\u{0}{question}",
            options.max_tokens, options.retrieval
        ))
    }

    pub fn get(&self, key: &str) -> Option<Cached> {
        self.recent.get(key)
    }

    pub fn put(&self, key: String, cached: Cached) {
        self.recent.put(key, cached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Retrieval;

    fn options() -> AskOptions {
        AskOptions {
            retrieval: Retrieval {
                top_k: 5,
                score_threshold: 0.25,
                hybrid: true,
                tenant: "acme".into(),
                filter: rag_store::SearchFilter::visible(rag_store::Visibility::All),
            },
            max_tokens: 256,
            temperature: 0.0,
            seed: 0,
            deadline: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn the_same_question_over_the_same_documents_has_one_key() {
        let answers = Answers::new(8);
        let key = answers.key("How many vacation days?", &options(), Some(3));
        assert!(key.is_some());
        assert_eq!(
            key,
            answers.key("  how many   VACATION days? ", &options(), Some(3))
        );
        // A write to the tenant, another tenant, another length: another key.
        assert_ne!(
            key,
            answers.key("How many vacation days?", &options(), Some(4))
        );
        let mut other = options();
        other.retrieval.tenant = "globex".into();
        assert_ne!(key, answers.key("How many vacation days?", &other, Some(3)));
        let mut longer = options();
        longer.max_tokens = 512;
        assert_ne!(
            key,
            answers.key("How many vacation days?", &longer, Some(3))
        );
    }

    #[test]
    fn sampled_follow_up_or_unversioned_answers_are_not_reused() {
        let answers = Answers::new(8);
        assert_eq!(answers.key("q", &options(), None), None);
        let mut sampled = options();
        sampled.temperature = 0.7;
        assert_eq!(answers.key("q", &sampled, Some(1)), None);
        let mut follow_up = options();
        follow_up.history = vec![crate::Turn {
            question: "a".into(),
            answer: "b".into(),
        }];
        assert_eq!(answers.key("q", &follow_up, Some(1)), None);
        assert_eq!(Answers::new(0).key("q", &options(), Some(1)), None);
    }
}
