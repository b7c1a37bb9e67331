//! The gRPC server: the rag service, standard health checking and server reflection.

use std::future::Future;
use std::sync::Arc;

use rag_proto::v1::rag_service_server::RagServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use rag_auth::Gate;

use rag_api::Loaded;

use crate::service::{Service, Serving};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("loading models and store: {0}")]
    Load(String),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(String),
}

/// The listener's certificate and key, and the CA that client certificates must be signed by
/// (mTLS) when one is given; all PEM.
pub struct Tls {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub client_ca: Option<Vec<u8>>,
}

impl Tls {
    fn config(self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(self.cert, self.key));
        match self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// Largest request the transport decodes: IngestDocument's limit, the largest of
/// [`crate::service::request_limit`]'s, so that no RPC's own check is bypassed.
pub const MAX_REQUEST_BYTES: usize = crate::service::INGEST_REQUEST_BYTES;

/// Serves on `listener` (over TLS when `tls` is given) until `shutdown` resolves, letting in the
/// calls `gate` admits (health and reflection answer everyone: load balancers and tools need no
/// key). The port answers at once; health reports NOT_SERVING until `load` has produced the
/// engine, then SERVING (and `ready` turns true, for the admin listener's `/readyz`). The
/// engine goes into `serving.current`, where a Reindex call (`serving.rebuild`) may replace
/// it. A failed load ends the server with the error, so a broken deployment fails loudly
/// instead of idling.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    listener: TcpListener,
    limits: rag_listen::Limits,
    gate: Arc<Gate>,
    tls: Option<Tls>,
    load: impl Future<Output = Result<Loaded, String>> + Send + 'static,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: tokio::sync::watch::Sender<bool>,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_not_serving::<RagServiceServer<Service>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(rag_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let current = serving.current.clone();
    let service =
        RagServiceServer::new(Service::new(serving, gate.clone(), limits.write_timeout()))
            .max_decoding_message_size(MAX_REQUEST_BYTES);
    let service = crate::screen::Screened::new(service, gate);

    let (load_failed_tx, load_failed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        match load.await {
            Ok(engine) => {
                current.replace(engine);
                health.set_serving::<RagServiceServer<Service>>().await;
                ready.send_replace(true);
                tracing::info!("models and store ready: serving");
            }
            Err(e) => {
                let _ = load_failed_tx.send(e);
            }
        }
    });

    let mut builder = tonic::transport::Server::builder()
        // A client that stops answering pings is gone: its connection is closed.
        .http2_keepalive_interval(Some(limits.keepalive()))
        .http2_keepalive_timeout(Some(limits.keepalive()))
        .max_concurrent_streams(limits.max_concurrent_streams);
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.config())?;
    }
    let incoming = rag_listen::Listener::new(listener, &limits, "grpc").into_stream();
    let incoming = futures_util::StreamExt::map(incoming, |conn| conn.map(Conn));
    let server = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::select! {
        result = server => Ok(result?),
        Ok(e) = load_failed => Err(ServeError::Load(e)),
    }
}

/// A connection of the gRPC door: capped and timed out by `rag_listen`, with the peer's address
/// for tonic as a plain TCP connection has it.
struct Conn(rag_listen::Guarded);

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.0.local_addr().ok(),
            remote_addr: self.0.peer_addr().ok(),
        }
    }
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
