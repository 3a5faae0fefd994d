//! Carrying a trace (and its session, user, tenant and tags) across a queue, a
//! bus, a pipe or a network call, in the W3C `traceparent`, `tracestate` and
//! `baggage` formats that every OpenTelemetry SDK reads.
//!
//! The sender puts the current context into the message; the receiver runs its
//! handling in the context it takes out, so that its spans are children of the
//! sender's span, in the same trace, with the same session:
//!
//! ```
//! use otel_agent_runtime::{agent_step, context, propagation::TraceCarrier};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Task {
//!     text: String,
//!     trace: TraceCarrier, // {"traceparent":"00-…","baggage":"session.id=…"}
//! }
//!
//! // The sender, inside its own step:
//! let task = context::scope().session_id("sess-1").in_scope(|| Task {
//!     text: "draft the intro".into(),
//!     trace: TraceCarrier::current(),
//! });
//!
//! // The receiver, in another task or process:
//! #[agent_step(agent = "writer")]
//! fn write(text: &str) -> String { text.to_uppercase() }
//!
//! let draft = task.trace.in_scope(|| write(&task.text));
//! # assert_eq!(draft, "DRAFT THE INTRO");
//! ```
//!
//! In async code, [`TraceCarrier::instrument`] wraps the handling future.
//! With header maps instead of a field in the message (HTTP, Kafka or NATS
//! headers, gRPC metadata), use [`inject`] and [`extract`].
//!
//! These use the W3C propagators directly, so they work whether or not a
//! global propagator is installed ([`init()`](crate::init) installs the same
//! ones for libraries that use the global one).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::BuildHasher;

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::context::{ContextGuard, FutureExt as _, WithContext};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TraceId};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use serde::{Deserialize, Serialize};

/// The W3C trace-context header naming the trace and the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C trace-context header with vendor-specific trace state.
pub const TRACESTATE: &str = "tracestate";
/// The W3C baggage header.
pub const BAGGAGE: &str = "baggage";

/// Headers that a context can be written into. Implemented for
/// `HashMap<String, String>`, `BTreeMap<String, String>`, `Vec<(String, String)>`,
/// `http::HeaderMap`, [`TraceCarrier`], and for any OpenTelemetry
/// [`Injector`] as `&mut dyn Injector`.
pub trait HeaderSink {
    /// Sets the header `name` (lower case) to `value`, replacing it.
    fn set_header(&mut self, name: &str, value: String);
}

/// Headers that a context can be read from. Implemented for the same types as
/// [`HeaderSink`] (and any [`Extractor`] as `&dyn Extractor`); names are
/// matched without regard to case.
pub trait HeaderSource {
    /// The value of the header `name` (given in lower case), if present.
    fn header(&self, name: &str) -> Option<&str>;
}

/// Writes the current context (trace, parent span, baggage) into `headers`.
pub fn inject<H: HeaderSink + ?Sized>(headers: &mut H) {
    inject_context(&Context::current(), headers);
}

/// Writes `cx` (trace, parent span, baggage) into `headers`.
pub fn inject_context<H: HeaderSink + ?Sized>(cx: &Context, headers: &mut H) {
    let mut sink = Sink(headers);
    TraceContextPropagator::new().inject_context(cx, &mut sink);
    BaggagePropagator::new().inject_context(cx, &mut sink);
}

/// The current context with what `headers` carry: their span as the parent of
/// the next span, their baggage over the current baggage. Headers that are
/// missing or malformed are ignored (the next span is then a child of the
/// current one, or a root).
pub fn extract<H: HeaderSource + ?Sized>(headers: &H) -> Context {
    extract_with_context(&Context::current(), headers)
}

