//! gRPC handlers: admit the call, map its message onto the API's request (`wire`), make the
//! call (`rag_api::calls`), map the result or the error back. No logic of their own.

use std::future::Future;
use std::sync::Arc;

use rag_api::reply::Answering;
use rag_api::{ApiError, Caller, Current, GROUPS_HEADER, calls};
use rag_auth::{Action, Gate};
use rag_proto::v1 as pb;
use rag_proto::v1::rag_service_server::RagService;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;

use crate::observe::Call;
use crate::status::status;
use crate::wire;

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
            return Err(call.fail(status(ApiError::TooLarge { rpc, size, limit })));
        }
        let forwarded = metadata_text(request, GROUPS_HEADER);
        match rag_api::admit(&self.gate, bearer(request), forwarded, action) {
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
                Err(call.fail(status(e)))
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
    rag_api::bearer(
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
        let request = wire::search_request(request.into_inner());
        let result = calls::search(&self.current, &caller, request)
            .instrument(call.span())
            .await;
        if let Ok(found) = &result {
            call.touch(found.chunks.iter().map(|c| c.document_id.as_str()));
        }
        call.respond(result.map(wire::search_response).map_err(status))
    }

    type AskStream = ReceiverStream<Result<pb::AskResponse, Status>>;

    async fn ask(
        &self,
        request: Request<pb::AskRequest>,
    ) -> Result<Response<Self::AskStream>, Status> {
        let (call, caller) = self.admit("Ask", Action::Ask, &request)?;
        let span = call.span();
        let request = wire::ask_request(request.into_inner());
        // tonic enforces the client's deadline only until the response starts: the answer
        // ends itself at it.
        let events = calls::start_ask(&self.current, &caller, request, call.deadline())
            .instrument(span.clone())
            .await;
        let events = match events {
            Ok(events) => events,
            Err(e) => return Err(call.fail(status(e))),
        };
        // A few events: tokens come at reading speed, and a client that stops reading is
        // noticed (and its answer ended) after these and the stream's flow-control window.
        let (tx, rx) = mpsc::channel(8);
        let response = call.tag(Response::new(ReceiverStream::new(rx)));
        let forward = forward_answer(events, tx, call, self.write_timeout);
        tokio::spawn(forward.instrument(span));
        Ok(response)
    }

    async fn ingest_document(
        &self,
        request: Request<pb::IngestDocumentRequest>,
    ) -> Result<Response<pb::IngestDocumentResponse>, Status> {
        let (call, caller) = self.admit("IngestDocument", Action::Ingest, &request)?;
        let request = wire::ingest_request(request.into_inner());
        let result = calls::ingest_document(&self.current, &caller, request)
            .instrument(call.span())
            .await;
        if let Ok(ingested) = &result {
            call.touch([ingested.document_id.as_str()]);
        }
        call.respond(result.map(wire::ingest_response).map_err(status))
    }

    async fn delete_document(
        &self,
        request: Request<pb::DeleteDocumentRequest>,
    ) -> Result<Response<pb::DeleteDocumentResponse>, Status> {
        let (call, caller) = self.admit("DeleteDocument", Action::Delete, &request)?;
        let request = wire::delete_request(request.into_inner());
        let result = calls::delete_document(&self.current, &caller, request, |target| {
            call.touch([target])
        })
        .instrument(call.span())
        .await;
        call.respond(
            result
                .map(|chunks_deleted| pb::DeleteDocumentResponse { chunks_deleted })
                .map_err(status),
        )
    }

    async fn index_stats(
        &self,
        request: Request<pb::IndexStatsRequest>,
    ) -> Result<Response<pb::IndexStatsResponse>, Status> {
        let (call, caller) = self.admit("IndexStats", Action::Stats, &request)?;
        let result = calls::index_stats(&self.current, &caller)
            .instrument(call.span())
            .await;
        call.respond(result.map(wire::stats_response).map_err(status))
    }

    type ReindexStream = ReceiverStream<Result<pb::ReindexProgress, Status>>;

    async fn reindex(
        &self,
        request: Request<pb::ReindexRequest>,
    ) -> Result<Response<Self::ReindexStream>, Status> {
        let (call, caller) = self.admit("Reindex", Action::Reindex, &request)?;
        if let Err(e) = rag_api::may_rebuild(&caller) {
            return Err(call.fail(status(e)));
        }
        let Some(rebuild) = self.rebuild.clone() else {
            return Err(call.fail(status(ApiError::Rebuild(
                "this service's store is a Qdrant server: run `rag reindex` from any \
                 machine, beside the running services"
                    .into(),
            ))));
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
                    let status = status(ApiError::Rebuild(e));
                    call.finish(status.code());
                    let _ = tx.send(Err(status)).await;
                }
            }
        };
        tokio::spawn(forward.instrument(span));
        Ok(response)
    }
}

/// Sends an answer's events to the client until the answer ends, the client leaves, or it stops
/// reading for `write_timeout`; then finishes the call with how it ended.
async fn forward_answer(
    mut events: Answering,
    tx: mpsc::Sender<Result<pb::AskResponse, Status>>,
    call: Call,
    write_timeout: std::time::Duration,
) {
    let mut code = Code::Internal;
    loop {
        // A client that leaves is noticed at once, not at the next token: dropping `events`
        // cancels the answer.
        let event = tokio::select! {
            () = tx.closed() => {
                code = Code::Cancelled;
                break;
            }
            event = events.next() => event,
        };
        let Some(event) = event else { break };
        let (message, last) = match event {
            Ok(event) => {
                if let rag_api::reply::AskEvent::Sources(sources) = &event {
                    call.touch(sources.iter().map(|s| s.chunk.document_id.as_str()));
                }
                let last = matches!(event, rag_api::reply::AskEvent::Answer(_));
                if last {
                    code = Code::Ok;
                }
                (Ok(wire::ask_response(event)), last)
            }
            Err(e) => {
                let status = status(e);
                code = status.code();
                (Err(status), true)
            }
        };
        // A client that stops reading fills the stream's flow-control window, then this
        // channel: past the write timeout the answer is ended, which frees its permit and its
        // generation (dropping `events` cancels it).
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
}
