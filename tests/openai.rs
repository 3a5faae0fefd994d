//! The real async-openai client against a local OpenAI-compatible server
//! (`tests/openai_server/server.py`, Python standard library only): real HTTP, real
//! JSON, real server-sent events. Checks what `#[llm_call]` records from the
//! client's own types with no glue code: usage (from the final stream chunk when
//! streaming), response model and id, finish reasons, request settings,
//! `server.address`/`server.port`, and `error.type` on a 429.
//!
//! Each test starts its own server on a free port and stops it when it ends. The
//! tests are skipped, saying so, only when `python3` is not installed.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessage, ChatCompletionResponseStream, ChatCompletionStreamOptions,
    ChatCompletionTool, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FinishReason, FunctionObjectArgs,
};
use async_openai::Client;
use common::{attr, f64_histogram_points, harness, point_attrs, span_named, u64_histogram_points};
use futures::TryStreamExt as _;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{StringValue, Value};
use otel_agent_runtime::openai::{self, ChatStreamSummary};
use otel_agent_runtime::{agent_step, llm_call};

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_server/server.py");
const MODEL: &str = "gpt-4o-mini";
const RESPONSE_MODEL: &str = "gpt-4o-mini-2024-07-18";

/// The canned server, stopped (killed and reaped) when dropped. It also exits on
/// its own when its standard input closes, i.e. when this process ends.
struct Server {
    child: Child,
    base_url: String,
    port: u16,
}

