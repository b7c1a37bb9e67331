//! question -> hits -> prompt -> answer -> checked answer, as one stream of events.
//!
//! Every front door (gRPC, `rag eval --generate`, `rag bench`) consumes this stream; none of
//! them repeats the flow.

use std::time::{Duration, Instant};

use rag_store::Hit;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use crate::conversation::{Rewrite, RewriteBy, Turn};
use crate::{CheckedAnswer, Engine, EngineError, Retrieval, Verdict, metrics};

/// Room the prompt needs besides the answer: the smallest useful source plus the template.
const MIN_PROMPT_TOKENS: usize = 64;

/// The events of one answer (a `Stream`); the errors that end it early.
pub type AskStream = ReceiverStream<Result<AskEvent, EngineError>>;

/// How to answer: validated request options with the defaults filled in.
#[derive(Debug, Clone)]
pub struct AskOptions {
    pub retrieval: Retrieval,
    pub max_tokens: usize,
    /// 0 is greedy (reproducible).
    pub temperature: f32,
    pub seed: u32,
    /// When the caller stops waiting (a gRPC deadline): generation ends then with
    /// [`rag_llm::LlmError::DeadlineExceeded`] and gives its sequence back.
    pub deadline: Option<Instant>,
    /// The conversation so far, oldest turn first: the question is a follow-up to it, made a
    /// standalone question before retrieval (`Engine::standalone_question`). Empty: the
    /// question stands alone.
    pub history: Vec<Turn>,
}

/// What an answer goes through, in order: the sources once, the tokens as they are generated,
/// then the checked answer. A stream that ends without [`AskEvent::Answer`] ended in an error.
#[derive(Debug)]
pub enum AskEvent {
    /// First, for a follow-up only: the standalone question that retrieval and the model got.
    Rewritten(Rewrite),
    /// The sources the model was given; source `n` is `sources[n - 1]`. Empty when retrieval
    /// found nothing relevant enough (the answer follows at once, without the model).
    Sources(Vec<Hit>),
    Token(String),
    Answer(Box<Answer>),
}

/// The final answer, checked against its sources.
#[derive(Debug, Clone)]
pub struct Answer {
    pub checked: CheckedAnswer,
    /// The valid citations with the documents they name, in order of first appearance.
    pub citations: Vec<Citation>,
    /// Zero when the model was not called.
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish: Finish,
    pub timings: Timings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub number: u32,
    pub doc_id: String,
    pub source: String,
    pub page: u32,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Retrieval found nothing relevant enough; the model was not called.
    NotFound,
    /// The model ended its answer.
    Stop,
    /// The answer reached `max_tokens`.
    Length,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// Where the time of one answer went; each measured from the moment [`Engine::ask`] was called.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Rewriting a follow-up into a standalone question (zero for a question alone).
    pub rewrite: Duration,
    /// Searching: embedding, the store, and for a question translated for search
    /// (`query.translation`) its translation and second search.
    pub retrieval: Duration,
    /// Waiting for the model (other answers ahead in the queue).
    pub queued: Duration,
    pub prompt_eval: Duration,
    /// Until the first token reached the stream; zero when the model was not called.
    pub first_token: Duration,
    /// From the first token to the last.
    pub generation: Duration,
    pub total: Duration,
    pub tokens_per_second: f64,
}

