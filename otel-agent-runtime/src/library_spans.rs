//! GenAI spans that other libraries make (rig, genai, the user's own
//! `info_span!("chat", gen_ai.operation.name = "chat", ...)`) are completed
//! like the attributes' own: a call to a model gets the conventions' metrics
//! (duration, token usage, time to first chunk), its cost, and a place in the
//! steps' roll-ups, counted once however it nests with other calls.
//!
//! The layer reads what the span says about itself, when it starts and when
//! fields are recorded later (rig records usage after the response), and
//! records the metrics when the span closes.

use std::time::Instant;

use opentelemetry::KeyValue;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::Metadata;

use crate::attributes::is_attribute_span;
use crate::export_guard::is_inference_operation;
use crate::recording::RecordingOptions;
use crate::response::bounded_tokens;
use crate::semconv;

/// On a library's GenAI span: what it said about its call so far.
#[derive(Debug)]
pub(crate) struct LibraryCall {
    pub(crate) started: Instant,
    pub(crate) operation: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) request_model: Option<String>,
    pub(crate) response_model: Option<String>,
    pub(crate) error_type: Option<String>,
    /// `otel.status_code = "error"`: failed, whether or not it says how.
    pub(crate) failed: bool,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_read_tokens: Option<u64>,
    pub(crate) time_to_first_chunk: Option<f64>,
    pub(crate) server_address: Option<String>,
    pub(crate) server_port: Option<i64>,
    /// The agent's, tool's or workflow's name, on a step span.
    pub(crate) step_name: Option<String>,
    /// The series the step was counted in flight in, once its name was known.
    pub(crate) in_flight: Option<Vec<KeyValue>>,
    /// An inference span nested in this one talks to the provider and counts
    /// the call instead.
    pub(crate) delegated: bool,
}

/// Whether a span may describe a GenAI operation: it declares
/// `gen_ai.operation.name` (set at once, or recorded later). Spans of the
/// attributes are completed by their guards, not here.
pub(crate) fn declares_operation(metadata: &Metadata<'_>) -> bool {
    !is_attribute_span(metadata)
        && metadata
            .fields()
            .field(semconv::GEN_AI_OPERATION_NAME)
            .is_some()
}

impl LibraryCall {
    pub(crate) fn start(attrs: &Attributes<'_>) -> Self {
        let mut call = Self {
            started: Instant::now(),
            operation: None,
            provider: None,
            request_model: None,
            response_model: None,
            error_type: None,
            failed: false,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            time_to_first_chunk: None,
            server_address: None,
            server_port: None,
            step_name: None,
            in_flight: None,
            delegated: false,
        };
        attrs.record(&mut call);
        call
    }

    pub(crate) fn update(&mut self, values: &Record<'_>) {
        values.record(self);
    }

    /// Whether the span is a call to a model (so far as it has said).
    pub(crate) fn is_inference(&self) -> bool {
        self.operation
            .as_deref()
            .is_some_and(is_inference_operation)
    }

    /// Whether the span has not said yet which operation it is.
    pub(crate) fn operation_unknown(&self) -> bool {
        self.operation.is_none()
    }

    /// Whether the span is an agent, tool or workflow step.
    pub(crate) fn is_step(&self) -> bool {
        matches!(
            self.operation.as_deref(),
            Some("invoke_agent" | "execute_tool" | "invoke_workflow")
        )
    }

    /// The usage the span reported, for the steps' roll-ups.
    pub(crate) fn tokens(&self) -> Option<(u64, u64)> {
        if self.input_tokens.is_none() && self.output_tokens.is_none() {
            return None;
        }
        Some((
            self.input_tokens.unwrap_or(0),
            self.output_tokens.unwrap_or(0),
        ))
    }

    /// The call's cost from the pipeline's price table, when it has one.
    pub(crate) fn cost(&self, options: &RecordingOptions) -> Option<f64> {
        let prices = options.prices.as_ref()?;
        let (input, output) = self.tokens()?;
        let mut usage = crate::Usage::new(input, output);
        usage.cache_read_input_tokens = self.cache_read_tokens;
        prices.call_cost(
            self.response_model.as_deref(),
            self.request_model.as_deref(),
            &usage,
        )
    }