impl Server {
    /// Starts the server, or returns `None` (after saying why) without python3.
    fn start() -> Option<Self> {
        let spawned = Command::new("python3")
            // async-openai retries a 429 three times, waiting `retry-after` each time.
            .args([
                SERVER,
                "--port",
                "0",
                "--retry-after",
                "0",
                "--exit-on-stdin-eof",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: python3 is not installed; tests/openai.rs needs it to run tests/openai_server/server.py");
                return None;
            }
            Err(e) => panic!("cannot start {SERVER}: {e}"),
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30));
        let base_url = match line.as_deref().map(str::trim) {
            Ok(l) if l.starts_with("READY ") => l["READY ".len()..].to_owned(),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not report READY: {other:?}");
            }
        };
        let port = base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches("/v1").parse().ok())
            .expect("a port in the READY line");
        Some(Self {
            child,
            base_url,
            port,
        })
    }

    fn client(&self) -> Client<OpenAIConfig> {
        Client::with_config(
            OpenAIConfig::new()
                .with_api_base(&self.base_url)
                .with_api_key("sk-test"),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(prompt: &str) -> CreateChatCompletionRequestArgs {
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model(MODEL)
        .messages(vec![ChatCompletionRequestUserMessage::from(prompt).into()]);
    args
}

fn with_usage() -> ChatCompletionStreamOptions {
    ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
    }
}

#[llm_call(model = request.model, provider = "openai")]
async fn chat(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    openai::record_client(client);
    openai::record_request(&request);
    client.chat().create(request).await
}

#[llm_call(model = request.model, provider = "openai")]
async fn chat_stream(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> Result<ChatStreamSummary, OpenAIError> {
    openai::record_client(client);
    openai::record_request(&request);
    ChatStreamSummary::collect(client.chat().create_stream(request)).await
}

/// The chunks collected as they are, with no summary type.
#[llm_call(model = request.model, provider = "openai")]
async fn chat_chunks(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> Result<Vec<CreateChatCompletionStreamResponse>, OpenAIError> {
    client
        .chat()
        .create_stream(request)
        .await?
        .try_collect()
        .await
}

fn i(v: i64) -> Option<Value> {
    Some(Value::I64(v))
}

fn strings(v: &[&str]) -> Option<Value> {
    Some(Value::Array(
        v.iter()
            .map(|s| StringValue::from(s.to_string()))
            .collect::<Vec<_>>()
            .into(),
    ))
}

/// `(token type, count, sum)` of every token-usage point.
fn token_points(h: &common::Harness) -> Vec<(String, u64, u64)> {
    let metrics = h.metrics();
    let Some(tokens) = metrics.get("gen_ai.client.token.usage") else {
        return Vec::new();
    };
    let mut points: Vec<_> = u64_histogram_points(tokens)
        .into_iter()
        .map(|p| {
            (
                point_attrs(p.attributes())["gen_ai.token.type"].clone(),
                p.count(),
                p.sum(),
            )
        })
        .collect();
    points.sort();
    points
}

#[test]
fn a_chat_completion_records_usage_model_id_finish_reason_request_and_server() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    // 6 prompt words; the answer "Canned answer to: <prompt>" has 9.
    let req = request("Say hello in three words please")
        .temperature(0.2)
        .top_p(0.9)
        .max_completion_tokens(50_u32)
        .build()
        .unwrap();
    let response = h.block_on(chat(&client, req)).expect("the server answers");
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some("Canned answer to: Say hello in three words please")
    );

    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr(span, "gen_ai.request.model"), Some(MODEL.into()));
    assert_eq!(attr(span, "gen_ai.provider.name"), Some("openai".into()));
    assert_eq!(
        attr(span, "gen_ai.response.model"),
        Some(RESPONSE_MODEL.into())
    );
    assert!(response.id.starts_with("chatcmpl-"));
    assert_eq!(
        attr(span, "gen_ai.response.id"),
        Some(response.id.clone().into())
    );
    assert_eq!(
        attr(span, "gen_ai.response.finish_reasons"),
        strings(&["stop"])
    );
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), i(6));
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), i(9));
    assert_eq!(attr(span, "gen_ai.usage.cache_read.input_tokens"), i(0));
    assert_eq!(attr(span, "gen_ai.usage.reasoning.output_tokens"), i(0));
    assert_eq!(
        attr(span, "gen_ai.request.temperature"),
        Some(Value::F64(0.2))
    );
    assert_eq!(attr(span, "gen_ai.request.top_p"), Some(Value::F64(0.9)));
    assert_eq!(attr(span, "gen_ai.request.max_tokens"), i(50));
    assert_eq!(attr(span, "server.address"), Some("127.0.0.1".into()));
    assert_eq!(attr(span, "server.port"), i(server.port.into()));
    assert_eq!(attr(span, "gen_ai.request.stream"), None);
    assert_eq!(attr(span, "error.type"), None);

    let metrics = h.metrics();
    let duration = metrics.expect("gen_ai.client.operation.duration");
    let points = f64_histogram_points(duration);
    assert_eq!(points.len(), 1);
    let attrs = point_attrs(points[0].attributes());
    assert_eq!(attrs["gen_ai.response.model"], RESPONSE_MODEL);
    assert_eq!(attrs["gen_ai.request.model"], MODEL);
    assert!(!attrs.contains_key("error.type"));
    assert_eq!(
        token_points(&h),
        vec![("input".into(), 1, 6), ("output".into(), 1, 9)]
    );
}

