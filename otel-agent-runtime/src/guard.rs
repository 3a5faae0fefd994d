//! What runs around an annotated call: the span's outcome and the metrics.
//!
//! A guard is created when the call starts and finished with the call's outcome.
//! If it is dropped unfinished, the call panicked or its future was dropped
//! (cancelled), and the guard records that instead: every span ends, every
//! in-flight count comes back down, whatever way the call leaves.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::attributes::{
    COST_USD, ROLLUP_COST, ROLLUP_INPUT_TOKENS, ROLLUP_OUTPUT_TOKENS, STEP_NAME, STEP_OUTCOME,
};
use crate::semconv;
use crate::SpanExt as _;
use opentelemetry::{Key, KeyValue, StringValue, Value};
use tracing::Span;

use crate::layer::{with_layer, InstrumentsLayer};
pub use crate::metrics::SiteMetrics;
use crate::metrics::{LlmKey, LlmRecord, StepRecord};
use crate::probe::{Outcome, ResponseReport};
use crate::response::Usage;
use crate::span_state::{
    finish_llm_span, note_first_chunk, panic_message, request_capture, rollup_of, take_details,
    Rollup, Server,
};

/// The `error.type` of a call whose future was dropped before it finished.
pub const CANCELLED: &str = "cancelled";
/// The `error.type` of a call that panicked.
pub const PANIC: &str = "panic";

/// What a step call site is, fixed at compile time.
#[derive(Debug)]
pub struct StepSite {
    /// `invoke_agent`, `execute_tool` or `invoke_workflow`.
    pub operation: &'static str,
    /// The agent, tool or workflow name.
    pub name: &'static str,
    /// What the agent or tool does, when the attribute says.
    pub description: Option<&'static str>,
    /// Extra low-cardinality metric attributes fixed at the call site.
    pub attributes: &'static [(&'static str, &'static str)],
    /// The site's instruments, bound to its attribute sets once per pipeline.
    pub metrics: SiteMetrics,
}

/// `gen_ai.tool.type` of a tool step: one `static`, so every span's field is
/// the same string, which the bridge stores without a copy.
pub static TOOL_TYPE: &str = "function";

impl StepSite {
    /// Tells the bridge which strings the span about to be created carries
    /// (this site's operation, name, description and tool type), so that it
    /// stores them without a copy each.
    pub fn hand_off(&self) {
        crate::bridge::hand_off(
            [
                self.operation,
                self.name,
                self.description.unwrap_or_default(),
                TOOL_TYPE,
            ],
            None,
        );
    }
}

/// What an LLM call site is, fixed at compile time.
#[derive(Debug)]
pub struct LlmSite {
    /// `gen_ai.operation.name`, e.g. `chat`.
    pub operation: &'static str,
    /// `gen_ai.provider.name` when the attribute names it.
    pub provider: Option<&'static str>,
    /// Extra low-cardinality metric attributes fixed at the call site.
    pub attributes: &'static [(&'static str, &'static str)],
    /// The site's instruments, bound to its attribute sets once per pipeline.
    pub metrics: SiteMetrics,
    /// The models chosen at run time this site has seen, with their span names.
    pub models: ModelNames,
}

impl LlmSite {
    /// Tells the bridge which strings the span about to be created carries
    /// (this site's operation, `provider` and `model`), so that it stores them
    /// without a copy each.
    pub fn hand_off(&self, provider: &'static str, model: &ModelName) {
        crate::bridge::hand_off(
            [self.operation, provider, model.span_name.unwrap_or(""), ""],
            Some(&model.value),
        );
    }

    /// The model an expression names, evaluated when the call starts. A model
    /// this site has seen before comes with its string and span name already
    /// made, so a call that names it allocates nothing for either.
    pub fn model_of<M: AsRef<str> + ?Sized>(&self, model: &M) -> ModelName {
        self.models.get(self.operation, model.as_ref())
    }

    /// The provider: the one the attribute names, else the one the model's name
    /// belongs to (`gpt-4o` is OpenAI's), else `unknown`.
    pub fn provider_for(&self, model: &ModelName) -> &'static str {
        self.provider
            .unwrap_or_else(|| infer_provider(model.as_str()))
    }
}

