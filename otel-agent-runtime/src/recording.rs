//! How calls are recorded, beyond the fixed semantic conventions: message content
//! (off unless asked for), prices, and names kept for older backends. One set per
//! telemetry pipeline, reached by the guards through the pipeline's layer.

use std::borrow::Cow;
use std::sync::Arc;

use crate::config::parse_bool;
use crate::cost::PriceTable;
use crate::error::InitError;
use crate::event_filter::{SpanEvents, SPAN_EVENTS_VAR};
use crate::message::{default_redactor, Redactor};

/// Where captured message content goes, from
/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    /// Nothing (the default): prompts and completions never leave the process.
    #[default]
    NoContent,
    /// As `gen_ai.input.messages` / `gen_ai.output.messages` /
    /// `gen_ai.system_instructions` span attributes.
    SpanOnly,
    /// As a `gen_ai.client.inference.operation.details` span event.
    EventOnly,
    /// Both.
    SpanAndEvent,
}

impl CaptureMode {
    pub(crate) fn on_span(self) -> bool {
        matches!(self, CaptureMode::SpanOnly | CaptureMode::SpanAndEvent)
    }
    pub(crate) fn as_event(self) -> bool {
        matches!(self, CaptureMode::EventOnly | CaptureMode::SpanAndEvent)
    }
    pub(crate) fn any(self) -> bool {
        self != CaptureMode::NoContent
    }
}

pub(crate) const CAPTURE_VAR: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
pub(crate) const MAX_CONTENT_VAR: &str = "OTEL_AGENT_MAX_CONTENT_BYTES";
pub(crate) const PRICES_VAR: &str = "OTEL_AGENT_PRICES_FILE";
pub(crate) const STABILITY_VAR: &str = "OTEL_SEMCONV_STABILITY_OPT_IN";
/// The `OTEL_SEMCONV_STABILITY_OPT_IN` value that adds the deprecated GenAI names.
pub const LEGACY_GENAI_NAMES_OPT_IN: &str = "gen_ai/dup";

pub(crate) fn parse_capture(value: &str) -> Result<CaptureMode, InitError> {
    Ok(match value.to_ascii_uppercase().as_str() {
        "NO_CONTENT" => CaptureMode::NoContent,
        "SPAN_ONLY" => CaptureMode::SpanOnly,
        "EVENT_ONLY" => CaptureMode::EventOnly,
        "SPAN_AND_EVENT" => CaptureMode::SpanAndEvent,
        _ => match parse_bool(CAPTURE_VAR, value) {
            Ok(true) => CaptureMode::SpanOnly,
            Ok(false) => CaptureMode::NoContent,
            Err(_) => return Err(InitError::InvalidEnv {
                var: CAPTURE_VAR,
                value: value.to_owned(),
                expected:
                    "`true`, `false`, `NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY` or `SPAN_AND_EVENT`"
                        .into(),
            }),
        },
    })
}

