//! Who and what a call is for: the session, the user, the conversation, the
//! tenant and a few free-form tags, set once for a piece of work and found on
//! every span made inside it, in this process and in the ones it sends messages to.
//!
//! ```
//! use otel_agent_runtime::{agent_step, context};
//!
//! #[agent_step(agent = "support")]
//! fn answer(question: &str) -> String {
//!     // Every span made here, and below, carries session.id, user.id,
//!     // gen_ai.conversation.id, otel_agent.tenant and otel_agent.tag.channel.
//!     format!("re: {question}")
//! }
//!
//! let reply = context::scope()
//!     .session_id("sess-4f1c")
//!     .user_id("user-829")
//!     .conversation_id("conv-77")
//!     .tenant("acme")
//!     .tag("channel", "web")
//!     .in_scope(|| answer("where is my order?"));
//! # assert_eq!(reply, "re: where is my order?");
//! ```
//!
//! For async code, [`Scope::instrument`] wraps a future so that it runs in the
//! scope wherever it is polled:
//!
//! ```
//! # use otel_agent_runtime::context;
//! # async fn handle() {}
//! # async fn demo() {
//! context::scope().session_id("sess-4f1c").instrument(handle()).await;
//! # }
//! ```
//!
//! # How it travels
//! The values are W3C baggage in the OpenTelemetry [`Context`], so they follow
//! the context: into the spans made while the scope is current, into their
//! children, into tasks started with `otel_agent_runtime::spawn` (feature
//! `tokio`), and across process boundaries with
//! [`propagation`](crate::propagation) (the `baggage` header).
//! When a span starts, the pipeline copies the scope's entries onto it as
//! attributes (`session.id`, `user.id`, `gen_ai.conversation.id`,
//! `otel_agent.tenant`, `otel_agent.tag.<key>`); this also holds for your own
//! `tracing` spans. Other baggage entries, such as ones set by services
//! upstream, are carried along but never copied onto spans.
//!
//! The values are set on each span after the sampler has decided: a sampler that
//! needs them reads the baggage of the parent context it is given.
//!
//! # Never on metrics (except the tenant, when you allow it)
//! Ids are on spans, never on metrics. Every distinct value of a metric
//! attribute is a separate time series in every metric, kept and billed by the
//! backend for as long as it retains data: one series per session or user means
//! millions of series that no dashboard can aggregate. The tenant is the one
//! exception, and only when allow-listed with
//! [`TelemetryBuilder::tenant_on_metrics`](crate::TelemetryBuilder::tenant_on_metrics),
//! for setups with few tenants where per-tenant latency and cost matter.
//! Tags stay on spans too: put a low-cardinality value on a metric through the
//! attribute's own metric attributes instead.
//!
//! # Limits
//! Baggage rides in a header on every request and message, so it is kept small.
//! Ids and the tenant may be up to [`MAX_VALUE_BYTES`] bytes, tag keys up to
//! [`MAX_TAG_KEY_BYTES`] of `A-Z a-z 0-9 _ . -`, tag values up to
//! [`MAX_TAG_VALUE_BYTES`], and a context holds at most [`MAX_TAGS`] tags. The
//! W3C limits apply to the whole baggage (64 entries, 8192 bytes). Values are
//! trimmed; an empty value is ignored. An entry that breaks a limit is left out
//! (the rest of the scope still applies) and a `tracing` warning names it.
//!
//! Tags are meant for a handful of values (`experiment = "b"`, `channel =
//! "slack"`), not for ids or free text. Baggage is sent to every service the
//! work reaches and is not authenticated: put no secrets or personal data in it,
//! and trust a tenant received from outside only as far as you trust the sender.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use opentelemetry::baggage::{Baggage, BaggageExt as _};
use opentelemetry::context::{ContextGuard, FutureExt as _, WithContext};
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, Key, KeyValue, StringValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};

use crate::semconv;

