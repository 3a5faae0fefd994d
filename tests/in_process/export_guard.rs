//! What leaves the process is decided in one place, whoever made the span:
//! library DEBUG/TRACE events and foreign content attributes stay in with
//! capture off, pass redacted and cut with capture on, and usage is counted
//! once however calls are wrapped and steps nested.

use crate::common;

use common::{attr, span_named};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use otel_agent_runtime::{agent_step, llm_call, CaptureMode, LlmResponse, Usage};

const CANARY: &str = "CANARY-4e1d-prompt";
/// Looks like an API key: the default redactor must scrub it.
const SECRET: &str = "sk-proj-ABCDEFGHIJKLMNOPQRSTUV";

/// Logs and spans the way HTTP stacks and agent frameworks do inside a call:
/// connection chatter at DEBUG/TRACE, whole requests with prompts at TRACE, and
/// a GenAI span carrying every content attribute.
mod framework {
    use super::{CANARY, SECRET};

    pub fn chatter() {
        tracing::debug!(target: "hyper_util::client::legacy::connect", "connecting to {CANARY}");
        tracing::trace!(target: "reqwest::connect", body = CANARY, "starting request");
        tracing::info!(target: "h2::codec", "frame {CANARY}");
        tracing::trace!(target: "rig::completions", request = %format!("{{\"prompt\":\"{CANARY}\"}}"), "request");
        tracing::debug!(target: "rig::agent", "prompt: {CANARY}");
        // Content in an INFO event's fields: the event passes the filter, its
        // content does not pass the guard.
        tracing::event!(
            target: "rig::agent",
            tracing::Level::INFO,
            gen_ai.input.messages = CANARY,
            "agent turn"
        );
    }

    /// A `chat` span as rig makes one, with usage recorded on it later.
    pub fn chat_span(input: u64, output: u64) {
        let messages = format!(
            "[{{\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"content\":\"{CANARY} {SECRET}\"}}]}}]"
        );
        let span = tracing::info_span!(
            target: "rig::completions",
            "chat",
            otel.name = "chat mock-model",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = "openai",
            gen_ai.request.model = "mock-model",
            gen_ai.input.messages = messages.as_str(),
            gen_ai.output.messages = messages.as_str(),
            gen_ai.system_instructions = CANARY,
            gen_ai.tool.call.arguments = CANARY,
            gen_ai.tool.call.result = CANARY,
            gen_ai.prompt = CANARY,
            gen_ai.completion = CANARY,
            "gen_ai.prompt.0.content" = CANARY,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        let _entered = span.enter();
        chatter();
        span.record("gen_ai.usage.input_tokens", input);
        span.record("gen_ai.usage.output_tokens", output);
    }

    /// rig's agent span: it sums its turns' usage onto itself.
    pub fn agent_span(turns: &[(u64, u64)]) {
        let span = tracing::info_span!(
            target: "rig::agent",
            "invoke_agent",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = "rig-agent",
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        let _entered = span.enter();
        for (i, o) in turns {
            chat_span(*i, *o);
        }
        span.record(
            "gen_ai.usage.input_tokens",
            turns.iter().map(|t| t.0).sum::<u64>(),
        );
        span.record(
            "gen_ai.usage.output_tokens",
            turns.iter().map(|t| t.1).sum::<u64>(),
        );
    }
}

struct Reply(u64, u64);

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.0, self.1))
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn ask(tokens: u64) -> Reply {
    framework::chatter();
    tracing::info!(target: "my_agent", "asked");
    Reply(tokens, 1)
}

/// A client that is itself instrumented, wrapped in the user's own call.
#[llm_call(model = "gpt-4o", provider = "openai")]
fn wrapped(tokens: u64) -> Reply {
    ask(tokens)
}

/// The user's call around a framework call that makes its own `chat` span and
/// reports usage the user reads from the raw response.
#[llm_call(model = "mock-model", provider = "openai")]
fn around_framework() -> Reply {
    framework::chat_span(30, 4);
    Reply(30, 4)
}

#[agent_step(agent = "researcher")]
fn research() {
    let _ = ask(100);
    let _ = wrapped(20);
    let _ = around_framework();
    framework::agent_span(&[(7, 2), (8, 3)]);
    let plain = tracing::info_span!("plain user span", note = "the user's own field");
    let _entered = plain.enter();
    framework::chatter();
}

#[agent_step(kind = workflow, name = "crew")]
fn crew() {
    research();
}

