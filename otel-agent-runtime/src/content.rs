//! Prompts and completions: never recorded unless asked for.
//!
//! With capture off (the default), [`record_input`] and friends return before
//! looking at their argument: no copy of a prompt is made, so none can leak into
//! spans, events, metrics or the console. With capture on
//! (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, the builder, or
//! `#[llm_call(capture_content = true)]` for one call), messages are recorded in the
//! GenAI conventions' JSON shape, passed through a redaction hook (by default one
//! that scrubs API keys, bearer tokens and passwords) and truncated to a size
//! limit in a way that keeps the JSON valid.
//!
//! ```
//! use otel_agent_runtime::content::{self, Message};
//!
//! # fn call_model(_: &str) -> String { String::new() }
//! #[otel_agent_runtime::llm_call(model = "gpt-4o")]
//! fn ask(question: &str) -> String {
//!     content::record_input(&[Message::system("Be brief."), Message::user(question)]);
//!     let answer = call_model(question);
//!     content::record_output(&[Message::assistant(&answer).finish_reason("stop")]);
//!     answer
//! }
//! ```

use crate::attributes::{
    CAPTURE_REQUESTED, DETAILS_EVENT, INPUT_MIME_TYPE, INPUT_VALUE, OUTPUT_MIME_TYPE, OUTPUT_VALUE,
};
use crate::SpanExt as _;
use opentelemetry::KeyValue;
use serde::Serialize;
use serde_json::Value as Json;
use tracing::Span;

use crate::layer::with_layer;
use crate::message::arguments_json;
pub use crate::message::{default_redactor, Message, Part, Redactor};
pub use crate::recording::DEFAULT_MAX_CONTENT_BYTES;
use crate::semconv;
use crate::span_state::{capture_requested, is_llm_span, is_ours};

fn record(key: &'static str, value: impl FnOnce() -> Json) {
    record_on(&Span::current(), key, || Some(value().to_string()));
}

/// Records `value` (JSON or text) under `key` on `span`, one of the
/// attributes' spans, as the capture mode says. `value` is not even built when
/// content is not captured.
pub(crate) fn record_on(span: &Span, key: &'static str, value: impl FnOnce() -> Option<String>) {
    if !is_ours(span) {
        return;
    }
    with_layer(span, |layer| {
        let mode = match layer.options.capture {
            mode if mode.any() => mode,
            // Asked for by this model call only (`capture_content = true`): a
            // registry lookup made only when capture is off for the process,
            // and only for a model call (a step cannot ask).
            _ if is_llm_span(span) && capture_requested(span) => crate::CaptureMode::SpanOnly,
            _ => return,
        };
        let Some(text) = value() else {
            return;
        };
        // Redaction and the size limit are applied where the span leaves the
        // process (`export_guard`), to this content and any other alike.
        if mode.on_span() {
            let mut attrs = vec![KeyValue::new(key, text.clone())];
            // A step's messages are what went into and came out of the whole
            // run: backends that show a run's input and output (Phoenix,
            // MLflow's previews) read them under these keys, not from the
            // conventions' message attributes.
            if !is_llm_span(span) {
                let mirror = match key {
                    semconv::GEN_AI_INPUT_MESSAGES => Some(INPUT_VALUE),
                    semconv::GEN_AI_OUTPUT_MESSAGES => Some(OUTPUT_VALUE),
                    _ => None,
                };
                if let Some(mirror) = mirror {
                    attrs.push(KeyValue::new(mirror, text.clone()));
                    attrs.push(KeyValue::new(
                        if mirror == INPUT_VALUE {
                            INPUT_MIME_TYPE
                        } else {
                            OUTPUT_MIME_TYPE
                        },
                        "application/json",
                    ));
                }
            }
            if !layer.options.capture.any() {
                attrs.push(KeyValue::new(CAPTURE_REQUESTED, true));
            }
            crate::span_state::set_attributes(span, attrs);
        }
        if mode.as_event() {
            // A model call's content goes out in one event per inference, with
            // the call's attributes, when it ends; a step's, as it comes.
            let content = KeyValue::new(key, text);
            if !crate::span_state::stash_details(span, content.clone()) {
                span.add_otel_event(DETAILS_EVENT, vec![content]);
            }
        }
    });
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// Records the messages sent to the model (`gen_ai.input.messages`) on the current
/// `#[llm_call]` or `#[agent_step]` span, if content capture is on; otherwise
/// does nothing at all. On a step (the run's root, typically) the same JSON is
/// also recorded as `input.value`, where Phoenix and MLflow look for a run's
/// input.
pub fn record_input(messages: &[Message]) {
    record(semconv::GEN_AI_INPUT_MESSAGES, || to_json(messages));
}

/// Records the model's answer (`gen_ai.output.messages`), if content capture is
/// on; on an `#[agent_step]`, the run's answer, also as `output.value`.
pub fn record_output(messages: &[Message]) {
    record(semconv::GEN_AI_OUTPUT_MESSAGES, || to_json(messages));
}

/// Records the system instructions (`gen_ai.system_instructions`), if content
/// capture is on.
pub fn record_system_instructions(text: &str) {
    record(semconv::GEN_AI_SYSTEM_INSTRUCTIONS, || {
        to_json(&[Part::Text {
            content: text.to_owned(),
        }])
    });
}

/// Records what a request says of its content (`#[llm_call(request = req)]`):
/// its messages and system instructions, read only when content is captured.
pub(crate) fn record_request<R: crate::LlmRequest + ?Sized>(span: &Span, request: &R) {
    record_on(span, semconv::GEN_AI_SYSTEM_INSTRUCTIONS, || {
        let parts = request.system_instructions();
        (!parts.is_empty()).then(|| to_json(&parts).to_string())
    });
    record_on(span, semconv::GEN_AI_INPUT_MESSAGES, || {
        let messages = request.input_messages();
        (!messages.is_empty()).then(|| to_json(&messages).to_string())
    });
}

/// Records a call's answer read from its response (or put together from its
/// stream's deltas): tool call arguments sent as JSON text become JSON, and
/// choices a stream never touched are left out.
pub(crate) fn record_output_of(span: &Span, messages: &[Message]) {
    record_on(span, semconv::GEN_AI_OUTPUT_MESSAGES, || {
        let messages: Vec<Message> = messages
            .iter()
            .filter(|m| !m.role.is_empty() || !m.parts.is_empty())
            .cloned()
            .map(|mut m| {
                for part in &mut m.parts {
                    if let Part::ToolCall { arguments, .. } = part {
                        if let Json::String(text) = arguments {
                            *arguments = arguments_json(text);
                        }
                    }
                }
                m
            })
            .collect();
        (!messages.is_empty()).then(|| to_json(&messages).to_string())
    });
}
