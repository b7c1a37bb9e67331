//! The query engine: question -> vector -> hits -> prompt -> answer -> checked answer.
//!
//! [`Engine`] holds the models and the store and knows no transport: the gRPC service (and any
//! other front door) validates requests, calls [`Engine::retrieve`] or [`Engine::ask`], and maps
//! the results. Modules in data-path order: [`retrieve`](Engine::retrieve) -> [`context`]
//! (sources) -> [`prompt`] -> generation ([`Engine::ask`]) -> [`citations`] and [`support`]
//! (the check).

pub mod answers;
mod ask;
mod citations;
mod config;
pub mod context;
pub mod conversation;
mod error;
mod evidence;
mod excerpt;
pub mod metrics;
mod prompt;
mod rank;
mod recent;
pub mod rescore;
mod retrieve;
pub mod support;
pub mod translate;

use std::sync::Arc;

use rag_llm::Generator;
use rag_store::{Hit, SearchFilter, Store};

pub use ask::{Answer, AskEvent, AskOptions, AskStream, Citation, Finish, Timings};
pub use config::QueryConfig;
pub use conversation::{Rewrite, RewriteBy, Turn};
pub use error::EngineError;
pub use prompt::{Prompt, Wording};
pub use retrieve::Retriever;

/// What Ask answers when the documents do not answer the question.
pub const NOT_FOUND_ANSWER: &str =
    "The indexed documents do not contain an answer to this question.";

/// How to retrieve: validated request options with the server defaults filled in.
#[derive(Debug, Clone)]
pub struct Retrieval {
    pub top_k: usize,
    /// Candidates below this cosine similarity are dropped (unless they hold one of the
    /// question's identifiers); when none is left, the documents do not answer the question.
    pub score_threshold: f32,
    /// Fuse lexical (BM25) candidates with the dense ones; `false` searches dense vectors only.
    pub hybrid: bool,
    /// The caller's tenant: only its documents are searched.
    pub tenant: String,
    /// Which of the tenant's chunks may be found (the caller's groups, a path, documents).
    pub filter: SearchFilter,
}

/// What the check made of a generated answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// At least one sentence is supported by a given source.
    Answered,
    /// The model said the sources do not answer the question.
    NotFound,
    /// The model answered, but no sentence is supported: withheld.
    Unsupported,
}

/// answer -> checked answer.
#[derive(Debug, Clone)]
pub struct CheckedAnswer {
    pub status: Verdict,
    /// The answer without invalid citations; the not-found answer (in the question's language)
    /// when refused or withheld.
    pub text: String,
    /// The model's answer when withheld, its refusal when it declined, else empty.
    pub draft: String,
    /// Valid citation numbers, in order of first appearance (none when refused or withheld).
    pub citations: Vec<u32>,
    pub invalid_citations: Vec<u32>,
    pub sentences: Vec<support::Sentence>,
}

/// The retriever and the chat model, loaded once and shared by every request (cloning is
/// cheap).
#[derive(Clone)]
pub struct Engine {
    retriever: Retriever,
    generator: Arc<Generator>,
    answers: Arc<answers::Answers>,
    /// Follow-up rewrites already made: a conversation turn is rewritten once.
    rewrites: Arc<recent::Recent<Rewrite>>,
}

impl Engine {
    pub fn new(retriever: Retriever, generator: Arc<Generator>) -> Self {
        let answers = Arc::new(answers::Answers::new(retriever.config().answer_cache));
        Self {
            retriever,
            generator,
            answers,
            rewrites: Arc::new(recent::Recent::new(conversation::REWRITES_KEPT)),
        }
    }

    pub fn config(&self) -> &QueryConfig {
        self.retriever.config()
    }

    pub fn store(&self) -> &Arc<Store> {
        self.retriever.store()
    }

    pub fn generator(&self) -> &Arc<Generator> {
        &self.generator
    }

    /// The best chunks for `query`, best first: see [`Retriever::retrieve`]; a question in a
    /// non-Latin script is searched in English too when `query.translation` is on.
    pub async fn retrieve(
        &self,
        query: &str,
        retrieval: &Retrieval,
    ) -> Result<Vec<Hit>, EngineError> {
        Ok(self.retrieve_translated(query, retrieval, None).await?.0)
    }

