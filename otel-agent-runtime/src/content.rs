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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Content recorded by the instrumentation itself rather than by the user:
/// a tool step's arguments and result.
pub(crate) fn record_tool(span: &Span, key: &'static str, value: impl FnOnce() -> Option<String>) {
    record_on(span, key, value);
}

/// Records `value` (JSON or text) under `key` on `span`, one of the
/// attributes' spans, as the capture mode says. `value` is not even built when
/// content is not captured.
fn record_on(span: &Span, key: &'static str, value: impl FnOnce() -> Option<String>) {
    if !is_ours(span) {
        return;
    }
    let requested = capture_requested(span);
    with_layer(span, |layer| {
        let mode = match (layer.options.capture, requested) {
            (mode, _) if mode.any() => mode,
            (_, true) => crate::CaptureMode::SpanOnly,
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
            span.add_otel_event(DETAILS_EVENT, vec![KeyValue::new(key, text)]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
