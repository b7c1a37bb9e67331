//! The gRPC server: the rag service, standard health checking and server reflection.

use std::future::Future;
use std::sync::Arc;

use rag_proto::v1::rag_service_server::RagServiceServer;
use tokio::net::TcpListener;
use tonic::transport::ServerTlsConfig;
use tonic::transport::server::TcpIncoming;

use rag_auth::Gate;

use crate::service::{Loaded, Service, Serving};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("loading models and store: {0}")]
    Load(String),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(String),
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
pub async fn run(
    listener: TcpListener,
    gate: Arc<Gate>,
    tls: Option<ServerTlsConfig>,
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
    let service = RagServiceServer::new(Service::new(serving, gate))
        .max_decoding_message_size(MAX_REQUEST_BYTES);

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

    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY small responses wait on delayed ACKs (~40 ms a call).
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        );
    tokio::select! {
        result = server => Ok(result?),
        Ok(e) = load_failed => Err(ServeError::Load(e)),
    }
}
