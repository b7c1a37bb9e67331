//! What the calls return, made once from the engine's types; each door only renames fields
//! onto its wire. The names mean one thing here: `similarity` is the cosine similarity to the
//! question, `rank_score` what results are ordered by (the store's `Hit::score`, the fused
//! score in hybrid retrieval). Both wires call the similarity `score`, kept for compatibility.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rag_engine::{AskStream, Verdict};
use rag_store::Hit;
use tokio_stream::Stream;

use crate::ApiError;

/// A retrieved chunk and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub document_id: String,
    /// The document version (its content hash), for the source viewer.
    pub document_version: String,
    /// Relative to the folder it was indexed from.
    pub source_path: String,
    /// 1-based page for paged formats (PDF); 0 otherwise.
    pub page: u32,
    pub chunk_index: u32,
    pub chunk_count: u32,
    pub title: String,
    /// Section headings above the chunk, outermost first ("Install > Linux").
    pub heading: String,
    pub text: String,
    /// Cosine similarity to the question.
    pub similarity: f32,
    /// What results are ordered by: the fused score in hybrid retrieval, else the similarity.
    pub rank_score: f32,
}

impl From<&Hit> for Chunk {
    fn from(hit: &Hit) -> Self {
        let p = &hit.payload;
        Self {
            document_id: p.doc_id.clone(),
            document_version: p.doc_hash.clone(),
            source_path: p.source.clone(),
            page: p.page,
            chunk_index: p.chunk_index,
            chunk_count: p.chunk_count,
            title: p.title.clone(),
            heading: p.heading.clone(),
            text: p.text.clone(),
            similarity: hit.similarity,
            // The store's ranking score.
            rank_score: hit.score,
        }
    }
}

/// A source given to the model; it cites it as `[number]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub number: u32,
    pub chunk: Chunk,
}

/// The sources in the order the model was given them, numbered from 1.
pub fn sources(hits: &[Hit]) -> Vec<Source> {
    hits.iter()
        .enumerate()
        .map(|(i, hit)| Source {
            number: i as u32 + 1,
            chunk: hit.into(),
        })
        .collect()
}

/// Where a call's time went, in milliseconds (zero for what the call did not do).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub rewrite_ms: f64,
    pub retrieval_ms: f64,
    pub first_token_ms: f64,
    pub total_ms: f64,
    pub tokens_per_second: f64,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What a Search found.
#[derive(Debug, Clone)]
pub struct Found {
    pub chunks: Vec<Chunk>,
    /// Only `retrieval_ms` is set.
    pub timings: Timings,
}

/// The standalone question a follow-up became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub question: String,
    /// How it was made: `rag_engine::RewriteBy::as_str` ("model", "joined", "as_asked").
    pub by: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub number: u32,
    pub document_id: String,
    pub source_path: String,
    pub page: u32,
}

/// One sentence of the answer, checked against the sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub text: String,
    pub cited: Vec<u32>,
    /// The source that supports it best, when one does.
    pub supported_by: Option<u32>,
    pub lexical_overlap: f32,
    pub similarity: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// The checked answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: Verdict,
    pub text: String,
    pub draft: String,
    pub citations: Vec<Citation>,
    /// `[n]` the model wrote that match no source: removed from `text`.
    pub invalid_citations: Vec<u32>,
    pub sentences: Vec<Sentence>,
    /// `None` when the model was not called (a not-found answer).
    pub usage: Option<Usage>,
    pub timings: Timings,
    /// "stop", "length" or "not_found".
    pub finish_reason: &'static str,
}

impl From<rag_engine::Answer> for Answer {
    fn from(answer: rag_engine::Answer) -> Self {
        let checked = answer.checked;
        let t = answer.timings;
        Self {
            status: checked.status,
            text: checked.text,
            draft: checked.draft,
            citations: answer
                .citations
                .into_iter()
                .map(|c| Citation {
                    number: c.number,
                    document_id: c.doc_id,
                    source_path: c.source,
                    page: c.page,
                })
                .collect(),
            invalid_citations: checked.invalid_citations,
            sentences: checked
                .sentences
                .into_iter()
                .map(|s| Sentence {
                    text: s.text,
                    cited: s.cited,
                    supported_by: s.supported_by,
                    lexical_overlap: s.lexical_overlap,
                    similarity: s.similarity,
                })
                .collect(),
            usage: (answer.prompt_tokens > 0).then_some(Usage {
                prompt_tokens: answer.prompt_tokens as u32,
                completion_tokens: answer.completion_tokens as u32,
            }),
            timings: Timings {
                rewrite_ms: ms(t.rewrite),
                retrieval_ms: ms(t.retrieval),
                first_token_ms: ms(t.first_token),
                total_ms: ms(t.total),
                tokens_per_second: t.tokens_per_second,
            },
            finish_reason: answer.finish.as_str(),
        }
    }
}

/// An answer's events, in order: the rewrite (follow-ups only), the sources once, the tokens as
/// they are generated, then the checked answer. A stream that ends without
/// [`AskEvent::Answer`] ended in an error.
#[derive(Debug, Clone, PartialEq)]
pub enum AskEvent {
    Rewrite(Rewrite),
    /// Empty when retrieval found nothing relevant enough.
    Sources(Vec<Source>),
    Token(String),
    Answer(Box<Answer>),
}

impl From<rag_engine::AskEvent> for AskEvent {
    fn from(event: rag_engine::AskEvent) -> Self {
        match event {
            rag_engine::AskEvent::Rewritten(r) => Self::Rewrite(Rewrite {
                question: r.question,
                by: r.by.as_str(),
            }),
            rag_engine::AskEvent::Sources(hits) => Self::Sources(sources(&hits)),
            rag_engine::AskEvent::Token(text) => Self::Token(text),
            rag_engine::AskEvent::Answer(answer) => Self::Answer(Box::new((*answer).into())),
        }
    }
}

/// An answer under way; dropping it cancels the generation.
pub struct Answering(pub(crate) AskStream);

impl Stream for Answering {
    type Item = Result<AskEvent, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|event| event.map(|e| e.map(AskEvent::from).map_err(ApiError::from)))
    }
}

/// What an IngestDocument wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub document_id: String,
    pub chunks_written: u32,
    pub pages: u32,
    /// This exact version was already stored; nothing was written.
    pub unchanged: bool,
}
