//! The peers of one cluster, and moving on to the next when the one in use is down.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use qdrant_client::{Qdrant, QdrantError};

use crate::{Result, StoreError};

/// Per-request deadline. The client's default (5 s) is too short for creating a collection on
/// a cluster or for an upsert that waits for indexing.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The peers this process may talk to, and the one it talks to now.
pub(super) struct Peers {
    clients: Vec<Qdrant>,
    current: AtomicUsize,
}

impl Peers {
    /// A client for each of `urls`; the first that answers a health check becomes the current
    /// peer, so that a process started while a peer is down starts at all.
    pub(super) async fn connect(
        urls: &[String],
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Result<Self> {
        if urls.is_empty() {
            return Err(StoreError::Operation(
                "no Qdrant server address: set store.url".into(),
            ));
        }
        let mut clients = Vec::with_capacity(urls.len());
        for url in urls {
            // The compatibility check blocks the calling thread on a private runtime and
            // prints to stdout; the health check below answers the question that matters here.
            clients.push(
                Qdrant::from_url(url)
                    .api_key(api_key)
                    .timeout(timeout)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .skip_compatibility_check()
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("Qdrant server {url}: {e}")))?,
            );
        }
        let mut failures = Vec::new();
        for (index, client) in clients.iter().enumerate() {
            match client.health_check().await {
                Ok(health) => {
                    tracing::debug!(url = %urls[index], version = %health.version, "connected to Qdrant server");
                    return Ok(Self {
                        clients,
                        current: AtomicUsize::new(index),
                    });
                }
                Err(e) => failures.push(format!("Qdrant server {}: {}", urls[index], detail(&e))),
            }
        }
        Err(StoreError::Unavailable(failures.join("; ")))
    }

    /// The address of the peer in use.
    pub(super) fn uri(&self) -> &str {
        &self.clients[self.current.load(Ordering::Relaxed)]
            .config
            .uri
    }

    /// Runs `op` against the current peer and, when that peer cannot be reached or breaks off
    /// the call, against each other peer in turn; the first that answers becomes the current
    /// one. Safe because every operation of this backend may run twice: writes are upserts and
    /// deletes by point id or filter, and the admin steps check what exists first. An error the
    /// server answered (not transport trouble) is returned at once: another peer would say
    /// the same.
    pub(super) async fn call<T, F, Fut>(&self, op: F) -> std::result::Result<T, QdrantError>
    where
        F: Fn(Qdrant) -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>>,
    {
        let first = self.current.load(Ordering::Relaxed);
        let mut step = 0;
        loop {
            let index = (first + step) % self.clients.len();
            match op(self.clients[index].clone()).await {
                Ok(value) => {
                    if step > 0 {
                        self.current.store(index, Ordering::Relaxed);
                        metrics::counter!(crate::FAILOVERS).increment(1);
                        tracing::warn!(
                            from = %self.clients[first].config.uri,
                            to = %self.clients[index].config.uri,
                            "the Qdrant peer in use could not be reached; moved to the next peer"
                        );
                    }
                    return Ok(value);
                }
                Err(e) if is_transient(&e) && step + 1 < self.clients.len() => {
                    tracing::debug!(peer = %self.clients[index].config.uri, error = %detail(&e), "Qdrant peer failed; trying the next");
                    step += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

pub(super) fn is_transient(e: &QdrantError) -> bool {
    use tonic::Code;
    match e {
        QdrantError::ResponseError { status } => match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::ResourceExhausted => true,
            // The client's channel pool reports a failed connect as `Internal`.
            Code::Internal => status.message().starts_with("Failed to connect"),
            // tonic's answer for a connection that broke under a request in flight (the
            // server was killed mid-call): the server never answered.
            Code::Unknown => status.message().starts_with("transport error"),
            _ => false,
        },
        QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => true,
        _ => false,
    }
}

/// The error without the gRPC metadata map that `QdrantError`'s `Display` appends.
pub(super) fn detail(e: &QdrantError) -> String {
    match e {
        QdrantError::ResponseError { status } => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_unavailable() {
        let down = QdrantError::ResponseError {
            status: tonic::Status::internal("Failed to connect to http://x: refused"),
        };
        assert!(is_transient(&down));
        let unavailable = QdrantError::ResponseError {
            status: tonic::Status::unavailable("gone"),
        };
        assert!(is_transient(&unavailable));
        let broken = QdrantError::ResponseError {
            status: tonic::Status::unknown("transport error"),
        };
        assert!(is_transient(&broken));
        let bad = QdrantError::ResponseError {
            status: tonic::Status::invalid_argument("wrong vector size"),
        };
        assert!(!is_transient(&bad));
        assert_eq!(
            detail(&bad),
            "InvalidArgument: wrong vector size".to_owned()
        );
    }
}
