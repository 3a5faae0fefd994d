//! The bridge from the attributes' `tracing` spans to OpenTelemetry spans.
//!
//! `tracing-opentelemetry` turns any `tracing` span into an OpenTelemetry span,
//! and that generality is most of what an annotated call costs (see
//! `docs/performance.md`): every field becomes an owned `String` on a span
//! builder, each `record` runs a visitor and takes a lock, location and thread
//! attributes are added, busy/idle time is tracked on every enter and exit.
//! The attributes' spans are known in advance, so this layer builds their SDK
//! span itself, at once, from the fields' static names, and hands every other
//! span to `tracing-opentelemetry` unchanged.
//!
//! The two stay one tree: an attribute's span is started under the current
//! OpenTelemetry context (which `tracing-opentelemetry` keeps current for the
//! user's entered spans) and makes its own context current while entered, so
//! spans, events and OpenTelemetry-native code inside an annotated call nest
//! under it whichever layer made them. [`SpanExt`] reaches either kind of span.

use std::borrow::Cow;
use std::cell::RefCell;
use std::marker::PhantomData;

use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context as OtelContext, ContextGuard, Key, KeyValue, Value};
use opentelemetry_sdk::trace::SdkTracer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

use crate::attributes::is_attribute_span;
use crate::layer::InstrumentsLayer;
use crate::span_start::SpanStart;
use crate::span_state::{own_context, OwnSpan};

const CODE_FILE_PATH: Key =
    Key::from_static_str(opentelemetry_semantic_conventions::attribute::CODE_FILE_PATH);
// Not in the conventions crate (it marks the module attribute development-only
// and leaves it out); the name tracing-opentelemetry uses.
const CODE_MODULE_NAME: Key = Key::from_static_str("code.module.name");
const CODE_LINE_NUMBER: Key =
    Key::from_static_str(opentelemetry_semantic_conventions::attribute::CODE_LINE_NUMBER);

