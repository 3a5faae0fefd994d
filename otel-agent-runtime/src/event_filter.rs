//! Which `tracing` spans and events reach the telemetry layer at all.
//!
//! Spans of every level pass, so that a library's span (rig's `chat`, the
//! user's `debug_span!`) keeps its place in the trace. Events pass only when
//! the span-event filter lets them (`EnvFilter` directives, default `info`):
//! libraries log requests, prompts and whole responses at DEBUG and TRACE, and
//! a span event is exported with its span. Neither spans nor events of the
//! crates that carry the exports pass, whatever the filter says: exporting them
//! would make more of them, without end.
//!
//! It is a per-layer filter (`tracing_subscriber::Layer::with_filter`), so it
//! hides nothing from the user's other layers (`RUST_LOG` printing still sees
//! hyper's DEBUG events), and callsites nobody wants stay disabled for free.

use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};
use tracing_core::Interest;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The variable that sets which events become span events.
pub(crate) const SPAN_EVENTS_VAR: &str = "OTEL_AGENT_SPAN_EVENTS";

/// Events at INFO and above become span events unless told otherwise.
pub(crate) const DEFAULT_SPAN_EVENTS: &str = "info";

/// Checked span-event directives, ready to build a filter from for each layer.
#[derive(Debug, Clone)]
pub(crate) struct SpanEvents {
    directives: String,
}

impl SpanEvents {
    /// Parses `directives`, so that a typo fails `init()` rather than silently
    /// exporting everything or nothing. The error says what is expected.
    pub(crate) fn parse(directives: &str) -> Result<Self, String> {
        EnvFilter::builder()
            .with_regex(false)
            .parse(directives)
            .map_err(|e| {
                format!(
                    "tracing filter directives such as `info`, `warn,my_agent=debug` or `off` ({e})"
                )
            })?;
        Ok(Self {
            directives: directives.to_owned(),
        })
    }

    /// A fresh filter for one layer (an `EnvFilter` keeps per-subscriber state).
    pub(crate) fn filter(&self) -> ExportFilter {
        ExportFilter {
            // Parsed once already by `parse`.
            events: EnvFilter::builder()
                .with_regex(false)
                .parse_lossy(&self.directives),
            // Span-scoped directives (`[span]=debug`) need to follow spans
            // being entered; plain ones do not, and following costs a lock on
            // every enter and exit.
            follows_spans: self.directives.contains('['),
        }
    }
}

impl Default for SpanEvents {
    fn default() -> Self {
        Self {
            directives: DEFAULT_SPAN_EVENTS.to_owned(),
        }
    }
}

/// The per-layer filter of the telemetry layer: see the module docs.
pub(crate) struct ExportFilter {
    events: EnvFilter,
    follows_spans: bool,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Filter<S> for ExportFilter {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if is_export_machinery(meta.target()) {
            return false;
        }
        meta.is_span() || Filter::<S>::enabled(&self.events, meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_export_machinery(meta.target()) {
            return Interest::never();
        }
        // Registers span callsites with the event filter too, which it needs
        // for span-scoped directives.
        let events = Filter::<S>::callsite_enabled(&self.events, meta);
        if meta.is_span() {
            Interest::always()
        } else {
            events
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        // Spans of every level pass, whatever the event filter's level.
        None
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.follows_spans {
            Filter::<S>::on_new_span(&self.events, attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.follows_spans {
            Filter::<S>::on_record(&self.events, id, values, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.follows_spans {
            Filter::<S>::on_enter(&self.events, id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.follows_spans {
            Filter::<S>::on_exit(&self.events, id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.follows_spans {
            Filter::<S>::on_close(&self.events, id, ctx);
        }
    }
}

/// Whether a span or event comes from the crates that carry the exports
/// themselves or any HTTP call (the HTTP/2 and HTTP stacks, the OpenTelemetry
/// SDK). They never become spans or span events: each export would otherwise
/// create spans to export (h2 alone makes dozens per request), without end,
/// and more so while the collector is failing; inside a model call they are
/// connection chatter at best and request contents at worst. Asked once per
/// callsite and on every `enabled` call of a callsite that asks per call, so
/// it splits on a `char`: a `"::"` pattern builds a substring searcher each time.
pub(crate) fn is_export_machinery(target: &str) -> bool {
    const CRATES: [&str; 7] = [
        "h2",
        "hyper",
        "hyper_util",
        "tonic",
        "tower",
        "reqwest",
        "want",
    ];
    let krate = target.split_once(':').map_or(target, |(krate, _)| krate);
    CRATES.contains(&krate) || krate.starts_with("opentelemetry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_machinery_is_told_by_the_crate_in_the_target() {
        for target in [
            "h2",
            "h2::codec::framed_read",
            "hyper_util::client::legacy::pool",
            "reqwest::connect",
            "tonic::transport::channel",
            "opentelemetry_sdk::trace::span_processor",
            "opentelemetry-otlp",
        ] {
            assert!(is_export_machinery(target), "{target}");
        }
        for target in [
            "otel_agent",
            "my_app::h2",
            "my_app",
            "hyperion::step",
            "towers",
        ] {
            assert!(!is_export_machinery(target), "{target}");
        }
    }

    #[test]
    fn bad_directives_say_what_is_expected() {
        let err = SpanEvents::parse("info,rig=loud").unwrap_err();
        assert!(err.contains("`warn,my_agent=debug`"), "{err}");
        assert!(SpanEvents::parse("warn,rig=debug").is_ok());
        assert!(SpanEvents::parse("off").is_ok());
    }
}
