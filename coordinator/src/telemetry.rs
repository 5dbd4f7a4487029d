//! Logs and traces of the `piface` binary: the `tracing` subscriber every role installs (logs
//! on stderr, `RUST_LOG`), and with `--otlp-endpoint` an OpenTelemetry layer that exports
//! Piface's spans over OTLP (HTTP/protobuf) to a collector, named after the process's role
//! (`service.name`: `piface`, `piface-coordinator`, `piface-agent`).
//!
//! Without the flag no OpenTelemetry layer, exporter or thread exists and the link sends no
//! trace context (`piface_link::trace` stays off): the cost is what logging costs already.
//!
//! What it is not: where spans are made (HTTP requests in `access.rs`, requests to agents in
//! `agent_link.rs`, the agent's handlers) nor how their context crosses the link
//! (`piface_link::trace`). Metrics are Prometheus's (`metrics.rs`), not OTLP's.

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The installed subscriber's exporter, to flush at exit.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter (bounded by the SDK's export
    /// timeout). Call it once the runtime has stopped, so the last requests' spans are in.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                tracing::warn!("exporting the last traces: {e}");
            }
        }
    }
}

/// Installs the global subscriber: logs on stderr filtered by `RUST_LOG` (default `info`), and
/// with `otlp_endpoint` Piface's spans exported as `service` (the role). Call it once, before
/// the runtime starts: the exporter's HTTP client (reqwest's blocking one) runs on threads of
/// its own and must not be made or dropped on the runtime.
pub fn init(otlp_endpoint: Option<&str>, service: &'static str) -> anyhow::Result<Telemetry> {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: journald and `docker logs` get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()));
    let Some(endpoint) = otlp_endpoint else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Telemetry { provider: None });
    };
    let endpoint = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .build()
        .with_context(|| format!("setting up the OTLP exporter for {endpoint}"))?;
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_attribute(KeyValue::new("host.name", piface_link::hostname()))
        .build();
    // The batch processor runs on a thread of its own; its delay and sizes follow the
    // standard `OTEL_BSP_*` variables (the tests shorten the delay).
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    // Only Piface's own spans (info and above, whatever `RUST_LOG` says for the logs): the
    // libraries' would be noise, and the exporter's HTTP client must not trace itself.
    let ours = Targets::new()
        .with_target("piface", LevelFilter::INFO)
        .with_target("piface_coordinator", LevelFilter::INFO)
        .with_target("piface_agent", LevelFilter::INFO)
        .with_target("piface_link", LevelFilter::INFO);
    let traces = tracing_opentelemetry::layer().with_tracer(provider.tracer("piface")).with_filter(ours);
    tracing_subscriber::registry().with(logs).with(traces).init();
    piface_link::trace::enable();
    tracing::info!(endpoint = %endpoint, service, "exporting traces over OTLP");
    Ok(Telemetry { provider: Some(provider) })
}

/// The URL spans are posted to: the collector's base URL with OTLP's `/v1/traces`, or the URL
/// as given when it names a path of its own.
pub fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(endpoint).with_context(|| format!("--otlp-endpoint {endpoint:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        anyhow::bail!(
            "--otlp-endpoint {endpoint:?}: an http:// or https:// URL of an OTLP collector, e.g. http://127.0.0.1:4318"
        );
    }
    Ok(if url.path() == "/" { format!("{}/v1/traces", endpoint.trim_end_matches('/')) } else { endpoint.to_string() })
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_added_to_a_base_url_only() {
        assert_eq!(traces_url("http://127.0.0.1:4318").unwrap(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/").unwrap(), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://otel.example/custom/traces").unwrap(), "https://otel.example/custom/traces");
        for bad in ["collector:4318", "ftp://collector", "", "http://"] {
            assert!(traces_url(bad).is_err(), "{bad:?}");
        }
    }
}
