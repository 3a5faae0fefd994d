//! Prompts and completions are never exported without opt-in; with opt-in they
//! follow the conventions' JSON, are redacted and stay valid when truncated.

use crate::common;

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

// ---------------------------------------------------------------------------
// Tools' arguments and results, and a run's input and output on its step:
// where MLflow and Phoenix look for them, under the same switch.
// ---------------------------------------------------------------------------

#[derive(serde::Serialize, Debug)]
struct Forecast {
    city: String,
    sky: &'static str,
}

struct Client;

#[agent_step(kind = tool, skip(client))]
fn get_weather(client: &Client, city: &str, days: u8) -> Result<Forecast, String> {
    let _ = client;
    if city == "Atlantis" {
        return Err(format!("no such city ({CANARY})"));
    }
    Ok(Forecast {
        city: format!("{city} in {days} days"),
        sky: "sunny",
    })
}

#[agent_step(kind = tool, arguments = format!("search: {query}"))]
fn web_search(query: &str) -> String {
    format!("3 results for {query}")
}

#[agent_step(kind = tool)]
fn log_line(line: &str) {
    let _ = line;
}

#[agent_step(kind = workflow, name = "trip")]
fn trip(question: &str) -> String {
    content::record_input(&[Message::user(question)]);
    let forecast = get_weather(&Client, "Quito", 3).unwrap();
    let _ = get_weather(&Client, "Atlantis", 1);
    let found = web_search("hotels");
    log_line("done");
    let answer = format!("{} and {found}", forecast.sky);
    content::record_output(&[Message::assistant(&answer).finish_reason("stop")]);
    answer
}

fn text(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    common::attr(span, key).map(|v| v.as_str().into_owned())
}

#[test]
fn tools_carry_their_arguments_and_results_under_capture() {
    let h = common::harness_with(|b| b.capture_message_content(CaptureMode::SpanOnly));
    h.run(|| trip("weather in Quito?"));
    let spans = h.finished_spans();
    let weather: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "execute_tool get_weather")
        .collect();
    assert_eq!(weather.len(), 2);
    // The parameters by name, `skip`ped ones left out; the `Ok` value as JSON.
    assert_eq!(
        text(weather[0], "gen_ai.tool.call.arguments").as_deref(),
        Some(r#"{"city":"Quito","days":3}"#)
    );
    assert_eq!(
        text(weather[0], "gen_ai.tool.call.result").as_deref(),
        Some(r#"{"city":"Quito in 3 days","sky":"sunny"}"#)
    );
    // A failed tool has its arguments and no result.
    assert_eq!(
        text(weather[1], "gen_ai.tool.call.arguments").as_deref(),
        Some(r#"{"city":"Atlantis","days":1}"#)
    );
    assert_eq!(text(weather[1], "gen_ai.tool.call.result"), None);
    // `arguments = ...` replaces the parameters; text stays text.
    let search = common::span_named(&spans, "execute_tool web_search");
    assert_eq!(
        text(search, "gen_ai.tool.call.arguments").as_deref(),
        Some("search: hotels")
    );
    assert_eq!(
        text(search, "gen_ai.tool.call.result").as_deref(),
        Some("3 results for hotels")
    );
    // A tool that returns `()` has no result.
    let log = common::span_named(&spans, "execute_tool log_line");
    assert_eq!(text(log, "gen_ai.tool.call.result"), None);

    // The run's input and output on its root, under the conventions' keys and
    // OpenInference's (Phoenix's input and output columns).
    let root = common::span_named(&spans, "invoke_workflow trip");
    let input = text(root, "gen_ai.input.messages").expect("input messages on the step");
    assert!(input.contains("weather in Quito?"), "{input}");
    assert_eq!(text(root, "input.value"), Some(input));
    assert_eq!(
        text(root, "input.mime_type").as_deref(),
        Some("application/json")
    );
    let output = text(root, "output.value").expect("output on the step");
    assert!(output.contains("sunny and 3 results"), "{output}");
    assert!(output.contains(r#""finish_reason":"stop""#), "{output}");
    assert_eq!(
        text(root, "openinference.span.kind").as_deref(),
        Some("CHAIN")
    );
    // Only the workflow is typed for OpenInference: the tools keep their GenAI type.
    assert_eq!(text(search, "openinference.span.kind"), None);
}

#[test]
fn without_capture_tools_and_steps_carry_no_content() {
    let h = common::harness();
    h.run(|| trip("weather in Quito?"));
    let spans = h.finished_spans();
    for span in &spans {
        for key in [
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "input.value",
            "output.value",
        ] {
            assert_eq!(common::attr(span, key), None, "{key} on {}", span.name);
        }
    }
    let all = format!("{spans:?}");
    assert!(!all.contains("Quito"), "{all}");
    assert!(!all.contains("hotels"), "{all}");
}

#[test]
fn tool_content_is_redacted_and_cut_at_the_boundary() {
    let h = common::harness_with(|b| {
        b.capture_message_content(CaptureMode::SpanOnly)
            .max_content_bytes(64)
    });
    h.run(|| web_search(&format!("api_key=sk-live-{CANARY} {}", "x".repeat(500))));
    let spans = h.finished_spans();
    let search = common::span_named(&spans, "execute_tool web_search");
    for key in ["gen_ai.tool.call.arguments", "gen_ai.tool.call.result"] {
        let value = text(search, key).unwrap();
        assert!(!value.contains(CANARY), "{key}: {value}");
        assert!(value.len() <= 64 + "…[truncated]".len(), "{key}: {value}");
    }
}
