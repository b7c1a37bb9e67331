//! Optional OpenTelemetry export of the tracing spans (feature `otlp`). With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set (e.g. `http://127.0.0.1:4318`), every span (the `request`
//! span with its `request_id`, and `retrieve`, `prompt`, `generate`, `check` below it) goes to
//! that collector over OTLP/HTTP (protobuf), as the OpenTelemetry environment variables say.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// Flushes the spans still buffered when dropped. Drop it outside the async runtime: the
/// exporter's HTTP client blocks.
pub struct Guard(SdkTracerProvider);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("rag: flushing OTLP spans: {e}");
        }
    }
}

/// The export layer, when an OTLP endpoint is configured; `None` (and a warning) otherwise.
pub fn layer<S>() -> Option<(OpenTelemetryLayer<S, Tracer>, Guard)>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("rag: OTLP export is off: {e}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("rag")
                .build(),
        )
        .build();
    let tracer = provider.tracer("rag");
    Some((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Guard(provider),
    ))
}
