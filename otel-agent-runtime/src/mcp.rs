//! Tools across processes: MCP clients and servers built with
//! [rmcp](https://docs.rs/rmcp), traced to the OpenTelemetry MCP conventions and
//! joined into one trace from the agent to the tool server.
//!
//! Each request gets a span named `{mcp.method.name} {target}` (`tools/call
//! get_weather`, `prompts/get summarize`, `tools/list`): CLIENT on the caller,
//! SERVER on the tool server, the server's span a child of the caller's. The
//! caller's trace context and baggage travel in the request's `params._meta`
//! (`traceparent`, `tracestate`, `baggage`), the only route over stdio, so the
//! server's spans, and every `#[agent_step]` / `#[llm_call]` inside its tool
//! handlers, are in the caller's trace with the caller's session, user and
//! tenant. Both sides record the conventions' duration histograms.
//!
//! Set up once, no code at the call sites:
//!
//! ```no_run
//! use otel_agent_runtime::{agent_step, mcp};
//! use rmcp::model::CallToolRequestParams;
//!
//! // The client: `serve_client` instead of `().serve(transport)`; calls read as before.
//! async fn connect(
//!     stream: tokio::io::DuplexStream,
//! ) -> Result<mcp::McpClient<()>, rmcp::service::ClientInitializeError> {
//!     mcp::serve_client((), stream).await
//! }
//!
//! #[agent_step(agent = "planner")]
//! async fn plan(client: &mcp::McpClient<()>) -> Result<bool, rmcp::ServiceError> {
//!     // span `tools/call get_weather` (CLIENT) under `invoke_agent planner`
//!     let weather = client.call_tool(CallToolRequestParams::new("get_weather")).await?;
//!     Ok(weather.is_error != Some(true))
//! }
//!
//! // The server: any rmcp service (a `ServerHandler`) wrapped in `TracedServer`.
//! async fn serve<H: rmcp::ServerHandler>(
//!     handler: H,
//!     stream: tokio::io::DuplexStream,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     use rmcp::ServiceExt as _;
//!     let running = mcp::TracedServer::new(handler).serve(stream).await?;
//!     running.waiting().await?;
//!     Ok(())
//! }
//! ```
//!
//! # What is recorded
//!
//! | on | what |
//! |---|---|
//! | every span | `mcp.method.name`, `jsonrpc.request.id`, `mcp.protocol.version`, `network.transport` (`pipe` for stdio, `tcp` for HTTP, with `network.protocol.name` `http`), `mcp.session.id` where the transport has one (streamable HTTP, server side) |
//! | `tools/call` | `gen_ai.operation.name` = `execute_tool`, `gen_ai.tool.name`; with content capture on, `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result` |
//! | `prompts/get`, `resources/read` | `gen_ai.prompt.name`, `mcp.resource.uri` |
//! | a failure | status ERROR and `error.type`: the JSON-RPC error code (`-32602`, also as `rpc.response.status_code`), [`TOOL_ERROR`] for a tool result flagged `isError`, or what the client saw (`timeout`, `transport_closed`, `cancelled`, ...) |
//! | metrics | [`CLIENT_OPERATION_DURATION`] and [`SERVER_OPERATION_DURATION`] (s, [`DURATION_BUCKETS`]), [`CLIENT_SESSION_DURATION`] and [`SERVER_SESSION_DURATION`] |
//!
//! Tool arguments and results are content: they are recorded only when message
//! content capture is on, and then pass the same redaction and size limit as
//! every other content attribute when the span leaves the process. Session and
//! request ids are span attributes only, never metric attributes. A `tools/call`
//! span is also an `execute_tool` step, so a tool reached over MCP counts in the
//! step metrics and the console's summary like a local one.
//!
//! # Without rmcp
//!
//! Any MCP peer joins the trace by reading and writing the W3C values in
//! `params._meta`: a client puts `traceparent` (and `tracestate`, `baggage` when
//! it has them) in each request's `_meta`; a server reads them from there (and,
//! over HTTP, from the `traceparent` header when `_meta` has none). The
//! [`propagation`](crate::propagation) functions read and write an rmcp
//! [`RequestMetaObject`] directly.

// The MCP names are marked deprecated by the conventions crate (moved to the
// GenAI conventions repository, same values), like the GenAI names in `semconv`.
#![allow(deprecated)]

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::KeyValue;
use rmcp::model::RequestMetaObject;

