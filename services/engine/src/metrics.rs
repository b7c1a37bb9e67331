//! The engine's Prometheus metrics: names in one place, recorded through the `metrics` facade
//! (a no-op until a front door installs a recorder, so tests and the CLI pay nothing).

use std::time::Duration;

use metrics::{counter, histogram};

use crate::Verdict;

/// Seconds from question to ranked hits (embedding, search, reranking).
pub const RETRIEVAL_SECONDS: &str = "rag_retrieval_seconds";
/// Seconds the model spent reading the prompt.
pub const PROMPT_EVAL_SECONDS: &str = "rag_prompt_eval_seconds";
/// Seconds from the question to the first answer token (retrieval, queue and prompt included).
pub const FIRST_TOKEN_SECONDS: &str = "rag_first_token_seconds";
/// Seconds from the first answer token to the last.
pub const GENERATION_SECONDS: &str = "rag_generation_seconds";
pub const GENERATED_TOKENS: &str = "rag_generated_tokens_total";
pub const PROMPT_TOKENS: &str = "rag_prompt_tokens_total";
/// Answers by verdict: answered, not_found, unsupported.
pub const ANSWERS: &str = "rag_answers_total";
/// Follow-ups rewritten into standalone questions, by how: model (the model's rewrite kept) or
/// joined (it lost the follow-up; the two questions were joined).
pub const REWRITES: &str = "rag_rewrites_total";
/// Counter: follow-up rewrites taken from those already made for the same conversation turn.
pub const REWRITES_REUSED: &str = "rag_rewrites_reused_total";
/// Seconds spent rewriting a follow-up (one generation on the model's queue).
pub const REWRITE_SECONDS: &str = "rag_rewrite_seconds";

/// Questions in a non-Latin script sent to the model for an English translation, by outcome:
/// translated (searched in both languages), kept (the reply was not a translation) or failed
/// (queue full, deadline, model error: searched as written).
pub const TRANSLATIONS: &str = "rag_translations_total";
/// Seconds spent translating a question (one generation on the model's queue).
pub const TRANSLATE_SECONDS: &str = "rag_translate_seconds";

/// Describes the metrics to the installed recorder (Prometheus `# HELP` lines).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!(RETRIEVAL_SECONDS, Unit::Seconds, "Question to ranked hits");
    describe_histogram!(
        rag_embed::BATCH_SIZE,
        Unit::Count,
        "Questions per query-embedding call (concurrent calls share one)"
    );
    describe_histogram!(
        PROMPT_EVAL_SECONDS,
        Unit::Seconds,
        "The model reading the prompt"
    );
    describe_histogram!(
        FIRST_TOKEN_SECONDS,
        Unit::Seconds,
        "Question to first answer token"
    );
    describe_histogram!(
        GENERATION_SECONDS,
        Unit::Seconds,
        "First answer token to last"
    );
    describe_counter!(GENERATED_TOKENS, "Answer tokens generated");
    describe_counter!(
        crate::answers::HITS,
        "Answers to repeated questions returned from the cache, without generating"
    );
    describe_counter!(PROMPT_TOKENS, "Prompt tokens read by the model");
    describe_counter!(
        rag_store::FAILOVERS,
        "Store calls answered by another Qdrant peer after the one in use failed"
    );
    describe_counter!(
        rag_store::SEARCHES,
        "Store searches (each fuses its dense, lexical and identifier rankings)"
    );
    describe_counter!(ANSWERS, "Answers by verdict");
    describe_counter!(
        TRANSLATIONS,
        "Questions translated for search, by outcome (translated, kept, failed)"
    );
    describe_histogram!(
        TRANSLATE_SECONDS,
        Unit::Seconds,
        "Translating a question into English for search"
    );
    describe_counter!(
        REWRITES,
        "Follow-ups made standalone, by how (model, joined, as_asked: no rewrite needed)"
    );
    describe_counter!(
        REWRITES_REUSED,
        "Follow-up rewrites reused for a conversation turn asked again"
    );
    describe_histogram!(
        REWRITE_SECONDS,
        Unit::Seconds,
        "Rewriting a follow-up into a standalone question"
    );
    metrics::describe_gauge!(rag_llm::QUEUE_DEPTH, "Answers waiting for the model");
    metrics::describe_gauge!(rag_llm::ACTIVE_GENERATIONS, "Answers being generated");
    metrics::describe_counter!(
        rag_llm::DRAFT_PROPOSED,
        "Tokens proposed by the draft model (speculative decoding)"
    );
    metrics::describe_counter!(
        rag_llm::DRAFT_ACCEPTED,
        "Draft tokens the chat model picked itself"
    );
}

pub(crate) fn rewritten(by: crate::RewriteBy, took: Duration) {
    counter!(REWRITES, "by" => by.as_str()).increment(1);
    histogram!(REWRITE_SECONDS).record(took);
}

pub(crate) fn translated(outcome: &'static str, took: Duration) {
    counter!(TRANSLATIONS, "outcome" => outcome).increment(1);
    histogram!(TRANSLATE_SECONDS).record(took);
}

pub(crate) fn retrieved(took: Duration) {
    histogram!(RETRIEVAL_SECONDS).record(took);
}

pub(crate) fn first_token(after: Duration) {
    histogram!(FIRST_TOKEN_SECONDS).record(after);
}

pub(crate) fn generated(stats: &rag_llm::Stats) {
    histogram!(PROMPT_EVAL_SECONDS).record(stats.prompt_eval);
    histogram!(GENERATION_SECONDS).record(stats.generation);
    counter!(GENERATED_TOKENS).increment(stats.completion_tokens as u64);
    counter!(PROMPT_TOKENS).increment(stats.prompt_tokens as u64);
}

pub(crate) fn answered(verdict: Verdict) {
    let verdict = match verdict {
        Verdict::Answered => "answered",
        Verdict::NotFound => "not_found",
        Verdict::Unsupported => "unsupported",
    };
    counter!(ANSWERS, "verdict" => verdict).increment(1);
}
