//! `POST /v1/search`: ranked chunks, no generation.

use std::time::Instant;

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rag_auth::Action;
use rag_grpc::request::{question, retrieval};

use crate::api::{Chunk, SearchRequest, SearchResponse, Timings, retrieval_options};
use crate::error::Body;
use crate::{HttpError, St, audited};

/// Ranked chunks for a query, without generation.
#[utoipa::path(post, path = "/v1/search", request_body = SearchRequest,
    responses(
        (status = 200, body = SearchResponse),
        (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
        (status = 429, body = crate::ErrorBody), (status = 503, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub async fn search(
    axum::extract::State(http): St,
    headers: HeaderMap,
    Body(body): Body<SearchRequest>,
) -> Result<Response, HttpError> {
    let admission = http.admit(&headers, Action::Search)?;
    let request = body?;
    let loaded = http.loaded()?;
    let engine = &loaded.engine;
    let query = question(engine, "query", &request.query)?;
    let options = retrieval_options(request.top_k, request.score_threshold, request.filter);
    let retrieval = retrieval(engine, &admission.caller, Some(options))?;
    let started = Instant::now();
    let hits = engine.retrieve(&query, &retrieval).await?;
    let body = SearchResponse {
        chunks: hits.iter().map(Chunk::from).collect(),
        timings: Timings {
            retrieval_ms: started.elapsed().as_secs_f64() * 1000.0,
            ..Default::default()
        },
    };
    let documents = body.chunks.iter().map(|c| c.document_id.clone()).collect();
    Ok(audited(Json(body).into_response(), &admission, documents))
}