/// Maps well-known model families to the conventions' `gen_ai.provider.name` values.
pub fn infer_provider(model: &str) -> &'static str {
    let m = model.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| m.starts_with(p));
    if starts(&[
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt",
        "text-embedding-",
        "dall-e",
        "whisper",
        "davinci",
        "babbage",
    ]) {
        "openai"
    } else if starts(&["claude"]) {
        "anthropic"
    } else if starts(&["gemini", "gemma"]) {
        "gcp.gemini"
    } else if starts(&["mistral", "mixtral", "codestral", "ministral", "pixtral"]) {
        "mistral_ai"
    } else if starts(&["command", "embed-english", "embed-multilingual"]) {
        "cohere"
    } else if starts(&["deepseek"]) {
        "deepseek"
    } else if starts(&["grok"]) {
        "x_ai"
    } else if starts(&["llama", "meta-llama"]) {
        "meta"
    } else {
        "unknown"
    }
}

enum End {
    Returned(Outcome),
    Dropped,
}

impl End {
    /// `(outcome label, error.type, status message)`.
    fn describe(self, span: &Span) -> (&'static str, Option<Cow<'static, str>>, Option<String>) {
        match self {
            End::Returned(Outcome::Success) => ("success", None, None),
            End::Returned(Outcome::Failure {
                error_type,
                message,
            }) => ("failure", Some(error_type), message),
            End::Dropped => {
                // An async call's panic is noted on the span as it unwinds; a sync
                // call's guard is dropped while the thread is still panicking.
                let caught = panic_message(span);
                if caught.is_some() || std::thread::panicking() {
                    let message = caught.map_or_else(
                        || "the call panicked".to_owned(),
                        |m| format!("panicked: {m}"),
                    );
                    ("failure", Some(Cow::Borrowed(PANIC)), Some(message))
                } else {
                    (
                        CANCELLED,
                        Some(Cow::Borrowed(CANCELLED)),
                        Some("the call was cancelled before it finished".to_owned()),
                    )
                }
            }
        }
    }
}

/// Status descriptions come from error messages, which may quote user input:
/// they pass through the redaction hook and are kept short.
const MAX_STATUS_BYTES: usize = 512;

fn mark_error(span: &Span, error_type: &str, message: Option<&str>) {
    // Recorded as fields, not only set on the OpenTelemetry span: other
    // `tracing` layers (a log formatter) show how the call failed too.
    span.record(semconv::ERROR_TYPE, error_type);
    let mut description = error_type.to_owned();
    if let Some(message) = message {
        with_layer(span, |layer| {
            let redacted = layer.options.redact(message);
            let mut end = redacted.len().min(MAX_STATUS_BYTES);
            while !redacted.is_char_boundary(end) {
                end -= 1;
            }
            description = redacted[..end].to_owned();
        });
    }
    span.record("otel.status_code", "error");
    span.record("otel.status_description", description.as_str());
}

fn static_kv(key: &'static str, value: &'static str) -> KeyValue {
    KeyValue::new(Key::from_static_str(key), Value::from(value))
}

fn cow_value(value: Cow<'static, str>) -> Value {
    match value {
        Cow::Borrowed(s) => Value::from(s),
        Cow::Owned(s) => Value::from(s),
    }
}

/// A tool's name known only at run time (`#[agent_step(kind = tool, name = expr)]`),
/// for a dispatcher that routes calls by name: its span is named for the tool
/// and its metrics carry the tool's name, not the dispatcher's.
#[derive(Debug, Clone)]
pub struct ToolName {
    name: StringValue,
    span_name: String,
}

impl ToolName {
    /// The tool `name`, run through the step `site`.
    pub fn new(site: &'static StepSite, name: &str) -> Self {
        Self {
            name: StringValue::from(name.to_owned()),
            span_name: format!("{} {name}", site.operation),
        }
    }

    /// The tool's name, for `gen_ai.tool.name`.
    pub fn as_str(&self) -> &str {
        self.name.as_str()
    }

    /// `execute_tool {name}`, for the span's name.
    pub fn span_name(&self) -> &str {
        &self.span_name
    }
}

/// Drives one `#[agent_step]` call.
pub struct StepGuard {
    site: &'static StepSite,
    span: Span,
    /// The tool's name when it is known only at run time.
    name: Option<StringValue>,
    /// Whether content is captured (read once, at the start): a tool's
    /// arguments and result are not even looked at otherwise.
    content: bool,
    /// When the call started; `None` once it ended, or when nobody listens (a
    /// disabled span), so that an uninstrumented run reads no clock at all.
    start: Option<Instant>,
}

