//! The span trees the attributes produce: names, kinds, parents, attributes, status.

use crate::common;

use std::borrow::Cow;

use common::{attr, harness, span_named, span_trees};
use opentelemetry::trace::SpanKind;
use otel_agent_runtime::{agent_step, llm_call, ErrorType, LlmResponse, Usage};

#[derive(Debug)]
struct Reply {
    input: u64,
    output: u64,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input, self.output).with_cache_read(7))
    }
    fn response_model(&self) -> Option<&str> {
        Some("gpt-4o-2024-08-06")
    }
    fn response_id(&self) -> Option<&str> {
        Some("chatcmpl-1")
    }
    fn finish_reasons(&self) -> Vec<&str> {
        vec!["stop"]
    }
}

#[derive(Debug)]
enum ModelError {
    RateLimited,
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rate limited by the provider")
    }
}

impl ErrorType for ModelError {
    fn error_type(&self) -> Cow<'static, str> {
        "rate_limited".into()
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn complete(prompt: &str) -> Result<Reply, ModelError> {
    tokio::task::yield_now().await;
    Ok(Reply {
        input: prompt.len() as u64,
        output: 5,
    })
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn failing_call() -> Result<Reply, ModelError> {
    Err(ModelError::RateLimited)
}

#[agent_step(kind = tool, name = "web_search", description = "Searches the web")]
fn web_search(query: &str) -> Vec<String> {
    vec![query.to_owned()]
}

#[agent_step(agent = "researcher", description = "Finds sources")]
async fn research(topic: &str) -> Result<usize, ModelError> {
    let hits = web_search(topic);
    let reply = complete(topic).await?;
    Ok(hits.len() + reply.output as usize)
}

#[agent_step(agent = "writer")]
async fn write() -> Result<(), ModelError> {
    failing_call()?;
    Ok(())
}

#[agent_step(kind = workflow, name = "crew")]
async fn crew() -> Result<(), ModelError> {
    research("rust").await?;
    write().await
}

#[test]
fn a_crew_makes_one_tree_with_semconv_attributes() {
    let h = harness();
    let result = h.block_on(crew());
    assert!(result.is_err());
    insta::assert_yaml_snapshot!(span_trees(&h.finished_spans()));
}

#[test]
fn llm_spans_are_clients_with_request_attributes_and_usage() {
    let h = harness();
    h.block_on(complete("hello")).unwrap();
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), Some(5_i64.into()));
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), Some(5_i64.into()));
    assert_eq!(
        attr(span, "gen_ai.usage.cache_read.input_tokens"),
        Some(7_i64.into())
    );
    assert_eq!(attr(span, "gen_ai.response.id"), Some("chatcmpl-1".into()));
    assert_eq!(
        attr(span, "gen_ai.response.finish_reasons"),
        Some(opentelemetry::Value::Array(
            vec![opentelemetry::StringValue::from("stop")].into()
        ))
    );
}

struct Client {
    model: String,
}

impl Client {
    #[llm_call(model = self.model)]
    fn ask(&mut self, prompt: &str) -> Option<Reply> {
        self.model.push_str("-used");
        Some(Reply {
            input: prompt.len() as u64,
            output: 1,
        })
    }
}

#[test]
fn a_model_given_by_an_expression_names_the_span_and_infers_the_provider() {
    let h = harness();
    let mut client = Client {
        model: "claude-sonnet-4-5".into(),
    };
    h.run(|| client.ask("hi"));
    let spans = h.finished_spans();
    // The model is read when the call starts, before the body changes it.
    let span = span_named(&spans, "chat claude-sonnet-4-5");
    assert_eq!(
        attr(span, "gen_ai.request.model"),
        Some("claude-sonnet-4-5".into())
    );
    assert_eq!(attr(span, "gen_ai.provider.name"), Some("anthropic".into()));
}

#[test]
fn steps_nest_under_the_callers_own_tracing_spans_and_the_other_way_round() {
    #[agent_step(agent = "inner")]
    fn inner() -> u8 {
        let _own = tracing::info_span!("user_child").entered();
        1
    }
    let h = harness();
    h.run(|| {
        let _outer = tracing::info_span!("user_root").entered();
        inner()
    });
    let spans = h.finished_spans();
    let root = span_named(&spans, "user_root");
    let step = span_named(&spans, "invoke_agent inner");
    let child = span_named(&spans, "user_child");
    assert_eq!(step.parent_span_id, root.span_context.span_id());
    assert_eq!(child.parent_span_id, step.span_context.span_id());
    assert_eq!(step.span_context.trace_id(), root.span_context.trace_id());
}

#[test]
fn an_unannotated_name_defaults_to_the_function_name() {
    #[agent_step]
    fn planner() {}
    #[agent_step(kind = tool)]
    fn calculator() {}
    let h = harness();
    h.run(|| {
        planner();
        calculator();
    });
    let spans = h.finished_spans();
    assert_eq!(
        attr(
            span_named(&spans, "invoke_agent planner"),
            "gen_ai.agent.name"
        ),
        Some("planner".into())
    );
    assert_eq!(
        attr(
            span_named(&spans, "execute_tool calculator"),
            "gen_ai.tool.name"
        ),
        Some("calculator".into())
    );
}

#[test]
fn without_a_subscriber_nothing_is_recorded_and_calls_still_work() {
    let h = harness();
    assert_eq!(web_search("q"), vec!["q".to_owned()]);
    assert!(h.finished_spans().is_empty());
}

struct Request {
    prompt: String,
    temperature: f32,
}

impl otel_agent_runtime::LlmRequest for Request {
    fn request_params(&self) -> otel_agent_runtime::RequestParams {
        otel_agent_runtime::RequestParams::default()
            .temperature(f64::from(self.temperature))
            .max_tokens(256)
    }
}

#[llm_call(model = "gpt-4o", request = req)]
fn with_request(req: Request) -> String {
    req.prompt // the body moves the request; its settings were read before
}

#[test]
fn request_settings_are_read_from_the_request_argument() {
    let h = harness();
    let out = h.run(|| {
        with_request(Request {
            prompt: "hi".into(),
            temperature: 0.5,
        })
    });
    assert_eq!(out, "hi");
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o");
    assert_eq!(
        attr(span, "gen_ai.request.temperature"),
        Some(0.5_f64.into())
    );
    assert_eq!(
        attr(span, "gen_ai.request.max_tokens"),
        Some(256_i64.into())
    );
}
