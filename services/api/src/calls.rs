//! The calls themselves, for a caller let in: validate the request, reach the engine, the
//! indexer or the store, and return the results. A door maps its wire onto these and the
//! results back; it decides nothing about what a call does.

use std::time::Instant;

use rag_engine::EngineError;
use rag_ingest::{IndexError, Outcome};
use rag_store::IndexStats;

use crate::reply::{Answering, Found, Ingested, Timings, ms};
use crate::request::{AskRequest, DeleteDocumentRequest, IngestDocumentRequest, SearchRequest};
use crate::{ApiError, Caller, Current, DeleteTarget, check};

/// Search: ranked chunks for a query, without generation.
pub async fn search(
    current: &Current,
    caller: &Caller,
    request: SearchRequest,
) -> Result<Found, ApiError> {
    let loaded = current.loaded()?;
    let engine = &loaded.engine;
    let query = check::question(engine, "query", &request.query)?;
    let retrieval = request.retrieval.validate(engine, caller)?;
    let started = Instant::now();
    let hits = engine.retrieve(&query, &retrieval).await?;
    Ok(Found {
        chunks: hits.iter().map(Into::into).collect(),
        timings: Timings {
            retrieval_ms: ms(started.elapsed()),
            ..Default::default()
        },
    })
}

/// Ask: starts a grounded answer that ends by `deadline` (when the caller stops waiting;
/// `None`: none), ended early with DEADLINE_EXCEEDED otherwise. Both doors start answers here.
pub async fn start_ask(
    current: &Current,
    caller: &Caller,
    request: AskRequest,
    deadline: Option<Instant>,
) -> Result<Answering, ApiError> {
    let loaded = current.loaded()?;
    let engine = &loaded.engine;
    let (question, options) = request.validate(engine, caller, deadline)?;
    Ok(Answering(engine.ask(&question, options).await?))
}

/// IngestDocument: indexes one file into the caller's tenant (a rebuild waits for it).
pub async fn ingest_document(
    current: &Current,
    caller: &Caller,
    request: IngestDocumentRequest,
) -> Result<Ingested, ApiError> {
    let _writing = current.writing().await;
    let loaded = current.loaded()?;
    let document = request.validate(caller)?;
    let (document_id, outcome) = loaded
        .indexer
        .index_document(document)
        .await
        .map_err(ingest_error)?;
    let (chunks_written, pages, unchanged) = match outcome {
        Outcome::Indexed { chunks, pages } => (chunks, pages, false),
        Outcome::Unchanged => (0, 0, true),
    };
    Ok(Ingested {
        document_id,
        chunks_written,
        pages,
        unchanged,
    })
}

/// An indexing error that a request field caused names that field.
fn ingest_error(e: IndexError) -> ApiError {
    let field = match e {
        IndexError::Unsupported { .. } => "media_type",
        IndexError::BadName { .. } => "file_name",
        IndexError::BadGroups { .. } => "groups",
        IndexError::TooLarge { .. } | IndexError::Extract { .. } | IndexError::Crashed { .. } => {
            "content"
        }
        e => return ApiError::from(e),
    };
    ApiError::invalid(field, e.to_string())
}

/// DeleteDocument: removes a document, or every document of a source path, from the caller's
/// tenant; returns the chunks deleted. `touched` names the target (for the audit line) once
/// the call reaches the store.
pub async fn delete_document(
    current: &Current,
    caller: &Caller,
    request: DeleteDocumentRequest,
    touched: impl FnOnce(&str),
) -> Result<u64, ApiError> {
    let target = request.validate()?;
    // Only the caller's tenant, and only what the caller can read: a document it cannot see
    // is as absent for deleting as for searching.
    let _writing = current.writing().await;
    let store = current.loaded()?.engine.store().for_tenant(&caller.tenant);
    let visibility = &caller.visibility;
    touched(target.name());
    let deleted = match &target {
        DeleteTarget::DocumentId(id) => store.delete_document(id, None, visibility).await,
        DeleteTarget::SourcePath(path) => store.delete_source(path, visibility).await,
    }
    .map_err(EngineError::from)?;
    store.flush().await.map_err(EngineError::from)?;
    Ok(deleted)
}

/// IndexStats: what the caller's tenant holds, and the store it is in.
pub async fn index_stats(current: &Current, caller: &Caller) -> Result<IndexStats, ApiError> {
    Ok(current
        .loaded()?
        .engine
        .store()
        .for_tenant(&caller.tenant)
        .stats()
        .await
        .map_err(EngineError::from)?)
}
