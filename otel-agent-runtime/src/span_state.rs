//! Per-span state: what the runtime keeps on a `tracing` span between its
//! start and its end (the OpenTelemetry span it built, a nested call's
//! delegation, a caught panic, the first chunk's time, the tokens rolled up
//! onto a step), kept in the registry's span extensions so that no global map
//! is needed, and read with one registry lookup.

use std::time::Instant;

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context as OtelContext, KeyValue, StringValue};
use tracing::{Metadata, Span};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::attributes::{is_attribute_span, CALL_TARGET, STEP_TARGET};
use crate::semconv;

/// On a step span: tokens and cost of the model calls made under it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct UsageTotals {
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

/// Marks the model call of `span` as counted by an inference span nested in it.
pub(crate) fn mark_delegated<R: for<'a> LookupSpan<'a>>(span: &SpanRef<'_, R>) {
    span.extensions_mut().replace(Delegated);
}

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
    metadata.target() == STEP_TARGET
}

/// Whether `span` is one of the attributes' spans (a step or a call).
pub(crate) fn is_ours(span: &Span) -> bool {
    span.metadata().is_some_and(is_attribute_span)
}

/// Whether `span` is an `#[llm_call]` span.
pub(crate) fn is_llm_span(span: &Span) -> bool {
    span.metadata().is_some_and(is_llm_call)
}

/// Whether a span is an `#[llm_call]` span, as its target says.
pub(crate) fn is_llm_call(metadata: &Metadata<'_>) -> bool {
    metadata.target() == CALL_TARGET
}

/// The spans enclosing `span`, innermost first. Unlike `span.scope().skip(1)`,
/// this does not look `span` itself up in the registry again: ~80 instructions
/// a lookup, in the two walks every model call makes.
pub(crate) fn ancestors<'a, R: LookupSpan<'a>>(
    span: &SpanRef<'a, R>,
) -> impl Iterator<Item = SpanRef<'a, R>> {
    std::iter::successors(span.parent(), SpanRef::parent)
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
    rollup: Option<UsageTotals>,
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
        attrs = set_on(&s, mine);
        owns
    })
    .unwrap_or(true);
    if let Some(attrs) = attrs {
        set_attributes(span, attrs);
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
pub(crate) fn roll_up<R: for<'a> LookupSpan<'a>>(s: &SpanRef<'_, R>, add: UsageTotals) {
    for step in ancestors(s).filter(|s| is_step(s.metadata())) {
        add_to(&mut step.extensions_mut(), add);
    }
}

fn add_to(ext: &mut tracing_subscriber::registry::ExtensionsMut<'_>, add: UsageTotals) {
    match ext.get_mut::<UsageTotals>() {
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
pub(crate) fn usage_totals_of(span: &Span) -> Option<UsageTotals> {
    with_registry_span(span, |s| s.extensions().get::<UsageTotals>().copied()).flatten()
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

/// On an attribute's span: its OpenTelemetry context, holding the SDK span.
pub(crate) struct OwnSpan {
    pub(crate) cx: OtelContext,
}

/// The OpenTelemetry context of `span`, when this runtime built its span.
pub(crate) fn own_context<S>(span: &SpanRef<'_, S>) -> Option<OtelContext>
where
    S: for<'a> LookupSpan<'a>,
{
    span.extensions().get::<OwnSpan>().map(|own| own.cx.clone())
}

/// Hands `value` to `own` with the context of `span` when this runtime built
/// its OpenTelemetry span, else to `other` (the span is `tracing-opentelemetry`'s,
/// or there is no registry to ask).
pub(crate) fn own_or_else<T>(
    span: &tracing::Span,
    value: T,
    own: impl FnOnce(&OtelContext, T),
    other: impl FnOnce(T),
) {
    let mut value = Some(value);
    with_registry_span(span, |s| {
        value = value.take().and_then(|value| on_own(&s, value, own));
    });
    if let Some(value) = value {
        other(value);
    }
}

/// Hands `value` to `own` with the context of the registry span `span` when
/// this runtime built its OpenTelemetry span; gives it back otherwise.
fn on_own<T>(
    span: &SpanRef<'_, tracing_subscriber::Registry>,
    value: T,
    own: impl FnOnce(&OtelContext, T),
) -> Option<T> {
    match span.extensions().get::<OwnSpan>() {
        Some(own_span) => {
            own(&own_span.cx, value);
            None
        }
        None => Some(value),
    }
}

/// Sets `attributes` on the registry span `span` when this runtime built its
/// OpenTelemetry span; gives them back otherwise.
pub(crate) fn set_on(
    span: &SpanRef<'_, tracing_subscriber::Registry>,
    attributes: Vec<KeyValue>,
) -> Option<Vec<KeyValue>> {
    on_own(span, attributes, |cx, attributes| {
        if !attributes.is_empty() {
            cx.span().set_attributes(attributes);
        }
    })
}

/// Sets several attributes on an attribute's span with one lookup and one
/// lock; on any other span, one at a time through `tracing-opentelemetry`.
pub(crate) fn set_attributes(span: &tracing::Span, attributes: Vec<KeyValue>) {
    if attributes.is_empty() {
        return;
    }
    own_or_else(
        span,
        attributes,
        |cx, attributes| cx.span().set_attributes(attributes),
        |attributes| {
            for kv in attributes {
                tracing_opentelemetry::OpenTelemetrySpanExt::set_attribute(span, kv.key, kv.value);
            }
        },
    );
}