impl Engine {
    /// Answers `question` from the indexed documents.
    ///
    /// Errors that come before any event (an option the context window cannot hold, a store
    /// that fails, a full generation queue) are returned at once; later ones end the stream.
    /// Dropping the stream cancels the generation.
    pub async fn ask(&self, question: &str, options: AskOptions) -> Result<AskStream, EngineError> {
        let started = Instant::now();
        if options.max_tokens + MIN_PROMPT_TOKENS >= self.generator.context_size() {
            return Err(EngineError::invalid(
                "max_tokens",
                format!(
                    "{} leaves no room for sources in the context window of {} tokens",
                    options.max_tokens,
                    self.generator.context_size()
                ),
            ));
        }
        // Read before retrieval: a write made while this answer is made changes the count, so
        // the answer is never reused past it.
        let epoch = self
            .store()
            .for_tenant(&options.retrieval.tenant)
            .write_epoch();
        let cache_key = self.answers.key(question, &options, epoch);
        if let Some(cached) = cache_key.as_deref().and_then(|k| self.answers.get(k)) {
            ::metrics::counter!(crate::answers::HITS).increment(1);
            return Ok(replay(cached, started));
        }
        let rewrite = if options.history.is_empty() {
            None
        } else {
            Some(
                self.standalone_question(&options.history, question, options.deadline)
                    .await?,
            )
        };
        let rewritten = started.elapsed();
        // A follow-up joined to the question before it (no rewrite) is searched joined, and
        // shown to the model as asked after the earlier question, labelled as context where
        // the wording has such a label (`prompt::build`).
        let earlier: Option<Turn> = rewrite
            .as_ref()
            .filter(|r| r.by == RewriteBy::Joined)
            .and_then(|_| options.history.last())
            .cloned();
        let follow_up = question.to_owned();
        let question = rewrite
            .as_ref()
            .map_or_else(|| question.to_owned(), |r| r.question.clone());
        let (hits, english) = self
            .retrieve_translated(&question, &options.retrieval, options.deadline)
            .await?;
        let mut timings = Timings {
            rewrite: rewritten,
            retrieval: started.elapsed() - rewritten,
            ..Default::default()
        };
        let (tx, rx) = mpsc::channel(64);
        if let Some(rewrite) = rewrite {
            let _ = tx.try_send(Ok(AskEvent::Rewritten(rewrite)));
        }

        if hits.is_empty() {
            // Nothing relevant enough: say so plainly instead of letting the model guess.
            timings.total = started.elapsed();
            let _ = tx.try_send(Ok(AskEvent::Sources(Vec::new())));
            let _ = tx.try_send(Ok(AskEvent::Answer(Box::new(Answer {
                checked: CheckedAnswer::not_found(&question),
                citations: Vec::new(),
                prompt_tokens: 0,
                completion_tokens: 0,
                finish: Finish::NotFound,
                timings,
            }))));
            metrics::answered(Verdict::NotFound);
            return Ok(ReceiverStream::new(rx));
        }

        let prompt = self
            .prompt(
                if earlier.is_some() {
                    &follow_up
                } else {
                    &question
                },
                earlier.as_ref().map(|turn| turn.question.as_str()),
                english.as_deref(),
                hits,
                options.max_tokens,
                options.deadline,
            )
            .await;
        let mut request = prompt.request(options.max_tokens, options.temperature, options.seed);
        request.deadline = options.deadline;
        let mut events = self.generator.generate(request)?;
        let engine = self.clone();
        let question_asked = question.clone();
        let searched_as = english;
        let generation = async move {
            let sources = prompt.sources;
            let shown: Vec<Hit> = sources.iter().map(|s| s.hit.clone()).collect();
            if tx.send(Ok(AskEvent::Sources(shown))).await.is_err() {
                return; // dropping `events` cancels the generation
            }
            let mut text = String::new();
            loop {
                // A consumer that leaves while the answer waits in the queue or between tokens
                // is noticed at once: returning drops `events`, which cancels the generation.
                let event = tokio::select! {
                    () = tx.closed() => return,
                    event = events.recv() => event,
                };
                let Some(event) = event else { break };
                match event {
                    rag_llm::Event::Token(piece) => {
                        if timings.first_token.is_zero() {
                            timings.first_token = started.elapsed();
                            metrics::first_token(timings.first_token);
                        }
                        text.push_str(&piece);
                        if tx.send(Ok(AskEvent::Token(piece))).await.is_err() {
                            return;
                        }
                    }
                    rag_llm::Event::Done(stats) => {
                        metrics::generated(&stats);
                        if tx.is_closed() {
                            return; // nobody is left to read the checked answer
                        }
                        let answer = engine
                            .finished(
                                Asked {
                                    question: &question_asked,
                                    translation: searched_as.as_deref(),
                                    follow_up: earlier
                                        .as_ref()
                                        .map(|turn| (follow_up.as_str(), turn)),
                                },
                                &text,
                                &sources,
                                &stats,
                                timings,
                                started,
                            )
                            .await;
                        if let Some(key) = cache_key {
                            engine.answers.put(
                                key,
                                crate::answers::Cached {
                                    sources: sources.iter().map(|s| s.hit.clone()).collect(),
                                    answer: answer.clone(),
                                },
                            );
                        }
                        let _ = tx.send(Ok(AskEvent::Answer(Box::new(answer)))).await;
                        return;
                    }
                    rag_llm::Event::Failed(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                }
            }
            let _ = tx
                .send(Err(EngineError::Internal(
                    "generation ended without a result".into(),
                )))
                .await;
        };
        tokio::spawn(generation.instrument(tracing::info_span!("generate")));
        Ok(ReceiverStream::new(rx))
    }

    /// The checked answer of a finished generation: the support check's verdict, the citations
    /// it kept as the sources they name, the counts and the timings. The question comes with
    /// the English it was searched in, if any, and a follow-up joined to its earlier turn.
    async fn finished(
        &self,
        asked: Asked<'_>,
        text: &str,
        sources: &[crate::context::Source],
        stats: &rag_llm::Stats,
        mut timings: Timings,
        started: Instant,
    ) -> Answer {
        timings.queued = stats.queued;
        timings.prompt_eval = stats.prompt_eval;
        timings.generation = stats.generation;
        let generation = stats.generation.as_secs_f64();
        if stats.completion_tokens > 1 && generation > 0.0 {
            timings.tokens_per_second = (stats.completion_tokens - 1) as f64 / generation;
        }
        let checked = self
            .check_answer(
                asked.question,
                asked.translation,
                asked.follow_up,
                text,
                sources,
            )
            .await;
        metrics::answered(checked.status);
        let citations = checked
            .citations
            .iter()
            .map(|&n| {
                let p = &sources[n as usize - 1].hit.payload;
                Citation {
                    number: n,
                    doc_id: p.doc_id.clone(),
                    source: p.source.clone(),
                    page: p.page,
                }
            })
            .collect();
        timings.total = started.elapsed();
        Answer {
            checked,
            citations,
            prompt_tokens: stats.prompt_tokens,
            completion_tokens: stats.completion_tokens,
            finish: match stats.finish {
                rag_llm::Finish::Stop => Finish::Stop,
                rag_llm::Finish::Length => Finish::Length,
            },
            timings,
        }
    }
}

/// What an answer is checked against: the question the model was given, the English it was
/// searched in, and for a follow-up joined to the question before it, the follow-up as asked
/// and that earlier turn.
struct Asked<'a> {
    question: &'a str,
    translation: Option<&'a str>,
    follow_up: Option<(&'a str, &'a Turn)>,
}

/// A cached answer as the events of a fresh one: its sources, its text in word pieces (as
/// streaming clients expect tokens), the checked answer (with this call's time; the counts of
/// the generation that made it).
fn replay(cached: crate::answers::Cached, started: Instant) -> AskStream {
    let mut answer = cached.answer;
    let text = if answer.checked.status == Verdict::Answered {
        answer.checked.text.clone()
    } else {
        answer.checked.draft.clone()
    };
    answer.timings = Timings {
        total: started.elapsed(),
        ..Default::default()
    };
    let pieces: Vec<&str> = text.split_inclusive(' ').collect();
    let (tx, rx) = mpsc::channel(pieces.len() + 2);
    let _ = tx.try_send(Ok(AskEvent::Sources(cached.sources)));
    for piece in pieces {
        let _ = tx.try_send(Ok(AskEvent::Token(piece.to_owned())));
    }
    let _ = tx.try_send(Ok(AskEvent::Answer(Box::new(answer))));
    ReceiverStream::new(rx)
}