use crate::layer::InstrumentsLayer;
use crate::metrics::Bounded;
use crate::propagation::{HeaderSink, HeaderSource, BAGGAGE, TRACEPARENT, TRACESTATE};
use crate::semconv;

mod client;
mod server;

pub use client::{serve_client, ClientTransport, McpClient, TracedPeer};
pub use server::TracedServer;

/// The conventions' names this module emits, from
/// `opentelemetry-semantic-conventions`.
mod names {
    use opentelemetry_semantic_conventions::{attribute, metric};

    pub(super) const MCP_METHOD_NAME: &str = attribute::MCP_METHOD_NAME;
    pub(super) const MCP_PROTOCOL_VERSION: &str = attribute::MCP_PROTOCOL_VERSION;
    pub(super) const MCP_RESOURCE_URI: &str = attribute::MCP_RESOURCE_URI;
    pub(super) const MCP_SESSION_ID: &str = attribute::MCP_SESSION_ID;
    pub(super) const JSONRPC_REQUEST_ID: &str = attribute::JSONRPC_REQUEST_ID;
    pub(super) const GEN_AI_PROMPT_NAME: &str = attribute::GEN_AI_PROMPT_NAME;
    pub(super) const NETWORK_TRANSPORT: &str = attribute::NETWORK_TRANSPORT;
    pub(super) const NETWORK_PROTOCOL_NAME: &str = attribute::NETWORK_PROTOCOL_NAME;
    pub(super) const NETWORK_PROTOCOL_VERSION: &str = attribute::NETWORK_PROTOCOL_VERSION;
    pub(super) const RPC_RESPONSE_STATUS_CODE: &str = attribute::RPC_RESPONSE_STATUS_CODE;
    pub(super) const CLIENT_OPERATION_DURATION: &str = metric::MCP_CLIENT_OPERATION_DURATION;
    pub(super) const SERVER_OPERATION_DURATION: &str = metric::MCP_SERVER_OPERATION_DURATION;
    pub(super) const CLIENT_SESSION_DURATION: &str = metric::MCP_CLIENT_SESSION_DURATION;
    pub(super) const SERVER_SESSION_DURATION: &str = metric::MCP_SERVER_SESSION_DURATION;
}

/// `mcp.client.operation.duration`: a request as the client saw it, from
/// sending it to its response (s).
pub const CLIENT_OPERATION_DURATION: &str = names::CLIENT_OPERATION_DURATION;
/// `mcp.server.operation.duration`: a request as the server handled it (s).
pub const SERVER_OPERATION_DURATION: &str = names::SERVER_OPERATION_DURATION;
/// `mcp.client.session.duration`: a client's connection, from start to close (s).
pub const CLIENT_SESSION_DURATION: &str = names::CLIENT_SESSION_DURATION;
/// `mcp.server.session.duration`: a server's session, from `initialize` to its
/// end (s).
pub const SERVER_SESSION_DURATION: &str = names::SERVER_SESSION_DURATION;

/// Bucket boundaries the MCP conventions advise for their duration histograms.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// `error.type` of a `tools/call` whose result has `isError` set: the tool ran
/// and failed (the conventions' value).
pub const TOOL_ERROR: &str = "tool_error";

/// The `tracing` target of the MCP spans. Not the attributes' own target: the
/// spans are completed like any library's GenAI span (a `tools/call` is an
/// `execute_tool` step).
const TARGET: &str = "otel_agent::mcp";

/// Which end of a request this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// How the two ends talk, for `network.*` attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Network {
    /// `network.transport`: `pipe` (stdio), `tcp`, `unix`.
    transport: Option<Cow<'static, str>>,
    /// `network.protocol.name`: `http` for the streamable HTTP transport.
    protocol_name: Option<&'static str>,
    /// `network.protocol.version`: the HTTP version, when known.
    protocol_version: Option<&'static str>,
}

