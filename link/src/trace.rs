//! W3C trace context across the cluster link. The coordinator puts the context of the span that
//! sends a request into the request's [`TraceContext`] ([`current`]); the agent makes it the
//! remote parent of the span it handles the request in ([`request_span`]), so one trace runs
//! from a browser's request through the coordinator to pi's start, a file or git tool or a
//! speech job on the agent. The same functions read and write `traceparent`/`tracestate` HTTP
//! headers (they are the same two strings).
//!
//! What it is not: the exporter. The `piface` binary sets up OTLP (the coordinator's
//! `telemetry.rs`) and then calls [`enable`]; until then everything here does nothing beyond
//! one atomic load, so a process without `--otlp-endpoint` creates no extra span and sends no
//! context.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use piface_shared::protocol::{ToAgent, TraceContext};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A `traceparent` is 55 characters in version 00; later versions may append fields, so some
/// room, but a longer value is not a trace context.
const MAX_TRACEPARENT: usize = 256;
/// The W3C limit of a `tracestate` value a vendor must propagate (32 entries).
const MAX_TRACESTATE: usize = 512;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns propagation on: spans are exported, so contexts are worth sending and reading.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The trace context of the current span, to send with a request; `None` while propagation is
/// off or when the current span belongs to no trace.
pub fn current() -> Option<TraceContext> {
    if !enabled() {
        return None;
    }
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    Some(TraceContext {
        traceparent: carrier.remove("traceparent")?,
        tracestate: carrier.remove("tracestate").unwrap_or_default(),
    })
}

/// Makes the trace `trace` names the parent of `span`, which must not have been entered yet.
/// A malformed or oversized value is ignored (`span` stays the root of a trace of its own):
/// it comes from the network.
pub fn set_remote_parent(span: &Span, trace: &TraceContext) {
    if !enabled() || trace.traceparent.len() > MAX_TRACEPARENT || trace.tracestate.len() > MAX_TRACESTATE {
        return;
    }
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert("traceparent".to_string(), trace.traceparent.clone());
    if !trace.tracestate.is_empty() {
        carrier.insert("tracestate".to_string(), trace.tracestate.clone());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed, and then there is nothing to join.
        let _ = span.set_parent(cx);
    }
}

/// The span an agent handles a request in (`agent Spawn`, `agent Tool`, …), a child of the
/// coordinator's span that sent it. Disabled (`Span::none()`) while propagation is off and
/// for messages that are not requests (pi input, upload chunks, terminal traffic): those are
/// per event, and a span each would flood the trace.
pub fn request_span(msg: &ToAgent) -> Span {
    if !enabled() || !msg.is_request() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("agent {}", msg.name()),
        otel.kind = "server",
        kind = msg.name(),
    );
    if let Some(trace) = msg.trace() {
        set_remote_parent(&span, trace);
    }
    span
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The trace id of `span`'s OpenTelemetry context, hex.
    fn trace_id(span: &Span) -> String {
        span.context().span().span_context().trace_id().to_string()
    }

    #[test]
    fn a_context_sent_becomes_the_parent_received_and_a_bad_one_is_ignored() {
        // Spans get ids without being exported anywhere.
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            enable();
            let sender = tracing::info_span!("sender");
            let sent = sender.in_scope(current).expect("a context inside a span");
            assert!(sent.traceparent.starts_with(&format!("00-{}-", trace_id(&sender))), "{sent:?}");
            assert_eq!(sent.traceparent.len(), 55);

            let request = ToAgent::Kill { req: 1, session: "s".into(), trace: Some(sent.clone()) };
            let handler = request_span(&request);
            assert_eq!(trace_id(&handler), trace_id(&sender), "the request's span joins the sender's trace");
            let input = ToAgent::Input { session: "s".into(), line: bytes::Bytes::new() };
            assert!(request_span(&input).is_none(), "no span per pi input");

            for bad in [
                TraceContext { traceparent: "00-nonsense".into(), tracestate: String::new() },
                TraceContext { traceparent: format!("{}{}", sent.traceparent, "0".repeat(300)), ..sent.clone() },
                TraceContext { tracestate: format!("a={}", "b".repeat(600)), ..sent.clone() },
            ] {
                let span = tracing::info_span!("receiver");
                set_remote_parent(&span, &bad);
                assert_ne!(trace_id(&span), trace_id(&sender), "{bad:?} was taken as a parent");
            }
        });
    }
}