#[test]
fn a_streamed_completion_takes_usage_from_the_final_chunk() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    // 2 prompt words; max 3 completion tokens cuts the answer: finish reason `length`.
    let req = request("hello there")
        .max_completion_tokens(3_u32)
        .stream_options(with_usage())
        .build()
        .unwrap();
    let summary = h
        .block_on(chat_stream(&client, req))
        .expect("the stream is read");
    assert_eq!(summary.content(), "Canned answer to:");
    assert_eq!(
        summary.choices()[0].finish_reason,
        Some(FinishReason::Length)
    );
    assert_eq!(summary.model(), RESPONSE_MODEL);
    // role chunk, 2 content chunks, finish chunk, usage chunk
    assert_eq!(summary.chunks(), 5);
    assert_eq!(summary.completion_usage().map(|u| u.total_tokens), Some(5));

    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), i(2));
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), i(3));
    assert_eq!(
        attr(span, "gen_ai.response.finish_reasons"),
        strings(&["length"])
    );
    assert_eq!(
        attr(span, "gen_ai.response.id"),
        Some(summary.id().to_owned().into())
    );
    assert_eq!(
        attr(span, "gen_ai.response.model"),
        Some(RESPONSE_MODEL.into())
    );
    assert_eq!(attr(span, "gen_ai.request.stream"), Some(Value::Bool(true)));
    assert_eq!(attr(span, "gen_ai.request.max_tokens"), i(3));
    assert_eq!(attr(span, "server.port"), i(server.port.into()));
    let ttfc = match attr(span, "gen_ai.response.time_to_first_chunk") {
        Some(Value::F64(s)) => s,
        other => panic!("time to first chunk: {other:?}"),
    };
    assert!(ttfc > 0.0 && ttfc < 30.0, "time to first chunk {ttfc}");
    assert_eq!(
        token_points(&h),
        vec![("input".into(), 1, 2), ("output".into(), 1, 3)]
    );
    // The summary is one of the ways a stream reaches us: its first chunk
    // gets the histogram point the dashboards' TTFC panels read, the same
    // value as the span's, sliced like the call's duration.
    let metrics = h.metrics();
    let points =
        f64_histogram_points(metrics.expect("gen_ai.client.operation.time_to_first_chunk"));
    assert_eq!(points.iter().map(|p| p.count()).sum::<u64>(), 1);
    assert!(
        (points[0].sum() - ttfc).abs() < 1e-9,
        "{} vs {ttfc}",
        points[0].sum()
    );
    let attrs = point_attrs(points[0].attributes());
    assert_eq!(
        attrs.get("gen_ai.request.model").map(String::as_str),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        attrs.get("gen_ai.provider.name").map(String::as_str),
        Some("openai")
    );
}

/// async-openai's streaming call as its users write it: the stream is
/// returned, in a `Result`, for the caller to read.
#[llm_call(model = request.model, provider = "openai", stream)]
async fn open_stream(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> Result<ChatCompletionResponseStream, OpenAIError> {
    client.chat().create_stream(request).await
}

#[test]
fn a_stream_returned_in_a_result_keeps_the_call_open_until_it_ends() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("hello there")
        .max_completion_tokens(3_u32)
        .stream_options(with_usage())
        .build()
        .unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    // One runtime throughout: async-openai reads the stream on a task of it.
    h.block_on(async {
        let mut stream = open_stream(&client, req).await.expect("the stream opens");
        assert!(
            h.finished_spans().is_empty(),
            "the call is still open while its stream is unread"
        );
        while let Some(chunk) = stream.try_next().await.expect("a chunk") {
            chunks += 1;
            for choice in &chunk.choices {
                text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            }
        }
    });
    assert_eq!(text, "Canned answer to:");
    assert_eq!(chunks, 5);

    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "gen_ai.request.stream"), Some(Value::Bool(true)));
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), i(2));
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), i(3));
    assert_eq!(
        attr(span, "gen_ai.response.finish_reasons"),
        strings(&["length"])
    );
    assert_eq!(
        attr(span, "gen_ai.response.model"),
        Some(RESPONSE_MODEL.into())
    );
    assert!(attr(span, "gen_ai.response.id").is_some());
    assert_eq!(span.status, Status::Unset);
    let ttfc = match attr(span, "gen_ai.response.time_to_first_chunk") {
        Some(Value::F64(s)) => s,
        other => panic!("time to first chunk: {other:?}"),
    };
    let metrics = h.metrics();
    let points =
        f64_histogram_points(metrics.expect("gen_ai.client.operation.time_to_first_chunk"));
    assert_eq!(points.iter().map(|p| p.count()).sum::<u64>(), 1);
    assert!((points[0].sum() - ttfc).abs() < 1e-9);
    assert_eq!(
        token_points(&h),
        vec![("input".into(), 1, 2), ("output".into(), 1, 3)]
    );
}

#[test]
fn a_stream_in_a_result_dropped_early_is_cancelled() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("hello there").build().unwrap();
    h.block_on(async {
        let mut stream = open_stream(&client, req).await.expect("the stream opens");
        stream
            .try_next()
            .await
            .expect("a chunk")
            .expect("one chunk");
    });
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "error.type"), Some("cancelled".into()));
    assert!(attr(span, "gen_ai.response.time_to_first_chunk").is_some());
}