/// The baggage key and span attribute of the session id (`session.id`).
pub const SESSION_ID: &str = semconv::SESSION_ID;
/// The baggage key and span attribute of the user id (`user.id`).
pub const USER_ID: &str = semconv::USER_ID;
/// The baggage key and span attribute of the conversation id (`gen_ai.conversation.id`).
pub const CONVERSATION_ID: &str = semconv::GEN_AI_CONVERSATION_ID;
/// The baggage key and span (and, when allowed, metric) attribute of the tenant.
/// The semantic conventions have no tenant attribute.
pub const TENANT: &str = "otel_agent.tenant";
/// The prefix of the baggage keys and span attributes of tags:
/// `tag("experiment", "b")` is `otel_agent.tag.experiment = "b"`.
pub const TAG_PREFIX: &str = "otel_agent.tag.";

/// The longest id or tenant, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;
/// The longest tag key (without [`TAG_PREFIX`]), in bytes.
pub const MAX_TAG_KEY_BYTES: usize = 64;
/// The longest tag value, in bytes.
pub const MAX_TAG_VALUE_BYTES: usize = 128;
/// The most tags a context holds.
pub const MAX_TAGS: usize = 16;

/// Whether a baggage key is one this crate copies onto spans.
fn is_scope_key(key: &str) -> bool {
    matches!(key, SESSION_ID | USER_ID | CONVERSATION_ID | TENANT) || key.starts_with(TAG_PREFIX)
}

fn valid_tag_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_TAG_KEY_BYTES
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Starts a scope: set what applies, then run code in it with
/// [`in_scope`](Scope::in_scope), [`instrument`](Scope::instrument) or
/// [`attach`](Scope::attach). Values not set are inherited from the current context.
pub fn scope() -> Scope {
    Scope::default()
}

/// The session, user, conversation, tenant and tags of the current context.
pub fn current() -> Values {
    Values::from_context(&Context::current())
}

/// Values for a piece of work, applied on top of the current context. Build it
/// with [`scope()`].
#[derive(Debug, Clone, Default)]
#[must_use = "a scope does nothing until code runs in it"]
pub struct Scope {
    /// In the order set; a later entry for the same key wins.
    entries: Vec<(Key, StringValue)>,
}

impl Scope {
    /// The session (`session.id`): one visit, chat or run, spanning many traces.
    pub fn session_id(self, id: impl Into<String>) -> Self {
        self.with(Key::from_static_str(SESSION_ID), id.into(), MAX_VALUE_BYTES)
    }

    /// The user (`user.id`). Prefer an opaque or pseudonymous id to an e-mail
    /// address: it is sent along with every message and stored with every span.
    pub fn user_id(self, id: impl Into<String>) -> Self {
        self.with(Key::from_static_str(USER_ID), id.into(), MAX_VALUE_BYTES)
    }

    /// The conversation (`gen_ai.conversation.id`): the thread whose messages
    /// the model sees.
    pub fn conversation_id(self, id: impl Into<String>) -> Self {
        self.with(
            Key::from_static_str(CONVERSATION_ID),
            id.into(),
            MAX_VALUE_BYTES,
        )
    }

    /// The tenant (`otel_agent.tenant`): the customer or organisation the work
    /// is for. On spans always; on metrics only when allowed with
    /// [`TelemetryBuilder::tenant_on_metrics`](crate::TelemetryBuilder::tenant_on_metrics).
    pub fn tenant(self, tenant: impl Into<String>) -> Self {
        self.with(Key::from_static_str(TENANT), tenant.into(), MAX_VALUE_BYTES)
    }

    /// A free-form, low-cardinality tag (`otel_agent.tag.<key>`), e.g.
    /// `tag("experiment", "b")`. Keys are `A-Z a-z 0-9 _ . -`; see the
    /// [limits](self#limits).
    pub fn tag(self, key: &str, value: impl Into<String>) -> Self {
        if !valid_tag_key(key) {
            tracing::warn!(
                target: "otel_agent",
                tag = key,
                "otel-agent: tag left out: keys are 1 to {MAX_TAG_KEY_BYTES} bytes of A-Z a-z 0-9 _ . -"
            );
            return self;
        }
        let key = Key::from(format!("{TAG_PREFIX}{key}"));
        self.with(key, value.into(), MAX_TAG_VALUE_BYTES)
    }