impl StepGuard {
    /// Records a tool's arguments (`gen_ai.tool.call.arguments`) when content
    /// is captured; `arguments` is not called otherwise.
    pub fn tool_arguments(&self, arguments: impl FnOnce() -> Option<String>) {
        if self.content {
            crate::content::record_on(&self.span, semconv::GEN_AI_TOOL_CALL_ARGUMENTS, arguments);
        }
    }

    /// Records a tool's result (`gen_ai.tool.call.result`) when content is
    /// captured; `result` is not called otherwise.
    pub fn tool_result(&self, result: impl FnOnce() -> Option<String>) {
        if self.content {
            crate::content::record_on(&self.span, semconv::GEN_AI_TOOL_CALL_RESULT, result);
        }
    }

    /// Starts the step: counts it in flight and starts its clock.
    pub fn start(site: &'static StepSite, span: Span) -> Self {
        Self::start_as(site, span, None)
    }

    /// Starts a tool step whose name is known only at run time.
    pub fn start_named(site: &'static StepSite, span: Span, name: ToolName) -> Self {
        Self::start_as(site, span, Some(name.name))
    }

    fn start_as(site: &'static StepSite, span: Span, name: Option<StringValue>) -> Self {
        if span.is_disabled() {
            return Self {
                site,
                span,
                name,
                content: false,
                start: None,
            };
        }
        let mut content = false;
        with_layer(&span, |layer| {
            content = layer.options.capture.any();
            let tenant = layer.tenant(&span);
            match &name {
                // One series per name: the site's bound instruments are the
                // dispatcher's, so these are recorded as they come.
                Some(name) => layer
                    .instruments
                    .step_active
                    .add(1, &Self::attrs(site, Some(name), tenant.as_ref())),
                None => site.metrics.record_step(
                    &layer.instruments,
                    tenant.as_ref(),
                    || Self::attrs(site, None, tenant.as_ref()),
                    &StepRecord::Started,
                ),
            }
        });
        Self {
            site,
            span,
            name,
            content,
            start: Some(Instant::now()),
        }
    }

    /// The in-flight count's attributes.
    fn attrs(
        site: &'static StepSite,
        name: Option<&StringValue>,
        tenant: Option<&StringValue>,
    ) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(4 + site.attributes.len());
        attrs.push(static_kv(semconv::GEN_AI_OPERATION_NAME, site.operation));
        match name {
            Some(name) => attrs.push(KeyValue::new(STEP_NAME, name.clone())),
            None => attrs.push(static_kv(STEP_NAME, site.name)),
        }
        attrs.extend(site.attributes.iter().map(|(k, v)| static_kv(k, v)));
        if let Some(tenant) = tenant {
            attrs.push(KeyValue::new(crate::context::TENANT, tenant.clone()));
        }
        attrs
    }

    /// Whether anything listens: when not, generated code skips reading the
    /// outcome, and the guard records nothing.
    pub fn is_recording(&self) -> bool {
        self.start.is_some()
    }

    /// The step's span, to enter or instrument the body with.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Records the outcome the call returned.
    pub fn finish(mut self, outcome: Outcome) {
        self.end(End::Returned(outcome));
    }

    fn end(&mut self, end: End) {
        let Some(start) = self.start.take() else {
            return;
        };
        let elapsed = start.elapsed().as_secs_f64();
        let (label, error_type, message) = end.describe(&self.span);
        let site = self.site;
        let span = &self.span;
        let mut span_attrs = Vec::new();
        if let Some(rollup) = rollup_of(span) {
            rollup_attrs(rollup, &mut span_attrs);
        }
        if let Some(error_type) = &error_type {
            mark_error(span, error_type, message.as_deref());
        }
        let name = self.name.as_ref();
        with_layer(span, |layer| {
            let i = &layer.instruments;
            let tenant = layer.tenant(span);
            if let (None, None) = (&error_type, name) {
                site.metrics.record_step(
                    i,
                    tenant.as_ref(),
                    || Self::attrs(site, None, tenant.as_ref()),
                    &StepRecord::Succeeded(elapsed),
                );
                return;
            }
            let mut attrs = Self::attrs(site, name, tenant.as_ref());
            i.step_active.add(-1, &attrs);
            attrs.push(static_kv(STEP_OUTCOME, label));
            if let Some(error_type) = error_type {
                attrs.push(KeyValue::new(semconv::ERROR_TYPE, cow_value(error_type)));
            }
            i.step_duration.record(elapsed, &attrs);
            i.step_calls.add(1, &attrs);
        });
        crate::span_state::set_attributes(span, span_attrs);
    }
}

