//! Messages in the GenAI conventions' JSON shape, the redaction hook that
//! scrubs secrets from them, and the assembly of a streamed answer from its
//! deltas. Data only: recording them is [`content`](crate::content)'s job.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;
use serde_json::Value as Json;

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
}
