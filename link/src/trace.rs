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
