//! The OpenAI-compatible endpoints: `POST /v1/chat/completions` (streaming and not) and
//! `GET /v1/models`, so that OpenAI SDKs and chat front ends plug in unchanged.
//!
//! The last user message is the question; the user/assistant messages before it are the
//! conversation, so a follow-up is read with it as in `/v1/ask`. System messages are ignored: the
//! grounding prompt is the service's. What OpenAI has no field for (the rewrite, the sources, the
//! per-sentence verdicts) travels in an extra `rag` field that OpenAI clients ignore.

use std::convert::Infallible;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rag_api::reply::{Answering, AskEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{AnswerEvent, AskRequest, Filter, RewriteEvent, Source, Turn, sources};
use crate::ask::{hold, start};
use crate::error::Body;
use crate::{HttpError, St, audited};

/// The one model this endpoint serves: retrieval-augmented answers from the indexed documents.
pub const MODEL_ID: &str = "rag";

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// "rag", or unset.
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// OpenAI's newer name for `max_tokens`.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub seed: Option<u32>,
    /// Only 1.
    #[serde(default)]
    pub n: Option<u32>,
    /// Retrieval options OpenAI has no field for.
    #[serde(default)]
    pub rag: Option<ChatRetrieval>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRetrieval {
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub filter: Option<Filter>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// "system", "user" or "assistant" ("developer" and "tool" are read as system).
    pub role: String,
    #[serde(default)]
    pub content: Content,
}

/// A message's text: a string, or OpenAI's list of parts (only text parts are read).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
    #[default]
    None,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
            Self::None => String::new(),
        }
    }
}

/// The question and the conversation before it; earlier questions are cut to `question_chars`
/// (the service's question limit).
fn conversation(
    messages: &[ChatMessage],
    question_chars: usize,
) -> Result<(String, Vec<Turn>), HttpError> {
    let said: Vec<(&str, String)> = messages
        .iter()
        .filter(|m| matches!(m.role.as_str(), "user" | "assistant"))
        .map(|m| (m.role.as_str(), m.content.text()))
        .collect();
    let Some((&("user", ref question), before)) = said.split_last() else {
        return Err(HttpError::invalid(
            "messages",
            "the last user or assistant message must be the user's question",
        ));
    };
    let mut history: Vec<Turn> = Vec::new();
    for (role, text) in before {
        match *role {
            "user" => history.push(Turn {
                question: text.clone(),
                answer: String::new(),
            }),
            // An answer belongs to the question before it; one without a question is context
            // the rewriter can do without.
            _ => {
                if let Some(turn) = history.last_mut().filter(|t| t.answer.is_empty()) {
                    turn.answer = text.clone();
                }
            }
        }
    }
    // Chat front ends send the whole conversation: the latest turns are what a follow-up refers
    // to, so older ones are dropped instead of refusing a long chat; long or empty ones are cut.
    history.retain(|t| !t.question.trim().is_empty());
    let skip = history
        .len()
        .saturating_sub(rag_api::request::MAX_HISTORY_TURNS);
    let history = history
        .into_iter()
        .skip(skip)
        .map(|t| Turn {
            question: t.question.chars().take(question_chars).collect(),
            answer: t.answer,
        })
        .collect();
    Ok((question.clone(), history))
}

impl ChatRequest {
    fn into_ask(self, question_chars: usize) -> Result<(AskRequest, bool), HttpError> {
        if let Some(model) = self
            .model
            .as_deref()
            .filter(|m| !m.is_empty() && *m != MODEL_ID)
        {
            return Err(HttpError::NotFound(format!(
                "model {model:?} does not exist: this service serves {MODEL_ID:?} \
                 (GET /v1/models)"
            )));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(HttpError::invalid("n", "only one choice is generated"));
        }
        let (question, history) = conversation(&self.messages, question_chars)?;
        let rag = self.rag.unwrap_or_default();
        Ok((
            AskRequest {
                question,
                history,
                top_k: rag.top_k,
                score_threshold: rag.score_threshold,
                filter: rag.filter,
                max_tokens: self.max_completion_tokens.or(self.max_tokens),
                temperature: self.temperature,
                seed: self.seed,
            },
            self.stream,
        ))
    }
}

/// What OpenAI has no field for.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RagExtra {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<RewriteEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<Source>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<AnswerEvent>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    /// "chat.completion"
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: ChatUsage,
    pub rag: RagExtra,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// "stop" or "length".
    pub finish_reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssistantMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ChatUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// One event of a streamed completion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatChunk {
    pub id: String,
    /// "chat.completion.chunk"
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rag: Option<RagExtra>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

fn usage(answer: &AnswerEvent) -> ChatUsage {
    let (p, c) = answer
        .usage
        .as_ref()
        .map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    ChatUsage {
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: p + c,
    }
}

