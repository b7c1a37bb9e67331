//! The JSON shapes of the HTTP API, and how they are made from the engine's types. Requests
//! become the gRPC request messages so that they go through the same validation.

use rag_engine::{Answer, Rewrite, Verdict};
use rag_proto::v1 as pb;
use rag_store::Hit;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which chunks may be found, within what the caller may read.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only chunks whose source path starts with this folder or is this file.
    #[serde(default)]
    pub path_prefix: String,
    /// Only chunks of these documents.
    #[serde(default)]
    pub document_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    /// Chunks to return, 1..=100; unset: the server default.
    #[serde(default)]
    pub top_k: Option<u32>,
    /// Minimum cosine similarity, -1..=1; unset: the server default.
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub filter: Option<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Turn {
    pub question: String,
    /// The answer the user was shown; may be empty.
    #[serde(default)]
    pub answer: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    pub question: String,
    /// The conversation so far, oldest first (at most 20 turns): the question is a follow-up
    /// and is rewritten into a standalone question before retrieval.
    #[serde(default)]
    pub history: Vec<Turn>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub filter: Option<Filter>,
    /// 1..=4096; unset: the server default.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// 0..=2; 0 is greedy.
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub seed: Option<u32>,
}

pub fn retrieval_options(
    top_k: Option<u32>,
    score_threshold: Option<f32>,
    filter: Option<Filter>,
) -> pb::RetrievalOptions {
    let filter = filter.unwrap_or_default();
    pb::RetrievalOptions {
        top_k: top_k.unwrap_or(0),
        score_threshold,
        filter: Some(pb::Filter {
            path_prefix: filter.path_prefix,
            document_ids: filter.document_ids,
        }),
    }
}

impl AskRequest {
    pub fn into_proto(self) -> pb::AskRequest {
        pb::AskRequest {
            question: self.question,
            retrieval: Some(retrieval_options(
                self.top_k,
                self.score_threshold,
                self.filter,
            )),
            max_tokens: self.max_tokens.unwrap_or(0),
            temperature: self.temperature,
            seed: self.seed,
            history: self
                .history
                .into_iter()
                .map(|t| pb::Turn {
                    question: t.question,
                    answer: t.answer,
                })
                .collect(),
        }
    }
}

/// A retrieved chunk and where it comes from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Chunk {
    pub document_id: String,
    /// The document version the chunk belongs to (its content hash), for the source viewer.
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
    pub score: f32,
    /// What results are ordered by (the fused score in hybrid retrieval).
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
            score: hit.similarity,
            rank_score: hit.score,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub chunks: Vec<Chunk>,
    pub timings: Timings,
}

/// A source given to the model; it cites it as `[number]`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Source {
    pub number: u32,
    pub chunk: Chunk,
}

pub fn sources(hits: &[Hit]) -> Vec<Source> {
    hits.iter()
        .enumerate()
        .map(|(i, hit)| Source {
            number: i as u32 + 1,
            chunk: hit.into(),
        })
        .collect()
}

/// The standalone question a follow-up became.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RewriteEvent {
    pub question: String,
    /// "model" (the chat model's rewrite) or "joined" (the previous question and the
    /// follow-up, when the model's rewrite lost the follow-up's terms).
    pub by: String,
}

impl From<Rewrite> for RewriteEvent {
    fn from(r: Rewrite) -> Self {
        Self {
            question: r.question,
            by: r.by.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourcesEvent {
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenEvent {
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    pub number: u32,
    pub document_id: String,
    pub source_path: String,
    pub page: u32,
}

/// One sentence of the answer, checked against the sources.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sentence {
    pub text: String,
    pub cited: Vec<u32>,
    pub supported: bool,
    /// The source that supports it best; 0 when none does.
    pub supported_by: u32,
    pub lexical_overlap: f32,
    pub similarity: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Timings {
    pub rewrite_ms: f64,
    pub retrieval_ms: f64,
    pub first_token_ms: f64,
    pub total_ms: f64,
    pub tokens_per_second: f64,
}

/// The checked answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerEvent {
    /// "answered", "not_found" (nothing relevant, or the model said the documents do not say:
    /// `text` is the not-found answer, `draft` the model's refusal if it was called) or
    /// "unsupported" (no sentence supported: `text` is the not-found answer, `draft` what the
    /// model wrote).
    pub status: String,
    pub text: String,
    pub draft: String,
    pub citations: Vec<Citation>,
    /// `[n]` the model wrote that match no source: removed from `text`.
    pub invalid_citations: Vec<u32>,
    pub sentences: Vec<Sentence>,
    pub usage: Option<Usage>,
    pub timings: Timings,
    /// "stop", "length" or "not_found".
    pub finish_reason: String,
}

pub fn status_name(status: Verdict) -> &'static str {
    match status {
        Verdict::Answered => "answered",
        Verdict::NotFound => "not_found",
        Verdict::Unsupported => "unsupported",
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl From<Answer> for AnswerEvent {
    fn from(answer: Answer) -> Self {
        let checked = answer.checked;
        let t = answer.timings;
        Self {
            status: status_name(checked.status).to_owned(),
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
                    supported: s.supported_by.is_some(),
                    supported_by: s.supported_by.unwrap_or(0),
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
            finish_reason: answer.finish.as_str().to_owned(),
        }
    }
}
