//! The admin HTTP listener: `/metrics` (Prometheus text format), `/healthz` (the process is
//! alive) and `/readyz` (models and store are loaded).

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Latency buckets in seconds: from a cached search (~1 ms) to a long answer on a CPU (~1 min).
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Histograms that count things, not seconds (by name suffix), and their buckets.
const SIZE_SUFFIX: &str = "_batch_size";
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("metrics recorder: {0}")]
    Recorder(String),
    #[error("admin listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Installs the process-wide Prometheus recorder: every `metrics` macro in the process records
/// into it from now on. Call once, before serving.
pub fn install_recorder() -> Result<PrometheusHandle, AdminError> {
    PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix(SIZE_SUFFIX.into()), SIZE_BUCKETS))
        .map_err(|e| AdminError::Recorder(e.to_string()))?
        .install_recorder()
        .map_err(|e| AdminError::Recorder(e.to_string()))
}

#[derive(Clone)]
struct Admin {
    metrics: PrometheusHandle,
    ready: watch::Receiver<bool>,
}

/// Serves the admin routes on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    ready: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AdminError> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "alive\n" }))
        .route("/readyz", get(readiness))
        .with_state(Admin { metrics, ready });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn render_metrics(State(admin): State<Admin>) -> String {
    admin.metrics.run_upkeep();
    admin.metrics.render()
}

async fn readiness(State(admin): State<Admin>) -> (StatusCode, &'static str) {
    if *admin.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "loading models and store\n",
        )
    }
}
