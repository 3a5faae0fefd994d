//! The one place that decides what of a finished span leaves the process.
//!
//! Every span the tracer provider ends passes here before any processor or
//! exporter sees it, whoever made it: the attributes, a framework's `tracing`
//! spans (rig, genai), the user's own spans, or OpenTelemetry-native code. So the
//! two promises hold for all of them without a check in each caller:
//! - **Content only on request.** Prompts, completions, system instructions and
//!   tool arguments and results are dropped unless capture is on; when it is,
//!   they pass the configured redaction and size limit, ours and foreign alike.
//! - **Usage counted once.** `gen_ai.usage.*` and the cost attribute stay only on
//!   inference spans (the call that talked to the provider). On agent, tool and
//!   workflow spans they are renamed to this runtime's roll-up keys, so that
//!   summing a usage attribute over a trace gives what the providers reported.

use std::borrow::Cow;

use opentelemetry::{Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use serde_json::Value as Json;

use crate::attributes::{
    CAPTURE_REQUESTED, COST_USD, DELEGATED, DETAILS_EVENT, OPENINFERENCE_SPAN_KIND, ROLLUP_COST,
    ROLLUP_INPUT_TOKENS, ROLLUP_OUTPUT_TOKENS, ROLLUP_PREFIX,
};
use crate::recording::RecordingOptions;
use crate::semconv;

/// What a key is to the guard. Every exported attribute is classified once,
/// so the common case (nothing to do) costs one prefix test per attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyClass {
    Other,
    Content,
    Operation,
    /// `gen_ai.usage.*` or the cost attribute.
    Usage,
    /// Typed as an integer by the conventions (request max tokens, seed,
    /// server port) or by us (a roll-up count).
    Integer,
    Marker,
    Delegated,
    ErrorType,
}

#[inline]
fn classify(key: &str) -> KeyClass {
    // Every key the rules read starts with one of these letters (gen_ai.*,
    // otel_agent.*, output.value, error.type, server.port, input.value): most
    // others are told apart here.
    if !matches!(
        key.as_bytes().first(),
        Some(b'g' | b'o' | b'e' | b's' | b'i')
    ) {
        return KeyClass::Other;
    }
    // Exact names first: a `match` on strings tests the length before the
    // bytes, so most keys are told apart in a few instructions.
    match key {
        semconv::GEN_AI_INPUT_MESSAGES
        | semconv::GEN_AI_OUTPUT_MESSAGES
        | semconv::GEN_AI_SYSTEM_INSTRUCTIONS
        | crate::attributes::INPUT_VALUE
        | crate::attributes::OUTPUT_VALUE
        | semconv::GEN_AI_TOOL_CALL_ARGUMENTS
        | semconv::GEN_AI_TOOL_CALL_RESULT
        | semconv::GEN_AI_TOOL_DEFINITIONS => KeyClass::Content,
        semconv::GEN_AI_OPERATION_NAME => KeyClass::Operation,
        // `tracing-opentelemetry` exports a `u64` field as text.
        semconv::GEN_AI_REQUEST_MAX_TOKENS
        | semconv::GEN_AI_REQUEST_SEED
        | semconv::GEN_AI_REQUEST_CHOICE_COUNT
        | semconv::SERVER_PORT => KeyClass::Integer,
        COST_USD => KeyClass::Usage,
        CAPTURE_REQUESTED => KeyClass::Marker,
        DELEGATED => KeyClass::Delegated,
        semconv::ERROR_TYPE => KeyClass::ErrorType,
        _ if key.starts_with(USAGE_PREFIX) => KeyClass::Usage,
        _ if is_deprecated_content(key) => KeyClass::Content,
        _ if key.starts_with(ROLLUP_PREFIX) && key.ends_with("tokens") => KeyClass::Integer,
        _ => KeyClass::Other,
    }
}