/// OpenAI's finish reasons: an answer that was not generated stopped too.
fn finish_reason(answer: &AnswerEvent) -> String {
    if answer.finish_reason == "length" {
        "length".into()
    } else {
        "stop".into()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A grounded answer in OpenAI's chat completion format, streamed (`"stream": true`, Server-Sent
/// Events of `chat.completion.chunk`, then `[DONE]`) or not.
#[utoipa::path(post, path = "/v1/chat/completions", request_body = ChatRequest,
    params(("x-rag-timeout" = Option<f64>, Header, description = "Seconds the client waits \
        for the answer, as for /v1/ask; unset: no deadline")),
    responses(
        (status = 200, body = ChatCompletion, description = "a chat.completion, or with \
            \"stream\": true a text/event-stream of ChatChunk objects ended by `[DONE]`"),
        (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 404, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody),
        (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub async fn completions(
    axum::extract::State(http): St,
    headers: HeaderMap,
    Body(body): Body<ChatRequest>,
) -> Result<Response, HttpError> {
    let arrived = Instant::now();
    // The caller is let in before its body is judged.
    let admission = http.admit(&headers, rag_auth::Action::Ask)?;
    let question_chars = http.current.loaded()?.engine.config().max_question_chars;
    let (ask, stream) = body?.into_ask(question_chars)?;
    let events = start(&http, &headers, arrived, &admission, ask).await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now();
    if !stream {
        let body = whole(events, id, created).await?;
        return Ok(audited(Json(body).into_response(), &admission, Vec::new()));
    }

    let chunk =
        move |delta: Delta, finish: Option<String>, rag: Option<RagExtra>, usage| ChatChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created,
            model: MODEL_ID.into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage,
            rag,
        };
    let first = chunk(
        Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
        },
        None,
        None,
        None,
    );
    let mut streamed_tokens = false;
    let body = events.map(move |event| -> Result<Event, Infallible> {
        Ok(match event {
            Ok(AskEvent::Rewrite(r)) => data(&chunk(
                Delta::default(),
                None,
                Some(RagExtra {
                    rewrite: Some(r.into()),
                    ..Default::default()
                }),
                None,
            )),
            Ok(AskEvent::Sources(s)) => data(&chunk(
                Delta::default(),
                None,
                Some(RagExtra {
                    sources: Some(sources(s)),
                    ..Default::default()
                }),
                None,
            )),
            Ok(AskEvent::Token(text)) => {
                streamed_tokens = true;
                data(&chunk(
                    Delta {
                        role: None,
                        content: Some(text),
                    },
                    None,
                    None,
                    None,
                ))
            }
            Ok(AskEvent::Answer(a)) => {
                let answer = AnswerEvent::from(*a);
                // The reader assembles the text from the deltas: what it has not been
                // shown yet, it is shown now.
                let content = if !streamed_tokens {
                    Some(answer.text.clone())
                } else if answer.status == "unsupported" {
                    // In the asker's language: the answer's text is the not-found text in it.
                    let wording = rag_engine::Wording::of(&answer.text);
                    Some(format!("\n\n({} {})", wording.withheld, answer.text))
                } else {
                    None
                };
                let (finish, usage) = (finish_reason(&answer), usage(&answer));
                data(&chunk(
                    Delta {
                        role: None,
                        content,
                    },
                    Some(finish),
                    Some(RagExtra {
                        answer: Some(answer),
                        ..Default::default()
                    }),
                    Some(usage),
                ))
            }
            Err(e) => data(&HttpError::from(e).body()),
        })
    });
    let body = futures_util::stream::once(async move { Ok(data(&first)) })
        .chain(body)
        .chain(futures_util::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }));
    let response = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    let response = audited(response, &admission, Vec::new());
    Ok(hold(response, admission))
}

/// The answer as one `chat.completion`, once it is done.
async fn whole(
    mut events: Answering,
    id: String,
    created: u64,
) -> Result<ChatCompletion, HttpError> {
    let mut extra = RagExtra::default();
    let mut answer = None;
    while let Some(event) = events.next().await {
        match event? {
            AskEvent::Rewrite(r) => extra.rewrite = Some(r.into()),
            AskEvent::Sources(s) => extra.sources = Some(sources(s)),
            AskEvent::Token(_) => {}
            AskEvent::Answer(a) => answer = Some(AnswerEvent::from(*a)),
        }
    }
    let answer = answer.ok_or_else(|| {
        HttpError::from(rag_engine::EngineError::Internal(
            "the answer ended without a result".into(),
        ))
    })?;
    Ok(ChatCompletion {
        id,
        object: "chat.completion".into(),
        created,
        model: MODEL_ID.into(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: answer.text.clone(),
            },
            finish_reason: finish_reason(&answer),
        }],
        usage: usage(&answer),
        rag: RagExtra {
            answer: Some(answer),
            ..extra
        },
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// "list"
    pub object: String,
    pub data: Vec<Model>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Model {
    pub id: String,
    /// "model"
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

/// The models `/v1/chat/completions` serves: one, answering from the indexed documents.
#[utoipa::path(get, path = "/v1/models", responses((status = 200, body = ModelList)),
    security(("bearer" = [])))]
pub async fn models(
    axum::extract::State(http): St,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let admission = http.admit(&headers, rag_auth::Action::Ask)?;
    let body = ModelList {
        object: "list".into(),
        data: vec![Model {
            id: MODEL_ID.into(),
            object: "model".into(),
            created: 0,
            owned_by: "rag".into(),
        }],
    };
    Ok(audited(Json(body).into_response(), &admission, Vec::new()))
}

/// An event with data only: OpenAI's stream names no events.
fn data(value: &impl Serialize) -> Event {
    Event::default()
        .json_data(value)
        .unwrap_or_else(|e| Event::default().data(format!("{{\"error\":{{\"message\":\"{e}\"}}}}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: &str, text: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: Content::Text(text.into()),
        }
    }

    #[test]
    fn the_last_user_message_is_the_question_and_the_rest_the_history() {
        let (q, history) = conversation(
            &[
                m("system", "be brief"),
                m("user", "How many vacation days?"),
                m("assistant", "25 days [1]."),
                m("user", "and for part-time staff?"),
            ],
            2000,
        )
        .unwrap();
        assert_eq!(q, "and for part-time staff?");
        assert_eq!(
            history,
            vec![Turn {
                question: "How many vacation days?".into(),
                answer: "25 days [1].".into()
            }]
        );
        assert!(conversation(&[m("user", "q"), m("assistant", "a")], 2000).is_err());
        assert!(conversation(&[m("system", "s")], 2000).is_err());
    }
}