    fn set_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            semconv::GEN_AI_OPERATION_NAME => &mut self.operation,
            semconv::GEN_AI_PROVIDER_NAME | semconv::GEN_AI_SYSTEM => {
                // The current name wins over the deprecated one.
                if field.name() == semconv::GEN_AI_SYSTEM && self.provider.is_some() {
                    return;
                }
                &mut self.provider
            }
            semconv::GEN_AI_REQUEST_MODEL => &mut self.request_model,
            semconv::GEN_AI_RESPONSE_MODEL => &mut self.response_model,
            semconv::ERROR_TYPE => &mut self.error_type,
            semconv::SERVER_ADDRESS => &mut self.server_address,
            semconv::GEN_AI_AGENT_NAME
            | semconv::GEN_AI_TOOL_NAME
            | semconv::GEN_AI_WORKFLOW_NAME => &mut self.step_name,
            "otel.status_code" => {
                self.failed = value.eq_ignore_ascii_case("error");
                return;
            }
            // Counts recorded as text (or by `Debug`) are still counts.
            _ => return self.set_number(field, value.trim().parse().ok()),
        };
        *slot = Some(value.to_owned());
    }

    fn set_number(&mut self, field: &Field, value: Option<f64>) {
        let Some(value) = value.filter(|v| v.is_finite() && *v >= 0.0) else {
            return;
        };
        match field.name() {
            semconv::GEN_AI_USAGE_INPUT_TOKENS | semconv::GEN_AI_USAGE_PROMPT_TOKENS => {
                self.input_tokens = Some(bounded_tokens(value as u64));
            }
            semconv::GEN_AI_USAGE_OUTPUT_TOKENS | semconv::GEN_AI_USAGE_COMPLETION_TOKENS => {
                self.output_tokens = Some(bounded_tokens(value as u64));
            }
            semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK => self.time_to_first_chunk = Some(value),
            semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS => {
                self.cache_read_tokens = Some(bounded_tokens(value as u64));
            }
            semconv::SERVER_PORT => self.server_port = Some(value as i64),
            _ => {}
        }
    }
}

impl Visit for LibraryCall {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set_str(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            // Exact, whatever the size: an f64 would round past 2^53.
            semconv::GEN_AI_USAGE_INPUT_TOKENS | semconv::GEN_AI_USAGE_PROMPT_TOKENS => {
                self.input_tokens = Some(bounded_tokens(value));
            }
            semconv::GEN_AI_USAGE_OUTPUT_TOKENS | semconv::GEN_AI_USAGE_COMPLETION_TOKENS => {
                self.output_tokens = Some(bounded_tokens(value));
            }
            semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS => {
                self.cache_read_tokens = Some(bounded_tokens(value))
            }
            _ => self.set_number(field, Some(value as f64)),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match u64::try_from(value) {
            Ok(value) => self.record_u64(field, value),
            Err(_) => self.set_number(field, None),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set_number(field, Some(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // Formatting is for the few fields read here, not for a library's
        // request or message fields.
        let wanted = matches!(
            field.name(),
            semconv::GEN_AI_OPERATION_NAME
                | semconv::GEN_AI_PROVIDER_NAME
                | semconv::GEN_AI_SYSTEM
                | semconv::GEN_AI_REQUEST_MODEL
                | semconv::GEN_AI_RESPONSE_MODEL
                | semconv::ERROR_TYPE
                | semconv::SERVER_ADDRESS
                | semconv::SERVER_PORT
                | semconv::GEN_AI_USAGE_INPUT_TOKENS
                | semconv::GEN_AI_USAGE_OUTPUT_TOKENS
                | semconv::GEN_AI_USAGE_PROMPT_TOKENS
                | semconv::GEN_AI_USAGE_COMPLETION_TOKENS
                | semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
                | semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
                | semconv::GEN_AI_AGENT_NAME
                | semconv::GEN_AI_TOOL_NAME
                | semconv::GEN_AI_WORKFLOW_NAME
                | "otel.status_code"
        );
        if !wanted {
            return;
        }
        let text = format!("{value:?}");
        self.set_str(field, text.trim_matches('"'));
    }
}
