//! MCP across the hop: a real rmcp client and server, in one process over an
//! in-memory pipe, traced by `otel_agent_runtime::mcp`. The client's calls are
//! CLIENT spans under the step that made them, the server's SERVER spans are
//! their children (and the parents of the steps in the tool handlers), the
//! context and baggage travel in `params._meta`, errors are typed, metrics have
//! the conventions' names, units and attributes, and tool arguments and results
//! appear only under content capture.
//!
//! `cargo test --features rmcp --test mcp`

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{attr, harness, harness_with, point_attrs, span_named, Harness};
use opentelemetry::trace::{SpanKind, Status, TraceId};
use opentelemetry_sdk::trace::SpanData;
use otel_agent_runtime::mcp::{self, ClientTransport, McpClient, TracedServer};
use otel_agent_runtime::propagation::TraceCarrier;
use otel_agent_runtime::{agent_step, context, llm_call, CaptureMode, LlmResponse, Usage};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, ListToolsResult, PaginatedRequestParams, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, RequestMetaObject,
    ResourceContents, Role, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::IntoTransport;
use rmcp::{
    ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceError, ServiceExt as _,
};

// ---------------------------------------------------------------------------
// The tool server
// ---------------------------------------------------------------------------

struct Forecast {
    text: String,
}

impl LlmResponse for Forecast {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(20, 8))
    }
}

#[llm_call(model = "gpt-4o-mini", provider = "openai")]
async fn summarize(city: &str) -> Result<Forecast, std::io::Error> {
    Ok(Forecast {
        text: format!("sunny in {city}"),
    })
}

#[agent_step(kind = tool, name = "forecast_lookup")]
async fn lookup(city: &str) -> Result<String, std::io::Error> {
    Ok(summarize(city).await?.text)
}

/// Tools, a prompt and a resource; remembers the `_meta` of every tool call.
#[derive(Clone, Default)]
struct TestServer {
    seen: Arc<Mutex<Vec<RequestMetaObject>>>,
}

fn text_of(args: Option<&serde_json::Map<String, serde_json::Value>>, key: &str) -> String {
    args.and_then(|a| a.get(key))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.seen.lock().unwrap().push(context.meta.clone());
        let args = request.arguments.as_ref();
        let result = match request.name.as_ref() {
            "get_weather" => {
                let city = text_of(args, "city");
                let forecast = lookup(&city)
                    .await
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                CallToolResult::success(vec![ContentBlock::text(forecast)])
            }
            "book_flight" => CallToolResult::error(vec![ContentBlock::text("no seats left")]),
            "whoami" => {
                let session = context::current().session_id().unwrap_or("none").to_owned();
                CallToolResult::success(vec![ContentBlock::text(session)])
            }
            "slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                CallToolResult::success(vec![])
            }
            other => return Err(McpError::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(result.into())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = serde_json::Map::new();
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("get_weather", "The forecast for a city", schema.clone()),
            Tool::new("book_flight", "Books a flight", schema),
        ]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("use {}", request.name),
        )])
        .into())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        Ok(ReadResourceResult::new(vec![ResourceContents::text("hello", request.uri)]).into())
    }
}

// ---------------------------------------------------------------------------
// The harness: client and server over an in-memory pipe
// ---------------------------------------------------------------------------

fn mcp_harness(capture: bool) -> Harness {
    if capture {
        harness_with(|b| b.capture_message_content(CaptureMode::SpanOnly))
    } else {
        harness()
    }
}

type Server = tokio::task::JoinHandle<RunningService<RoleServer, TracedServer<TestServer>>>;

async fn connect(server: TestServer) -> (McpClient<()>, Server) {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        TracedServer::new(server)
            .serve(server_io)
            .await
            .expect("server starts")
    });
    let transport =
        ClientTransport::new(IntoTransport::<RoleClient, _, _>::into_transport(client_io))
            .with_network_transport("pipe");
    let client = McpClient::new(().serve(transport).await.expect("client starts"));
    (client, server)
}

async fn disconnect(client: McpClient<()>, server: Server) {
    client.into_inner().cancel().await.expect("client stops");
    server
        .await
        .expect("server task")
        .cancel()
        .await
        .expect("server stops");
}

fn args(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    json.as_object().cloned().unwrap_or_default()
}

fn weather(city: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("get_weather")
        .with_arguments(args(serde_json::json!({ "city": city })))
}