/// `base` with what `headers` carry; see [`extract`].
pub fn extract_with_context<H: HeaderSource + ?Sized>(base: &Context, headers: &H) -> Context {
    let source = Source(headers);
    let cx = TraceContextPropagator::new().extract_with_context(base, &source);
    let received = BaggagePropagator::new().extract_with_context(&Context::new(), &source);
    let received = received.baggage();
    if received.is_empty() {
        return cx;
    }
    let merged: opentelemetry::baggage::Baggage = cx
        .baggage()
        .iter()
        .chain(received.iter())
        .map(|(k, (v, m))| (k.clone(), (v.clone(), m.clone())))
        .collect();
    cx.with_baggage(merged)
}

/// The trace context of a message, to embed in it: the W3C `traceparent`,
/// `tracestate` and `baggage` values. Serializes as a JSON object with those
/// three fields (absent ones left out), which any language can read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceCarrier {
    /// `00-{trace id}-{parent span id}-{flags}`; `None` outside any span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Vendor-specific trace state, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The baggage: session, user, conversation, tenant, tags and any other entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baggage: Option<String>,
}

impl TraceCarrier {
    /// The current context: the current span as the parent of the receiver's
    /// spans, and the current baggage.
    pub fn current() -> Self {
        Self::from_context(&Context::current())
    }

    /// The context `cx`.
    pub fn from_context(cx: &Context) -> Self {
        let mut carrier = Self::default();
        inject_context(cx, &mut carrier);
        carrier
    }

    /// Whether it carries nothing (it was made outside any span and scope).
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none() && self.tracestate.is_none() && self.baggage.is_none()
    }

    /// The trace it belongs to, when it carries a valid `traceparent`.
    pub fn trace_id(&self) -> Option<TraceId> {
        let cx = extract_with_context(&Context::new(), self);
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.trace_id())
    }

    /// The current context with what this carries; see [`extract`].
    pub fn context(&self) -> Context {
        extract(self)
    }

    /// Makes the carried context current until the guard is dropped: spans
    /// started meanwhile are children of the sender's span. In async code use
    /// [`instrument`](Self::instrument) instead.
    pub fn attach(&self) -> ContextGuard {
        self.context().attach()
    }

    /// Runs `f` in the carried context.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.attach();
        f()
    }

    /// Makes `future` run in the carried context each time it is polled.
    pub fn instrument<F: Future>(&self, future: F) -> WithContext<F> {
        future.with_context(self.context())
    }
}

impl HeaderSink for TraceCarrier {
    fn set_header(&mut self, name: &str, value: String) {
        // The trace-context propagator writes an empty `tracestate` when there is none.
        let value = Some(value).filter(|v| !v.is_empty());
        match name {
            TRACEPARENT => self.traceparent = value,
            TRACESTATE => self.tracestate = value,
            BAGGAGE => self.baggage = value,
            _ => {}
        }
    }
}

impl HeaderSource for TraceCarrier {
    fn header(&self, name: &str) -> Option<&str> {
        match name {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            BAGGAGE => self.baggage.as_deref(),
            _ => None,
        }
    }
}

impl<S: BuildHasher> HeaderSink for HashMap<String, String, S> {
    fn set_header(&mut self, name: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_owned(), value);
    }
}

impl<S: BuildHasher> HeaderSource for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        header_in(self.get(name), self, name)
    }
}

impl HeaderSink for BTreeMap<String, String> {
    fn set_header(&mut self, name: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_owned(), value);
    }
}

impl HeaderSource for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        header_in(self.get(name), self, name)
    }
}

/// A map's header `name`: the entry under that exact key (`exact`), else the
/// first whose key matches it ignoring case.
fn header_in<'a>(
    exact: Option<&'a String>,
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
    name: &str,
) -> Option<&'a str> {
    exact
        .or_else(|| {
            entries
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

impl HeaderSink for Vec<(String, String)> {
    fn set_header(&mut self, name: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value));
    }
}

impl HeaderSource for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HeaderSink for http::HeaderMap {
    fn set_header(&mut self, name: &str, value: String) {
        // The propagators write valid names and values; anything else is skipped.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.insert(name, value);
        }
    }
}

