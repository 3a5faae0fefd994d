//! The `tracing` layer that carries a pipeline's metric instruments and
//! recording options, and completes the GenAI spans of libraries (rig, genai,
//! the user's own `info_span!`): their metrics, and who counts a call nested in
//! another.
//!
//! Generated code finds the instruments through the dispatcher of the span it
//! created, not through a global: each telemetry pipeline (and each test's scoped
//! subscriber) has its own, and with no subscriber there is nothing to record.

use std::sync::Arc;

use tracing::span::{Attributes, Id};
use tracing::Span;
use tracing_core::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

use crate::attributes::is_attribute_span;
use crate::library_spans::{declares_operation, LibraryCall};
use crate::metrics::Instruments;
use crate::recording::RecordingOptions;
use crate::span_state::{ancestors, is_llm_call, mark_delegated, roll_up, UsageTotals};

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

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for InstrumentsLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let ours = is_llm_call(attrs.metadata());
        let library = !ours && self.options.library_spans && declares_operation(attrs.metadata());
        if !ours && !library {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut inference = ours;
        if library {
            let mut call = LibraryCall::start(attrs);
            inference = call.is_inference();
            crate::metrics::library_step_started(&self.instruments, &mut call);
            span.extensions_mut().insert(call);
        }
        if inference {
            delegate_enclosing_call(&span);
        }
    }
}

impl InstrumentsLayer {
    /// A library's span recorded fields: what it says about its call so far.
    /// Called by the bridge, which has looked the span up already.
    pub(crate) fn library_span_recorded<R: for<'a> LookupSpan<'a>>(
        &self,
        span: &SpanRef<'_, R>,
        values: &tracing::span::Record<'_>,
    ) {
        if !self.options.library_spans || !declares_operation(span.metadata()) {
            return;
        }
        let became_inference = {
            let mut ext = span.extensions_mut();
            let Some(call) = ext.get_mut::<LibraryCall>() else {
                return;
            };
            let was = call.is_inference();
            call.update(values);
            crate::metrics::library_step_started(&self.instruments, call);
            !was && call.is_inference()
        };
        // Said to be a model call only now (its operation recorded late).
        if became_inference {
            delegate_enclosing_call(span);
        }
    }

    /// A library's span closed: its call's metrics and roll-up. Called by the
    /// bridge, which has looked the span up already.
    ///
    /// Returns true when a call nested in it counted this call: its usage must
    /// then leave under the roll-up keys only, which the bridge marks.
    pub(crate) fn library_span_closed<R: for<'a> LookupSpan<'a>>(
        &self,
        span: &SpanRef<'_, R>,
    ) -> bool {
        if !declares_operation(span.metadata()) {
            return false;
        }
        let Some(call) = span.extensions_mut().remove::<LibraryCall>() else {
            return false;
        };
        crate::metrics::library_step_ended(&self.instruments, &call);
        if !call.is_inference() {
            return false;
        }
        if call.delegated {
            return true;
        }
        let cost = call.cost(&self.options);
        crate::metrics::library_call_ended(&self.instruments, &self.options, &call, cost);
        if let Some((input_tokens, output_tokens)) = call.tokens() {
            let add = UsageTotals {
                input_tokens,
                output_tokens,
                cost_usd: cost.unwrap_or(0.0),
                priced: cost.is_some(),
            };
            roll_up(span, add);
        }
        false
    }
}

/// A call to a model just started under `span`'s ancestors: the nearest
/// enclosing call, ours or a library's, leaves the counting to it.
fn delegate_enclosing_call<R: for<'a> LookupSpan<'a>>(span: &SpanRef<'_, R>) {
    for outer in ancestors(span) {
        if is_attribute_span(outer.metadata()) {
            if is_llm_call(outer.metadata()) {
                mark_delegated(&outer);
                return;
            }
            // A step: never a call.
            continue;
        }
        if !declares_operation(outer.metadata()) {
            continue;
        }
        let mut ext = outer.extensions_mut();
        // A library span that has not said its operation yet may still turn
        // out to be the call: it leaves the counting to this one, which
        // matters only if it does.
        if let Some(call) = ext
            .get_mut::<LibraryCall>()
            .filter(|c| c.is_inference() || c.operation_unknown())
        {
            call.delegated = true;
            return;
        }
    }
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