thread_local! {
    /// The contexts attached by entered attribute spans, innermost last.
    static ATTACHED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// Builds the attributes' spans; forwards every other span to `inner`
/// (`tracing-opentelemetry`).
pub(crate) struct Bridge<L, S> {
    inner: L,
    tracer: SdkTracer,
    /// False: `tracing-opentelemetry` builds the attributes' spans too.
    own_spans: bool,
    /// The subscriber this layer is part of, to ask `tracing-opentelemetry`
    /// for the context of a span it built (an explicit parent).
    dispatch: std::sync::OnceLock<tracing::dispatcher::WeakDispatch>,
    /// Completes a library's GenAI spans when they record and close: the
    /// bridge has looked every span up by then, so no second lookup per span.
    instruments: InstrumentsLayer,
    _subscriber: PhantomData<fn(S)>,
}

impl<L, S> Bridge<L, S> {
    pub(crate) fn new(
        inner: L,
        tracer: SdkTracer,
        own_spans: bool,
        instruments: InstrumentsLayer,
    ) -> Self {
        Self {
            inner,
            tracer,
            own_spans,
            dispatch: std::sync::OnceLock::new(),
            instruments,
            _subscriber: PhantomData,
        }
    }

    fn is_own(&self, metadata: &Metadata<'_>) -> bool {
        self.own_spans && is_attribute_span(metadata)
    }

    /// Whether this layer built the span's SDK span: an attribute's span, or
    /// another span whose explicit parent is one (see `on_new_span`).
    fn builds<R: for<'a> LookupSpan<'a>>(&self, span: &SpanRef<'_, R>) -> bool {
        self.is_own(span.metadata())
            || (self.own_spans && span.extensions().get::<OwnSpan>().is_some())
    }

    /// The OpenTelemetry context of the span `parent`, whichever layer built it.
    fn context_of<R: for<'a> LookupSpan<'a>>(&self, parent: &SpanRef<'_, R>) -> Option<OtelContext>
    where
        Self: 'static,
    {
        own_context(parent).or_else(|| {
            let dispatch = self.subscriber()?;
            tracing_opentelemetry::get_otel_context(&parent.id(), &dispatch)
        })
    }

    /// The subscriber this layer is part of. Told at registration, except
    /// behind `Option<Layer>` (how `Telemetry::layer` hands it out), which does
    /// not pass registration on; then found as the thread's current
    /// subscriber, when that is the one holding this very layer.
    fn subscriber(&self) -> Option<tracing::Dispatch>
    where
        Self: 'static,
    {
        if let Some(dispatch) = self.dispatch.get().and_then(|d| d.upgrade()) {
            return Some(dispatch);
        }
        let current = tracing::dispatcher::get_default(|d| {
            d.downcast_ref::<Self>()
                .is_some_and(|me| std::ptr::eq(me, self))
                .then(|| d.clone())
        })?;
        let _ = self.dispatch.set(current.downgrade());
        Some(current)
    }
}

/// What the visitor collected from a span's or an event's fields.
#[derive(Default)]
struct Fields {
    /// Reading an event's fields: `message` names the span event, and the
    /// `otel.*` fields, which configure a span, are plain attributes.
    event: bool,
    message: Option<String>,
    name: Option<Cow<'static, str>>,
    kind: Option<SpanKind>,
    status_code: Option<bool>,
    status_description: Option<String>,
    attributes: Vec<KeyValue>,
    /// For an attribute's span: what its call site is, whose values its
    /// string fields take instead of copies.
    start: Option<SpanStart>,
}

impl Fields {
    fn of_span(capacity: usize) -> Self {
        Self {
            attributes: Vec::with_capacity(capacity),
            ..Self::default()
        }
    }

    fn of_event(capacity: usize) -> Self {
        Self {
            event: true,
            ..Self::of_span(capacity)
        }
    }

    fn push(&mut self, field: &Field, value: impl Into<Value>) {
        self.attributes
            .push(KeyValue::new(Key::from_static_str(field.name()), value));
    }

    fn status(&self) -> Option<Status> {
        match self.status_code {
            Some(true) => Some(Status::error(
                self.status_description.clone().unwrap_or_default(),
            )),
            Some(false) => Some(Status::Ok),
            // A description comes with an error: recorded after the code, it
            // completes the status the code set.
            None => self.status_description.clone().map(Status::error),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match (self.event, field.name()) {
            (true, "message") => self.message = Some(value.to_owned()),
            (false, "otel.name") => {
                let known = self.start.as_ref().and_then(|s| s.static_name(value));
                self.name = Some(known.map_or_else(|| Cow::Owned(value.to_owned()), Cow::Borrowed));
            }
            (false, "otel.kind") => self.kind = span_kind(value),
            (false, "otel.status_code") => {
                self.status_code = if value.eq_ignore_ascii_case("error") {
                    Some(true)
                } else if value.eq_ignore_ascii_case("ok") {
                    Some(false)
                } else {
                    None
                };
            }
            (false, "otel.status_description") => {
                self.status_description = Some(value.to_owned());
            }
            _ => {
                let value = self
                    .start
                    .as_ref()
                    .and_then(|s| s.value_of(field.name(), value))
                    .unwrap_or_else(|| Value::from(value.to_owned()));
                self.push(field, value);
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // An integer attribute, as tracing-opentelemetry keeps it when it fits.
        let value =
            i64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.push(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

fn span_kind(value: &str) -> Option<SpanKind> {
    [
        ("client", SpanKind::Client),
        ("server", SpanKind::Server),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ]
    .into_iter()
    .find(|(name, _)| value.eq_ignore_ascii_case(name))
    .map(|(_, kind)| kind)
}

impl<S, L> Layer<S> for Bridge<L, S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> tracing_core::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let ours = self.is_own(attrs.metadata());
        // `tracing-opentelemetry` cannot see the SDK span of a parent this
        // layer built, and would start a span created with `parent:` one of
        // them (rig's `chat` spans under an `#[agent_step]`) as a new trace:
        // this layer builds such a span itself, in its place.
        let adopted = !ours
            && self.own_spans
            && !crate::event_filter::is_export_machinery(attrs.metadata().target())
            && attrs
                .parent()
                .and_then(|p| ctx.span(p))
                .is_some_and(|p| p.extensions().get::<OwnSpan>().is_some());
        if !ours && !adopted {
            return self.inner.on_new_span(attrs, id, ctx);
        }
        let Some(span) = ctx.span(id) else { return };
        let explicit = attrs.parent().and_then(|p| ctx.span(p));
        let parent = if attrs.is_root() {
            OtelContext::new()
        } else if let Some(parent) = &explicit {
            // Where its author put it, whichever layer built the parent.
            self.context_of(parent).unwrap_or_else(OtelContext::current)
        } else {
            // tracing-opentelemetry makes an entered span's context current, and
            // so does this layer: the current context is the enclosing span's.
            OtelContext::current()
        };
        let meta = attrs.metadata();
        let mut fields = Fields::of_span(attrs.fields().len() + 3);
        if ours {
            fields.start = SpanStart::take();
        }
        // Where the annotated function is, as tracing-opentelemetry says it for
        // every span (thread and busy/idle attributes are left out: they cost an
        // allocation and two clock reads per span, and say little about a call).
        if let Some(file) = meta.file() {
            fields.attributes.push(KeyValue::new(CODE_FILE_PATH, file));
        }
        if let Some(module) = meta.module_path() {
            fields
                .attributes
                .push(KeyValue::new(CODE_MODULE_NAME, module));
        }
        if let Some(line) = meta.line() {
            fields
                .attributes
                .push(KeyValue::new(CODE_LINE_NUMBER, i64::from(line)));
        }
        attrs.record(&mut fields);
        let status = fields.status();
        // The span's name is the call site's (static, no copy) unless the
        // `otel.name` field gives one (a model chosen at run time).
        let name = fields.name.unwrap_or(Cow::Borrowed(meta.name()));
        let builder = SpanBuilder::from_name(name)
            .with_kind(fields.kind.unwrap_or(SpanKind::Internal))
            .with_attributes(fields.attributes);
        let mut otel_span = self.tracer.build_with_context(builder, &parent);
        if let Some(status) = status {
            opentelemetry::trace::Span::set_status(&mut otel_span, status);
        }
        span.extensions_mut().insert(OwnSpan {
            cx: parent.with_span(otel_span),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if !is_attribute_span(span.metadata()) {
            self.instruments.library_span_recorded(&span, values);
        }
        if !self.builds(&span) {
            return self.inner.on_record(id, values, ctx.clone());
        }
        let Some(cx) = own_context(&span) else { return };
        let mut fields = Fields::of_span(values.len());
        values.record(&mut fields);
        let otel_span = cx.span();
        if let Some(name) = fields.name.take() {
            otel_span.update_name(name);
        }
        if let Some(status) = fields.status() {
            otel_span.set_status(status);
        }
        if !fields.attributes.is_empty() {
            otel_span.set_attributes(fields.attributes);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        // Links must be given when an SDK span starts: a later `follows_from`
        // on an attribute's span is not recorded.
        let own = ctx.span(id).is_some_and(|span| self.builds(&span));
        if !own {
            self.inner.on_follows_from(id, follows, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Every event goes to `inner`, whose per-layer filter decides whether
        // it becomes a span event, and whose `OwnSpanEvents` puts it on an
        // attribute's span: a filter that saw an event it is not then handed
        // would skip the next span it is asked about.
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if !self.builds(&span) {
            return self.inner.on_enter(id, ctx.clone());
        }
        if let Some(cx) = own_context(&span) {
            let guard = cx.attach();
            ATTACHED.with(|stack| stack.borrow_mut().push((id.clone(), guard)));
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        // An attribute's span entered on this thread is on the stack, almost
        // always on top: no registry lookup needed to tell it from others.
        let guard = ATTACHED.with(|stack| {
            let mut stack = stack.borrow_mut();
            let at = stack.iter().rposition(|(entered, _)| entered == id)?;
            Some(stack.remove(at))
        });
        match guard {
            // Detached outside the borrow of the stack.
            Some(guard) => drop(guard),
            None => self.inner.on_exit(id, ctx),
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if !is_attribute_span(span.metadata()) && self.instruments.library_span_closed(&span) {
            // A call nested in this library call counted it: the export guard
            // keeps this span's usage under the roll-up keys only.
            let marker = KeyValue::new(crate::attributes::DELEGATED, true);
            if let Some(cx) = self.context_of(&span) {
                cx.span().set_attribute(marker);
            }
        }
        if !self.builds(&span) {
            return self.inner.on_close(id, ctx.clone());
        }
        let own = span.extensions_mut().remove::<OwnSpan>();
        if let Some(own) = own {
            own.cx.span().end();
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // SAFETY: forwards to `inner`, whose pointers are valid as long as `self`.
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.downcast_raw(id) }
    }
}

/// Adds the events inside an attribute's span to its SDK span; forwards every
/// other event, and everything else, to `inner` (`tracing-opentelemetry`).
/// It sits under the span-event filter, with `inner`, so that the one filter
/// decides for both kinds of span.
pub(crate) struct OwnSpanEvents<L> {
    inner: L,
    /// False: `tracing-opentelemetry` builds the attributes' spans too.
    own_spans: bool,
}

impl<L> OwnSpanEvents<L> {
    pub(crate) fn new(inner: L, own_spans: bool) -> Self {
        Self { inner, own_spans }
    }
}

impl<S, L> Layer<S> for OwnSpanEvents<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> tracing_core::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(id, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let span = match event.parent() {
            Some(parent) => ctx.span(parent),
            None if event.is_contextual() => ctx.lookup_current(),
            None => None,
        };
        // A span this runtime built holds its SDK span; any other goes on.
        let Some(cx) = span
            .filter(|_| self.own_spans)
            .and_then(|s| own_context(&s))
        else {
            return self.inner.on_event(event, ctx);
        };
        let meta = event.metadata();
        let mut fields = Fields::of_event(meta.fields().len() + 2);
        fields
            .attributes
            .push(KeyValue::new("level", meta.level().as_str()));
        fields
            .attributes
            .push(KeyValue::new("target", meta.target().to_owned()));
        event.record(&mut fields);
        let otel_span = cx.span();
        if *meta.level() == tracing::Level::ERROR {
            otel_span.set_status(Status::error(""));
        }
        let name = fields.message.unwrap_or_else(|| meta.name().to_owned());
        otel_span.add_event(name, fields.attributes);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // SAFETY: forwards to `inner`, whose pointers are valid as long as `self`.
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.downcast_raw(id) }
    }
}
