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

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::SpanExt as _;
use opentelemetry::KeyValue;
use regex::Regex;
use serde::Serialize;
use serde_json::Value as Json;
use tracing::Span;

use crate::export_guard::{CAPTURE_REQUESTED, DETAILS_EVENT};
use crate::layer::{capture_requested, is_llm_span, is_ours, with_layer};
use crate::semconv;

/// A redaction hook: returns the text with secrets replaced.
pub type Redactor = dyn Fn(&str) -> Cow<'_, str> + Send + Sync;

/// One part of a message, in the conventions' schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        content: String,
    },
    /// A tool call the model asked for.
    ToolCall {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments, as JSON.
        arguments: Json,
    },
    /// A tool's answer, sent back to the model.
    ToolCallResponse {
        /// The id of the call it answers.
        id: String,
        /// The result, as JSON.
        response: Json,
    },
}

/// A chat message: a role and its parts (and, for output, why generation stopped).
/// The default is empty: no role, no parts (a stream chunk's placeholder for a
/// choice it does not touch).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The content.
    pub parts: Vec<Part>,
    /// For output messages: `stop`, `length`, `tool_call`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

impl Message {
    fn text(role: &str, text: &str) -> Self {
        Self {
            role: role.to_owned(),
            parts: vec![Part::Text {
                content: text.to_owned(),
            }],
            finish_reason: None,
        }
    }
    /// A system message.
    pub fn system(text: &str) -> Self {
        Self::text("system", text)
    }
    /// A user message.
    pub fn user(text: &str) -> Self {
        Self::text("user", text)
    }
    /// An assistant message.
    pub fn assistant(text: &str) -> Self {
        Self::text("assistant", text)
    }
    /// A tool's result sent back to the model.
    pub fn tool_result(call_id: &str, response: Json) -> Self {
        Self {
            role: "tool".to_owned(),
            parts: vec![Part::ToolCallResponse {
                id: call_id.to_owned(),
                response,
            }],
            finish_reason: None,
        }
    }
    /// Adds a part.
    pub fn with_part(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }
    /// Sets the finish reason (output messages).
    pub fn finish_reason(mut self, reason: &str) -> Self {
        self.finish_reason = Some(reason.to_owned());
        self
    }
}

/// The built-in redaction: API keys of the common providers, bearer tokens, JWTs,
/// and the values of `password=`, `secret:`, `api_key=`, `token=` pairs.
pub fn default_redactor() -> impl Fn(&str) -> Cow<'_, str> + Send + Sync {
    static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    move |text: &str| {
        let patterns = PATTERNS.get_or_init(|| {
            [
                (r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}", "[REDACTED]"),
                (r"\bAKIA[0-9A-Z]{16}\b", "[REDACTED]"),
                (r"\bgh[pousr]_[A-Za-z0-9]{20,}", "[REDACTED]"),
                (r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", "[REDACTED]"),
                (r"\bAIza[0-9A-Za-z_\-]{35}", "[REDACTED]"),
                (r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", "[REDACTED]"),
                (r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}", "Bearer [REDACTED]"),
                (
                    r#"(?i)\b(password|passwd|pwd|secret|api[_\-]?key|access[_\-]?token|token)(\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;]+)"#,
                    "${1}${2}[REDACTED]",
                ),
            ]
            .into_iter()
            .filter_map(|(pattern, with)| Regex::new(pattern).ok().map(|r| (r, with)))
            .collect()
        });
        let mut out = Cow::Borrowed(text);
        for (regex, with) in patterns {
            if regex.is_match(&out) {
                out = Cow::Owned(regex.replace_all(&out, *with).into_owned());
            }
        }
        out
    }
}

const TRUNCATED: &str = "…[truncated]";

/// Cuts a string to at most `max` bytes (on a character boundary), marking the cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &text[..end])
}

/// Applies `f` to every string leaf of a JSON value.
pub(crate) fn map_strings(value: &mut Json, f: &dyn Fn(&str) -> String) {
    match value {
        Json::String(s) => *s = f(s),
        Json::Array(items) => items.iter_mut().for_each(|v| map_strings(v, f)),
        Json::Object(map) => map.iter_mut().for_each(|(_, v)| map_strings(v, f)),
        _ => {}
    }
}

/// Serialises `value` to at most `max` bytes of valid JSON: long strings are cut
/// first (all to the same length, found by bisection), then the oldest array
/// items are dropped; a value that still does not fit becomes `[]`.
pub(crate) fn fit_json(value: &Json, max: usize) -> String {
    let full = value.to_string();
    if full.len() <= max {
        return full;
    }
    let with_cap = |cap: usize| {
        let mut v = value.clone();
        map_strings(&mut v, &|s| cut(s, cap));
        v
    };
    let (mut lo, mut hi) = (0usize, full.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if with_cap(mid).to_string().len() <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut best = with_cap(lo);
    if best.to_string().len() <= max {
        return best.to_string();
    }
    if let Json::Array(items) = &mut best {
        while !items.is_empty() {
            items.remove(0);
            let s = Json::Array(items.clone()).to_string();
            if s.len() <= max {
                return s;
            }
        }
    }
    "[]".to_owned()
}

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
            crate::bridge::set_attributes(span, attrs);
        }
        if mode.as_event() {
            // A model call's content goes out in one event per inference, with
            // the call's attributes, when it ends; a step's, as it comes.
            let content = KeyValue::new(key, text);
            if !crate::layer::stash_details(span, content.clone()) {
                span.add_otel_event(DETAILS_EVENT, vec![content]);
            }
        }
    });
}

