//! The HTTP front door, on the same process and engine as gRPC: JSON search, ask as
//! Server-Sent Events, an OpenAI-compatible chat endpoint, the chat page with its source
//! viewer and feedback, and the OpenAPI document of all of it.
//!
//! Every request goes through `rag-api`'s admission, validation and calls, as gRPC's do: the
//! same keys, tenants, groups, limits and errors. This crate maps JSON onto the API's requests
//! and its results back ([`api`]), and each kind of error onto an HTTP status ([`error`]).

mod api;
mod ask;
mod chat;
mod deadline;
mod documents;
mod error;
pub mod feedback;
mod openapi;
mod page;
mod search;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use rag_api::{Admission, Current, GROUPS_HEADER};
use rag_auth::{Action, Gate};
use tokio::net::TcpListener;

pub use error::{ErrorBody, HttpError};
pub use openapi::document as openapi_document;

/// Calls by `route` and HTTP `status`.
pub const REQUESTS: &str = "rag_http_requests_total";
/// Seconds until the response head (for streams, until the first event is ready), by `route`.
pub const REQUEST_SECONDS: &str = "rag_http_request_duration_seconds";

/// Requests are a question, options and a conversation: far below this.
const BODY_LIMIT: usize = 256 * 1024;

/// What the HTTP door needs: what the service answers from (shared with gRPC), the keys, and
/// where feedback goes.
#[derive(Clone)]
pub struct Http {
    pub current: Arc<Current>,
    pub gate: Arc<Gate>,
    pub feedback: Arc<feedback::Log>,
}

impl Http {
    pub fn new(current: Arc<Current>, gate: Arc<Gate>, data_dir: PathBuf) -> Self {
        Self {
            current,
            gate,
            feedback: Arc::new(feedback::Log::new(data_dir)),
        }
    }

    /// Lets the request in as gRPC would: `Authorization: Bearer <key>`, `x-rag-groups`.
    fn admit(&self, headers: &HeaderMap, action: Action) -> Result<Admission, HttpError> {
        let key = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(rag_api::bearer);
        let groups = headers
            .get(GROUPS_HEADER)
            .map(|v| v.to_str().map_err(|_| ()));
        Ok(rag_api::admit(&self.gate, key, groups, action)?)
    }
}

/// Every route of the HTTP door.
pub fn router(http: Http) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/assets/{file}", get(page::asset))
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/search", post(search::search))
        .route("/v1/ask", post(ask::ask))
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/models", get(chat::models))
        .route(
            "/v1/documents/{document_id}/chunks/{chunk_index}",
            get(documents::chunk_in_context),
        )
        .route("/v1/feedback", post(feedback::post))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            http.clone(),
            loopback_names_only,
        ))
        .layer(middleware::from_fn(observe))
        .with_state(http)
}

/// Serves the HTTP door on `listener` until `shutdown` resolves, then lets the requests under
/// way finish. With `tls` it speaks HTTPS only (the gRPC listener's certificate, and its client
/// CA when it requires client certificates). Connections are capped and timed out by `limits`:
/// the TLS handshake and a request head must each arrive within the header timeout, a silent
/// connection is closed after the idle timeout, and a response the client stops reading after
/// the write timeout (its permit and generation are freed with it).
pub async fn serve(
    listener: TcpListener,
    http: Http,
    limits: rag_listen::Limits,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(http);
    let listener = rag_listen::Listener::new(listener, &limits, "http");
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout());
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let io = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((io, _)) => io,
                Err(e) => {
                    rag_listen::accept_failed(&e).await;
                    continue;
                }
            },
        };
        let (app, builder, stopped) = (app.clone(), builder.clone(), stopped.clone());
        let handshake = limits.header_timeout();
        match tls.clone() {
            None => connections.spawn(connection(io, app, builder, stopped)),
            Some(acceptor) => connections.spawn(async move {
                match tokio::time::timeout(handshake, acceptor.accept(io)).await {
                    Ok(Ok(io)) => connection(io, app, builder, stopped).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }),
        };
        // Reap the finished ones as we go, so the set holds only open connections.
        while connections.try_join_next().is_some() {}
    }
    stop.send_replace(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection until it ends; once `stopped` turns true, finishes the request under
/// way and closes.
async fn connection<IO>(
    io: IO,
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = stopped.wait_for(|s| *s) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}

/// Describes the HTTP metrics to the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(REQUESTS, "HTTP requests by route and status");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request duration until the response head, by route"
    );
}

/// Who a request acted as, put on the response by the handler for the audit line.
#[derive(Debug, Clone)]
struct Audited {
    key_id: Option<String>,
    tenant: String,
    /// Documents the request returned.
    documents: Vec<String>,
}

/// Counts and times every request by its route (not its path: ids would explode the labels),
/// and writes the audit line the gRPC door writes.
async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let seconds = started.elapsed().as_secs_f64();
    metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status.clone()).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "route" => route.clone()).record(seconds);
    if route.starts_with("/v1/") {
        let who = response.extensions().get::<Audited>();
        tracing::info!(
            target: rag_api::AUDIT_TARGET,
            http = %method,
            route,
            status,
            key_id = who.and_then(|w| w.key_id.as_deref()).unwrap_or("-"),
            tenant = who.map_or("-", |w| w.tenant.as_str()),
            documents = who.map_or(String::new(), |w| w.documents.join(",")),
            ms = seconds * 1000.0,
            "http request"
        );
    }
    response
}

/// Without keys the service listens on loopback only, but a web page the local user opens could
/// still reach it through a name it points at 127.0.0.1 (DNS rebinding) and read the documents.
/// So an open service answers only requests addressed to a loopback name.
async fn loopback_names_only(State(http): State<Http>, request: Request, next: Next) -> Response {
    if !http.gate.is_open() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // "localhost:8080", "127.0.0.1", "[::1]:8080"
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        next.run(request).await
    } else {
        use axum::response::IntoResponse;
        HttpError::Misaddressed(format!(
            "this service checks no API keys, so it answers only requests addressed to \
             localhost or a loopback address (not {host:?})"
        ))
        .into_response()
    }
}

/// Marks `response` with who the request acted as.
fn audited(mut response: Response, admission: &Admission, documents: Vec<String>) -> Response {
    response.extensions_mut().insert(Audited {
        key_id: admission.key_id.clone(),
        tenant: admission.caller.tenant.clone(),
        documents,
    });
    response
}

/// The handler's state, for handlers that only need it.
type St = State<Http>;
