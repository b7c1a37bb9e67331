//! The API on HTTP's wire: the JSON shapes, each request onto its `rag-api` request and each
//! result from its `rag-api` type, field for field.

use rag_api::Verdict;
use rag_api::reply as api;
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
    /// The conversation so far, oldest first (at most 20 turns): the question is a follow-up,
    /// searched joined to the previous question (or rewritten: `query.rewrite_follow_ups`).
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

impl From<Filter> for rag_api::Filter {
    fn from(filter: Filter) -> Self {
        Self {
            path_prefix: filter.path_prefix,
            document_ids: filter.document_ids,
        }
    }
}

impl From<SearchRequest> for rag_api::SearchRequest {
    fn from(r: SearchRequest) -> Self {
        Self {
            query: r.query,
            retrieval: rag_api::RetrievalOptions {
                top_k: r.top_k,
                score_threshold: r.score_threshold,
                filter: r.filter.unwrap_or_default().into(),
            },
        }
    }
}

impl From<AskRequest> for rag_api::AskRequest {
    fn from(r: AskRequest) -> Self {
        Self {
            question: r.question,
            retrieval: rag_api::RetrievalOptions {
                top_k: r.top_k,
                score_threshold: r.score_threshold,
                filter: r.filter.unwrap_or_default().into(),
            },
            max_tokens: r.max_tokens,
            temperature: r.temperature,
            seed: r.seed,
            history: r
                .history
                .into_iter()
                .map(|t| rag_api::Turn {
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

impl From<api::Chunk> for Chunk {
    fn from(c: api::Chunk) -> Self {
        Self {
            document_id: c.document_id,
            document_version: c.document_version,
            source_path: c.source_path,
            page: c.page,
            chunk_index: c.chunk_index,
            chunk_count: c.chunk_count,
            title: c.title,
            heading: c.heading,
            text: c.text,
            // The wire's `score` is the similarity.
            score: c.similarity,
            rank_score: c.rank_score,
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

pub fn sources(sources: Vec<api::Source>) -> Vec<Source> {
    sources
        .into_iter()
        .map(|s| Source {
            number: s.number,
            chunk: s.chunk.into(),
        })
        .collect()
}

/// The standalone question a follow-up became.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RewriteEvent {
    pub question: String,
    /// "joined" (the previous question and the follow-up: the default, or a model's rewrite
    /// that lost the follow-up's terms), "model" (the chat model's rewrite, with
    /// `query.rewrite_follow_ups`) or "as_asked" (the follow-up names its subject and points
    /// nowhere back: searched as asked).
    pub by: String,
}

impl From<api::Rewrite> for RewriteEvent {
    fn from(r: api::Rewrite) -> Self {
        Self {
            question: r.question,
            by: r.by.to_owned(),
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

impl From<api::Timings> for Timings {
    fn from(t: api::Timings) -> Self {
        Self {
            rewrite_ms: t.rewrite_ms,
            retrieval_ms: t.retrieval_ms,
            first_token_ms: t.first_token_ms,
            total_ms: t.total_ms,
            tokens_per_second: t.tokens_per_second,
        }
    }
}

impl From<api::Answer> for AnswerEvent {
    fn from(answer: api::Answer) -> Self {
        Self {
            status: status_name(answer.status).to_owned(),
            text: answer.text,
            draft: answer.draft,
            citations: answer
                .citations
                .into_iter()
                .map(|c| Citation {
                    number: c.number,
                    document_id: c.document_id,
                    source_path: c.source_path,
                    page: c.page,
                })
                .collect(),
            invalid_citations: answer.invalid_citations,
            sentences: answer
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
            usage: answer.usage.map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
            timings: answer.timings.into(),
            finish_reason: answer.finish_reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_score_is_the_similarity_and_rank_score_the_ranking() {
        let c = Chunk::from(api::Chunk {
            document_id: "d".into(),
            document_version: "v".into(),
            source_path: "a.md".into(),
            page: 0,
            chunk_index: 1,
            chunk_count: 2,
            title: String::new(),
            heading: String::new(),
            text: "t".into(),
            similarity: 0.8,
            rank_score: 0.03,
        });
        assert_eq!((c.score, c.rank_score), (0.8, 0.03));
    }
}