    fn with(mut self, key: Key, value: String, max: usize) -> Self {
        let value = value.trim();
        if value.is_empty() {
            return self;
        }
        if value.len() > max {
            tracing::warn!(
                target: "otel_agent",
                key = key.as_str(),
                bytes = value.len(),
                "otel-agent: context value left out: longer than {max} bytes"
            );
            return self;
        }
        self.entries
            .push((key, StringValue::from(value.to_owned())));
        self
    }

    /// The current context with this scope's values added (replacing the same
    /// keys, keeping the others).
    pub fn context(&self) -> Context {
        self.context_over(&Context::current())
    }

    /// `base` with this scope's values added.
    pub fn context_over(&self, base: &Context) -> Context {
        if self.entries.is_empty() {
            return base.clone();
        }
        let mut baggage = copy_of(base.baggage());
        let mut tags = baggage
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(TAG_PREFIX))
            .count();
        for (key, value) in &self.entries {
            let is_new_tag =
                key.as_str().starts_with(TAG_PREFIX) && baggage.get(key.as_str()).is_none();
            if is_new_tag && tags >= MAX_TAGS {
                tracing::warn!(
                    target: "otel_agent",
                    key = key.as_str(),
                    "otel-agent: tag left out: a context holds at most {MAX_TAGS} tags"
                );
                continue;
            }
            baggage.insert(key.clone(), value.clone());
            if baggage.get(key.as_str()) != Some(value) {
                tracing::warn!(
                    target: "otel_agent",
                    key = key.as_str(),
                    "otel-agent: context value left out: the baggage is full (W3C limits: 64 entries, 8192 bytes)"
                );
                continue;
            }
            if is_new_tag {
                tags += 1;
            }
        }
        base.with_baggage(baggage)
    }

    /// Makes this scope current until the guard is dropped. Drop guards in the
    /// reverse order of attaching them; in async code use
    /// [`instrument`](Self::instrument) instead, since a guard held across an
    /// `.await` would leak into whatever else runs on the thread.
    pub fn attach(&self) -> ContextGuard {
        self.context().attach()
    }

    /// Runs `f` in this scope.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.attach();
        f()
    }

    /// Makes `future` run in this scope each time it is polled, on whatever
    /// thread. The scope is taken on top of the context current when this is
    /// called.
    pub fn instrument<F: Future>(&self, future: F) -> WithContext<F> {
        future.with_context(self.context())
    }
}

/// A copy of `baggage` (the type is not `Clone`).
fn copy_of(baggage: &Baggage) -> Baggage {
    baggage
        .iter()
        .map(|(k, (v, m))| (k.clone(), (v.clone(), m.clone())))
        .collect()
}

/// What [`current()`] reads: the session, user, conversation, tenant and tags
/// of a context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    session_id: Option<String>,
    user_id: Option<String>,
    conversation_id: Option<String>,
    tenant: Option<String>,
    tags: BTreeMap<String, String>,
}

impl Values {
    /// The values in `cx`'s baggage.
    pub fn from_context(cx: &Context) -> Self {
        let baggage = cx.baggage();
        let get = |key: &str| baggage.get(key).map(|v| v.as_str().to_owned());
        Self {
            session_id: get(SESSION_ID),
            user_id: get(USER_ID),
            conversation_id: get(CONVERSATION_ID),
            tenant: get(TENANT),
            tags: baggage
                .iter()
                .filter_map(|(k, (v, _))| {
                    let tag = k.as_str().strip_prefix(TAG_PREFIX)?;
                    Some((tag.to_owned(), v.as_str().to_owned()))
                })
                .collect(),
        }
    }

    /// `session.id`, if set.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// `user.id`, if set.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// `gen_ai.conversation.id`, if set.
    pub fn conversation_id(&self) -> Option<&str> {
        self.conversation_id.as_deref()
    }