    /// A short greedy reply of the chat model to `user` (a follow-up's rewrite, a question's
    /// translation), on the answers' queue. The system turn is the answers' own followed by the
    /// side task's `instructions` (and worked examples): the same for every request of the task,
    /// so the scheduler reads it once and restores it, as it does the answers' prefix.
    pub(crate) async fn reply(
        &self,
        instructions: &str,
        user: String,
        max_tokens: usize,
        deadline: Option<std::time::Instant>,
    ) -> Result<String, EngineError> {
        self.generate_text(side_request(instructions, user, max_tokens, deadline))
            .await
    }

    /// The whole text the chat model generates for `request`.
    async fn generate_text(&self, request: rag_llm::Request) -> Result<String, EngineError> {
        let mut events = self.generator.generate(request)?;
        let mut text = String::new();
        while let Some(event) = events.recv().await {
            match event {
                rag_llm::Event::Token(piece) => text.push_str(&piece),
                rag_llm::Event::Done(_) => break,
                rag_llm::Event::Failed(e) => return Err(e.into()),
            }
        }
        Ok(text)
    }

    /// Makes the first question after a start as fast as the later ones: embeds one query (the
    /// embedding runtime sizes its buffers on its first call) and reads the chat model's shared
    /// prefixes (the answers' system turn in each wording, the rewrite's and the translation's).
    /// Each prefix is read once and then restored into every prompt that starts with it; without
    /// this, the first asker after a start waits for it (the rewrite's: 2 s on 2 cores,
    /// BENCHMARKS.md, sixteenth session).
    pub async fn warm_up(&self) -> Result<(), EngineError> {
        let started = std::time::Instant::now();
        let embedder = self.retriever.embedder().clone();
        tokio::task::spawn_blocking(move || embedder.embed_queries(vec!["warm-up".into()]))
            .await
            .map_err(|e| EngineError::Internal(format!("warm-up embedding task: {e}")))??;
        let with_example = self.config().prompt_example;
        let mut requests: Vec<rag_llm::Request> = [prompt::ENGLISH, prompt::KOREAN]
            .into_iter()
            .map(|wording| {
                let (system, examples) = prompt::prefix(wording, with_example);
                rag_llm::Request {
                    system,
                    examples,
                    ..side_request("", ".".into(), 1, None)
                }
            })
            .collect();
        requests.push(side_request(
            conversation::INSTRUCTIONS,
            ".".into(),
            1,
            None,
        ));
        if self.config().translation.enabled {
            requests.push(side_request(&translate::INSTRUCTION, ".".into(), 1, None));
        }
        // One after another: the prompts are read one at a time anyway.
        for request in requests {
            self.generate_text(request).await?;
        }
        tracing::info!(elapsed = ?started.elapsed(), "the chat model's shared prefixes are read");
        Ok(())
    }

    /// Retrieval as configured, for requests that do not say otherwise.
    pub fn default_retrieval(&self) -> Retrieval {
        self.retriever.default_retrieval()
    }

    /// Answer options as configured, for requests that do not say otherwise.
    pub fn default_ask(&self) -> AskOptions {
        let config = self.config();
        AskOptions {
            retrieval: self.default_retrieval(),
            max_tokens: config.max_tokens,
            temperature: config.temperature,
            seed: 0,
            deadline: None,
            history: Vec::new(),
        }
    }

    /// The grounded prompt for `question`, leaving `max_tokens` of the window for the answer:
    /// the hits assembled into sources (duplicates dropped, neighbours merged), the distant ones
    /// dropped, each cut to its sentences closest to the question (or to `english`, the
    /// translation it was searched with, for the English ones), as many as fit.
    #[tracing::instrument(name = "prompt", skip_all, fields(hits = hits.len()))]
    pub async fn prompt(
        &self,
        question: &str,
        earlier: Option<&str>,
        english: Option<&str>,
        hits: Vec<Hit>,
        max_tokens: usize,
        deadline: Option<std::time::Instant>,
    ) -> Prompt {
        // Room for the chat template's own tokens around the two messages.
        const TEMPLATE_OVERHEAD: usize = 16;
        let budget = self
            .generator
            .context_size()
            .saturating_sub(max_tokens + TEMPLATE_OVERHEAD);
        let generator = self.generator.clone();
        let count = move |s: &str| generator.count_tokens(s);
        let config = self.config();
        let sources = context::relevant(context::assemble(hits), config.source_margin);
        // The pages were found by the follow-up joined to the question it follows: so are
        // their sentences.
        let searched = earlier.map(|earlier| conversation::joined(earlier, question).question);
        let sources = excerpt::excerpts(
            self.retriever.embedder(),
            searched.as_deref().unwrap_or(question),
            english,
            sources,
            excerpt::Caps {
                first: match config.first_source_tokens {
                    0 => config.source_tokens,
                    n => n,
                },
                rest: config.source_tokens,
            },
            &count,
            deadline,
        )
        .await;
        prompt::build(
            question,
            earlier,
            sources,
            budget,
            config.prompt_example,
            &count,
        )
    }