/// OpenInference's input and output of a span, content like the messages they
/// repeat (the export guard treats them so).
pub(crate) const INPUT_VALUE: &str = "input.value";
/// See [`INPUT_VALUE`].
pub(crate) const OUTPUT_VALUE: &str = "output.value";
const INPUT_MIME_TYPE: &str = "input.mime_type";
const OUTPUT_MIME_TYPE: &str = "output.mime_type";

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

/// A tool call's arguments as the model sent them (JSON text): as JSON when
/// they parse, else as the text.
pub(crate) fn arguments_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}

/// Adds one chunk's output deltas to a stream's answer so far (see
/// [`LlmResponse::output_messages`](crate::LlmResponse::output_messages)).
pub(crate) fn merge_deltas(into: &mut Vec<Message>, chunk: Vec<Message>) {
    for (k, delta) in chunk.into_iter().enumerate() {
        if into.len() <= k {
            into.resize_with(k + 1, Message::default);
        }
        let message = &mut into[k];
        if message.role.is_empty() {
            message.role = delta.role;
        }
        if delta.finish_reason.is_some() {
            message.finish_reason = delta.finish_reason;
        }
        for part in delta.parts {
            match part {
                Part::Text { content } => match message.parts.last_mut() {
                    Some(Part::Text { content: text }) => text.push_str(&content),
                    _ => message.parts.push(Part::Text { content }),
                },
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } if id.is_empty() => {
                    let last = message
                        .parts
                        .iter_mut()
                        .rev()
                        .find(|p| matches!(p, Part::ToolCall { .. }));
                    match last {
                        Some(Part::ToolCall {
                            name: so_far,
                            arguments: Json::String(args),
                            ..
                        }) => {
                            so_far.push_str(&name);
                            if let Json::String(more) = arguments {
                                args.push_str(&more);
                            }
                        }
                        _ => message.parts.push(Part::ToolCall {
                            id,
                            name,
                            arguments,
                        }),
                    }
                }
                other => message.parts.push(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_deltas_are_put_together_by_choice() {
        let delta = |role: &str, parts: Vec<Part>| Message {
            role: role.to_owned(),
            parts,
            finish_reason: None,
        };
        let text = |t: &str| Part::Text {
            content: t.to_owned(),
        };
        let call = |id: &str, name: &str, args: &str| Part::ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: Json::String(args.to_owned()),
        };
        let mut answer = Vec::new();
        merge_deltas(&mut answer, vec![delta("assistant", vec![text("Hel")])]);
        // Choice 1 starts; choice 0 untouched in this chunk.
        merge_deltas(
            &mut answer,
            vec![delta("", vec![]), delta("assistant", vec![text("Bon")])],
        );
        merge_deltas(&mut answer, vec![delta("", vec![text("lo")])]);
        merge_deltas(
            &mut answer,
            vec![delta("", vec![call("call_1", "get_weather", "{\"ci")])],
        );
        merge_deltas(&mut answer, vec![delta("", vec![call("", "", "ty\":1}")])]);
        let mut last = delta("", vec![]);
        last.finish_reason = Some("tool_calls".to_owned());
        merge_deltas(&mut answer, vec![last]);
        assert_eq!(answer.len(), 2);
        assert_eq!(answer[0].role, "assistant");
        assert_eq!(
            answer[0].parts,
            vec![text("Hello"), call("call_1", "get_weather", "{\"city\":1}")]
        );
        assert_eq!(answer[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(answer[1].parts, vec![text("Bon")]);
    }

    #[test]
    fn the_default_redactor_scrubs_common_secrets() {
        let redact = default_redactor();
        let text = "key sk-proj-abcdefghijklmnop1234 and Authorization: Bearer abc.def.ghi123 \
                    password=hunter22 api_key: 'xyz' AKIAABCDEFGHIJKLMNOP ghp_abcdefghijklmnopqrstuvwx";
        let out = redact(text);
        for secret in [
            "sk-proj-abcdefghijklmnop1234",
            "abc.def.ghi123",
            "hunter22",
            "'xyz'",
            "AKIAABCDEFGHIJKLMNOP",
            "ghp_abcdefghijklmnopqrstuvwx",
        ] {
            assert!(!out.contains(secret), "{secret} survived: {out}");
        }
        assert!(out.contains("password=[REDACTED]"), "{out}");
        assert_eq!(redact("nothing to hide"), "nothing to hide");
    }

    #[test]
    fn truncation_keeps_valid_json_within_the_limit() {
        let messages = json!([
            {"role": "user", "parts": [{"type": "text", "content": "a".repeat(5000)}]},
            {"role": "assistant", "parts": [{"type": "text", "content": "é".repeat(3000)}]},
        ]);
        for max in [64, 100, 500, 2000, 20_000] {
            let out = fit_json(&messages, max);
            assert!(out.len() <= max, "{} > {max}", out.len());
            let parsed: Json = serde_json::from_str(&out).expect("valid JSON");
            assert!(parsed.is_array());
        }
        let roomy = fit_json(&messages, 2000);
        assert!(
            roomy.contains(TRUNCATED) && roomy.contains("\"role\":\"user\""),
            "{roomy}"
        );
        assert_eq!(fit_json(&json!([1, 2]), 100), "[1,2]");
    }
}