#[agent_step(agent = "planner")]
async fn plan(client: &McpClient<()>, city: &str) -> Result<String, ServiceError> {
    let forecast = client.call_tool(weather(city)).await?;
    let booking = client
        .call_tool(
            CallToolRequestParams::new("book_flight").with_arguments(args(
                serde_json::json!({ "to": city, "note": "password=hunter22" }),
            )),
        )
        .await?;
    assert_eq!(booking.is_error, Some(true));
    Ok(format!("{forecast:?}"))
}

fn spans_of(spans: &[SpanData], name: &str, kind: SpanKind) -> Vec<SpanData> {
    spans
        .iter()
        .filter(|s| s.name == name && s.span_kind == kind)
        .cloned()
        .collect()
}

fn one(spans: &[SpanData], name: &str, kind: SpanKind) -> SpanData {
    let found = spans_of(spans, name, kind.clone());
    assert_eq!(found.len(), 1, "one {kind:?} span {name}: {found:#?}");
    found.into_iter().next().unwrap()
}

fn s(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

fn assert_child_of(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "{} in {}'s trace",
        child.name,
        parent.name
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "{} under {}",
        child.name,
        parent.name
    );
}

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

#[test]
fn client_and_server_spans_are_one_trace_under_the_calling_step() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        plan(&client, "Lisbon").await.expect("plan");
        disconnect(client, server).await;
    });
    let spans = h.finished_spans();
    let step = span_named(&spans, "invoke_agent planner");
    let client = one(&spans, "tools/call get_weather", SpanKind::Client);
    let server = one(&spans, "tools/call get_weather", SpanKind::Server);
    assert_child_of(&client, step);
    assert_child_of(&server, &client);
    assert!(
        server.parent_span_is_remote,
        "the server's parent came over the wire"
    );

    // The tool handler's step and model call nest under the SERVER span.
    let tool = span_named(&spans, "execute_tool forecast_lookup");
    assert_child_of(tool, &server);
    let chat = span_named(&spans, "chat gpt-4o-mini");
    assert_child_of(chat, tool);

    for span in [&client, &server] {
        assert_eq!(s(span, "mcp.method.name").as_deref(), Some("tools/call"));
        assert_eq!(
            s(span, "gen_ai.operation.name").as_deref(),
            Some("execute_tool")
        );
        assert_eq!(s(span, "gen_ai.tool.name").as_deref(), Some("get_weather"));
        assert_eq!(s(span, "network.transport").as_deref(), Some("pipe"));
        assert!(
            s(span, "mcp.protocol.version").is_some_and(|v| v.len() == 10),
            "{span:#?}"
        );
        assert_eq!(span.status, Status::Unset);
        assert_eq!(s(span, "error.type"), None);
    }
    // The same JSON-RPC id on both ends.
    let id = s(&client, "jsonrpc.request.id").expect("client request id");
    assert_eq!(s(&server, "jsonrpc.request.id"), Some(id));
}

#[test]
fn tool_errors_and_json_rpc_errors_set_error_type_and_status() {
    let h = mcp_harness(false);
    let unknown = h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        plan(&client, "Oslo").await.expect("plan");
        let unknown = client
            .call_tool(CallToolRequestParams::new("teleport"))
            .await;
        disconnect(client, server).await;
        unknown
    });
    match unknown {
        Err(ServiceError::McpError(e)) => assert_eq!(e.code.0, -32602),
        other => panic!("expected invalid params, got {other:?}"),
    }
    let spans = h.finished_spans();
    for kind in [SpanKind::Client, SpanKind::Server] {
        let booking = one(&spans, "tools/call book_flight", kind.clone());
        assert_eq!(s(&booking, "error.type").as_deref(), Some(mcp::TOOL_ERROR));
        assert!(
            matches!(booking.status, Status::Error { .. }),
            "{booking:#?}"
        );
        let unknown = one(&spans, "tools/call teleport", kind);
        assert_eq!(s(&unknown, "error.type").as_deref(), Some("-32602"));
        assert_eq!(
            s(&unknown, "rpc.response.status_code").as_deref(),
            Some("-32602")
        );
        match &unknown.status {
            Status::Error { description } => {
                assert!(description.contains("no tool teleport"), "{description}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn lists_prompts_and_resources_get_their_spans() {
    // Capture off: `gen_ai.prompt.name` names a template and is not content,
    // though it shares the deprecated `gen_ai.prompt.*` content keys' prefix.
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        let tools = client.list_all_tools().await.expect("tools");
        assert_eq!(tools.len(), 2);
        client
            .get_prompt(GetPromptRequestParams::new("summarize"))
            .await
            .expect("prompt");
        client
            .read_resource(ReadResourceRequestParams::new("file:///notes/today.md"))
            .await
            .expect("resource");
        disconnect(client, server).await;
    });
    let spans = h.finished_spans();
    for kind in [SpanKind::Client, SpanKind::Server] {
        let list = one(&spans, "tools/list", kind.clone());
        assert_eq!(s(&list, "mcp.method.name").as_deref(), Some("tools/list"));
        assert_eq!(s(&list, "gen_ai.operation.name"), None);
        let prompt = one(&spans, "prompts/get summarize", kind.clone());
        assert_eq!(
            s(&prompt, "gen_ai.prompt.name").as_deref(),
            Some("summarize")
        );
        let read = one(&spans, "resources/read", kind.clone());
        assert_eq!(
            s(&read, "mcp.resource.uri").as_deref(),
            Some("file:///notes/today.md")
        );
    }
    // Each server span is the child of its client span.
    for name in ["tools/list", "prompts/get summarize", "resources/read"] {
        assert_child_of(
            &one(&spans, name, SpanKind::Server),
            &one(&spans, name, SpanKind::Client),
        );
    }
}

#[test]
fn a_dropped_call_ends_cancelled() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        let call = client.call_tool(CallToolRequestParams::new("slow"));
        assert!(tokio::time::timeout(Duration::from_millis(20), call)
            .await
            .is_err());
        disconnect(client, server).await;
    });
    let spans = h.finished_spans();
    let client = one(&spans, "tools/call slow", SpanKind::Client);
    assert_eq!(s(&client, "error.type").as_deref(), Some("cancelled"));
}