impl Network {
    /// What an rmcp transport's type says about it: its name holds the types
    /// it is made of (`TokioChildProcess`, `Stdin`, `StreamableHttp...`,
    /// `TcpStream`). An in-memory stream says nothing.
    fn of_type_name(name: &str) -> Self {
        let has = |part: &str| name.contains(part);
        if has("StreamableHttp") {
            Self {
                transport: Some(Cow::Borrowed("tcp")),
                protocol_name: Some("http"),
                protocol_version: None,
            }
        } else if has("ChildProcess") || has("Stdin") || has("Stdout") || has("ChildStd") {
            Self::transport("pipe")
        } else if has("UnixStream") || has("UnixSocket") {
            Self::transport("unix")
        } else if has("TcpStream") {
            Self::transport("tcp")
        } else {
            Self::default()
        }
    }

    fn transport(transport: impl Into<Cow<'static, str>>) -> Self {
        Self {
            transport: Some(transport.into()),
            ..Self::default()
        }
    }

    fn attrs(&self, attrs: &mut Vec<KeyValue>) {
        if let Some(t) = &self.transport {
            attrs.push(KeyValue::new(names::NETWORK_TRANSPORT, t.to_string()));
        }
        if let Some(p) = self.protocol_name {
            attrs.push(KeyValue::new(names::NETWORK_PROTOCOL_NAME, p));
        }
        if let Some(v) = self.protocol_version {
            attrs.push(KeyValue::new(names::NETWORK_PROTOCOL_VERSION, v));
        }
    }

    fn record_on(&self, span: &tracing::Span) {
        if let Some(t) = &self.transport {
            span.record(names::NETWORK_TRANSPORT, t.as_ref());
        }
        if let Some(p) = self.protocol_name {
            span.record(names::NETWORK_PROTOCOL_NAME, p);
        }
        if let Some(v) = self.protocol_version {
            span.record(names::NETWORK_PROTOCOL_VERSION, v);
        }
    }
}

/// What a request is about: the span name's target and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    None,
    Tool(String),
    Prompt(String),
    Resource(String),
}

/// One MCP request: its method and what it is about.
#[derive(Debug, Clone)]
struct Operation {
    method: Cow<'static, str>,
    subject: Subject,
}

impl Operation {
    fn new(method: &'static str, subject: Subject) -> Self {
        Self {
            method: Cow::Borrowed(method),
            subject,
        }
    }

    /// `{mcp.method.name} {target}`: the tool or prompt; a resource's URI is
    /// not a low-cardinality target, so `resources/read` stands alone.
    fn span_name(&self) -> String {
        match &self.subject {
            Subject::Tool(name) | Subject::Prompt(name) => format!("{} {name}", self.method),
            Subject::None | Subject::Resource(_) => self.method.to_string(),
        }
    }

    fn tool(&self) -> Option<&str> {
        match &self.subject {
            Subject::Tool(name) => Some(name),
            _ => None,
        }
    }

    /// The metric attributes that say what the operation was (no ids).
    fn attrs(&self, attrs: &mut Vec<KeyValue>) {
        attrs.push(KeyValue::new(
            names::MCP_METHOD_NAME,
            self.method.to_string(),
        ));
        match &self.subject {
            Subject::Tool(name) => {
                attrs.push(KeyValue::new(semconv::GEN_AI_OPERATION_NAME, EXECUTE_TOOL));
                attrs.push(KeyValue::new(semconv::GEN_AI_TOOL_NAME, name.clone()));
            }
            Subject::Prompt(name) => {
                attrs.push(KeyValue::new(names::GEN_AI_PROMPT_NAME, name.clone()));
            }
            Subject::None | Subject::Resource(_) => {}
        }
    }
}

/// `gen_ai.operation.name` of a `tools/call`.
const EXECUTE_TOOL: &str = "execute_tool";