#[test]
fn a_stream_in_a_result_that_fails_fails_the_call() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("please fail while streaming").build().unwrap();
    // async-openai reports the 429 as the stream's first item.
    let failed = h.block_on(async {
        match open_stream(&client, req).await {
            Err(e) => Some(e),
            Ok(mut stream) => loop {
                match stream.try_next().await {
                    Err(e) => break Some(e),
                    Ok(None) => break None,
                    Ok(Some(_)) => {}
                }
            },
        }
    });
    assert!(
        matches!(failed, Some(OpenAIError::ApiError(_))),
        "{failed:?}"
    );
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "error.type"), Some("429".into()));
    assert!(matches!(span.status, Status::Error { .. }));
}

#[test]
fn a_stream_in_a_result_from_a_server_that_is_down_fails_the_call() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://127.0.0.1:{port}/v1"))
            .with_api_key("test"),
    );
    let h = harness();
    let req = request("hello there").build().unwrap();
    let failed = h.block_on(async {
        match open_stream(&client, req).await {
            Err(e) => Some(e),
            Ok(mut stream) => stream.try_next().await.err(),
        }
    });
    assert!(failed.is_some(), "a refused connection is an error");
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert!(attr(span, "error.type").is_some(), "{:?}", span.attributes);
    assert!(matches!(span.status, Status::Error { .. }));
}

#[test]
fn a_stream_without_include_usage_records_no_token_counts() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("hello there").build().unwrap();
    let summary = h.block_on(chat_stream(&client, req)).unwrap();
    assert_eq!(summary.content(), "Canned answer to: hello there");
    assert_eq!(summary.completion_usage(), None);

    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), None);
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), None);
    assert_eq!(
        attr(span, "gen_ai.response.finish_reasons"),
        strings(&["stop"])
    );
    assert_eq!(token_points(&h), vec![], "counts are never invented");
}

#[test]
fn chunks_collected_into_a_vec_are_read_as_one_response() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("one two three four five six seven eight nine ten")
        .stream_options(with_usage())
        .build()
        .unwrap();
    let chunks = h.block_on(chat_chunks(&client, req)).unwrap();
    assert!(chunks.len() > 3);
    assert!(chunks.last().unwrap().usage.is_some());

    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), i(10));
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), i(13));
    // More than 8 prompt words: the server reports 2 of them cached.
    assert_eq!(attr(span, "gen_ai.usage.cache_read.input_tokens"), i(2));
    assert_eq!(
        attr(span, "gen_ai.response.finish_reasons"),
        strings(&["stop"])
    );
}

#[test]
fn a_rate_limited_call_fails_with_error_type_429_and_no_tokens() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("please fail now").build().unwrap();
    let err = h.block_on(chat(&client, req)).unwrap_err();
    match &err {
        OpenAIError::ApiError(e) => {
            assert_eq!(e.status_code.as_u16(), 429);
            assert_eq!(e.api_error.code.as_deref(), Some("rate_limit_exceeded"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }

    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "error.type"), Some("429".into()));
    match &span.status {
        Status::Error { description } => {
            assert!(description.contains("Rate limit reached"), "{description}")
        }
        other => panic!("status {other:?}"),
    }
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), None);
    assert_eq!(attr(span, "gen_ai.response.model"), None);
    assert_eq!(attr(span, "server.address"), Some("127.0.0.1".into()));

    let metrics = h.metrics();
    let points = f64_histogram_points(metrics.expect("gen_ai.client.operation.duration"));
    assert_eq!(point_attrs(points[0].attributes())["error.type"], "429");
    assert_eq!(token_points(&h), vec![]);
}

#[test]
fn a_failing_stream_request_fails_the_call() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("please fail while streaming").build().unwrap();
    let err = h.block_on(chat_stream(&client, req)).unwrap_err();
    assert!(matches!(err, OpenAIError::ApiError(_)), "{err:?}");
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "error.type"), Some("429".into()));
}