// ---------------------------------------------------------------------------
// _meta: injection and extraction
// ---------------------------------------------------------------------------

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn meta_carries_traceparent_tracestate_and_baggage_and_the_server_uses_them() {
    let h = mcp_harness(false);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = TestServer { seen: seen.clone() };
    let (whoami, carrier_trace) = h.block_on(async move {
        let (client, server) = connect(server).await;
        // Work that arrived from elsewhere with vendor trace state, in a session.
        let incoming = TraceCarrier {
            traceparent: Some(TRACEPARENT.into()),
            tracestate: Some("vendor=abc".into()),
            baggage: None,
        };
        // The scope is taken inside the received context, on top of it.
        let whoami = incoming
            .instrument(async {
                context::scope()
                    .session_id("sess-9")
                    .tenant("acme")
                    .instrument(async {
                        client
                            .call_tool(CallToolRequestParams::new("whoami"))
                            .await
                            .expect("whoami")
                    })
                    .await
            })
            .await;
        disconnect(client, server).await;
        (whoami, incoming.trace_id())
    });
    let spans = h.finished_spans();
    let client = one(&spans, "tools/call whoami", SpanKind::Client);
    let server = one(&spans, "tools/call whoami", SpanKind::Server);
    assert_eq!(Some(client.span_context.trace_id()), carrier_trace);
    assert_eq!(
        client.span_context.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert_child_of(&server, &client);

    // What went over the wire: the CLIENT span as parent, the trace state and the baggage.
    let meta = seen
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a tool call was seen");
    let expected = format!(
        "00-{}-{}-01",
        client.span_context.trace_id(),
        client.span_context.span_id()
    );
    assert_eq!(meta.get_traceparent(), Some(expected.as_str()));
    assert_eq!(meta.get_tracestate(), Some("vendor=abc"));
    let baggage = meta.get_baggage().expect("baggage");
    assert!(
        baggage.contains("session.id=sess-9") && baggage.contains("otel_agent.tenant=acme"),
        "{baggage}"
    );

    // The server's handler ran in the caller's session, and its span says so.
    assert!(
        format!("{:?}", whoami.content).contains("sess-9"),
        "{whoami:?}"
    );
    assert_eq!(s(&server, "session.id").as_deref(), Some("sess-9"));
    assert_eq!(server.span_context.trace_state().header(), "vendor=abc");
}

#[test]
fn without_a_context_the_server_starts_its_own_trace() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        // An untraced call straight through rmcp's peer: no `_meta` context.
        client
            .inner()
            .call_tool(CallToolRequestParams::new("whoami"))
            .await
            .expect("whoami");
        disconnect(client, server).await;
    });
    let spans = h.finished_spans();
    assert!(spans_of(&spans, "tools/call whoami", SpanKind::Client).is_empty());
    let server = one(&spans, "tools/call whoami", SpanKind::Server);
    assert!(!server.parent_span_is_remote);
    assert_eq!(server.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[test]
fn calls_work_without_telemetry() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        let result = client.call_tool(weather("Rome")).await.expect("call");
        assert_eq!(result.is_error, Some(false));
        disconnect(client, server).await;
    });
}

// ---------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------

