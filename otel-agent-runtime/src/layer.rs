//! The `tracing` layer that carries the metric instruments and keeps per-span
//! facts the guards need (a nested model call, a caught panic).
//!
//! Generated code finds the instruments through the dispatcher of the span it
//! created, not through a global: each telemetry pipeline (and each test's scoped
//! subscriber) has its own, and with no subscriber there is nothing to record.

use std::sync::Arc;

use opentelemetry::KeyValue;
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Span};
use tracing_core::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, Registry, SpanRef};
use tracing_subscriber::Layer;

use crate::instruments::Instruments;
use crate::recording::RecordingOptions;
use crate::semconv;

/// The `tracing` target of every span the attributes create.
pub(crate) const TARGET: &str = "otel_agent";

#[derive(Debug, Clone)]
pub(crate) struct InstrumentsLayer {
    pub instruments: Arc<Instruments>,
    pub options: Arc<RecordingOptions>,
}

impl InstrumentsLayer {
    /// The tenant `span` runs for, for metric attributes, only when the user
    /// allow-listed it: per-tenant series are few, ids of sessions or users are
    /// not. The tenant is read from the span's own context, so a call's metrics
    /// use the same value when it starts and when it ends, even when a cancelled
    /// future is dropped outside any context.
    pub(crate) fn tenant(&self, span: &Span) -> Option<opentelemetry::StringValue> {
        if !self.options.tenant_on_metrics {
            return None;
        }
        crate::context::tenant_of(span)
    }

    /// Adds [`tenant`](Self::tenant) to `attrs`, when there is one.
    pub(crate) fn extend_with_tenant(&self, span: &Span, attrs: &mut Vec<opentelemetry::KeyValue>) {
        if let Some(tenant) = self.tenant(span) {
            attrs.push(opentelemetry::KeyValue::new(crate::context::TENANT, tenant));
        }
    }
}

/// On a step span: tokens and cost of the model calls made under it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Rollup {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub priced: bool,
}

/// On an `#[llm_call]` span: this call asked for its content to be captured.
struct CaptureContent;

/// On an `#[llm_call]` span: an inference span nested in it talks to the
/// provider and carries the usage, so this one's usage goes under the roll-up
/// keys. When the nested span is an `#[llm_call]` too, it also records the
/// metrics and the roll-up onto steps (a library's span does neither yet).
struct Delegated {
    metrics: bool,
}

/// On a span whose call panicked: the panic's message.
struct Panicked(String);

fn is_step(metadata: &Metadata<'_>) -> bool {
    metadata.target() == TARGET
        && metadata
            .fields()
            .field(semconv::GEN_AI_OPERATION_NAME)
            .is_some()
        && metadata
            .fields()
            .field(semconv::GEN_AI_REQUEST_MODEL)
            .is_none()
}

/// Whether `span` is an `#[llm_call]` span.
pub(crate) fn is_llm_span(span: &Span) -> bool {
    span.metadata().is_some_and(is_llm_call)
}

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
        let ours = is_llm_call(attrs.metadata());
        if !ours && !is_foreign_inference(attrs) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        if let Some(outer) = ancestors(&span).find(|s| is_llm_call(s.metadata())) {
            let mut ext = outer.extensions_mut();
            let metrics = ours || ext.get_mut::<Delegated>().is_some_and(|d| d.metrics);
            ext.replace(Delegated { metrics });
        }
    }
}

/// Whether a span another library made is a call to a model: it says so in
/// `gen_ai.operation.name` when it starts.
fn is_foreign_inference(attrs: &Attributes<'_>) -> bool {
    struct Operation(bool);
    impl tracing::field::Visit for Operation {
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            if field.name() == semconv::GEN_AI_OPERATION_NAME {
                self.0 = crate::export_guard::is_inference_operation(value);
            }
        }
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == semconv::GEN_AI_OPERATION_NAME {
                let text = format!("{value:?}");
                self.0 = crate::export_guard::is_inference_operation(text.trim_matches('"'));
            }
        }
    }
    if attrs.metadata().target() == TARGET
        || attrs
            .metadata()
            .fields()
            .field(semconv::GEN_AI_OPERATION_NAME)
            .is_none()
    {
        return false;
    }
    let mut operation = Operation(false);
    attrs.record(&mut operation);
    operation.0
}

/// The spans enclosing `span`, innermost first. Unlike `span.scope().skip(1)`,
/// this does not look `span` itself up in the registry again: ~80 instructions
/// a lookup, in the two walks every model call makes.
fn ancestors<'a, R: LookupSpan<'a>>(span: &SpanRef<'a, R>) -> impl Iterator<Item = SpanRef<'a, R>> {
    std::iter::successors(span.parent(), SpanRef::parent)
}

/// Runs `f` with the layer (instruments and options) of the pipeline `span`
/// belongs to, if any.
pub(crate) fn with_layer(span: &Span, f: impl FnOnce(&InstrumentsLayer)) {
    span.with_subscriber(|(_, dispatch)| {
        if let Some(layer) = dispatch.downcast_ref::<InstrumentsLayer>() {
            f(layer);
        }
    });
}

/// Ends an `#[llm_call]`'s span with one registry lookup: sets `attrs` on it
/// and, unless a nested call owns this call's metrics, adds its tokens and
/// cost to every enclosing step. Returns whether this call owns its metrics.
/// When an inference span nested in this one carries the usage, this span
/// keeps it under the roll-up keys only.
pub(crate) fn finish_llm_span(span: &Span, attrs: Vec<KeyValue>, rollup: Option<Rollup>) -> bool {
    let mut attrs = Some(attrs);
    let owns = with_registry_span(span, |s| {
        let delegated = s.extensions().get::<Delegated>().map(|d| d.metrics);
        let mut mine = attrs.take().unwrap_or_default();
        if delegated.is_some() {
            crate::export_guard::move_usage_to_rollup(&mut mine);
        }
        let owns = delegated != Some(true);
        if let Some(add) = rollup.filter(|_| owns) {
            roll_up(&s, add);
        }
        attrs = crate::bridge::set_on(&s, mine);
        owns
    })
    .unwrap_or(true);
    if let Some(attrs) = attrs {
        crate::bridge::set_attributes(span, attrs);
    }
    owns
}

/// Adds a model call's tokens and cost to every step span enclosing `span`.
fn roll_up(s: &SpanRef<'_, Registry>, add: Rollup) {
    for step in ancestors(s).filter(|s| is_step(s.metadata())) {
        let mut ext = step.extensions_mut();
        match ext.get_mut::<Rollup>() {
            Some(r) => {
                r.input_tokens += add.input_tokens;
                r.output_tokens += add.output_tokens;
                r.cost_usd += add.cost_usd;
                r.priced |= add.priced;
            }
            None => ext.insert(add),
        }
    }
}

/// The tokens and cost rolled up onto a step span so far.
pub(crate) fn rollup_of(span: &Span) -> Option<Rollup> {
    with_registry_span(span, |s| s.extensions().get::<Rollup>().copied()).flatten()
}

/// Marks an `#[llm_call]` span as asking for its content to be captured.
pub(crate) fn request_capture(span: &Span) {
    with_registry_span(span, |s| s.extensions_mut().replace(CaptureContent));
}

/// Whether this call asked for its content to be captured.
pub(crate) fn capture_requested(span: &Span) -> bool {
    with_registry_span(span, |s| s.extensions().get::<CaptureContent>().is_some()).unwrap_or(false)
}

pub(crate) fn with_registry_span<T>(
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
    with_registry_span(span, |s| {
        s.extensions().get::<Delegated>().is_some_and(|d| d.metrics)
    })
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