#[test]
fn a_server_that_is_down_is_a_connection_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("http://127.0.0.1:{port}/v1"))
            .with_api_key("sk-test"),
    );
    let h = harness();
    let err = h
        .block_on(chat(&client, request("hi").build().unwrap()))
        .unwrap_err();
    assert!(matches!(err, OpenAIError::Reqwest(_)), "{err:?}");
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(attr(span, "error.type"), Some("connection".into()));
    assert_eq!(attr(span, "server.port"), i(port.into()));
}

#[agent_step(kind = tool, name = "get_weather")]
async fn get_weather(arguments: &str) -> Result<String, serde_json::Error> {
    let args: serde_json::Value = serde_json::from_str(arguments)?;
    Ok(format!("{}: 21 °C", args["query"].as_str().unwrap_or("?")))
}

#[agent_step(agent = "assistant")]
async fn tool_round(client: &Client<OpenAIConfig>) -> Result<String, Box<dyn std::error::Error>> {
    let tool = ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default().name("get_weather").build()?,
    });
    let req = request("weather in Paris")
        .tools(vec![tool])
        .stream_options(with_usage())
        .build()?;
    let summary = chat_stream(client, req).await?;
    let call = &summary.choices()[0].tool_calls[0];
    assert_eq!(call.name, "get_weather");
    assert!(call.id.starts_with("call_"), "{call:?}");
    Ok(get_weather(&call.arguments).await?)
}

#[test]
fn streamed_tool_calls_are_put_together_and_spans_nest_under_the_agent() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let result = h.block_on(tool_round(&client)).unwrap();
    assert_eq!(result, "weather in Paris: 21 °C");

    let spans = h.finished_spans();
    let agent = span_named(&spans, "invoke_agent assistant");
    let llm = span_named(&spans, "chat gpt-4o-mini");
    let tool = span_named(&spans, "execute_tool get_weather");
    assert_eq!(llm.parent_span_id, agent.span_context.span_id());
    assert_eq!(tool.parent_span_id, agent.span_context.span_id());
    assert_eq!(
        attr(llm, "gen_ai.response.finish_reasons"),
        strings(&["tool_calls"])
    );
}

// Content without glue: with capture on, the request's messages and the
// response's (or the stream's) answer are recorded from async-openai's own
// types, in the conventions' JSON.

fn json_attr(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> serde_json::Value {
    match attr(span, key) {
        Some(Value::String(s)) => serde_json::from_str(s.as_str()).expect("JSON"),
        other => panic!("{key}: {other:?}"),
    }
}

fn conversation() -> Vec<async_openai::types::chat::ChatCompletionRequestMessage> {
    use async_openai::types::chat::FunctionCall;
    use async_openai::types::chat::{
        ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
        ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestSystemMessage,
        ChatCompletionRequestToolMessageArgs,
    };
    vec![
        ChatCompletionRequestSystemMessage::from("Be brief.").into(),
        ChatCompletionRequestUserMessage::from("weather in Paris").into(),
        ChatCompletionRequestAssistantMessageArgs::default()
            .tool_calls(vec![ChatCompletionMessageToolCalls::Function(
                ChatCompletionMessageToolCall {
                    id: "call_7".into(),
                    function: FunctionCall {
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Paris"}"#.into(),
                    },
                },
            )])
            .build()
            .unwrap()
            .into(),
        ChatCompletionRequestToolMessageArgs::default()
            .content("21 °C")
            .tool_call_id("call_7")
            .build()
            .unwrap()
            .into(),
    ]
}

#[llm_call(model = request.model, provider = "openai", request = request)]
async fn chat_with_request(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    client.chat().create(request).await
}

#[test]
fn with_capture_on_a_call_records_its_request_and_answer_messages() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = common::harness_with(|b| {
        b.capture_message_content(otel_agent_runtime::CaptureMode::SpanOnly)
    });
    let req = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(conversation())
        .build()
        .unwrap();
    let response = h.block_on(chat_with_request(&client, req)).unwrap();
    let answer = response.choices[0].message.content.clone().unwrap();

    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(
        json_attr(span, "gen_ai.system_instructions"),
        serde_json::json!([{"type": "text", "content": "Be brief."}])
    );
    assert_eq!(
        json_attr(span, "gen_ai.input.messages"),
        serde_json::json!([
            {"role": "user", "parts": [{"type": "text", "content": "weather in Paris"}]},
            {"role": "assistant", "parts": [
                {"type": "tool_call", "id": "call_7", "name": "get_weather", "arguments": {"city": "Paris"}}
            ]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_7", "response": "21 °C"}]},
        ])
    );
    assert_eq!(
        json_attr(span, "gen_ai.output.messages"),
        serde_json::json!([{
            "role": "assistant",
            "parts": [{"type": "text", "content": answer}],
            "finish_reason": "stop",
        }])
    );
}

#[test]
fn with_capture_off_nothing_of_the_content_is_recorded() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(conversation())
        .build()
        .unwrap();
    h.block_on(chat_with_request(&client, req)).unwrap();
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o-mini");
    for key in [
        "gen_ai.system_instructions",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
    ] {
        assert_eq!(attr(span, key), None, "{key}");
    }
    assert!(span.events.is_empty(), "{:?}", span.events);
}