/// A step's roll-up of the calls under it, under keys of our own: the calls'
/// spans carry `gen_ai.usage.*` and the cost, and a backend summing those over
/// a trace must count each call once.
fn rollup_attrs(rollup: Rollup, attrs: &mut Vec<KeyValue>) {
    attrs.push(KeyValue::new(
        ROLLUP_INPUT_TOKENS,
        i64::try_from(rollup.input_tokens).unwrap_or(i64::MAX),
    ));
    attrs.push(KeyValue::new(
        ROLLUP_OUTPUT_TOKENS,
        i64::try_from(rollup.output_tokens).unwrap_or(i64::MAX),
    ));
    if rollup.priced {
        attrs.push(KeyValue::new(ROLLUP_COST, rollup.cost_usd));
    }
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        if self.start.is_some() {
            self.end(End::Dropped);
        }
    }
}

/// The request model of an LLM call: a literal, or the value of an expression.
#[derive(Debug, Clone)]
pub struct ModelName {
    value: StringValue,
    /// `{operation} {model}`, when the site keeps it (see [`ModelNames`]).
    span_name: Option<&'static str>,
}

impl ModelName {
    /// A model named by a literal in the attribute.
    pub fn literal(name: &'static str) -> Self {
        Self {
            value: StringValue::from(name),
            span_name: None,
        }
    }

    /// A model named by an expression, evaluated when the call starts.
    pub fn of<M: AsRef<str> + ?Sized>(model: &M) -> Self {
        Self {
            value: StringValue::from(Arc::<str>::from(model.as_ref())),
            span_name: None,
        }
    }

    /// The model name.
    pub fn as_str(&self) -> &str {
        self.value.as_str()
    }

    /// `{operation} {model}`, the span name the conventions prescribe.
    pub fn span_name(&self, site: &LlmSite) -> Cow<'static, str> {
        match self.span_name {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!("{} {}", site.operation, self.as_str())),
        }
    }
}

/// How many models chosen at run time a site keeps, and how long each may be.
const MAX_MODELS: usize = 8;
const MAX_KEPT_MODEL_BYTES: usize = 128;

