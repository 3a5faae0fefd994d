//! The `tracing` layer that carries the metric instruments and keeps per-span
//! facts the guards need (a nested model call, a caught panic).
//!
//! Generated code finds the instruments through the dispatcher of the span it
//! created, not through a global: each telemetry pipeline (and each test's scoped
//! subscriber) has its own, and with no subscriber there is nothing to record.

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::{KeyValue, StringValue};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Span};
use tracing_core::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

use crate::attributes::TARGET;
use crate::instruments::Instruments;
use crate::library_spans::{declares_operation, LibraryCall};
use crate::recording::RecordingOptions;
use crate::semconv;


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

/// On an `#[llm_call]` span: an inference span nested in it (another
/// `#[llm_call]`, or a library's) talks to the provider and counts the call:
/// its usage, metrics and roll-up. This one keeps the usage under the roll-up
/// keys only.
struct Delegated;

/// On a span whose call panicked: the panic's message.
struct Panicked(String);

/// On an `#[llm_call]` span, in the event capture modes: the content recorded
/// so far, sent as one details event when the call ends.
struct PendingDetails(Vec<KeyValue>);

/// Keeps `content` for the call's one details event. Returns `false` when
/// `span` is not an `#[llm_call]` span.
pub(crate) fn stash_details(span: &Span, content: KeyValue) -> bool {
    with_registry_span(span, |s| {
        if !is_llm_call(s.metadata()) {
            return false;
        }
        let mut ext = s.extensions_mut();
        match ext.get_mut::<PendingDetails>() {
            Some(pending) => pending.0.push(content),
            None => ext.insert(PendingDetails(vec![content])),
        }
        true
    })
    .unwrap_or(false)
}

/// The content kept for the call's details event, if any.
pub(crate) fn take_details(span: &Span) -> Option<Vec<KeyValue>> {
    with_registry_span(span, |s| {
        s.extensions_mut().remove::<PendingDetails>().map(|p| p.0)
    })
    .flatten()
}

/// The server a model call talks to (`server.address`, `server.port`): on its
/// span, and on its duration and time-to-first-chunk metrics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Server {
    pub address: StringValue,
    pub port: i64,
}

/// Sets `server.address` / `server.port` on `span` and, on an `#[llm_call]`
/// span, keeps them for the call's metrics.
pub(crate) fn note_server(span: &Span, address: &str, port: u16) {
    use crate::SpanExt as _;
    let server = Server {
        address: StringValue::from(address.to_owned()),
        port: i64::from(port),
    };
    span.set_otel_attribute(semconv::SERVER_ADDRESS, server.address.clone());
    span.set_otel_attribute(semconv::SERVER_PORT, server.port);
    with_registry_span(span, |s| {
        if is_llm_call(s.metadata()) {
            s.extensions_mut().replace(server);
        }
    });
}

/// On a span: how many HTTP attempts its call has made so far.
#[cfg(feature = "async-openai")]
struct AttemptCount(u32);

/// The number of attempts `span`'s call made before this one (0 for the first).
#[cfg(feature = "async-openai")]
pub(crate) fn next_attempt(span: &Span) -> u32 {
    with_registry_span(span, |s| {
        let mut ext = s.extensions_mut();
        match ext.get_mut::<AttemptCount>() {
            Some(count) => {
                count.0 += 1;
                count.0
            }
            None => {
                ext.insert(AttemptCount(0));
                0
            }
        }
    })
    .unwrap_or(0)
}

/// What the end of a model call's span found on it.
pub(crate) struct Finished {
    /// Whether this call owns its metrics (no nested inference span does).
    pub owns: bool,
    /// The time to first chunk, in seconds, when the call streamed.
    pub first_chunk: Option<f64>,
    /// Its server, when the client said.
    pub server: Option<Server>,
}

/// On an `#[llm_call]` span: when the first chunk of its stream arrived. The
/// call's end turns it into the span attribute and the histogram point, so a
/// stream read through `LlmStream`, `ChatStreamSummary` or a loop of the user's
/// own is measured by one piece of code.
struct FirstChunk(Instant);

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

/// Whether `span` is one of the attributes' spans (a step or a call).
pub(crate) fn is_ours(span: &Span) -> bool {
    span.metadata().is_some_and(|m| m.target() == TARGET)
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
            call.count_in_flight(self);
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
            call.count_in_flight(self);
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
        call.record_step(self);
        if !call.is_inference() {
            return false;
        }
        if call.delegated {
            return true;
        }
        let cost = call.cost(self);
        call.record_metrics(self, cost);
        if let Some((input_tokens, output_tokens)) = call.tokens() {
            let add = Rollup {
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
        if outer.metadata().target() == TARGET {
            if is_llm_call(outer.metadata()) {
                outer.extensions_mut().replace(Delegated);
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
///
/// Also returns the time to first chunk, in seconds from `start`, when the
/// call streamed (see [`note_first_chunk`]); it is set on the span here.
pub(crate) fn finish_llm_span(
    span: &Span,
    attrs: Vec<KeyValue>,
    rollup: Option<Rollup>,
    start: Instant,
) -> Finished {
    let mut attrs = Some(attrs);
    let mut first_chunk = None;
    let mut server = None;
    let owns = with_registry_span(span, |s| {
        let (owns, first) = {
            let ext = s.extensions();
            server = ext.get::<Server>().cloned();
            (
                ext.get::<Delegated>().is_none(),
                ext.get::<FirstChunk>().map(|f| f.0),
            )
        };
        let mut mine = attrs.take().unwrap_or_default();
        if let Some(at) = first {
            let secs = at.saturating_duration_since(start).as_secs_f64();
            mine.push(KeyValue::new(
                semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                secs,
            ));
            first_chunk = Some(secs);
        }
        if !owns {
            crate::export_guard::move_usage_to_rollup(&mut mine);
        }
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
    Finished {
        owns,
        first_chunk,
        server,
    }
}

/// Notes, once per call, that the first chunk of `span`'s stream arrived at
/// `at`. Returns whether `span` is an `#[llm_call]` span (only those are
/// noted: anything else has no call end to record it).
pub(crate) fn note_first_chunk(span: &Span, at: Instant) -> bool {
    with_registry_span(span, |s| {
        if !is_llm_call(s.metadata()) {
            return false;
        }
        let mut ext = s.extensions_mut();
        if ext.get_mut::<FirstChunk>().is_none() {
            ext.insert(FirstChunk(at));
        }
        true
    })
    .unwrap_or(false)
}

/// Adds a model call's tokens and cost to every step span enclosing `span`.
fn roll_up<R: for<'a> LookupSpan<'a>>(s: &SpanRef<'_, R>, add: Rollup) {
    for step in ancestors(s).filter(|s| is_step(s.metadata())) {
        add_to(&mut step.extensions_mut(), add);
    }
}

fn add_to(ext: &mut tracing_subscriber::registry::ExtensionsMut<'_>, add: Rollup) {
    match ext.get_mut::<Rollup>() {
        Some(r) => {
            r.input_tokens = r.input_tokens.saturating_add(add.input_tokens);
            r.output_tokens = r.output_tokens.saturating_add(add.output_tokens);
            r.cost_usd += add.cost_usd;
            r.priced |= add.priced;
        }
        None => ext.insert(add),
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