/// The deprecated `gen_ai.prompt*` / `gen_ai.completion*` forms, indexed ones
/// (`gen_ai.prompt.0.content`) included. `gen_ai.prompt.name` is not one of
/// them: it names an MCP prompt template, it does not hold its text.
fn is_deprecated_content(key: &str) -> bool {
    if !key.starts_with("gen_ai.") || key == semconv::GEN_AI_PROMPT_NAME {
        return false;
    }
    [semconv::GEN_AI_PROMPT, semconv::GEN_AI_COMPLETION]
        .iter()
        .any(|prefix| {
            key.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
}

/// Whether `key` holds message content: the conventions' content attributes and
/// the deprecated `gen_ai.prompt*` / `gen_ai.completion*` forms.
pub(crate) fn is_content_key(key: &str) -> bool {
    classify(key) == KeyClass::Content
}

/// Whether a span of this `gen_ai.operation.name` is an agent, tool or
/// workflow step: usage on it is a sum of calls, kept under the roll-up keys.
pub(crate) fn is_step_operation(operation: &str) -> bool {
    matches!(
        operation,
        "invoke_agent" | "execute_tool" | "invoke_workflow" | "create_agent"
    )
}

/// Whether a span of this `gen_ai.operation.name` is a call to a model, the one
/// span of a call that may carry its usage.
pub(crate) fn is_inference_operation(operation: &str) -> bool {
    matches!(
        operation,
        "chat" | "text_completion" | "generate_content" | "embeddings"
    )
}

/// What the guard needs of the pipeline's recording options.
pub(crate) struct ExportGuard {
    options: std::sync::Arc<RecordingOptions>,
}

impl std::fmt::Debug for ExportGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportGuard")
            .field("capture", &self.options.capture)
            .finish_non_exhaustive()
    }
}

impl ExportGuard {
    pub(crate) fn new(options: std::sync::Arc<RecordingOptions>) -> Self {
        Self { options }
    }