#[test]
fn tool_arguments_and_results_are_left_out_by_default() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        plan(&client, "Paris").await.expect("plan");
        disconnect(client, server).await;
    });
    for span in h
        .finished_spans()
        .iter()
        .filter(|s| s.name.starts_with("tools/call"))
    {
        assert_eq!(
            attr(span, "gen_ai.tool.call.arguments"),
            None,
            "{}",
            span.name
        );
        assert_eq!(attr(span, "gen_ai.tool.call.result"), None, "{}", span.name);
    }
}

#[test]
fn tool_arguments_and_results_are_recorded_and_redacted_under_capture() {
    let h = mcp_harness(true);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        plan(&client, "Berlin").await.expect("plan");
        disconnect(client, server).await;
    });
    let spans = h.finished_spans();
    for kind in [SpanKind::Client, SpanKind::Server] {
        let weather = one(&spans, "tools/call get_weather", kind.clone());
        let arguments: serde_json::Value =
            serde_json::from_str(&s(&weather, "gen_ai.tool.call.arguments").expect("arguments"))
                .unwrap();
        assert_eq!(arguments, serde_json::json!({ "city": "Berlin" }));
        let result = s(&weather, "gen_ai.tool.call.result").expect("result");
        assert!(result.contains("sunny in Berlin"), "{result}");
        let booking = one(&spans, "tools/call book_flight", kind);
        let arguments = s(&booking, "gen_ai.tool.call.arguments").expect("arguments");
        assert!(
            !arguments.contains("hunter22") && arguments.contains("[REDACTED]"),
            "{arguments}"
        );
        assert!(s(&booking, "gen_ai.tool.call.result")
            .expect("result")
            .contains("no seats left"));
    }
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// The data points of an MCP histogram whose `gen_ai.tool.name`, or else
/// `mcp.method.name`, is `subject`: attributes, count.
fn points(h: &Harness, name: &str, subject: &str) -> Vec<(BTreeMap<String, String>, u64)> {
    let exports = h.metrics();
    let Some(metric) = exports.get(name) else {
        return Vec::new();
    };
    assert_eq!(metric.unit(), "s", "{name}");
    common::f64_histogram_points(metric)
        .into_iter()
        .inspect(|p| {
            assert_eq!(
                p.bounds().collect::<Vec<_>>(),
                mcp::DURATION_BUCKETS.to_vec(),
                "{name}"
            )
        })
        .map(|p| (point_attrs(p.attributes()), p.count()))
        .filter(|(attrs, _)| {
            attrs
                .get("gen_ai.tool.name")
                .or_else(|| attrs.get("mcp.method.name"))
                .map(String::as_str)
                == Some(subject)
        })
        .collect()
}

fn no_ids(attrs: &BTreeMap<String, String>) {
    for key in [
        "mcp.session.id",
        "jsonrpc.request.id",
        "session.id",
        "otel_agent.tenant",
        "mcp.resource.uri",
    ] {
        assert!(!attrs.contains_key(key), "{key} on a metric: {attrs:?}");
    }
}

#[test]
fn operation_and_session_durations_have_the_conventions_attributes() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        context::scope()
            .session_id("sess-m")
            .instrument(async {
                client
                    .call_tool(CallToolRequestParams::new("metric_probe"))
                    .await
                    .expect_err("unknown");
                client.call_tool(weather("Quito")).await.expect("weather");
            })
            .await;
        disconnect(client, server).await;
    });
    for name in [
        mcp::CLIENT_OPERATION_DURATION,
        mcp::SERVER_OPERATION_DURATION,
    ] {
        let failed = points(&h, name, "metric_probe");
        assert_eq!(failed.len(), 1, "{name}: {failed:?}");
        let (attrs, count) = &failed[0];
        assert_eq!(*count, 1);
        no_ids(attrs);
        assert_eq!(
            attrs.get("mcp.method.name").map(String::as_str),
            Some("tools/call")
        );
        assert_eq!(
            attrs.get("gen_ai.operation.name").map(String::as_str),
            Some("execute_tool")
        );
        assert_eq!(attrs.get("error.type").map(String::as_str), Some("-32602"));
        assert_eq!(
            attrs.get("rpc.response.status_code").map(String::as_str),
            Some("-32602")
        );
        assert_eq!(
            attrs.get("network.transport").map(String::as_str),
            Some("pipe")
        );
        assert!(attrs.contains_key("mcp.protocol.version"), "{attrs:?}");

        let ok = points(&h, name, "get_weather");
        assert!(!ok.is_empty(), "{name}");
        for (attrs, _) in &ok {
            no_ids(attrs);
            assert_eq!(attrs.get("error.type"), None);
        }
    }
    for name in [mcp::CLIENT_SESSION_DURATION, mcp::SERVER_SESSION_DURATION] {
        let exports = h.metrics();
        let metric = exports.expect(name);
        assert_eq!(metric.unit(), "s");
        let sessions = common::f64_histogram_points(metric);
        assert!(
            sessions.iter().map(|p| p.count()).sum::<u64>() >= 1,
            "{name}"
        );
        for p in sessions {
            let attrs = point_attrs(p.attributes());
            no_ids(&attrs);
            assert_eq!(
                attrs.get("network.transport").map(String::as_str),
                Some("pipe"),
                "{name}"
            );
        }
    }
}