    /// The tenant, if set.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The value of the tag `key` (without [`TAG_PREFIX`]), if set.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// All tags, by key.
    pub fn tags(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.session_id.is_none()
            && self.user_id.is_none()
            && self.conversation_id.is_none()
            && self.tenant.is_none()
            && self.tags.is_empty()
    }
}

/// Copies the scope's baggage entries onto every span as it starts, from the
/// parent context the span starts in (which `tracing-opentelemetry` takes from
/// the current context for root spans and from the parent span for children).
#[derive(Debug, Default)]
pub(crate) struct ScopeAttributes;

impl SpanProcessor for ScopeAttributes {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        let baggage = cx.baggage();
        if baggage.is_empty() {
            return;
        }
        for (key, (value, _)) in baggage {
            if is_scope_key(key.as_str()) {
                span.set_attribute(KeyValue::new(key.clone(), value.clone()));
            }
        }
    }

    fn on_end(&self, _span: SpanData) {}

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The tenant for the metrics of the call whose span is `span`: read from the
/// span's own context, so that the value is the same when the call starts and
/// when it ends (an in-flight count must come down on the series it went up on),
/// however the call ends (a cancelled future is dropped outside any context).
/// Whether the tenant goes on metrics at all is the pipeline's setting, checked
/// by the caller.
pub(crate) fn tenant_of(span: &tracing::Span) -> Option<StringValue> {
    use crate::SpanExt as _;
    span.otel_context().baggage().get(TENANT).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_values_are_baggage_over_the_current_context() {
        let outer = scope().session_id("s-1").tenant("acme").tag("exp", "a");
        outer.in_scope(|| {
            let inner = scope().user_id("u-9").tag("exp", "b").tag("channel", "web");
            inner.in_scope(|| {
                let v = current();
                assert_eq!(v.session_id(), Some("s-1"));
                assert_eq!(v.user_id(), Some("u-9"));
                assert_eq!(v.tenant(), Some("acme"));
                assert_eq!(v.tag("exp"), Some("b"));
                assert_eq!(v.tags().count(), 2);
            });
            assert_eq!(current().user_id(), None);
            assert_eq!(current().tag("exp"), Some("a"));
        });
        assert!(current().is_empty());
    }

    #[test]
    fn values_are_trimmed_and_empty_ones_ignored() {
        let cx = scope()
            .session_id("  s-1 ")
            .user_id("   ")
            .context_over(&Context::new());
        let v = Values::from_context(&cx);
        assert_eq!(v.session_id(), Some("s-1"));
        assert_eq!(v.user_id(), None);
    }

    #[test]
    fn entries_over_the_limits_are_left_out() {
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        let mut s = scope()
            .session_id(long)
            .user_id("u")
            .tag("bad key", "v")
            .tag("", "v")
            .tag(&"k".repeat(MAX_TAG_KEY_BYTES + 1), "v")
            .tag("long", "v".repeat(MAX_TAG_VALUE_BYTES + 1));
        for i in 0..MAX_TAGS + 5 {
            s = s.tag(&format!("t{i}"), "v");
        }
        let v = Values::from_context(&s.context_over(&Context::new()));
        assert_eq!(v.session_id(), None);
        assert_eq!(v.user_id(), Some("u"));
        assert_eq!(v.tags().count(), MAX_TAGS);
        assert_eq!(v.tag("t0"), Some("v"));
        assert_eq!(v.tag("long"), None);
        // Replacing a tag that is already there is not a new tag.
        let cx = s.context_over(&Context::new());
        let v = Values::from_context(&scope().tag("t0", "w").context_over(&cx));
        assert_eq!(v.tag("t0"), Some("w"));
    }

    #[test]
    fn only_the_scope_keys_are_copied_onto_spans() {
        for key in [
            "session.id",
            "user.id",
            "gen_ai.conversation.id",
            "otel_agent.tenant",
            "otel_agent.tag.x",
        ] {
            assert!(is_scope_key(key), "{key}");
        }
        for key in ["authorization", "otel_agent.tenantx", "user.email", "tag.x"] {
            assert!(!is_scope_key(key), "{key}");
        }
    }
}