    /// Applies the rules to a finished span, in place.
    pub(crate) fn apply(&self, span: &mut SpanData) {
        let mut content = false;
        let mut requested = false;
        let mut operation = None;
        let mut usage = false;
        let mut priced = false;
        let mut counts_as_text = false;
        let mut error_type = false;
        let mut delegated = false;
        // The attributes the rules read, to find one set twice: a library
        // that records a field twice (rig records the operation, and a
        // streamed call's usage, twice) gets both values exported, and
        // backends would count both. Other keys are not compared, to keep
        // this pass short for every span.
        let mut read = [0usize; 24];
        let mut seen = 0;
        let mut duplicated = false;
        for (at, kv) in span.attributes.iter().enumerate() {
            let class = classify(kv.key.as_str());
            match class {
                KeyClass::Other => continue,
                KeyClass::Content => content = true,
                KeyClass::Operation => operation = Some(kv.value.as_str()),
                KeyClass::Usage => {
                    usage = true;
                    priced |= kv.key.as_str() == COST_USD;
                    counts_as_text |= matches!(kv.value, Value::String(_));
                }
                KeyClass::Integer => {
                    counts_as_text |= matches!(kv.value, Value::String(_));
                }
                KeyClass::Marker => requested = matches!(kv.value, Value::Bool(true)),
                KeyClass::Delegated => delegated = true,
                KeyClass::ErrorType => error_type = true,
            }
            let key = kv.key.as_str();
            duplicated = duplicated
                || read[..seen]
                    .iter()
                    .any(|&i| span.attributes[i].key.as_str() == key);
            if seen < read.len() {
                read[seen] = at;
                seen += 1;
            }
        }
        // Decided before the attributes change.
        let inference = operation
            .as_ref()
            .is_some_and(|op| is_inference_operation(op));
        // Usage stays on any call to a provider (a rerank or an image too);
        // it moves off steps, and off a call a nested call counted.
        let move_usage =
            usage && (delegated || operation.as_ref().is_some_and(|op| is_step_operation(op)));
        let to_price = usage && inference && !delegated && !priced && self.options.prices.is_some();
        // Owned only for a span named by its operation alone (a library's).
        let bare_name = operation
            .as_ref()
            .filter(|op| span.name == op.as_ref())
            .map(|op| op.to_string());
        if operation.is_some() {
            complete_genai_span(span, bare_name.as_deref(), inference, error_type);
        }
        if duplicated {
            keep_last_values(&mut span.attributes);
        }
        if requested || delegated {
            span.attributes.retain(|kv| {
                !matches!(
                    classify(kv.key.as_str()),
                    KeyClass::Marker | KeyClass::Delegated
                )
            });
        }
        // Error messages may quote what the user sent: a library's too.
        if let opentelemetry::trace::Status::Error { description } = &mut span.status {
            if let std::borrow::Cow::Owned(redacted) = self.options.redact(description) {
                *description = redacted.into();
            }
        }
        if content {
            self.guard_content(
                &mut span.attributes,
                self.options.capture.on_span() || requested,
            );
        }
        let as_event = self.options.capture.as_event();
        let mut emptied = false;
        for event in span.events.events.iter_mut() {
            if event
                .attributes
                .iter()
                .any(|kv| is_content_key(kv.key.as_str()))
            {
                self.guard_content(&mut event.attributes, as_event);
                emptied |= event.attributes.is_empty();
            }
        }
        if emptied {
            // An event that carried nothing but content says nothing once it is gone.
            span.events
                .events
                .retain(|e| e.name != DETAILS_EVENT || !e.attributes.is_empty());
        }
        if move_usage {
            move_usage_to_rollup(&mut span.attributes);
        }
        if counts_as_text {
            integers_typed(&mut span.attributes);
        }
        // A library's call is priced like ours (ours are priced already).
        if to_price {
            if let Some(cost) = self.price(&span.attributes) {
                span.attributes.push(KeyValue::new(COST_USD, cost));
            }
        }
        if let Some(limit) = self.options.attribute_value_length_limit {
            cap_values(&mut span.attributes, limit);
            for event in span.events.events.iter_mut() {
                cap_values(&mut event.attributes, limit);
            }
            for link in span.links.links.iter_mut() {
                cap_values(&mut link.attributes, limit);
            }
        }
        if operation_is(&span.attributes, "invoke_workflow")
            && !span
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == OPENINFERENCE_SPAN_KIND)
        {
            span.attributes
                .push(KeyValue::new(OPENINFERENCE_SPAN_KIND, "CHAIN"));
        }
    }

    /// The cost of the call a span describes, from its model and usage.
    fn price(&self, attributes: &[KeyValue]) -> Option<f64> {
        let prices = self.options.prices.as_ref()?;
        // The last value: a library may set a field twice.
        let get = |key: &str| attributes.iter().rev().find(|kv| kv.key.as_str() == key);
        let count = |key: &str| match get(key).map(|kv| &kv.value) {
            Some(Value::I64(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        let usage = crate::Usage {
            input_tokens: count(semconv::GEN_AI_USAGE_INPUT_TOKENS),
            output_tokens: count(semconv::GEN_AI_USAGE_OUTPUT_TOKENS),
            cache_read_input_tokens: count(semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
            ..crate::Usage::default()
        };
        let model = |key: &str| get(key).map(|kv| kv.value.as_str());
        prices.call_cost(
            model(semconv::GEN_AI_RESPONSE_MODEL).as_deref(),
            model(semconv::GEN_AI_REQUEST_MODEL).as_deref(),
            &usage,
        )
    }

    /// Drops content attributes, or, where `keep`, redacts and cuts them.
    fn guard_content(&self, attributes: &mut Vec<KeyValue>, keep: bool) {
        if !keep {
            attributes.retain(|kv| !is_content_key(kv.key.as_str()));
            return;
        }
        for kv in attributes.iter_mut() {
            if is_content_key(kv.key.as_str()) {
                kv.value = self.bounded(&kv.value);
            }
        }
    }

    /// Content as it may leave: redacted, and at most the size limit, JSON kept
    /// valid when it was JSON.
    fn bounded(&self, value: &Value) -> Value {
        let text = value.as_str();
        let max = self.options.max_content_bytes;
        let out = match serde_json::from_str::<Json>(&text) {
            Ok(json) if json.is_array() || json.is_object() => {
                let mut json = json;
                crate::text::map_strings(&mut json, &|s| self.options.redact(s).into_owned());
                crate::text::fit_json(&json, max)
            }
            _ => crate::text::cut(&self.options.redact(&text), max),
        };
        Value::String(StringValue::from(out))
    }
}

/// Whether the span's (last) `gen_ai.operation.name` is `operation`.
fn operation_is(attributes: &[KeyValue], operation: &str) -> bool {
    attributes
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == semconv::GEN_AI_OPERATION_NAME)
        .is_some_and(|kv| kv.value.as_str() == operation)
}

/// Cuts every text value to `limit` characters, the specification's attribute
/// value length limit (arrays of text element by element).
fn cap_values(attributes: &mut [KeyValue], limit: usize) {
    let cut = |text: &str| -> Option<String> {
        text.char_indices()
            .nth(limit)
            .map(|(at, _)| text[..at].to_owned())
    };
    for kv in attributes {
        match &mut kv.value {
            Value::String(text) => {
                if let Some(short) = cut(text.as_str()) {
                    *text = short.into();
                }
            }
            Value::Array(opentelemetry::Array::String(items)) => {
                for item in items.iter_mut() {
                    if let Some(short) = cut(item.as_str()) {
                        *item = short.into();
                    }
                }
            }
            _ => {}
        }
    }
}

/// What the conventions ask of any GenAI span, which a library may leave out:
/// the name `{operation} {subject}` (`chat gpt-4o`, `execute_tool search`) for
/// a span named by its operation alone, CLIENT for a call to a model, and an
/// `error.type` on a failed span.
fn complete_genai_span(
    span: &mut SpanData,
    bare_name: Option<&str>,
    inference: bool,
    error_type: bool,
) {
    if let Some(operation) = bare_name {
        let subject = match operation {
            "execute_tool" => semconv::GEN_AI_TOOL_NAME,
            "invoke_agent" => semconv::GEN_AI_AGENT_NAME,
            "invoke_workflow" => semconv::GEN_AI_WORKFLOW_NAME,
            _ => semconv::GEN_AI_REQUEST_MODEL,
        };
        // The last value: a library may set a field twice.
        let subject = span
            .attributes
            .iter()
            .rev()
            .find(|kv| kv.key.as_str() == subject)
            .map(|kv| kv.value.as_str().into_owned())
            .filter(|s| !s.is_empty());
        if let Some(subject) = subject {
            span.name = Cow::Owned(format!("{operation} {subject}"));
        }
    }
    if inference && span.span_kind == opentelemetry::trace::SpanKind::Internal {
        span.span_kind = opentelemetry::trace::SpanKind::Client;
    }
    if !error_type && matches!(span.status, opentelemetry::trace::Status::Error { .. }) {
        span.attributes.push(KeyValue::new(
            semconv::ERROR_TYPE,
            crate::error_type::ERROR_TYPE_OTHER,
        ));
    }
}

/// Keeps the last value of each attribute the rules read that was set more
/// than once, in place of the first (what "set" means in OpenTelemetry), and
/// drops the others.
fn keep_last_values(attributes: &mut Vec<KeyValue>) {
    let mut kept: Vec<KeyValue> = Vec::with_capacity(attributes.len());
    for kv in attributes.drain(..) {
        let checked = classify(kv.key.as_str()) != KeyClass::Other;
        match kept.iter_mut().find(|k| checked && k.key == kv.key) {
            Some(earlier) => earlier.value = kv.value,
            None => kept.push(kv),
        }
    }
    *attributes = kept;
}

fn is_usage_key(key: &str) -> bool {
    classify(key) == KeyClass::Usage
}

/// Renames every usage and cost attribute to its roll-up key, unless that key
/// is there already.
pub(crate) fn move_usage_to_rollup(attributes: &mut Vec<KeyValue>) {
    if !attributes.iter().any(|kv| is_usage_key(kv.key.as_str())) {
        return;
    }
    let (moved, mut kept): (Vec<KeyValue>, Vec<KeyValue>) = std::mem::take(attributes)
        .into_iter()
        .partition(|kv| is_usage_key(kv.key.as_str()));
    for kv in moved {
        let key = rollup_key(kv.key.as_str());
        if !kept.iter().any(|k| k.key.as_str() == key) {
            kept.push(KeyValue::new(Key::new(key), kv.value));
        }
    }
    *attributes = kept;
}

const USAGE_PREFIX: &str = "gen_ai.usage.";

/// Counts as integers: `tracing-opentelemetry` exports every `u64` field as
/// text, and a backend cannot sum text or compare it as a number.
fn integers_typed(attributes: &mut [KeyValue]) {
    for kv in attributes {
        let counted = matches!(
            classify(kv.key.as_str()),
            KeyClass::Usage | KeyClass::Integer
        );
        if let (true, Value::String(text)) = (counted, &kv.value) {
            if let Ok(n) = text.as_str().trim().parse::<i64>() {
                kv.value = Value::I64(n);
            }
        }
    }
}

/// `gen_ai.usage.input_tokens` -> `otel_agent.rollup.usage.input_tokens`,
/// `otel_agent.cost.usd` -> `otel_agent.rollup.cost.usd`.
fn rollup_key(key: &str) -> Cow<'static, str> {
    match key {
        semconv::GEN_AI_USAGE_INPUT_TOKENS => Cow::Borrowed(ROLLUP_INPUT_TOKENS),
        semconv::GEN_AI_USAGE_OUTPUT_TOKENS => Cow::Borrowed(ROLLUP_OUTPUT_TOKENS),
        COST_USD => Cow::Borrowed(ROLLUP_COST),
        other => {
            let rest = other.strip_prefix("gen_ai.").unwrap_or(other);
            Cow::Owned(format!("{ROLLUP_PREFIX}{rest}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_keys_include_the_deprecated_indexed_forms() {
        for key in [
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
            "gen_ai.prompt",
            "gen_ai.prompt.0.content",
            "gen_ai.completion",
            "gen_ai.completion.1.role",
        ] {
            assert!(is_content_key(key), "{key}");
        }
        for key in [
            "gen_ai.prompt_name",
            "gen_ai.request.model",
            "gen_ai.tool.call.id",
            "gen_ai.usage.prompt_tokens",
            "gen_ai.completions_count",
        ] {
            assert!(!is_content_key(key), "{key}");
        }
    }

    #[test]
    fn token_counts_recorded_as_text_become_integers() {
        let mut attrs = vec![
            KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, "30"),
            KeyValue::new(ROLLUP_OUTPUT_TOKENS, "5"),
            KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, "42"),
        ];
        integers_typed(&mut attrs);
        assert_eq!(attrs[0].value, Value::I64(30));
        assert_eq!(attrs[1].value, Value::I64(5));
        assert_eq!(attrs[2].value, Value::from("42"));
    }

    #[test]
    fn usage_moves_to_rollup_keys_and_a_rollup_already_there_wins() {
        let mut attrs = vec![
            KeyValue::new(semconv::GEN_AI_OPERATION_NAME, "invoke_agent"),
            KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, 7_i64),
            KeyValue::new(semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 2_i64),
            KeyValue::new(COST_USD, 0.5),
            KeyValue::new(ROLLUP_INPUT_TOKENS, 9_i64),
        ];
        move_usage_to_rollup(&mut attrs);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(get(semconv::GEN_AI_USAGE_INPUT_TOKENS), None);
        assert_eq!(get(COST_USD), None);
        assert_eq!(get(ROLLUP_INPUT_TOKENS), Some(Value::I64(9)));
        assert_eq!(get(ROLLUP_COST), Some(Value::F64(0.5)));
        assert_eq!(
            get("otel_agent.rollup.usage.cache_read.input_tokens"),
            Some(Value::I64(2))
        );
        assert!(is_inference_operation("chat") && is_inference_operation("embeddings"));
        assert!(!is_inference_operation("invoke_agent") && !is_inference_operation("execute_tool"));
    }
}
