//! gRPC handlers: validate, call the engine, map results and errors. No logic of their own.

use std::future::Future;
use std::sync::{Arc, RwLock};

use rag_auth::{Action, Gate};
use rag_engine::{Answer, AskEvent, Engine, Verdict};
use rag_ingest::{IncomingDocument, Indexer};
use rag_proto::v1 as pb;
use rag_proto::v1::rag_service_server::RagService;
use rag_store::{DEFAULT_TENANT, Hit};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;

use crate::observe::Call;
use crate::request::{
    Caller, GROUPS_HEADER, ask_options, document_id, question, retrieval, source_path,
};
use crate::status::ApiError;

/// IngestDocument carries whole files (the ingest size limit applies to the file itself).
pub const INGEST_REQUEST_BYTES: usize = 80 * 1024 * 1024;

/// Every other request is a question, options and ids: far below this.
const QUERY_REQUEST_BYTES: usize = 256 * 1024;

/// The largest request `action` takes: an ingest carries a file, nothing else needs more than
/// a question and its options, so a Search cannot make the service decode 80 MB.
pub fn request_limit(action: Action) -> usize {
    match action {
        Action::Ingest => INGEST_REQUEST_BYTES,
        Action::Search | Action::Ask | Action::Delete | Action::Stats | Action::Reindex => {
            QUERY_REQUEST_BYTES
        }
    }
}

/// What the service needs once start-up has loaded it: the engine answers, the indexer takes
/// documents sent over the API.
#[derive(Clone)]
pub struct Loaded {
    pub engine: Engine,
    pub indexer: Arc<Indexer>,
}

/// What the service answers from: empty until start-up has loaded it; replaced whole when a
/// rebuild switches the store. A call keeps the one it started with, so no call mixes two
/// stores (or two embedding models).
#[derive(Default)]
pub struct Current {
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// Held shared by every call that writes documents, for its whole length; a rebuild takes
    /// it alone to carry the last writes over and switch with none in flight.
    writes: tokio::sync::RwLock<()>,
}

impl Current {
    pub fn get(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `loaded` in place; returns what calls started before may still be using.
    pub fn replace(&self, loaded: Loaded) -> Option<Arc<Loaded>> {
        self.loaded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Arc::new(loaded))
    }

    /// Waits for the calls writing documents to end and keeps new ones waiting until the
    /// guard is dropped.
    pub async fn pause_writes(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.writes.write().await
    }
}