/// Creates an MCP span: `$kind` is `client` or `server`; `$tool` the tool
/// name for a `tools/call` (which is then also an `execute_tool` span), else
/// the prompt and resource of other requests.
macro_rules! mcp_span {
    (@common $kind:literal, $name:expr, $method:expr; $($extra:tt)*) => {
        tracing::info_span!(
            target: TARGET,
            "mcp",
            otel.name = $name,
            otel.kind = $kind,
            { names::MCP_METHOD_NAME } = $method,
            $($extra)*
            { names::JSONRPC_REQUEST_ID } = tracing::field::Empty,
            { names::MCP_SESSION_ID } = tracing::field::Empty,
            { names::MCP_PROTOCOL_VERSION } = tracing::field::Empty,
            { names::NETWORK_TRANSPORT } = tracing::field::Empty,
            { names::NETWORK_PROTOCOL_NAME } = tracing::field::Empty,
            { names::NETWORK_PROTOCOL_VERSION } = tracing::field::Empty,
            { names::RPC_RESPONSE_STATUS_CODE } = tracing::field::Empty,
            { semconv::ERROR_TYPE } = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        )
    };
    (tool $kind:literal, $name:expr, $method:expr, $tool:expr) => {
        mcp_span!(@common $kind, $name, $method;
            { semconv::GEN_AI_OPERATION_NAME } = EXECUTE_TOOL,
            { semconv::GEN_AI_TOOL_NAME } = $tool,
            { semconv::GEN_AI_TOOL_CALL_ARGUMENTS } = tracing::field::Empty,
            { semconv::GEN_AI_TOOL_CALL_RESULT } = tracing::field::Empty,
        )
    };
    (other $kind:literal, $name:expr, $method:expr) => {
        mcp_span!(@common $kind, $name, $method;
            { names::GEN_AI_PROMPT_NAME } = tracing::field::Empty,
            { names::MCP_RESOURCE_URI } = tracing::field::Empty,
        )
    };
}

/// Starts the span of `op` on `side`, in the current context (the caller's
/// step on a client; the context taken from the request on a server, which
/// the caller attaches first).
fn start_span(side: Side, op: &Operation) -> tracing::Span {
    let name = op.span_name();
    let method = op.method.as_ref();
    let span = match (side, op.tool()) {
        (Side::Client, Some(tool)) => mcp_span!(tool "client", name, method, tool),
        (Side::Server, Some(tool)) => mcp_span!(tool "server", name, method, tool),
        (Side::Client, None) => mcp_span!(other "client", name, method),
        (Side::Server, None) => mcp_span!(other "server", name, method),
    };
    match &op.subject {
        Subject::Prompt(prompt) => {
            span.record(names::GEN_AI_PROMPT_NAME, prompt.as_str());
        }
        Subject::Resource(uri) => {
            span.record(names::MCP_RESOURCE_URI, uri.as_str());
        }
        Subject::None | Subject::Tool(_) => {}
    }
    span
}

/// How a request ended.
#[derive(Debug)]
enum Outcome {
    Ok,
    /// Failed: `error.type`, the JSON-RPC code when there was one, and the
    /// status description.
    Failed {
        error_type: String,
        code: Option<i32>,
        message: String,
    },
}

impl Outcome {
    fn failed(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome::Failed {
            error_type: error_type.into(),
            code: None,
            message: message.into(),
        }
    }

    /// A JSON-RPC error response: the code is the error's type.
    fn json_rpc(error: &rmcp::ErrorData) -> Self {
        Outcome::Failed {
            error_type: error.code.0.to_string(),
            code: Some(error.code.0),
            message: error.message.to_string(),
        }
    }

    fn tool_error() -> Self {
        Self::failed(TOOL_ERROR, "the tool reported an error (isError)")
    }
}

/// One request in flight on either side: its span, clock and what its metric
/// needs. Ends exactly once: by [`finish`](Call::finish), or when dropped
/// unfinished (the caller's future was dropped: `cancelled`; a panic: `panic`).
struct Call {
    side: Side,
    span: tracing::Span,
    started: Instant,
    op: Operation,
    protocol_version: Option<String>,
    network: Network,
    /// Whether tool arguments and results may be recorded on the span.
    capture: bool,
    done: bool,
}

impl Call {
    fn start(side: Side, op: Operation) -> Self {
        let span = start_span(side, &op);
        let mut capture = false;
        crate::layer::with_layer(&span, |layer| capture = layer.options.capture.on_span());
        Self {
            side,
            span,
            started: Instant::now(),
            op,
            protocol_version: None,
            network: Network::default(),
            capture,
            done: false,
        }
    }

    fn span(&self) -> &tracing::Span {
        &self.span
    }

    fn set_protocol_version(&mut self, version: Option<&str>) {
        if let Some(version) = version {
            self.span.record(names::MCP_PROTOCOL_VERSION, version);
            self.protocol_version = Some(version.to_owned());
        }
    }

    fn set_network(&mut self, network: Network) {
        network.record_on(&self.span);
        self.network = network;
    }

