//! The `tracing` layer that carries the metric instruments and keeps per-span
//! facts the guards need (a nested model call, a caught panic).
//!
//! Generated code finds the instruments through the dispatcher of the span it
//! created, not through a global: each telemetry pipeline (and each test's scoped
//! subscriber) has its own, and with no subscriber there is nothing to record.

use std::sync::Arc;

use tracing::span::{Attributes, Id};
use tracing::{Metadata, Span};
use tracing_core::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::instruments::Instruments;
use crate::semconv;

/// The `tracing` target of every span the attributes create.
pub(crate) const TARGET: &str = "otel_agent";

#[derive(Debug, Clone)]
pub(crate) struct InstrumentsLayer {
    pub instruments: Arc<Instruments>,
}

/// On an `#[llm_call]` span: a nested `#[llm_call]` records the metrics instead.
struct DelegatedMetrics;

/// On a span whose call panicked: the panic's message.
struct Panicked(String);

fn is_llm_call(metadata: &Metadata<'_>) -> bool {
    metadata.target() == TARGET
        && metadata
            .fields()
            .field(semconv::GEN_AI_REQUEST_MODEL)
            .is_some()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for InstrumentsLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // A model call wrapped in another (a client that is itself instrumented)
        // must count its tokens and duration once: the innermost call owns them,
        // being the one that talks to the provider.
        if !is_llm_call(attrs.metadata()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        if let Some(outer) = span.scope().skip(1).find(|s| is_llm_call(s.metadata())) {
            outer.extensions_mut().insert(DelegatedMetrics);
        }
    }
}

/// Runs `f` with the instruments of the pipeline `span` belongs to, if any.
pub(crate) fn with_instruments(span: &Span, f: impl FnOnce(&Instruments)) {
    span.with_subscriber(|(_, dispatch)| {
        if let Some(layer) = dispatch.downcast_ref::<InstrumentsLayer>() {
            f(&layer.instruments);
        }
    });
}

fn with_registry_span<T>(
    span: &Span,
    f: impl FnOnce(tracing_subscriber::registry::SpanRef<'_, tracing_subscriber::Registry>) -> T,
) -> Option<T> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        registry.span(id).map(f)
    })
    .flatten()
}

/// Whether a nested model call owns this call's metrics.
pub(crate) fn metrics_delegated(span: &Span) -> bool {
    with_registry_span(span, |s| s.extensions().get::<DelegatedMetrics>().is_some())
        .unwrap_or(false)
}

/// Remembers that the call of `span` panicked, with the panic's message.
pub(crate) fn mark_panicked(span: &Span, message: String) {
    with_registry_span(span, |s| s.extensions_mut().replace(Panicked(message)));
}

/// The panic message, if the call of `span` panicked.
pub(crate) fn panic_message(span: &Span) -> Option<String> {
    with_registry_span(span, |s| {
        s.extensions().get::<Panicked>().map(|p| p.0.clone())
    })
    .flatten()
}

/// The text of a panic payload (`panic!` with a literal or a format string).
pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}