impl HeaderSource for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl HeaderSink for dyn Injector + '_ {
    fn set_header(&mut self, name: &str, value: String) {
        self.set(name, value);
    }
}

impl HeaderSource for dyn Extractor + '_ {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// Our headers as the propagators' injector.
struct Sink<'a, H: ?Sized>(&'a mut H);

impl<H: HeaderSink + ?Sized> Injector for Sink<'_, H> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set_header(key, value);
    }
}

/// Our headers as the propagators' extractor (which only look names up).
struct Source<'a, H: ?Sized>(&'a H);

impl<H: HeaderSource + ?Sized> Extractor for Source<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.header(key)
    }

    fn keys(&self) -> Vec<&str> {
        [TRACEPARENT, TRACESTATE, BAGGAGE]
            .into_iter()
            .filter(|k| self.0.header(k).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};

    fn remote() -> Context {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        Context::new()
            .with_remote_span_context(sc)
            .with_baggage([opentelemetry::KeyValue::new("session.id", "s 1")])
    }

    #[test]
    fn a_carrier_holds_the_w3c_headers() {
        let carrier = TraceCarrier::from_context(&remote());
        assert_eq!(
            carrier.traceparent.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(carrier.baggage.as_deref(), Some("session.id=s%201"));
        assert_eq!(
            carrier.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").ok()
        );
        assert!(TraceCarrier::default().is_empty());
        assert_eq!(TraceCarrier::default().trace_id(), None);
    }

    #[test]
    fn every_header_type_round_trips() {
        fn check<H: HeaderSink + HeaderSource>(mut headers: H) {
            inject_context(&remote(), &mut headers);
            let cx = extract_with_context(&Context::new(), &headers);
            assert_eq!(
                cx.span().span_context().span_id(),
                SpanId::from_hex("00f067aa0ba902b7").unwrap()
            );
            assert!(cx.span().span_context().is_remote());
            assert_eq!(
                cx.baggage()
                    .get("session.id")
                    .map(|v| v.as_str().to_owned()),
                Some("s 1".to_owned())
            );
        }
        check(HashMap::<String, String>::new());
        check(BTreeMap::<String, String>::new());
        check(Vec::<(String, String)>::new());
        check(http::HeaderMap::new());
        check(TraceCarrier::default());
    }

    #[test]
    fn names_match_without_regard_to_case() {
        let mut headers = HashMap::new();
        headers.insert(
            "TraceParent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        let cx = extract_with_context(&Context::new(), &headers);
        assert!(cx.span().span_context().is_valid());
    }

    #[test]
    fn received_baggage_goes_over_the_local_baggage() {
        let local = Context::new().with_baggage([
            opentelemetry::KeyValue::new("otel_agent.tenant", "acme"),
            opentelemetry::KeyValue::new("session.id", "local"),
        ]);
        let carrier = TraceCarrier::from_context(&remote());
        let cx = extract_with_context(&local, &carrier);
        let b = cx.baggage();
        assert_eq!(b.get("session.id").map(|v| v.as_str()), Some("s 1"));
        assert_eq!(b.get("otel_agent.tenant").map(|v| v.as_str()), Some("acme"));
    }

    #[test]
    fn malformed_headers_are_ignored() {
        let carrier = TraceCarrier {
            traceparent: Some("00-nothex-00f067aa0ba902b7-01".into()),
            tracestate: None,
            baggage: Some("=;;,".into()),
        };
        let cx = extract_with_context(&Context::new(), &carrier);
        assert!(!cx.span().span_context().is_valid());
        assert!(cx.baggage().is_empty());
    }

    #[test]
    fn opentelemetry_injectors_and_extractors_work_too() {
        let mut map: HashMap<String, String> = HashMap::new();
        inject_context(&remote(), &mut map as &mut dyn Injector);
        let cx = extract_with_context(&Context::new(), &map as &dyn Extractor);
        assert!(cx.span().span_context().is_valid());
    }
}
