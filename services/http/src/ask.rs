//! `POST /v1/ask`: a grounded answer as Server-Sent Events — `rewrite` (follow-ups only),
//! `sources`, `token`s, then `answer` (or `error`).

use std::convert::Infallible;
use std::time::Instant;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use rag_api::reply::{Answering, AskEvent};
use rag_api::{Admission, ApiError};
use rag_auth::Action;

use crate::api::{AnswerEvent, AskRequest, RewriteEvent, SourcesEvent, TokenEvent, sources};
use crate::error::Body;
use crate::{HttpError, St, audited};

/// A grounded answer, streamed as Server-Sent Events: `rewrite` (a follow-up's standalone
/// question), `sources`, `token` (each piece of text as generated), then `answer` (the checked
/// answer) — or `error`. Closing the connection stops the generation; so does the deadline an
/// `x-rag-timeout` header sets (an `error` event DEADLINE_EXCEEDED, or 504 before the stream).
#[utoipa::path(post, path = "/v1/ask", request_body = AskRequest,
    params(("x-rag-timeout" = Option<f64>, Header, description = "Seconds the client waits \
        for the answer, more than 0 and at most 86400 (\"2.5\"); unset: no deadline")),
    responses(
        (status = 200, description = "text/event-stream of events `rewrite` (RewriteEvent), \
            `sources` (SourcesEvent), `token` (TokenEvent), `answer` (AnswerEvent), `error` \
            (ErrorBody)", content_type = "text/event-stream", body = AnswerEvent),
        (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 429, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub async fn ask(
    axum::extract::State(http): St,
    headers: HeaderMap,
    Body(body): Body<AskRequest>,
) -> Result<Response, HttpError> {
    let arrived = Instant::now();
    let admission = http.admit(&headers, Action::Ask)?;
    let events = start(&http, &headers, arrived, &admission, body?).await?;
    let response = Sse::new(sse_events(events))
        .keep_alive(KeepAlive::default())
        .into_response();
    // The permit counts the call against its key until the stream ends.
    let response = audited(response, &admission, Vec::new());
    Ok(hold(response, admission))
}

/// Starts an answer for a caller let in, until the deadline its `x-rag-timeout` sets from
/// `arrived`: what `/v1/ask` and `/v1/chat/completions` share.
pub async fn start(
    http: &crate::Http,
    headers: &HeaderMap,
    arrived: Instant,
    admission: &Admission,
    request: AskRequest,
) -> Result<Answering, HttpError> {
    let deadline = crate::deadline::deadline(headers, arrived)?;
    let request = request.into();
    Ok(rag_api::calls::start_ask(&http.current, &admission.caller, request, deadline).await?)
}

/// Keeps the admission (its in-flight permit) alive as long as the response body.
pub fn hold(response: Response, admission: Admission) -> Response {
    let (parts, body) = response.into_parts();
    let mut permit = Some(admission);
    let stream = body.into_data_stream().map(move |chunk| {
        let _ = &mut permit;
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

fn sse_events(events: Answering) -> impl Stream<Item = Result<Event, Infallible>> {
    events.map(|event| {
        Ok(match event {
            Ok(AskEvent::Rewrite(r)) => json_event("rewrite", &RewriteEvent::from(r)),
            Ok(AskEvent::Sources(s)) => json_event(
                "sources",
                &SourcesEvent {
                    sources: sources(s),
                },
            ),
            Ok(AskEvent::Token(text)) => json_event("token", &TokenEvent { text }),
            Ok(AskEvent::Answer(answer)) => json_event("answer", &AnswerEvent::from(*answer)),
            Err(e) => error_event(e),
        })
    })
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()))
}

fn error_event(e: ApiError) -> Event {
    json_event("error", &HttpError::from(e).body())
}