/// Everything about how calls are recorded that a pipeline can configure.
#[derive(Clone)]
pub(crate) struct RecordingOptions {
    pub capture: CaptureMode,
    pub max_content_bytes: usize,
    pub redactor: Arc<Redactor>,
    pub prices: Option<Arc<PriceTable>>,
    /// Also emit `gen_ai.system` and the `prompt_tokens`/`completion_tokens` names.
    pub legacy_names: bool,
    pub tenant_on_metrics: bool,
    /// Which `tracing` events become span events.
    pub span_events: SpanEvents,
    /// Whether a library's GenAI spans get metrics, roll-ups and cost.
    pub library_spans: bool,
    /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` / `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`,
    /// in characters, for every span and event attribute that leaves.
    pub attribute_value_length_limit: Option<usize>,
}

impl std::fmt::Debug for RecordingOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingOptions")
            .field("capture", &self.capture)
            .field("max_content_bytes", &self.max_content_bytes)
            .field("priced_models", &self.prices.as_ref().map(|p| p.len()))
            .field("legacy_names", &self.legacy_names)
            .field("tenant_on_metrics", &self.tenant_on_metrics)
            .field("span_events", &self.span_events)
            .field("library_spans", &self.library_spans)
            .field(
                "attribute_value_length_limit",
                &self.attribute_value_length_limit,
            )
            .finish_non_exhaustive()
    }
}

/// 16 KiB per attribute: enough for a conversation's gist, small enough for
/// every backend's attribute limits.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 16 * 1024;

impl Default for RecordingOptions {
    fn default() -> Self {
        Self {
            capture: CaptureMode::NoContent,
            max_content_bytes: DEFAULT_MAX_CONTENT_BYTES,
            redactor: Arc::new(default_redactor()),
            prices: None,
            legacy_names: false,
            tenant_on_metrics: false,
            span_events: SpanEvents::default(),
            library_spans: true,
            attribute_value_length_limit: None,
        }
    }
}

/// What the builder set; `None` leaves the environment (or the default) in charge.
#[derive(Default)]
pub(crate) struct RecordingOverrides {
    pub capture: Option<CaptureMode>,
    pub max_content_bytes: Option<usize>,
    pub redactor: Option<Arc<Redactor>>,
    pub prices: Option<PriceTable>,
    pub legacy_names: Option<bool>,
    pub tenant_on_metrics: Option<bool>,
    pub span_events: Option<String>,
    pub library_spans: Option<bool>,
}

impl RecordingOptions {
    pub(crate) fn resolve(
        lookup: &dyn Fn(&str) -> Option<String>,
        overrides: RecordingOverrides,
    ) -> Result<Self, InitError> {
        let get = |var: &str| {
            lookup(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut options = Self::default();
        if let Some(v) = get(CAPTURE_VAR) {
            options.capture = parse_capture(&v)?;
        }
        if let Some(v) = get(MAX_CONTENT_VAR) {
            options.max_content_bytes =
                v.parse()
                    .ok()
                    .filter(|n| *n >= 64)
                    .ok_or_else(|| InitError::InvalidEnv {
                        var: MAX_CONTENT_VAR,
                        value: v.clone(),
                        expected: "a number of bytes, at least 64".into(),
                    })?;
        }
        if let Some(v) = get(STABILITY_VAR) {
            options.legacy_names = v
                .split(',')
                .any(|item| item.trim() == LEGACY_GENAI_NAMES_OPT_IN);
        }
        if let Some(v) = get(SPAN_EVENTS_VAR) {
            options.span_events =
                SpanEvents::parse(&v).map_err(|expected| InitError::InvalidEnv {
                    var: SPAN_EVENTS_VAR,
                    value: v.clone(),
                    expected,
                })?;
        }
        if let Some(path) = get(PRICES_VAR) {
            options.prices = Some(Arc::new(PriceTable::from_file(&path).map_err(|why| {
                InitError::InvalidEnv {
                    var: PRICES_VAR,
                    value: path.clone(),
                    expected: format!("a readable TOML price table ({why})"),
                }
            })?));
        }
        let RecordingOverrides {
            capture,
            max_content_bytes,
            redactor,
            prices,
            legacy_names,
            tenant_on_metrics,
            span_events,
            library_spans,
        } = overrides;
        if let Some(c) = capture {
            options.capture = c;
        }
        if let Some(n) = max_content_bytes {
            options.max_content_bytes = n.max(64);
        }
        if let Some(r) = redactor {
            options.redactor = r;
        }
        if let Some(p) = prices {
            options.prices = Some(Arc::new(p));
        }
        if let Some(l) = legacy_names {
            options.legacy_names = l;
        }
        if let Some(t) = tenant_on_metrics {
            options.tenant_on_metrics = t;
        }
        if let Some(complete) = library_spans {
            options.library_spans = complete;
        }
        if let Some(directives) = span_events {
            options.span_events =
                SpanEvents::parse(&directives).map_err(|expected| InitError::InvalidSetting {
                    setting: "span_events",
                    value: directives,
                    expected,
                })?;
        }
        Ok(options)
    }

    /// Redacts a text with the configured hook.
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        (self.redactor)(text)
    }
}

/// Whether any pipeline of this process captures content: until one does, a
/// model call does not even look its pipeline up to ask (the default costs
/// one atomic load per call).
static CAPTURE_SOMEWHERE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes that a pipeline capturing content was built.
pub(crate) fn note_capture_somewhere() {
    CAPTURE_SOMEWHERE.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// See [`note_capture_somewhere`].
pub(crate) fn capture_somewhere() -> bool {
    CAPTURE_SOMEWHERE.load(std::sync::atomic::Ordering::Relaxed)
}