    /// Records `gen_ai.tool.call.arguments` (content): only when capture is on,
    /// and only then is `json` asked for.
    fn record_arguments(&self, json: impl FnOnce() -> Option<String>) {
        if self.capture && self.op.tool().is_some() {
            if let Some(json) = json() {
                self.span
                    .record(semconv::GEN_AI_TOOL_CALL_ARGUMENTS, json.as_str());
            }
        }
    }

    /// Records `gen_ai.tool.call.result` (content), as
    /// [`record_arguments`](Self::record_arguments).
    fn record_result(&self, json: impl FnOnce() -> Option<String>) {
        if self.capture && self.op.tool().is_some() {
            if let Some(json) = json() {
                self.span
                    .record(semconv::GEN_AI_TOOL_CALL_RESULT, json.as_str());
            }
        }
    }

    fn finish(mut self, outcome: Outcome) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut attrs = Vec::with_capacity(9);
        self.op.attrs(&mut attrs);
        if let Some(version) = &self.protocol_version {
            attrs.push(KeyValue::new(names::MCP_PROTOCOL_VERSION, version.clone()));
        }
        self.network.attrs(&mut attrs);
        if let Outcome::Failed {
            error_type,
            code,
            message,
        } = &outcome
        {
            self.span.record(semconv::ERROR_TYPE, error_type.as_str());
            self.span.record("otel.status_code", "error");
            self.span
                .record("otel.status_description", message.as_str());
            attrs.push(KeyValue::new(semconv::ERROR_TYPE, error_type.clone()));
            if let Some(code) = code {
                let code = code.to_string();
                self.span
                    .record(names::RPC_RESPONSE_STATUS_CODE, code.as_str());
                attrs.push(KeyValue::new(names::RPC_RESPONSE_STATUS_CODE, code));
            }
        }
        let side = self.side;
        let span = &self.span;
        crate::layer::with_layer(span, |layer| {
            layer.extend_with_tenant(span, &mut attrs);
            let instruments = instruments(layer);
            let histogram = match side {
                Side::Client => &instruments.client_operation,
                Side::Server => &instruments.server_operation,
            };
            histogram.record(elapsed, &attrs);
        });
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            let outcome = if std::thread::panicking() {
                Outcome::failed("panic", "the request's handling panicked")
            } else {
                Outcome::failed("cancelled", "the request was dropped before it finished")
            };
            self.end(outcome);
        }
    }
}

/// A session on either side: records its duration once, when it ends.
#[derive(Debug)]
struct Session {
    side: Side,
    started: Instant,
    network: Network,
    protocol_version: Option<String>,
    done: bool,
}

impl Session {
    fn new(side: Side, network: Network) -> Self {
        Self {
            side,
            started: Instant::now(),
            network,
            protocol_version: None,
            done: false,
        }
    }

    /// Records the session's duration through the current subscriber's
    /// pipeline, once.
    fn end(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut attrs = Vec::with_capacity(4);
        if let Some(version) = &self.protocol_version {
            attrs.push(KeyValue::new(names::MCP_PROTOCOL_VERSION, version.clone()));
        }
        self.network.attrs(&mut attrs);
        let side = self.side;
        tracing::dispatcher::get_default(|dispatch| {
            if let Some(layer) = dispatch.downcast_ref::<InstrumentsLayer>() {
                let instruments = instruments(layer);
                let histogram = match side {
                    Side::Client => &instruments.client_session,
                    Side::Server => &instruments.server_session,
                };
                histogram.record(elapsed, &attrs);
            }
        });
    }
}

/// The MCP histograms of one telemetry pipeline.
#[derive(Debug)]
struct McpInstruments {
    client_operation: Bounded<Histogram<f64>>,
    server_operation: Bounded<Histogram<f64>>,
    client_session: Bounded<Histogram<f64>>,
    server_session: Bounded<Histogram<f64>>,
}

impl McpInstruments {
    fn new(meter: &Meter) -> Self {
        let histogram = |name: &'static str, description: &'static str| {
            Bounded(
                meter
                    .f64_histogram(name)
                    .with_unit("s")
                    .with_description(description)
                    .with_boundaries(DURATION_BUCKETS.to_vec())
                    .build(),
            )
        };
        Self {
            client_operation: histogram(
                CLIENT_OPERATION_DURATION,
                "Duration of MCP requests as the client saw them",
            ),
            server_operation: histogram(
                SERVER_OPERATION_DURATION,
                "Duration of MCP requests as the server handled them",
            ),
            client_session: histogram(CLIENT_SESSION_DURATION, "Duration of MCP client sessions"),
            server_session: histogram(SERVER_SESSION_DURATION, "Duration of MCP server sessions"),
        }
    }
}