#[llm_call(model = request.model, provider = "openai", request = request, stream)]
async fn open_stream_with_request(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> Result<ChatCompletionResponseStream, OpenAIError> {
    client.chat().create_stream(request).await
}

#[test]
fn with_capture_on_a_streamed_answer_is_put_together_from_its_deltas() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = common::harness_with(|b| {
        b.capture_message_content(otel_agent_runtime::CaptureMode::SpanOnly)
    });
    // Text answer, then a tool call answer.
    let text = request("hello there")
        .stream_options(with_usage())
        .build()
        .unwrap();
    let tool = ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("get_weather")
            .build()
            .unwrap(),
    });
    let tooled = request("weather in Paris")
        .tools(vec![tool])
        .build()
        .unwrap();
    let (said, call_id) = h.block_on(async {
        let mut said = String::new();
        let mut stream = open_stream_with_request(&client, text).await.unwrap();
        while let Some(chunk) = stream.try_next().await.unwrap() {
            for c in &chunk.choices {
                said.push_str(c.delta.content.as_deref().unwrap_or(""));
            }
        }
        let mut call_id = String::new();
        let mut stream = open_stream_with_request(&client, tooled).await.unwrap();
        while let Some(chunk) = stream.try_next().await.unwrap() {
            for c in &chunk.choices {
                for call in c.delta.tool_calls.iter().flatten() {
                    if let Some(id) = &call.id {
                        call_id.clone_from(id);
                    }
                }
            }
        }
        (said, call_id)
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        json_attr(&spans[0], "gen_ai.output.messages"),
        serde_json::json!([{
            "role": "assistant",
            "parts": [{"type": "text", "content": said}],
            "finish_reason": "stop",
        }])
    );
    assert_eq!(
        json_attr(&spans[1], "gen_ai.input.messages"),
        serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "weather in Paris"}]}])
    );
    assert_eq!(
        json_attr(&spans[1], "gen_ai.output.messages"),
        serde_json::json!([{
            "role": "assistant",
            "parts": [{
                "type": "tool_call",
                "id": call_id,
                "name": "get_weather",
                "arguments": {"query": "weather in Paris"},
            }],
            "finish_reason": "tool_calls",
        }])
    );
}