    /// Checks a generated answer against the sources it was given: citations of sources that
    /// were not given are removed and reported, each sentence is checked for support, and an
    /// answer none of whose sentences is supported is withheld. A follow-up joined to its
    /// earlier turn (no rewrite) comes with that turn: an answer that only answers the earlier
    /// question is withheld too.
    #[tracing::instrument(name = "check", skip_all)]
    pub async fn check_answer(
        &self,
        question: &str,
        translation: Option<&str>,
        follow_up: Option<(&str, &Turn)>,
        answer: &str,
        sources: &[context::Source],
    ) -> CheckedAnswer {
        let (_, invalid) = citations::check(answer.trim(), sources.len());
        let text = citations::remove(answer.trim(), &invalid).trim().to_owned();
        let sentences = support::sentences(&text);
        let cited: Vec<Vec<u32>> = sentences
            .iter()
            .map(|s| citations::check(s, sources.len()).0)
            .collect();
        // The translation the question was searched with is embedded with the sentences.
        let mut texts = sentences.clone();
        texts.extend(translation.map(str::to_owned));
        let mut embeddings = self.sentence_embeddings(&texts).await;
        let translated = translation.map(|text| (text, embeddings.pop().unwrap_or_default()));
        let asked = support::Asked {
            question,
            translation: translated
                .as_ref()
                .map(|(text, embedding)| support::Translation { text, embedding }),
        };
        let said: Vec<evidence::Said> = sources
            .iter()
            .map(|s| evidence::Said::of(&s.hit.payload.text))
            .collect();
        let degenerate = support::degenerate(&sentences, &said);
        let mut support = self.config().support.clone();
        if !self.retriever.embedder().multilingual() {
            // An English-only model's similarity between a Korean sentence and an English page
            // is noise: across languages the sentence's anchor in the page (its numbers with
            // their units, its Latin-script terms) is all the check can hold it to.
            support.min_cross_similarity = f32::MIN;
        }
        let mut sentences = support::check(
            &asked,
            &sentences,
            &cited,
            &embeddings,
            sources,
            &said,
            &support,
        );
        let (cited_text, valid) = cite_supporting_sources(&text, &mut sentences, sources.len());
        // A model that opens by saying the sources do not answer has declined: a refusal, not
        // an answer lacking support.
        let status = if prompt::refuses(&text) {
            Verdict::NotFound
        } else if let Some(why) = degenerate {
            tracing::info!(why, "answer withheld as degenerate");
            Verdict::Unsupported
        } else if let Some((follow_up, earlier)) = follow_up
            && !conversation::speaks_to(&text, follow_up, earlier)
        {
            tracing::info!(
                follow_up,
                "answer withheld: it answers the earlier question"
            );
            Verdict::Unsupported
        } else if sentences.iter().any(|s| s.supported_by.is_some()) {
            Verdict::Answered
        } else {
            Verdict::Unsupported
        };
        // A refusal, the model's or the check's, reads the same to every client, in the
        // question's language; the model's own words stay in `draft`.
        let (text, draft, citations) = match status {
            Verdict::Unsupported | Verdict::NotFound => {
                (Wording::of(question).not_found.to_owned(), text, Vec::new())
            }
            Verdict::Answered => (cited_text, String::new(), valid),
        };
        CheckedAnswer {
            status,
            text,
            draft,
            citations,
            invalid_citations: invalid,
            sentences,
        }
    }