/// Makes a Reindex call's rebuild: given the request, it sends progress lines and ends with
/// `Ok` once the service answers from the new store. Provided by the binary, which knows the
/// configuration; `None` where the service cannot rebuild its store itself.
pub type Rebuild = Arc<
    dyn Fn(
            pb::ReindexRequest,
            mpsc::Sender<String>,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// What the service answers from, and how a Reindex call replaces it.
#[derive(Clone, Default)]
pub struct Serving {
    pub current: Arc<Current>,
    pub rebuild: Option<Rebuild>,
}

/// The service; answers UNAVAILABLE until start-up has loaded the engine.
#[derive(Clone)]
pub struct Service {
    current: Arc<Current>,
    gate: Arc<Gate>,
    rebuild: Option<Rebuild>,
    /// How long an Ask stream may wait on a client that stopped reading before it is ended.
    write_timeout: std::time::Duration,
}

/// Counter: answer streams ended because their client stopped reading, by `door`.
pub const STALLED_STREAMS: &str = "rag_stalled_streams_total";

/// Request metadata carrying the caller's API key: `authorization: Bearer <key>`.
pub const AUTHORIZATION_HEADER: &str = "authorization";

impl Service {
    pub fn new(serving: Serving, gate: Arc<Gate>, write_timeout: std::time::Duration) -> Self {
        Self {
            current: serving.current,
            gate,
            rebuild: serving.rebuild,
            write_timeout,
        }
    }

    fn loaded(&self) -> Result<Arc<Loaded>, ApiError> {
        self.current.get().ok_or(ApiError::NotReady)
    }

    /// Starts the call and lets it in if its key may perform `action` and is within its
    /// limits, and says whose documents it reaches. A refused call ends here, counted and
    /// audited, with UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED or (a malformed
    /// groups header) INVALID_ARGUMENT.
    fn admit<T: prost::Message>(
        &self,
        rpc: &'static str,
        action: Action,
        request: &Request<T>,
    ) -> Result<(Call, Caller), Status> {
        let call = Call::start(rpc, request);
        let size = request.get_ref().encoded_len();
        let limit = request_limit(action);
        if size > limit {
            return Err(call.fail(ApiError::TooLarge { rpc, size, limit }.into()));
        }
        let forwarded = metadata_text(request, GROUPS_HEADER);
        match crate::request::admit(&self.gate, bearer(request), forwarded, action) {
            Ok(admission) => {
                call.set_tenant(admission.caller.tenant.clone());
                if let Some(key_id) = admission.key_id {
                    call.set_key(key_id);
                }
                if let Some(permit) = admission.permit {
                    call.hold(permit);
                }
                Ok((call, admission.caller))
            }
            Err(e) => {
                // A known key that may not do this, or not now, is named in the audit line too.
                if let ApiError::Auth(a) = &e
                    && let Some(key_id) = a.key_id()
                {
                    call.set_key(key_id.to_owned());
                }
                Err(call.fail(e.into()))
            }
        }
    }
}

/// A metadata value as text; `Err` for one that is not ASCII.
fn metadata_text<'a, T>(request: &'a Request<T>, name: &str) -> Option<Result<&'a str, ()>> {
    request
        .metadata()
        .get(name)
        .map(|v| v.to_str().map_err(|_| ()))
}

/// The key in `authorization: Bearer <key>`, if the request carries one.
pub(crate) fn bearer<T>(request: &Request<T>) -> Option<&str> {
    crate::request::bearer(
        request
            .metadata()
            .get(AUTHORIZATION_HEADER)?
            .to_str()
            .ok()?,
    )
}