/// Everything a backend would receive: names, attributes, events.
fn exported(spans: &[SpanData]) -> String {
    format!("{spans:?}")
}

fn run(capture: Option<CaptureMode>) -> (Vec<SpanData>, common::Metrics) {
    let h = common::harness_with(|b| match capture {
        Some(mode) => b.capture_message_content(mode).max_content_bytes(200),
        None => b,
    });
    h.run(crew);
    let metrics = h.metrics();
    (h.finished_spans(), metrics)
}

use common::sum_over_spans as sum;

fn events_named(span: &SpanData) -> Vec<String> {
    span.events.iter().map(|e| e.name.to_string()).collect()
}

#[test]
fn with_capture_off_no_library_event_or_content_attribute_leaves() {
    let (spans, metrics) = run(None);
    let all = exported(&spans);
    assert!(!all.contains(CANARY), "a canary left the process: {all}");
    assert!(!format!("{:?}", metrics.0).contains(CANARY));
    // Not by dropping everything: the spans are all there, and INFO events of
    // the user's own code still become span events.
    for name in [
        "invoke_workflow crew",
        "invoke_agent researcher",
        "chat gpt-4o",
        "chat mock-model",
        "invoke_agent rig-agent",
        "plain user span",
    ] {
        span_named(&spans, name);
    }
    let asked = spans
        .iter()
        .filter(|s| s.name == "chat gpt-4o")
        .any(|s| events_named(s).contains(&"asked".to_owned()));
    assert!(asked, "the user's INFO event is kept");
    let turn = span_named(&spans, "chat mock-model");
    assert!(
        events_named(turn).contains(&"agent turn".to_owned()),
        "a library's INFO event is kept, without its content"
    );
    assert_eq!(attr(turn, "gen_ai.operation.name"), Some("chat".into()));
}

#[test]
fn with_capture_on_foreign_content_is_redacted_and_cut_like_ours() {
    let (spans, _) = run(Some(CaptureMode::SpanOnly));
    let turn = span_named(&spans, "chat mock-model");
    for key in [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.prompt.0.content",
    ] {
        let value = attr(turn, key)
            .unwrap_or_else(|| panic!("{key} kept"))
            .as_str()
            .into_owned();
        assert!(value.contains(CANARY), "{key}: {value}");
        assert!(value.len() <= 200, "{key} is cut to the limit");
    }
    let input = attr(turn, "gen_ai.input.messages")
        .unwrap()
        .as_str()
        .into_owned();
    assert!(!input.contains(SECRET), "redacted: {input}");
    let json: serde_json::Value = serde_json::from_str(&input).expect("still JSON");
    assert!(json.is_array());
    // Capture is about content, not about log levels: DEBUG and TRACE events
    // and the HTTP stacks' events stay in.
    let all = exported(&spans);
    for gone in [
        "connecting to",
        "starting request",
        "frame ",
        "\"request\"",
        "prompt: ",
    ] {
        assert!(!all.contains(gone), "{gone} left the process");
    }
}

#[test]
fn span_events_follow_the_configured_filter_but_http_stacks_never_pass() {
    let h = common::harness_with(|b| b.span_events("debug"));
    h.run(crew);
    let spans = h.finished_spans();
    let all = exported(&spans);
    assert!(
        all.contains(&format!("prompt: {CANARY}")),
        "rig's DEBUG event passes at debug"
    );
    assert!(!all.contains("connecting to"), "hyper's events never pass");
    assert!(!all.contains("frame "), "h2's events never pass");
    assert!(
        !all.contains("starting request"),
        "TRACE is still below debug"
    );

    let h = common::harness_with(|b| b.span_events("off"));
    h.run(crew);
    assert!(h.finished_spans().iter().all(|s| s.events.is_empty()));
}

#[test]
fn a_wrong_span_event_filter_is_an_error_naming_the_setting() {
    let err = otel_agent_runtime::builder()
        .env([("OTEL_AGENT_SPAN_EVENTS", "info,rig=loud")])
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("OTEL_AGENT_SPAN_EVENTS") && text.contains("info,rig=loud"),
        "{text}"
    );
    let err = otel_agent_runtime::builder()
        .env(Vec::<(String, String)>::new())
        .span_events("warn,=")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("span_events"), "{err}");
}