/// Pipelines whose MCP instruments are kept; an older one's are made again if
/// it records after this many newer ones did (only tests make so many).
const KEPT_PIPELINES: usize = 8;

/// The MCP instruments of `layer`'s pipeline, created on its first MCP record.
///
/// They come from the pipeline's own meter, so a pipeline built with `build()`
/// and not installed globally records MCP metrics next to its other metrics.
fn instruments(layer: &InstrumentsLayer) -> Arc<McpInstruments> {
    static BY_PIPELINE: Mutex<Vec<(u64, Arc<McpInstruments>)>> = Mutex::new(Vec::new());
    let pipeline = layer.instruments.id;
    let mut kept = BY_PIPELINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, found)) = kept.iter().find(|(id, _)| *id == pipeline) {
        return found.clone();
    }
    let made = Arc::new(McpInstruments::new(&layer.instruments.meter));
    if kept.len() == KEPT_PIPELINES {
        kept.remove(0);
    }
    kept.push((pipeline, made.clone()));
    made
}

/// The W3C trace-context and baggage values of a request's `_meta`, so that
/// [`propagation::inject`](crate::propagation::inject) and
/// [`propagation::extract`](crate::propagation::extract) work on it directly.
impl HeaderSink for RequestMetaObject {
    fn set_header(&mut self, name: &str, value: String) {
        // The trace-context propagator writes an empty `tracestate` when there is none.
        if value.is_empty() {
            return;
        }
        match name {
            TRACEPARENT => self.set_traceparent(value),
            TRACESTATE => self.set_tracestate(value),
            BAGGAGE => self.set_baggage(value),
            _ => {}
        }
    }
}

impl HeaderSource for RequestMetaObject {
    fn header(&self, name: &str) -> Option<&str> {
        match name {
            TRACEPARENT => self.get_traceparent(),
            TRACESTATE => self.get_tracestate(),
            BAGGAGE => self.get_baggage(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_are_told_by_their_type() {
        let pipe = Network::of_type_name("rmcp::transport::child_process::TokioChildProcess");
        assert_eq!(pipe.transport.as_deref(), Some("pipe"));
        let stdio = Network::of_type_name(
            "rmcp::transport::async_rw::AsyncRwTransport<rmcp::service::RoleServer, tokio::io::stdin::Stdin, tokio::io::stdout::Stdout>",
        );
        assert_eq!(stdio.transport.as_deref(), Some("pipe"));
        let http = Network::of_type_name(
            "rmcp::transport::worker::WorkerTransport<rmcp::transport::streamable_http_client::StreamableHttpClientWorker<reqwest::Client>>",
        );
        assert_eq!(http.transport.as_deref(), Some("tcp"));
        assert_eq!(http.protocol_name, Some("http"));
        let memory = Network::of_type_name("tokio::io::util::mem::DuplexStream");
        assert_eq!(memory, Network::default());
    }

    #[test]
    fn span_names_follow_the_conventions() {
        let tool = Operation::new("tools/call", Subject::Tool("get_weather".into()));
        assert_eq!(tool.span_name(), "tools/call get_weather");
        let prompt = Operation::new("prompts/get", Subject::Prompt("summary".into()));
        assert_eq!(prompt.span_name(), "prompts/get summary");
        let read = Operation::new("resources/read", Subject::Resource("file:///a".into()));
        assert_eq!(read.span_name(), "resources/read");
        assert_eq!(
            Operation::new("tools/list", Subject::None).span_name(),
            "tools/list"
        );
    }

    #[test]
    fn request_meta_carries_the_w3c_values() {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId,
        };
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            opentelemetry::trace::TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(sc);
        let mut meta = RequestMetaObject::new();
        crate::propagation::inject_context(&cx, &mut meta);
        assert_eq!(
            meta.get_traceparent(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(meta.get_tracestate(), Some("vendor=x"));
        let back = crate::propagation::extract_with_context(&opentelemetry::Context::new(), &meta);
        assert_eq!(
            back.span().span_context().trace_state().header(),
            "vendor=x"
        );
    }
}