#[tonic::async_trait]
impl RagService for Service {
    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let (call, caller) = self.admit("Search", Action::Search, &request)?;
        let result = async {
            let loaded = self.loaded()?;
            let engine = &loaded.engine;
            let request = request.into_inner();
            let query = question(engine, "query", &request.query)?;
            let retrieval = retrieval(engine, &caller, request.retrieval)?;
            let started = std::time::Instant::now();
            let hits = engine.retrieve(&query, &retrieval).await?;
            call.touch(hits.iter().map(|h| h.payload.doc_id.as_str()));
            Ok::<_, ApiError>(pb::SearchResponse {
                chunks: hits.iter().map(chunk).collect(),
                timings: Some(pb::Timings {
                    retrieval_ms: ms(started.elapsed()),
                    ..Default::default()
                }),
            })
        }
        .instrument(call.span())
        .await;
        call.respond(result.map_err(Status::from))
    }

    type AskStream = ReceiverStream<Result<pb::AskResponse, Status>>;

    async fn ask(
        &self,
        request: Request<pb::AskRequest>,
    ) -> Result<Response<Self::AskStream>, Status> {
        let (call, caller) = self.admit("Ask", Action::Ask, &request)?;
        let span = call.span();
        let events = async {
            let loaded = self.loaded()?;
            let engine = &loaded.engine;
            let request = request.into_inner();
            let question = question(engine, "question", &request.question)?;
            let mut options = ask_options(engine, &caller, &request)?;
            options.deadline = call.deadline();
            Ok::<_, ApiError>(engine.ask(&question, options).await?)
        }
        .instrument(span.clone())
        .await;
        let mut events = match events {
            Ok(events) => events,
            Err(e) => return Err(call.fail(e.into())),
        };
        // A few events: tokens come at reading speed, and a client that stops reading is
        // noticed (and its answer ended) after these and the stream's flow-control window.
        let (tx, rx) = mpsc::channel(8);
        let response = call.tag(Response::new(ReceiverStream::new(rx)));
        let write_timeout = self.write_timeout;
        let forward = async move {
            let mut code = Code::Internal;
            loop {
                // A client that leaves is noticed at once, not at the next token: dropping
                // `events` cancels the answer.
                let event = tokio::select! {
                    () = tx.closed() => {
                        code = Code::Cancelled;
                        break;
                    }
                    event = events.next() => event,
                };
                let Some(event) = event else { break };
                let (message, last) = match event {
                    Ok(AskEvent::Rewritten(rewrite)) => (
                        Ok(pb::AskResponse {
                            event: Some(pb::ask_response::Event::Rewrite(pb::Rewrite {
                                question: rewrite.question,
                                by: rewrite.by.as_str().into(),
                            })),
                        }),
                        false,
                    ),
                    Ok(AskEvent::Sources(hits)) => {
                        call.touch(hits.iter().map(|h| h.payload.doc_id.as_str()));
                        (Ok(sources_event(&hits)), false)
                    }
                    Ok(AskEvent::Token(text)) => (
                        Ok(pb::AskResponse {
                            event: Some(pb::ask_response::Event::Token(pb::Token { text })),
                        }),
                        false,
                    ),
                    Ok(AskEvent::Answer(answer)) => {
                        code = Code::Ok;
                        (Ok(answer_event(*answer)), true)
                    }
                    Err(e) => {
                        let status = Status::from(ApiError::from(e));
                        code = status.code();
                        (Err(status), true)
                    }
                };
                // A client that stops reading fills the stream's flow-control window, then this
                // channel: past the write timeout the answer is ended, which frees its permit
                // and its generation (dropping `events` cancels it).
                match tokio::time::timeout(write_timeout, tx.send(message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        // The client left.
                        code = Code::Cancelled;
                        break;
                    }
                    Err(_) => {
                        metrics::counter!(STALLED_STREAMS, "door" => "grpc").increment(1);
                        tracing::info!("the client stopped reading the answer: ended");
                        code = Code::DeadlineExceeded;
                        break;
                    }
                }
                if last {
                    break;
                }
            }
            call.finish(code);
        };
        tokio::spawn(forward.instrument(span));
        Ok(response)
    }

    async fn ingest_document(
        &self,
        request: Request<pb::IngestDocumentRequest>,
    ) -> Result<Response<pb::IngestDocumentResponse>, Status> {
        let (call, caller) = self.admit("IngestDocument", Action::Ingest, &request)?;
        let result = async {
            let _writing = self.current.writes.read().await;
            let loaded = self.loaded()?;
            let indexer = &loaded.indexer;
            let request = request.into_inner();
            // Empty: derived from the file name.
            let document_id = match request.document_id.trim() {
                "" => String::new(),
                id => document_id("document_id", id)?,
            };
            let file_name = request.file_name.trim().to_owned();
            if file_name.is_empty() {
                return Err(ApiError::invalid("file_name", "must not be empty"));
            }
            if request.content.is_empty() {
                return Err(ApiError::invalid("content", "must not be empty"));
            }
            let (document_id, outcome) = indexer
                .index_document(IncomingDocument {
                    file_name,
                    media_type: request.media_type,
                    content: request.content,
                    document_id,
                    metadata: request.metadata.into_iter().collect(),
                    tenant: caller.tenant,
                    groups: request.groups,
                    writer: caller.visibility,
                })
                .await
                .map_err(|e| match e {
                    rag_ingest::IndexError::Unsupported { .. } => {
                        ApiError::invalid("media_type", e.to_string())
                    }
                    rag_ingest::IndexError::BadName { .. } => {
                        ApiError::invalid("file_name", e.to_string())
                    }
                    rag_ingest::IndexError::BadGroups { .. } => {
                        ApiError::invalid("groups", e.to_string())
                    }
                    rag_ingest::IndexError::TooLarge { .. }
                    | rag_ingest::IndexError::Extract { .. }
                    | rag_ingest::IndexError::Crashed { .. } => {
                        ApiError::invalid("content", e.to_string())
                    }
                    e => ApiError::from(e),
                })?;
            call.touch([document_id.as_str()]);
            let (chunks_written, pages, unchanged) = match outcome {
                rag_ingest::Outcome::Indexed { chunks, pages } => (chunks, pages, false),
                rag_ingest::Outcome::Unchanged => (0, 0, true),
            };
            Ok(pb::IngestDocumentResponse {
                document_id,
                chunks_written,
                unchanged,
                pages,
            })
        }
        .instrument(call.span())
        .await;
        call.respond(result.map_err(Status::from))
    }

    async fn delete_document(
        &self,
        request: Request<pb::DeleteDocumentRequest>,
    ) -> Result<Response<pb::DeleteDocumentResponse>, Status> {
        let (call, caller) = self.admit("DeleteDocument", Action::Delete, &request)?;
        let result = async {
            use pb::delete_document_request::Target;
            // Checked before anything is touched: what reaches the store and the audit line is
            // a valid id or a one-line path.
            let target = match request.into_inner().target {
                Some(Target::DocumentId(id)) => {
                    Target::DocumentId(document_id("document_id", &id)?)
                }
                Some(Target::SourcePath(path)) => {
                    let path = source_path("source_path", path.trim())?;
                    if path.is_empty() {
                        return Err(ApiError::invalid("source_path", "must not be empty"));
                    }
                    Target::SourcePath(path)
                }
                None => {
                    return Err(ApiError::invalid(
                        "target",
                        "set document_id or source_path",
                    ));
                }
            };
            // Only the caller's tenant, and only what the caller can read: a document it cannot
            // see is as absent for deleting as for searching.
            let _writing = self.current.writes.read().await;
            let store = self.loaded()?.engine.store().for_tenant(&caller.tenant);
            let visibility = &caller.visibility;
            let deleted = match &target {
                Target::DocumentId(id) => {
                    call.touch([id.as_str()]);
                    store.delete_document(id, None, visibility).await
                }
                Target::SourcePath(path) => {
                    call.touch([path.as_str()]);
                    store.delete_source(path, visibility).await
                }
            }
            .map_err(rag_engine::EngineError::from)?;
            store.flush().await.map_err(rag_engine::EngineError::from)?;
            Ok(pb::DeleteDocumentResponse {
                chunks_deleted: deleted,
            })
        }
        .instrument(call.span())
        .await;
        call.respond(result.map_err(Status::from))
    }

    async fn index_stats(
        &self,
        request: Request<pb::IndexStatsRequest>,
    ) -> Result<Response<pb::IndexStatsResponse>, Status> {
        let (call, caller) = self.admit("IndexStats", Action::Stats, &request)?;
        let result = async {
            let stats = self
                .loaded()?
                .engine
                .store()
                .for_tenant(&caller.tenant)
                .stats()
                .await
                .map_err(rag_engine::EngineError::from)?;
            Ok::<_, ApiError>(pb::IndexStatsResponse {
                documents: stats.documents,
                chunks: stats.chunks,
                embedding_model: stats.embedding_model,
                vector_size: stats.vector_size as u32,
                schema_version: stats.schema_version,
                store_backend: stats.backend,
            })
        }
        .instrument(call.span())
        .await;
        call.respond(result.map_err(Status::from))
    }

    type ReindexStream = ReceiverStream<Result<pb::ReindexProgress, Status>>;

    async fn reindex(
        &self,
        request: Request<pb::ReindexRequest>,
    ) -> Result<Response<Self::ReindexStream>, Status> {
        let (call, caller) = self.admit("Reindex", Action::Reindex, &request)?;
        // A rebuild makes (and may drop) the store of every tenant.
        if caller.tenant != DEFAULT_TENANT {
            return Err(call.fail(
                ApiError::NotForTenant(format!(
                    "rebuilding the store concerns every tenant: only an admin key of tenant \
                     {DEFAULT_TENANT:?} may (this one is of {:?})",
                    caller.tenant
                ))
                .into(),
            ));
        }
        let Some(rebuild) = self.rebuild.clone() else {
            return Err(call.fail(
                ApiError::Rebuild(
                    "this service's store is a Qdrant server: run `rag reindex` from any \
                     machine, beside the running services"
                        .into(),
                )
                .into(),
            ));
        };
        let (lines_tx, mut lines) = mpsc::channel::<String>(64);
        let (tx, rx) = mpsc::channel(64);
        let response = call.tag(Response::new(ReceiverStream::new(rx)));
        let span = call.span();
        let forward = async move {
            // The rebuild goes on if the client leaves: stopping half-way would only leave
            // a generation to remove.
            let mut work = rebuild(request.into_inner(), lines_tx);
            let result = loop {
                tokio::select! {
                    line = lines.recv() => if let Some(line) = line {
                        let _ = tx.send(Ok(pb::ReindexProgress { line })).await;
                    },
                    result = &mut work => break result,
                }
            };
            while let Ok(line) = lines.try_recv() {
                let _ = tx.send(Ok(pb::ReindexProgress { line })).await;
            }
            match result {
                Ok(()) => call.finish(Code::Ok),
                Err(e) => {
                    let status = Status::from(ApiError::Rebuild(e));
                    call.finish(status.code());
                    let _ = tx.send(Err(status)).await;
                }
            }
        };
        tokio::spawn(forward.instrument(span));
        Ok(response)
    }
}

