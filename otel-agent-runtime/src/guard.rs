//! What runs around an annotated call: the span's outcome and the metrics.
//!
//! A guard is created when the call starts and finished with the call's outcome.
//! If it is dropped unfinished, the call panicked or its future was dropped
//! (cancelled), and the guard records that instead: every span ends, every
//! in-flight count comes back down, whatever way the call leaves.

use std::time::Instant;

use crate::attributes::{COST_USD, ROLLUP_COST, ROLLUP_INPUT_TOKENS, ROLLUP_OUTPUT_TOKENS};
use crate::semconv;
use crate::SpanExt as _;
use opentelemetry::{Key, KeyValue, StringValue, Value};
use tracing::Span;

use crate::attributes::{cow_value, static_kv};
use crate::layer::{with_layer, InstrumentsLayer};
use crate::metrics;
use crate::outcome::{mark_error, End};
use crate::probe::{Outcome, ResponseReport};
use crate::response::Usage;
use crate::site::{LlmSite, ModelName, StepSite};
use crate::span_start::{CallStart, StepStart};
use crate::span_state::{
    finish_llm_span, note_first_chunk, request_capture, take_details, usage_totals_of, UsageTotals,
};

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

    /// Starts the step whose `span` was just made from `start`: counts it in
    /// flight and starts its clock.
    pub fn start(span: Span, start: StepStart) -> Self {
        let (site, name) = start.end();
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
            metrics::step_started(
                &layer.instruments,
                &Self::metric(site, name.as_ref()),
                tenant.as_ref(),
            );
        });
        Self {
            site,
            span,
            name,
            content,
            start: Some(Instant::now()),
        }
    }

    /// The step as its metrics see it.
    fn metric<'a>(site: &'a StepSite, name: Option<&'a StringValue>) -> metrics::Step<'a> {
        metrics::Step {
            operation: site.operation,
            name: site.name,
            run_time_name: name,
            attributes: site.attributes,
            series: &site.metrics,
        }
    }

    /// The step's span, to enter or instrument the body with.
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
        if let Some(rollup) = usage_totals_of(span) {
            usage_totals_attrs(rollup, &mut span_attrs);
        }
        if let Some(error_type) = &error_type {
            mark_error(span, error_type, message.as_deref());
        }
        let name = self.name.as_ref();
        with_layer(span, |layer| {
            let tenant = layer.tenant(span);
            metrics::step_ended(
                &layer.instruments,
                &Self::metric(site, name),
                tenant.as_ref(),
                elapsed,
                label,
                error_type,
            );
        });
        crate::span_state::set_attributes(span, span_attrs);
    }
}

/// A step's roll-up of the calls under it, under keys of our own: the calls'
/// spans carry `gen_ai.usage.*` and the cost, and a backend summing those over
/// a trace must count each call once.
fn usage_totals_attrs(rollup: UsageTotals, attrs: &mut Vec<KeyValue>) {
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
    /// Starts the clock of the call whose `span` was just made from `start`.
    pub fn start(span: Span, start: CallStart) -> Self {
        let (site, provider, model) = start.end();
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
            let rollup = report.usage.map(|usage| UsageTotals {
                input_tokens: usage.input_tokens.unwrap_or(0),
                output_tokens: usage.output_tokens.unwrap_or(0),
                cost_usd: cost.unwrap_or(0.0),
                priced: cost.is_some(),
            });
            // A wrapped call's tokens and cost are its inner call's: counted there.
            let finished = finish_llm_span(span, attrs, rollup, start);
            if finished.owns {
                let tenant = layer.tenant(span);
                let call = metrics::Call {
                    operation: site.operation,
                    provider,
                    model: &model.value,
                    attributes: site.attributes,
                    series: &site.metrics,
                    server: finished.server.as_ref(),
                };
                let end = metrics::CallEnd {
                    elapsed,
                    first_chunk: finished.first_chunk,
                    error_type: error_type.clone(),
                    response_model: report.response_model.as_deref(),
                    usage: report.usage,
                    cost,
                };
                metrics::call_ended(
                    &layer.instruments,
                    &layer.options,
                    tenant.as_ref(),
                    &call,
                    end,
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

impl Drop for LlmGuard {
    fn drop(&mut self) {
        if self.start.is_some() {
            self.end(End::Dropped, ResponseReport::default());
        }
    }
}