#[test]
fn usage_is_counted_once_per_call_however_calls_are_wrapped_and_steps_nested() {
    let (spans, metrics) = run(None);
    // What the providers reported: 100 + 20 (wrapped once) + 30 (a framework's
    // call inside the user's) + 7 + 8 (a framework agent's two turns).
    let provider_input = 100 + 20 + 30 + 7 + 8;
    let provider_output = 1 + 1 + 4 + 2 + 3;
    assert_eq!(sum(&spans, "gen_ai.usage.input_tokens"), provider_input);
    assert_eq!(sum(&spans, "gen_ai.usage.output_tokens"), provider_output);
    let chats: Vec<SpanData> = spans
        .iter()
        .filter(|s| attr(s, "gen_ai.operation.name") == Some("chat".into()))
        .cloned()
        .collect();
    assert_eq!(sum(&chats, "gen_ai.usage.input_tokens"), provider_input);

    // The wrapper and the user's call around the framework keep the figure
    // under the roll-up key; the steps too; rig's agent span's own sum moves there.
    let wrapper = spans
        .iter()
        .filter(|s| s.name == "chat gpt-4o")
        .find(|s| attr(s, "otel_agent.rollup.usage.input_tokens").is_some())
        .expect("the wrapping call");
    assert_eq!(attr(wrapper, "gen_ai.usage.input_tokens"), None);
    let rig_agent = span_named(&spans, "invoke_agent rig-agent");
    assert_eq!(
        attr(rig_agent, "otel_agent.rollup.usage.input_tokens"),
        Some(Value::I64(15))
    );
    let step = span_named(&spans, "invoke_agent researcher");
    assert_eq!(
        attr(step, "otel_agent.rollup.usage.input_tokens"),
        Some(Value::I64(provider_input)),
        "the step sums every call under it, the attributes' and the library's"
    );

    // Metrics: one token point per call that talked to a provider, the
    // attributes' and the library's alike (the wrapper's is its inner call's).
    let tokens = metrics.expect("gen_ai.client.token.usage");
    let input: u64 = common::u64_histogram_points(tokens)
        .iter()
        .filter(|p| {
            p.attributes()
                .any(|kv| kv.key.as_str() == "gen_ai.token.type" && kv.value.as_str() == "input")
        })
        .map(|p| p.sum())
        .sum();
    assert_eq!(input, provider_input as u64);
}

// ---------------------------------------------------------------------------
// Hostile values: one absurd value is cut, on spans to the configured limit
// and on metrics always, so it cannot make an export too large to accept.
// ---------------------------------------------------------------------------

struct Answer;

impl LlmResponse for Answer {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(u64::MAX, 3))
    }
}

#[llm_call(model = model)]
fn call_model(model: &str) -> Answer {
    let _ = model;
    Answer
}

#[agent_step(agent = "hostile", fields(app.note = note))]
fn hostile_step(note: &str, model: &str) {
    call_model(model);
}

#[test]
fn attribute_values_are_cut_to_the_configured_limit() {
    let h = common::harness_with(|b| b.env([("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "12")]));
    let model = "é".repeat(1 << 20);
    h.run(|| hostile_step(&"n".repeat(100), &model));
    let spans = h.finished_spans();
    let step = span_named(&spans, "invoke_agent hostile");
    assert_eq!(
        attr(step, "app.note").map(|v| v.as_str().into_owned()),
        Some("n".repeat(12))
    );
    let call = spans
        .iter()
        .find(|s| attr(s, "gen_ai.operation.name") == Some(Value::from("chat")))
        .expect("the call's span");
    let on_span = attr(call, "gen_ai.request.model").unwrap();
    assert_eq!(on_span.as_str(), "é".repeat(12));
    // Tokens saturate at the per-call bound instead of wrapping.
    let input = attr(call, "gen_ai.usage.input_tokens").unwrap();
    assert_eq!(input, Value::I64(1 << 40));
}

#[test]
fn metric_values_are_cut_whatever_the_limit() {
    let h = common::harness();
    let model = "m".repeat(1 << 20);
    h.run(|| hostile_step("note", &model));
    let metrics = h.metrics();
    let duration = metrics.expect("gen_ai.client.operation.duration");
    let points = common::f64_histogram_points(duration);
    assert!(!points.is_empty());
    for point in points {
        for kv in point.attributes() {
            assert!(
                kv.value.as_str().len() <= 256,
                "{} is {} bytes long on a metric",
                kv.key,
                kv.value.as_str().len()
            );
        }
    }
    let steps = metrics.expect("otel_agent.step.duration");
    assert!(!common::f64_histogram_points(steps).is_empty());
}