fn chunk(hit: &Hit) -> pb::Chunk {
    let p = &hit.payload;
    pb::Chunk {
        document_id: p.doc_id.clone(),
        source_path: p.source.clone(),
        page: p.page,
        chunk_index: p.chunk_index,
        text: p.text.clone(),
        score: hit.similarity,
        rank_score: hit.score,
        title: p.title.clone(),
        heading: p.heading.clone(),
    }
}

fn sources_event(sources: &[Hit]) -> pb::AskResponse {
    pb::AskResponse {
        event: Some(pb::ask_response::Event::Sources(pb::Sources {
            sources: sources
                .iter()
                .enumerate()
                .map(|(i, hit)| pb::Source {
                    number: i as u32 + 1,
                    chunk: Some(chunk(hit)),
                })
                .collect(),
        })),
    }
}

fn answer_event(answer: Answer) -> pb::AskResponse {
    let checked = answer.checked;
    let t = answer.timings;
    let answer = pb::Answer {
        status: match checked.status {
            Verdict::Answered => pb::AnswerStatus::Answered,
            Verdict::NotFound => pb::AnswerStatus::NotFound,
            Verdict::Unsupported => pb::AnswerStatus::Unsupported,
        }
        .into(),
        text: checked.text,
        draft: checked.draft,
        citations: answer
            .citations
            .into_iter()
            .map(|c| pb::Citation {
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
            .map(|s| pb::Sentence {
                text: s.text,
                cited: s.cited,
                supported: s.supported_by.is_some(),
                supported_by: s.supported_by.unwrap_or(0),
                lexical_overlap: s.lexical_overlap,
                similarity: s.similarity,
            })
            .collect(),
        // The model was not called for a not-found answer: no usage to report.
        usage: (answer.prompt_tokens > 0).then_some(pb::Usage {
            prompt_tokens: answer.prompt_tokens as u32,
            completion_tokens: answer.completion_tokens as u32,
        }),
        timings: Some(pb::Timings {
            retrieval_ms: ms(t.retrieval),
            first_token_ms: ms(t.first_token),
            total_ms: ms(t.total),
            tokens_per_second: t.tokens_per_second,
            rewrite_ms: ms(t.rewrite),
        }),
        finish_reason: answer.finish.as_str().into(),
    };
    pb::AskResponse {
        event: Some(pb::ask_response::Event::Answer(answer)),
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
