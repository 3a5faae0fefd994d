//! Tools across processes: an agent calls two tools on an MCP server that it
//! starts as a child process (this same program, run with `--server`) and talks
//! to over the child's stdin and stdout, with the official Rust SDK, rmcp. One of
//! the tools fails. Each process exports its own spans, and they are one trace:
//! the server's `tools/call` spans (SERVER) are children of the agent's (CLIENT),
//! and the `#[agent_step]` and `#[llm_call]` inside the server's tool are
//! children of those, with the agent's session.
//!
//! ```sh
//! cargo run --example mcp --features rmcp
//! # both processes to one collector, one trace in the backend:
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example mcp --features rmcp
//! ```
//!
//! With no collector each process prints its own tree at exit, both with the
//! same trace id: the server's first (on standard error, as its standard output
//! is the MCP pipe), then the agent's.
//!
//! What makes it so is two lines: `mcp::serve_client` where the agent starts
//! its client, and `mcp::TracedServer::new` around the server's handler.

use std::process::Stdio;

use otel_agent_runtime::mcp::{self, McpClient, TracedServer};
use otel_agent_runtime::{agent_step, context, llm_call, LlmResponse, Usage};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, ServerCapabilities, ServerConfig,
};
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt as _;
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler, ServiceError};
use serde::Deserialize;

const SERVER_FLAG: &str = "--server";

// ---------------------------------------------------------------------------
// The tool server's process
// ---------------------------------------------------------------------------

/// A model's answer, from a deterministic stand-in.
struct Reply {
    text: String,
    input_tokens: u64,
    output_tokens: u64,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input_tokens, self.output_tokens))
    }
}

#[llm_call(model = "gpt-4o-mini", provider = "openai")]
async fn summarize(city: &str, raw: &str) -> Result<Reply, std::io::Error> {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    Ok(Reply {
        text: format!("{city}: {raw}, a light jacket will do"),
        input_tokens: 40 + raw.len() as u64 / 4,
        output_tokens: 12,
    })
}

/// The forecast tool's own work, a step of the server's.
#[agent_step(kind = tool, name = "forecast_lookup")]
async fn forecast(city: &str) -> Result<String, std::io::Error> {
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let raw = format!("18°C, light wind, {} mm of rain", city.len() % 4);
    Ok(summarize(city, &raw).await?.text)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ForecastArgs {
    /// The city to forecast.
    city: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct FlightArgs {
    /// Where to.
    to: String,
    /// When, as YYYY-MM-DD.
    date: String,
}

/// The MCP server: two tools, written as any rmcp server is.
#[derive(Debug, Clone)]
struct TravelTools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl TravelTools {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Tomorrow's weather in a city")]
    async fn get_forecast(
        &self,
        Parameters(args): Parameters<ForecastArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let text = forecast(&args.city)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }

    #[tool(description = "Books a flight")]
    async fn book_flight(&self, Parameters(args): Parameters<FlightArgs>) -> CallToolResult {
        // The tool runs and fails: the caller sees why (`isError`).
        CallToolResult::error(vec![ContentBlock::text(format!(
            "no seats left to {} on {}",
            args.to, args.date
        ))])
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TravelTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Weather and flights")
    }
}

async fn run_server() -> Result<(), Box<dyn std::error::Error>> {
    // Standard output is the MCP pipe: the console report goes to standard error.
    let telemetry = otel_agent_runtime::builder()
        .default_service_name("travel-tools")
        .init()?;
    let server = TracedServer::new(TravelTools::new())
        .serve(rmcp::transport::stdio())
        .await?;
    // Until the agent closes the pipe.
    server.waiting().await?;
    eprintln!(
        "--- travel-tools, the MCP server (process {}) ---",
        std::process::id()
    );
    telemetry.shutdown()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The agent's process
// ---------------------------------------------------------------------------

#[agent_step(
    agent = "trip_planner",
    description = "Plans a trip with the travel tools"
)]
async fn plan_trip(client: &McpClient<()>, city: &str) -> Result<String, ServiceError> {
    let tools = client.list_all_tools().await?;
    let weather = client
        .call_tool(
            CallToolRequestParams::new("get_forecast")
                .with_arguments(arguments(serde_json::json!({ "city": city }))),
        )
        .await?;
    let flight = client
        .call_tool(
            CallToolRequestParams::new("book_flight").with_arguments(arguments(
                serde_json::json!({ "to": city, "date": "2026-05-01" }),
            )),
        )
        .await?;
    Ok(format!(
        "{} tools; weather: {}; flight: {}{}",
        tools.len(),
        text_of(&weather),
        if flight.is_error == Some(true) {
            "failed: "
        } else {
            ""
        },
        text_of(&flight),
    ))
}

fn arguments(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    json.as_object().cloned().unwrap_or_default()
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn run_agent() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = otel_agent_runtime::builder()
        .default_service_name("trip-agent")
        .init()?;
    let mut server = tokio::process::Command::new(std::env::current_exe()?);
    server.arg(SERVER_FLAG);
    let (transport, _) = TokioChildProcess::builder(server)
        .stderr(Stdio::inherit())
        .spawn()?;
    // The one line that traces the client: `serve_client` for `().serve(transport)`.
    let client = mcp::serve_client((), transport).await?;
    let plan = context::scope()
        .session_id("trip-42")
        .user_id("user-7")
        .instrument(plan_trip(&client, "Lisbon"))
        .await?;
    println!("{plan}");
    // Closing the client closes the server's stdin; it prints its report and exits.
    client.into_inner().cancel().await?;
    eprintln!(
        "--- trip-agent, the MCP client (process {}) ---",
        std::process::id()
    );
    telemetry.shutdown()?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some(SERVER_FLAG) {
        run_server().await
    } else {
        run_agent().await
    }
}
