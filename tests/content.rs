//! Prompts and completions are never exported without opt-in; with opt-in they
//! follow the conventions' JSON, are redacted and stay valid when truncated.

mod common;

use otel_agent_runtime::content::{self, Message};
use otel_agent_runtime::{
    agent_step, llm_call, CaptureMode, ExporterKind, LlmResponse, TelemetryBuilder, Usage,
};

const CANARY: &str = "CANARY-7f3a9c-do-not-export";

struct Reply(String);

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(10, 5))
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn ask(prompt: &str) -> Result<Reply, String> {
    content::record_system_instructions(&format!("You are helpful. {CANARY}"));
    content::record_input(&[Message::user(prompt)]);
    let answer = format!("echo: {prompt}");
    content::record_output(&[Message::assistant(&answer).finish_reason("stop")]);
    if prompt.contains("fail") {
        // An error message that quotes the secret the user pasted.
        return Err(format!("rejected: api_key=sk-live-{CANARY}"));
    }
    Ok(Reply(answer))
}

#[agent_step(agent = "assistant")]
fn run(question: &str) -> Result<String, String> {
    let reply = ask(question)?;
    let _ = ask("please fail");
    Ok(reply.0)
}

struct Exported {
    spans: String,
    metrics: String,
    console: String,
}

fn run_with(configure: impl FnOnce(TelemetryBuilder) -> TelemetryBuilder) -> Exported {
    let h = common::harness_with(|b| configure(b.traces_exporter(ExporterKind::Console)));
    h.run(|| run(&format!("summarise {CANARY} please")))
        .unwrap();
    let metrics = h.metrics();
    Exported {
        spans: format!("{:?}", h.finished_spans()),
        metrics: format!("{:?}", metrics.0),
        console: h.telemetry.console_report().unwrap(),
    }
}

#[test]
fn without_opt_in_not_one_byte_of_a_prompt_is_exported() {
    let out = run_with(|b| b);
    assert!(out.spans.contains("chat gpt-4o"), "the calls were recorded");
    for (what, text) in [
        ("spans", &out.spans),
        ("metrics", &out.metrics),
        ("console", &out.console),
    ] {
        assert!(!text.contains(CANARY), "the canary leaked into {what}");
        assert!(
            !text.contains("gen_ai.input.messages"),
            "content attributes in {what}"
        );
    }
}

#[test]
fn with_opt_in_content_is_recorded_as_semconv_json_and_redacted() {
    let out = run_with(|b| b.capture_message_content(CaptureMode::SpanOnly));
    assert!(out.spans.contains("gen_ai.input.messages"), "{}", out.spans);
    assert!(out.spans.contains("gen_ai.output.messages"));
    assert!(out.spans.contains("gen_ai.system_instructions"));
    // The canary is content, so it is there now: the test above can fail.
    assert!(out.spans.contains(CANARY));
    // The key in the error message is scrubbed by the default redactor.
    assert!(!out.spans.contains("sk-live-"), "{}", out.spans);
    assert!(out.spans.contains("api_key=[REDACTED]"), "{}", out.spans);
}

#[test]
fn captured_messages_follow_the_schema_and_stay_valid_json_when_cut() {
    let h = common::harness_with(|b| {
        b.env([
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
            ("OTEL_AGENT_MAX_CONTENT_BYTES", "200"),
        ])
    });
    let long = "word ".repeat(500);
    h.run(|| ask(&long)).unwrap();
    let finished = h.finished_spans();
    let span = finished.iter().find(|s| s.name == "chat gpt-4o").unwrap();
    let input = span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "gen_ai.input.messages")
        .map(|kv| kv.value.as_str().into_owned())
        .expect("captured");
    assert!(input.len() <= 200, "{}", input.len());
    let parsed: serde_json::Value =
        serde_json::from_str(&input).expect("valid JSON after truncation");
    assert_eq!(parsed[0]["role"], "user");
    assert_eq!(parsed[0]["parts"][0]["type"], "text");
    assert!(parsed[0]["parts"][0]["content"]
        .as_str()
        .unwrap()
        .ends_with("…[truncated]"));
}

#[test]
fn a_bad_capture_value_is_an_init_error() {
    let err = otel_agent_runtime::builder()
        .env([(
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "yes please",
        )])
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
            && err.contains("SPAN_AND_EVENT"),
        "{err}"
    );
}

#[llm_call(model = "gpt-4o", capture_content = true)]
fn ask_captured(prompt: &str) -> String {
    content::record_input(&[Message::user(prompt)]);
    prompt.to_owned()
}

#[test]
fn one_call_can_opt_in_while_capture_is_off_for_the_process() {
    let h = common::harness();
    h.run(|| {
        ask_captured("captured on purpose");
        let _ = ask("not captured");
    });
    let finished = format!("{:?}", h.finished_spans());
    assert!(finished.contains("captured on purpose"), "{finished}");
    assert!(!finished.contains("not captured"), "{finished}");
}
