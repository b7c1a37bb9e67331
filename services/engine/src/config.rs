use serde::{Deserialize, Serialize};

use crate::rescore::RescoreConfig;
use crate::support::SupportConfig;
use crate::translate::TranslationConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Chunks retrieved when a request does not say.
    pub top_k: usize,
    /// The retrieval floor: retrieved chunks below this cosine similarity are dropped (unless
    /// they hold one of the question's identifiers, e.g. an error code); when none is left,
    /// Search returns nothing and Ask answers that the documents do not say, without calling
    /// the model. Above it, the model and the support check decide whether the documents
    /// answer.
    pub score_threshold: f32,
    /// Ask shows the model only the sources whose similarity to the question is within this
    /// of the closest source's (and always the first-ranked one): distant sources are what a
    /// small model cites by mistake. 2 or more keeps every source.
    pub source_margin: f32,
    /// Most tokens of one source the model reads: a longer source is cut to its sentences
    /// closest to the question (each with a neighbour), which shortens the prompt the first
    /// token waits for. 0 shows every source whole.
    pub source_tokens: usize,
    /// The same for the first-ranked source, which answers most often: it may carry the steps or
    /// the list the question asks for, where the others need only show what they are about. 0
    /// means `source_tokens`. 192 answered 5–11 points more FAQ and manual questions correctly
    /// and cost 0.9 s of first token on 2 cores (BENCHMARKS.md, sixteenth session): off by
    /// default until it is cheaper.
    pub first_source_tokens: usize,
    /// A follow-up that does not stand alone is rewritten by the chat model into a standalone
    /// question (a generation before retrieval). Off (the default): it is searched joined to
    /// the previous question, the model reads the earlier question as context before the
    /// follow-up, and an answer that holds nothing of the follow-up's own is withheld (the
    /// model answers the earlier question where the documents are silent): the first token
    /// 1.4 s instead of 2.7 s on 2 cores, 8 right answers of 10 and none wrong against 7 and
    /// 1 (BENCHMARKS.md, nineteenth session).
    pub rewrite_follow_ups: bool,
    /// Most chunks of one document among the `top_k` hits (0: no limit). Small chunks of one
    /// long page can fill the top five and push out the other pages a question may be about;
    /// more candidates are fetched so that the top `top_k` still fill up.
    pub per_document: usize,
    /// Hybrid retrieval: dense, lexical (BM25) and identifier candidates fused (`fusion`). `false`
    /// retrieves by dense vectors only.
    pub hybrid: bool,
    /// How hybrid retrieval combines the dense, lexical and identifier rankings.
    pub fusion: rag_store::Fusion,
    /// Sentence-level rescoring of the fused candidates with the loaded embedding model.
    pub rescore: RescoreConfig,
    /// Questions in a non-Latin script are searched in English too (the chat model translates).
    pub translation: TranslationConfig,
    /// Answer length when a request does not say.
    pub max_tokens: usize,
    /// Sampling temperature when a request does not say; 0 is greedy (reproducible).
    pub temperature: f32,
    /// Longest accepted question or query, in characters.
    pub max_question_chars: usize,
    /// When an answer sentence counts as supported by a source.
    pub support: SupportConfig,
    /// Most questions embedded in one call: concurrent Search and Ask calls share it. 1 embeds
    /// each question alone.
    pub query_batch: usize,
    /// How long a lone question may wait for others to share its embedding call; 0 sends it at
    /// once (questions that arrive during a call still share the next one).
    pub query_batch_wait_ms: f64,
    /// Show the model one worked example (made-up sources, a question, an answer citing `[1]`)
    /// before the question: for models that answer without citing.
    pub prompt_example: bool,
    /// Checked answers kept for repeated questions (same question, retrieval and documents,
    /// greedy, no conversation); 0 keeps none. Only over a store this process alone writes.
    pub answer_cache: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            top_k: 5,
            // The retrieval floor for the default embedding model: below the best similarity
            // of every answerable question on the shipped sets (lowest 0.272), so that only
            // questions nothing is near are refused without the model (BENCHMARKS.md, ninth
            // session). Another model needs its own.
            score_threshold: 0.25,
            // Measured on the sample, paraphrase, Git and Python FAQ sets (BENCHMARKS.md,
            // ninth session).
            source_margin: 0.1,
            source_tokens: 96,
            first_source_tokens: 0,
            rewrite_follow_ups: false,
            // Recall@5 up on every set measured, none down (BENCHMARKS.md, eleventh session).
            per_document: 1,
            hybrid: true,
            fusion: rag_store::Fusion::default(),
            rescore: RescoreConfig::default(),
            translation: TranslationConfig::default(),
            max_tokens: 256,
            temperature: 0.0,
            max_question_chars: 2000,
            support: SupportConfig::default(),
            query_batch: 32,
            query_batch_wait_ms: 0.0,
            prompt_example: false,
            answer_cache: 1024,
        }
    }
}
