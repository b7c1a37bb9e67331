//! `POST /v1/search`: ranked chunks, no generation.

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rag_auth::Action;

use crate::api::{SearchRequest, SearchResponse};
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
    let request = body?.into();
    let found = rag_api::calls::search(&http.current, &admission.caller, request).await?;
    let body = SearchResponse {
        chunks: found.chunks.into_iter().map(Into::into).collect(),
        timings: found.timings.into(),
    };
    let documents = body.chunks.iter().map(|c| c.document_id.clone()).collect();
    Ok(audited(Json(body).into_response(), &admission, documents))
}