/// The models an `#[llm_call]` site with `model = <expression>` has seen, each
/// with its shared string and its span name, made once.
///
/// Without it every call copied the model into a new `Arc<str>` and formatted
/// `{operation} {model}` into a new `String`, and both were freed on the batch
/// processor's thread, a slow free with glibc (see `docs/performance.md`). The
/// span name must be a `&'static str` for the SDK to borrow it, so a kept name
/// is leaked: at most `MAX_MODELS` (8) names of at most `MAX_KEPT_MODEL_BYTES` (128 bytes)
/// per site, never freed and never evicted (eviction would leak without bound).
/// A site that sees more models, or longer ones, copies them per call as before.
///
/// The slots are filled once each and never change, so finding a kept model is
/// a few atomic loads: no lock for calls from many threads to contend on.
#[derive(Debug)]
pub struct ModelNames([OnceLock<(StringValue, &'static str)>; MAX_MODELS]);

impl ModelNames {
    /// An empty list, for the site's `static`.
    #[allow(clippy::declare_interior_mutable_const)] // each site's static gets its own copy
    pub const NEW: ModelNames = ModelNames([const { OnceLock::new() }; MAX_MODELS]);

    fn get(&self, operation: &str, model: &str) -> ModelName {
        let kept = |(value, name): &(StringValue, &'static str)| ModelName {
            value: value.clone(),
            span_name: Some(*name),
        };
        for slot in &self.0 {
            let entry = match slot.get() {
                Some(entry) => entry,
                None if model.len() > MAX_KEPT_MODEL_BYTES => break,
                // A thread that fills this slot first, with this model or
                // another, wins it; the others wait for it, then read it.
                None => slot.get_or_init(|| {
                    let name: &'static str =
                        Box::leak(format!("{operation} {model}").into_boxed_str());
                    (StringValue::from(Arc::<str>::from(model)), name)
                }),
            };
            if entry.0.as_str() == model {
                return kept(entry);
            }
        }
        ModelName::of(model)
    }
}

/// Drives one `#[llm_call]` call.
pub struct LlmGuard {
    site: &'static LlmSite,
    provider: &'static str,
    model: ModelName,
    span: Span,
    /// When the call started; `None` once it ended, or when nobody listens (a
    /// disabled span), so that an uninstrumented run reads no clock at all.
    start: Option<Instant>,
    /// This call asked for its content whatever the process's setting
    /// (`capture_content = true`).
    capture: bool,
}

impl LlmGuard {
    /// Starts the call's clock.
    pub fn start(
        site: &'static LlmSite,
        model: ModelName,
        provider: &'static str,
        span: Span,
    ) -> Self {
        let start = (!span.is_disabled()).then(Instant::now);
        Self {
            site,
            provider,
            model,
            span,
            start,
            capture: false,
        }
    }

    /// The call's span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Asks for this call's messages to be captured even when content capture is
    /// off for the process (`#[llm_call(capture_content = true)]`).
    pub fn capture_content(mut self) -> Self {
        request_capture(&self.span);
        self.capture = true;
        self
    }

    /// `None` when nothing listens (the response is not read at all), else
    /// whether the response's messages are to be read (content is captured).
    pub fn reading(&self) -> Option<bool> {
        self.start.is_some().then(|| self.wants_content())
    }

    /// Whether this call's content is captured, so that its response's messages
    /// are worth reading.
    pub(crate) fn wants_content(&self) -> bool {
        if self.start.is_none() {
            return false;
        }
        if self.capture {
            return true;
        }
        if !crate::recording::capture_somewhere() {
            return false;
        }
        let mut on = false;
        with_layer(&self.span, |layer| on = layer.options.capture.any());
        on
    }

    pub(crate) fn mark_streaming(&self) {
        self.span
            .set_otel_attribute(semconv::GEN_AI_REQUEST_STREAM, true);
    }

    /// Notes that the first chunk of the call's stream arrived at `at`; the
    /// call's end records it.
    pub(crate) fn note_first_chunk(&self, at: Instant) {
        if self.start.is_some() {
            note_first_chunk(&self.span, at);
        }
    }

    /// Records what the call returned: outcome, usage, response model and id,
    /// finish reasons.
    pub fn finish(mut self, outcome: Outcome, report: ResponseReport) {
        self.end(End::Returned(outcome), report);
    }

    fn end(&mut self, end: End, report: ResponseReport) {
        let Some(start) = self.start.take() else {
            return;
        };
        let elapsed = start.elapsed().as_secs_f64();
        let span = &self.span;
        let (_, error_type, message) = end.describe(span);
        let mut attrs: Vec<KeyValue> = Vec::with_capacity(8);
        if let Some(model) = &report.response_model {
            attrs.push(KeyValue::new(
                Key::from_static_str(semconv::GEN_AI_RESPONSE_MODEL),
                model.clone(),
            ));
        }
        if let Some(id) = &report.response_id {
            attrs.push(KeyValue::new(
                Key::from_static_str(semconv::GEN_AI_RESPONSE_ID),
                id.clone(),
            ));
        }
        if !report.finish_reasons.is_empty() {
            let reasons: Vec<StringValue> = report
                .finish_reasons
                .iter()
                .cloned()
                .map(StringValue::from)
                .collect();
            attrs.push(KeyValue::new(
                Key::from_static_str(semconv::GEN_AI_RESPONSE_FINISH_REASONS),
                Value::Array(opentelemetry::Array::String(reasons)),
            ));
        }
        let usage = report.usage.unwrap_or_default();
        let counts = [
            (semconv::GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens),
            (semconv::GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens),
            (
                semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
                usage.cache_read_input_tokens,
            ),
            (
                semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                usage.cache_creation_input_tokens,
            ),
            (
                semconv::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
                usage.reasoning_output_tokens,
            ),
        ];
        for (key, count) in counts {
            if let Some(count) = count {
                attrs.push(KeyValue::new(
                    Key::from_static_str(key),
                    i64::try_from(count).unwrap_or(i64::MAX),
                ));
            }
        }
        let (site, provider, model) = (self.site, self.provider, &self.model);
        if let Some(error_type) = &error_type {
            mark_error(span, error_type, message.as_deref());
        }
        // Only filled when content is captured (`wants_content`).
        if !report.output.is_empty() {
            crate::content::record_output_of(span, &report.output);
        }
        let mut attrs = Some(attrs);
        with_layer(span, |layer| {
            let Some(mut attrs) = attrs.take() else {
                return;
            };
            if layer.options.legacy_names {
                legacy_names(provider, &usage, &mut attrs);
            }
            let cost = price(layer, model, &report);
            if let Some(cost) = cost {
                attrs.push(KeyValue::new(COST_USD, cost));
            }
            if layer.options.capture.as_event() {
                if let Some(content) = take_details(span) {
                    let mut details = vec![
                        static_kv(semconv::GEN_AI_OPERATION_NAME, site.operation),
                        static_kv(semconv::GEN_AI_PROVIDER_NAME, provider),
                        KeyValue::new(
                            semconv::GEN_AI_REQUEST_MODEL,
                            Value::String(model.value.clone()),
                        ),
                    ];
                    details.extend(
                        attrs
                            .iter()
                            .filter(|kv| kv.key.as_str().starts_with("gen_ai."))
                            .cloned(),
                    );
                    if let Some(error_type) = &error_type {
                        details.push(KeyValue::new(
                            semconv::ERROR_TYPE,
                            cow_value(error_type.clone()),
                        ));
                    }
                    details.extend(content);
                    span.add_otel_event(crate::attributes::DETAILS_EVENT, details);
                }
            }
            let rollup = report.usage.map(|usage| Rollup {
                input_tokens: usage.input_tokens.unwrap_or(0),
                output_tokens: usage.output_tokens.unwrap_or(0),
                cost_usd: cost.unwrap_or(0.0),
                priced: cost.is_some(),
            });
            // A wrapped call's tokens and cost are its inner call's: counted there.
            let finished = finish_llm_span(span, attrs, rollup, start);
            if finished.owns {
                record_llm_metrics(
                    layer,
                    span,
                    CallSite {
                        site,
                        provider,
                        model,
                        server: finished.server.as_ref(),
                    },
                    Timings {
                        elapsed,
                        first_chunk: finished.first_chunk,
                    },
                    error_type.clone(),
                    &report,
                    cost,
                );
            }
        });
        if let Some(attrs) = attrs {
            crate::span_state::set_attributes(span, attrs);
        }
    }
}

/// The deprecated names older backends still read, in the compatibility mode.
fn legacy_names(provider: &'static str, usage: &Usage, attrs: &mut Vec<KeyValue>) {
    attrs.push(static_kv(semconv::GEN_AI_SYSTEM, provider));
    if let Some(n) = usage.input_tokens {
        attrs.push(KeyValue::new(
            Key::from_static_str(semconv::GEN_AI_USAGE_PROMPT_TOKENS),
            i64::try_from(n).unwrap_or(i64::MAX),
        ));
    }
    if let Some(n) = usage.output_tokens {
        attrs.push(KeyValue::new(
            Key::from_static_str(semconv::GEN_AI_USAGE_COMPLETION_TOKENS),
            i64::try_from(n).unwrap_or(i64::MAX),
        ));
    }
}

/// The call's cost, when the price table prices the model that answered (or,
/// failing that, the one asked for) and the usage is known.
fn price(layer: &InstrumentsLayer, model: &ModelName, report: &ResponseReport) -> Option<f64> {
    let prices = layer.options.prices.as_ref()?;
    let usage = report.usage?;
    prices.call_cost(
        report.response_model.as_deref(),
        Some(model.as_str()),
        &usage,
    )
}

/// What a model call's metric attributes are made from.
struct CallMetric<'a> {
    layer: &'a InstrumentsLayer,
    site: &'static LlmSite,
    provider: &'static str,
    model: &'a ModelName,
    tenant: Option<&'a StringValue>,
    server: Option<&'a Server>,
}

impl CallMetric<'_> {
    /// The attributes of the call's duration (and, with the token type, of its
    /// token counts); time to first chunk uses them without the two known only
    /// at the end.
    fn attrs(
        &self,
        response_model: Option<&str>,
        error_type: Option<Cow<'static, str>>,
    ) -> Vec<KeyValue> {
        let Self {
            layer,
            site,
            provider,
            model,
            tenant,
            server,
        } = self;
        let mut attrs: Vec<KeyValue> = Vec::with_capacity(10 + site.attributes.len());
        attrs.push(static_kv(semconv::GEN_AI_OPERATION_NAME, site.operation));
        attrs.push(static_kv(semconv::GEN_AI_PROVIDER_NAME, provider));
        attrs.push(KeyValue::new(
            semconv::GEN_AI_REQUEST_MODEL,
            Value::String(model.value.clone()),
        ));
        if let Some(response_model) = response_model {
            attrs.push(KeyValue::new(
                semconv::GEN_AI_RESPONSE_MODEL,
                response_model.to_owned(),
            ));
        }
        if let Some(error_type) = error_type {
            attrs.push(KeyValue::new(semconv::ERROR_TYPE, cow_value(error_type)));
        }
        if let Some(server) = server {
            attrs.push(KeyValue::new(
                semconv::SERVER_ADDRESS,
                server.address.clone(),
            ));
            attrs.push(KeyValue::new(semconv::SERVER_PORT, server.port));
        }
        attrs.extend(site.attributes.iter().map(|(k, v)| static_kv(k, v)));
        if layer.options.legacy_names {
            attrs.push(static_kv(semconv::GEN_AI_SYSTEM, provider));
        }
        if let Some(tenant) = tenant {
            attrs.push(KeyValue::new(crate::context::TENANT, (*tenant).clone()));
        }
        attrs
    }
}

#[allow(clippy::too_many_arguments)]
/// Which call a metric is for: its site, provider, model and server.
struct CallSite<'a> {
    site: &'static LlmSite,
    provider: &'static str,
    model: &'a ModelName,
    server: Option<&'a Server>,
}

