//! [`SpanExt`]: a `tracing` span's OpenTelemetry span, whichever layer built it.

use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::{Context as OtelContext, Key, KeyValue, Value};

use crate::span_state::{own_context, own_or_else, set_attributes, with_registry_span};

/// Sets attributes, adds events and reads the context of a `tracing` span's
/// OpenTelemetry span, whichever layer made it: an attribute's span (built by
/// this runtime) or any other span (built by `tracing-opentelemetry`).
///
/// Inside an `#[agent_step]` or `#[llm_call]`, use it (or
/// [`opentelemetry::Context::current`]) rather than
/// `tracing_opentelemetry::OpenTelemetrySpanExt`, which sees only the spans
/// `tracing-opentelemetry` built.
pub trait SpanExt {
    /// The span's OpenTelemetry context: its trace, span id and baggage, to
    /// propagate or to attach.
    fn otel_context(&self) -> OtelContext;

    /// Sets an attribute on the OpenTelemetry span.
    fn set_otel_attribute(&self, key: impl Into<Key>, value: impl Into<Value>);

    /// Adds an event to the OpenTelemetry span.
    fn add_otel_event(
        &self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        attributes: Vec<KeyValue>,
    );

    /// Sets the OpenTelemetry span's status.
    fn set_otel_status(&self, status: Status);
}

impl SpanExt for tracing::Span {
    fn otel_context(&self) -> OtelContext {
        with_registry_span(self, |s| own_context(&s))
            .flatten()
            .unwrap_or_else(|| tracing_opentelemetry::OpenTelemetrySpanExt::context(self))
    }

    fn set_otel_attribute(&self, key: impl Into<Key>, value: impl Into<Value>) {
        set_attributes(self, vec![KeyValue::new(key, value)]);
    }

    fn add_otel_event(
        &self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        attributes: Vec<KeyValue>,
    ) {
        own_or_else(
            self,
            (name.into(), attributes),
            |cx, (name, attributes)| cx.span().add_event(name, attributes),
            |(name, attributes)| {
                tracing_opentelemetry::OpenTelemetrySpanExt::add_event(self, name, attributes);
            },
        );
    }

    fn set_otel_status(&self, status: Status) {
        own_or_else(
            self,
            status,
            |cx, status| cx.span().set_status(status),
            |status| tracing_opentelemetry::OpenTelemetrySpanExt::set_status(self, status),
        );
    }
}