#[test]
fn a_tool_over_mcp_counts_as_a_tool_step() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        plan(&client, "Lima").await.expect("plan");
        disconnect(client, server).await;
    });
    let metrics = h.metrics();
    let steps =
        common::f64_histogram_points(metrics.expect(otel_agent_runtime::metrics::STEP_DURATION));
    let booked: Vec<_> = steps
        .iter()
        .map(|p| point_attrs(p.attributes()))
        .filter(|a| a.get("otel_agent.step.name").map(String::as_str) == Some("book_flight"))
        .collect();
    assert!(!booked.is_empty(), "{steps:?}");
    assert!(
        booked
            .iter()
            .all(
                |a| a.get("otel_agent.step.outcome").map(String::as_str) == Some("failure")
                    && a.get("error.type").map(String::as_str) == Some(mcp::TOOL_ERROR)
            ),
        "{booked:?}"
    );
}

// ---------------------------------------------------------------------------
// Concurrency and HTTP
// ---------------------------------------------------------------------------

#[agent_step(agent = "fan_out")]
async fn fan_out(client: &McpClient<()>) -> Result<(), ServiceError> {
    let peer = client.peer().clone();
    let (a, b) = futures::join!(client.call_tool(weather("Kyiv")), async move {
        peer.call_tool(weather("Accra")).await
    });
    a?;
    b?;
    Ok(())
}

#[test]
fn concurrent_calls_each_get_their_own_span_and_request_id() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        fan_out(&client).await.expect("fan out");
        disconnect(client, server).await;
    });
    let spans = h.finished_spans();
    let step = span_named(&spans, "invoke_agent fan_out");
    let clients = spans_of(&spans, "tools/call get_weather", SpanKind::Client);
    let servers = spans_of(&spans, "tools/call get_weather", SpanKind::Server);
    assert_eq!((clients.len(), servers.len()), (2, 2));
    let ids: std::collections::BTreeSet<_> = clients
        .iter()
        .map(|c| s(c, "jsonrpc.request.id").expect("request id"))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for c in &clients {
        assert_child_of(c, step);
        let server = servers
            .iter()
            .find(|s| s.parent_span_id == c.span_context.span_id())
            .expect("a server span under each client span");
        assert_eq!(s(server, "jsonrpc.request.id"), s(c, "jsonrpc.request.id"));
    }
}

#[test]
fn over_http_the_headers_give_the_session_the_network_and_a_missing_meta_context() {
    let h = mcp_harness(false);
    h.block_on(async {
        let (client, server) = connect(TestServer::default()).await;
        let running = server.await.expect("server task");
        // A request as rmcp's streamable HTTP server hands it over: the HTTP
        // request's parts in the extensions, the trace in a header, no `_meta`.
        let parts = http::Request::builder()
            .version(http::Version::HTTP_11)
            .header("mcp-session-id", "sess-http-1")
            .header("traceparent", TRACEPARENT)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let mut context = RequestContext::new(
            rmcp::model::NumberOrString::Number(77),
            running.peer().clone(),
        );
        context.extensions.insert(parts);
        let result = ServerHandler::call_tool(
            running.service(),
            CallToolRequestParams::new("whoami"),
            context,
        )
        .await
        .expect("whoami");
        assert!(matches!(result, CallToolResponse::Complete(_)));
        client.into_inner().cancel().await.expect("client stops");
        running.cancel().await.expect("server stops");
    });
    let spans = h.finished_spans();
    let server = one(&spans, "tools/call whoami", SpanKind::Server);
    assert_eq!(s(&server, "mcp.session.id").as_deref(), Some("sess-http-1"));
    assert_eq!(s(&server, "jsonrpc.request.id").as_deref(), Some("77"));
    assert_eq!(s(&server, "network.transport").as_deref(), Some("tcp"));
    assert_eq!(s(&server, "network.protocol.name").as_deref(), Some("http"));
    assert_eq!(
        s(&server, "network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        server.span_context.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert_eq!(
        server.parent_span_id,
        opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap()
    );
}
