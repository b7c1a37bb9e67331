//! `GET /v1/documents/{document_id}/chunks/{chunk_index}`: a chunk in its document's context,
//! for the source viewer. Served from the index, never from a file: what the caller reads is
//! what was indexed, and only what its key may read.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rag_auth::Action;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{HttpError, St, audited};

/// Neighbours shown on each side when the request does not say, and at most.
const AROUND: u32 = 2;
const MAX_AROUND: u32 = 10;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContextQuery {
    /// The document version the chunk was cited from (`document_version` of a source); unset,
    /// or a version since replaced: the current version.
    #[serde(default)]
    pub version: Option<String>,
    /// Neighbouring chunks on each side, 0..=10 (default 2).
    #[serde(default)]
    pub around: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChunkInContext {
    pub document_id: String,
    /// The version shown.
    pub document_version: String,
    /// False when the cited version was replaced and the current one is shown instead.
    pub cited_version: bool,
    pub source_path: String,
    pub title: String,
    pub chunk_count: u32,
    /// The chunk asked for.
    pub chunk_index: u32,
    /// The chunk and its neighbours, in document order.
    pub chunks: Vec<ContextChunk>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContextChunk {
    pub chunk_index: u32,
    pub page: u32,
    pub heading: String,
    pub text: String,
}

/// A chunk with its neighbouring chunks, heading path and page.
#[utoipa::path(get, path = "/v1/documents/{document_id}/chunks/{chunk_index}",
    params(("document_id" = String, Path), ("chunk_index" = u32, Path), ContextQuery),
    responses((status = 200, body = ChunkInContext), (status = 404, body = crate::ErrorBody),
        (status = 401, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub async fn chunk_in_context(
    axum::extract::State(http): St,
    headers: HeaderMap,
    Path((document_id, chunk_index)): Path<(String, u32)>,
    Query(query): Query<ContextQuery>,
) -> Result<Response, HttpError> {
    let admission = http.admit(&headers, Action::Search)?;
    let document_id = rag_api::check::document_id("document_id", &document_id)?;
    let around = query.around.unwrap_or(AROUND);
    if around > MAX_AROUND {
        return Err(HttpError::invalid(
            "around",
            format!("{around} is over the limit of {MAX_AROUND}"),
        ));
    }
    let store = http
        .current
        .loaded()?
        .engine
        .store()
        .for_tenant(&admission.caller.tenant);
    let visibility = &admission.caller.visibility;
    let range = chunk_index.saturating_sub(around)..chunk_index.saturating_add(around + 1);
    let not_found = || {
        HttpError::NotFound(format!(
            "no chunk {chunk_index} of document {document_id:?} that this key may read"
        ))
    };
    let mut cited_version = true;
    let mut chunks = match &query.version {
        Some(version) => store
            .chunks(&document_id, version, range.clone(), visibility)
            .await
            .map_err(rag_engine::EngineError::from)?,
        None => Vec::new(),
    };
    if !chunks.iter().any(|c| c.chunk_index == chunk_index) {
        // Replaced since it was cited (or no version named): the current version's chunk.
        cited_version = query.version.is_none();
        let versions = store
            .document_versions(None, Some(&document_id))
            .await
            .map_err(rag_engine::EngineError::from)?;
        let current = versions
            .iter()
            .find(|v| visibility.permits(&v.groups))
            .ok_or_else(not_found)?;
        chunks = store
            .chunks(&document_id, &current.doc_hash, range, visibility)
            .await
            .map_err(rag_engine::EngineError::from)?;
    }
    let focus = chunks
        .iter()
        .find(|c| c.chunk_index == chunk_index)
        .ok_or_else(not_found)?;
    let body = ChunkInContext {
        document_id: focus.doc_id.clone(),
        document_version: focus.doc_hash.clone(),
        cited_version,
        source_path: focus.source.clone(),
        title: focus.title.clone(),
        chunk_count: focus.chunk_count,
        chunk_index,
        chunks: chunks
            .iter()
            .map(|c| ContextChunk {
                chunk_index: c.chunk_index,
                page: c.page,
                heading: c.heading.clone(),
                text: c.text.clone(),
            })
            .collect(),
    };
    let documents = vec![body.document_id.clone()];
    Ok(audited(Json(body).into_response(), &admission, documents))
}