/// How long a call took, and when its first chunk came (a stream), in seconds.
struct Timings {
    elapsed: f64,
    first_chunk: Option<f64>,
}

fn record_llm_metrics(
    layer: &InstrumentsLayer,
    span: &Span,
    call: CallSite<'_>,
    timings: Timings,
    error_type: Option<Cow<'static, str>>,
    report: &ResponseReport,
    cost: Option<f64>,
) {
    let CallSite {
        site,
        provider,
        model,
        server,
    } = call;
    let Timings {
        elapsed,
        first_chunk,
    } = timings;
    let i = &layer.instruments;
    let tenant = layer.tenant(span);
    let metric = CallMetric {
        layer,
        site,
        provider,
        model,
        tenant: tenant.as_ref(),
        server,
    };
    if let Some(secs) = first_chunk {
        // The duration's attributes, bar what is only known at the end
        // (response model, error type): the two slice the same way.
        i.time_to_first_chunk
            .record(secs, &metric.attrs(None, None));
    }
    let response_model = report.response_model.as_deref();
    let attrs = |error_type| metric.attrs(response_model, error_type);
    if report.usage.is_some() && layer.options.prices.is_some() {
        // Cost series carry only provider, model and tenant: few of each.
        let mut cost_attrs = vec![
            static_kv(semconv::GEN_AI_PROVIDER_NAME, provider),
            KeyValue::new(
                semconv::GEN_AI_REQUEST_MODEL,
                Value::String(model.value.clone()),
            ),
        ];
        if let Some(tenant) = &tenant {
            cost_attrs.push(KeyValue::new(crate::context::TENANT, tenant.clone()));
        }
        match cost {
            Some(cost) => i.llm_cost.add(cost, &cost_attrs),
            None => i.llm_unpriced_calls.add(1, &cost_attrs),
        }
    }
    // Token counts the provider did not report are left out, never guessed.
    let usage = report.usage.unwrap_or_default();
    if error_type.is_none() {
        site.metrics.record_llm(
            i,
            &LlmKey {
                model: model.as_str(),
                response_model: report.response_model.as_deref(),
                tenant: tenant.as_ref(),
                server,
            },
            || attrs(None),
            &LlmRecord {
                duration: elapsed,
                input_tokens: report.usage.and(usage.input_tokens),
                output_tokens: report.usage.and(usage.output_tokens),
            },
        );
        return;
    }
    let mut attrs = attrs(error_type);
    i.llm_duration.record(elapsed, &attrs);
    if report.usage.is_none() {
        return;
    }
    for (kind, count) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
    ] {
        if let Some(count) = count {
            attrs.push(static_kv(semconv::GEN_AI_TOKEN_TYPE, kind));
            i.token_usage.record(count, &attrs);
            attrs.pop();
        }
    }
}

impl Drop for LlmGuard {
    fn drop(&mut self) {
        if self.start.is_some() {
            self.end(End::Dropped, ResponseReport::default());
        }
    }
}