#[test]
fn in_the_event_modes_each_inference_is_one_details_event_with_the_calls_attributes() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    for (mode, on_span) in [
        (otel_agent_runtime::CaptureMode::EventOnly, false),
        (otel_agent_runtime::CaptureMode::SpanAndEvent, true),
    ] {
        let h = common::harness_with(|b| b.capture_message_content(mode));
        let req = CreateChatCompletionRequestArgs::default()
            .model(MODEL)
            .messages(conversation())
            .build()
            .unwrap();
        h.block_on(chat_with_request(&client, req)).unwrap();
        let spans = h.finished_spans();
        let span = span_named(&spans, "chat gpt-4o-mini");
        let details: Vec<_> = span
            .events
            .iter()
            .filter(|e| e.name == "gen_ai.client.inference.operation.details")
            .collect();
        assert_eq!(details.len(), 1, "{mode:?}: {:?}", span.events);
        let event: BTreeMap<&str, &Value> = details[0]
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), &kv.value))
            .collect();
        for key in [
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "gen_ai.response.id",
            "gen_ai.response.finish_reasons",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.system_instructions",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
        ] {
            assert!(event.contains_key(key), "{mode:?}: no {key} in {event:?}");
        }
        assert_eq!(event["gen_ai.request.model"].as_str(), MODEL, "{mode:?}");
        assert_eq!(
            attr(span, "gen_ai.input.messages").is_some(),
            on_span,
            "{mode:?}: messages on the span"
        );
    }
}

#[llm_call(model = request.model, provider = "openai", client = client, stream)]
async fn open_stream_on(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> Result<ChatCompletionResponseStream, OpenAIError> {
    client.chat().create_stream(request).await
}

#[test]
fn the_server_is_on_the_span_from_its_start_and_on_the_call_metrics() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client();
    let h = harness();
    let req = request("hello there")
        .stream_options(with_usage())
        .build()
        .unwrap();
    h.block_on(async {
        let mut stream = open_stream_on(&client, req).await.unwrap();
        while stream.try_next().await.unwrap().is_some() {}
        // record_client inside the body: the same on metrics.
        chat(&client, request("hello").build().unwrap())
            .await
            .unwrap();
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(attr(span, "server.address"), Some("127.0.0.1".into()));
        assert_eq!(attr(span, "server.port"), i(server.port.into()));
    }
    let metrics = h.metrics();
    for name in [
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
    ] {
        let points = f64_histogram_points(metrics.expect(name));
        assert!(!points.is_empty(), "{name}");
        for point in points {
            let attrs = point_attrs(point.attributes());
            assert_eq!(attrs["server.address"], "127.0.0.1", "{name}: {attrs:?}");
            assert_eq!(attrs["server.port"], server.port.to_string(), "{name}");
        }
    }
    let tokens = u64_histogram_points(metrics.expect("gen_ai.client.token.usage"));
    for point in tokens {
        assert_eq!(
            point_attrs(point.attributes())["server.address"],
            "127.0.0.1"
        );
    }
}

#[test]
fn each_attempt_of_a_call_is_an_event_on_its_span_retries_included() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = openai::with_attempts(server.client());
    let h = harness();
    h.block_on(async {
        chat(&client, request("hello").build().unwrap())
            .await
            .unwrap();
        chat(&client, request("please fail").build().unwrap())
            .await
            .unwrap_err();
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 2);
    let attempts = |span: &opentelemetry_sdk::trace::SpanData| -> Vec<(i64, i64, Option<String>)> {
        span.events
            .iter()
            .filter(|e| e.name == openai::ATTEMPT_EVENT)
            .map(|e| {
                let get = |k: &str| {
                    e.attributes
                        .iter()
                        .find(|kv| kv.key.as_str() == k)
                        .map(|kv| kv.value.clone())
                };
                let int = |k: &str| match get(k) {
                    Some(Value::I64(n)) => n,
                    other => panic!("{k}: {other:?}"),
                };
                (
                    int("http.request.resend_count"),
                    int("http.response.status_code"),
                    get("error.type").map(|v| v.to_string()),
                )
            })
            .collect()
    };
    assert_eq!(attempts(&spans[0]), vec![(0, 200, None)]);
    // async-openai retries a 429 three times: four attempts, each visible.
    let failed = attempts(&spans[1]);
    assert_eq!(
        failed,
        (0..4)
            .map(|n| (n, 429, Some("429".to_owned())))
            .collect::<Vec<_>>()
    );
    assert_eq!(attr(&spans[1], "error.type"), Some("429".into()));
}