    /// Embeddings of the sentences without their citation markers. When embedding fails the
    /// check falls back to lexical overlap alone (empty vectors match nothing).
    async fn sentence_embeddings(&self, sentences: &[String]) -> Vec<Vec<f32>> {
        let texts: Vec<String> = sentences
            .iter()
            .map(|s| support::strip_citations(s))
            .collect();
        let n = texts.len();
        let embedder = self.retriever.embedder().clone();
        match tokio::task::spawn_blocking(move || embedder.embed_queries(texts)).await {
            Ok(Ok(vectors)) if vectors.len() == n => vectors,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "embedding answer sentences; checking by terms only");
                vec![Vec::new(); n]
            }
            Ok(Ok(vectors)) => {
                tracing::warn!(
                    got = vectors.len(),
                    sentences = n,
                    "embedder returned the wrong number of vectors; checking by terms only"
                );
                vec![Vec::new(); n]
            }
            Err(e) => {
                tracing::warn!(error = %e, "embedding task failed; checking by terms only");
                vec![Vec::new(); n]
            }
        }
    }
}

/// The answer with each supported sentence citing the source that supports it: a sentence
/// whose citations name sources that do not back it (the model's favourite slip: the right
/// fact under the wrong number) cites the one that does, and a supported sentence citing
/// nothing gets its source. Returns the text and its valid citations, in order.
fn cite_supporting_sources(
    text: &str,
    sentences: &mut [support::Sentence],
    given: usize,
) -> (String, Vec<u32>) {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    for sentence in sentences.iter_mut() {
        let Some(source) = sentence.supported_by else {
            continue;
        };
        if sentence.cited.contains(&source) {
            continue;
        }
        // Sentences are trimmed slices of the text, in order.
        let Some(at) = rest.find(&sentence.text) else {
            continue;
        };
        let corrected = citations::cite(&sentence.text, source);
        out.push_str(&rest[..at]);
        out.push_str(&corrected);
        rest = &rest[at + sentence.text.len()..];
        sentence.text = corrected;
        sentence.cited = vec![source];
    }
    out.push_str(rest);
    let valid = citations::check(&out, given).0;
    (out, valid)
}

impl CheckedAnswer {
    /// The answer to `question` when retrieval found nothing relevant enough, in its language.
    pub fn not_found(question: &str) -> Self {
        Self {
            status: Verdict::NotFound,
            text: Wording::of(question).not_found.to_owned(),
            draft: String::new(),
            citations: Vec::new(),
            invalid_citations: Vec::new(),
            sentences: Vec::new(),
        }
    }
}

/// A short greedy reply's request: the answers' first words, then the side task's
/// `instructions` (and worked examples), as the system turn shared by every request of the task.
fn side_request(
    instructions: &str,
    user: String,
    max_tokens: usize,
    deadline: Option<std::time::Instant>,
) -> rag_llm::Request {
    rag_llm::Request {
        system: format!("{}\n\n{instructions}", prompt::SYSTEM),
        examples: Vec::new(),
        user,
        max_tokens,
        temperature: 0.0,
        seed: 0,
        deadline,
        ignore_eos: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence(text: &str, cited: &[u32], supported_by: Option<u32>) -> support::Sentence {
        support::Sentence {
            text: text.into(),
            cited: cited.to_vec(),
            supported_by,
            lexical_overlap: 0.0,
            similarity: 0.0,
        }
    }

    #[test]
    fn supported_sentences_cite_the_source_that_supports_them() {
        let text = "Up to 5 days carry over [2]. They expire on 31 March.\nAsk HR [1].";
        let mut sentences = [
            sentence("Up to 5 days carry over [2].", &[2], Some(1)),
            sentence("They expire on 31 March.", &[], Some(1)),
            sentence("Ask HR [1].", &[1], None),
        ];
        let (cited, valid) = cite_supporting_sources(text, &mut sentences, 2);
        assert_eq!(
            cited,
            "Up to 5 days carry over [1]. They expire on 31 March [1].\nAsk HR [1]."
        );
        assert_eq!(valid, [1]);
        assert_eq!(sentences[0].text, "Up to 5 days carry over [1].");
        assert_eq!(sentences[0].cited, [1]);
        // A sentence nothing supports keeps what it cites (the client marks it unsupported).
        assert_eq!(sentences[2].text, "Ask HR [1].");
    }
}
