//! A rig agent with two tools and a streamed answer, instrumented by `init()` and
//! the attributes only: no layer of rig's, no wrapper around its client, no code
//! that reads provider JSON. rig's own spans (`chat` per model call, with its
//! token usage, and `execute_tool` per tool call) land in the same trace, under
//! the attributes' steps.
//!
//! ```sh
//! python3 tests/openai_server/server.py --port 18089 &   # a canned local server
//! cargo run --example rig_agent --features rig          # trace tree + run summary at exit
//!
//! OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... cargo run --example rig_agent --features rig
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example rig_agent --features rig
//! ```
//!
//! One workflow run: the `support` agent answers a question about an order with
//! its two tools (`lookup_order`, then `track_shipment`: the canned server calls
//! every offered tool once when the question says "use every tool"), then the
//! `writer` agent, which has no tools, streams the reply to the customer.
//!
//! rig's OpenAI client defaults to the Responses API; `chat(..)` picks the Chat
//! Completions one, which every OpenAI-compatible server speaks.

use futures::StreamExt as _;
use otel_agent_runtime::agent_step;
use rig_agent::agent::MultiTurnStreamItem;
use rig_agent::{Agent, AgentBuilder};
use rig_core::providers::openai::OpenAIConfig;
use rig_core::streaming::{Item, StreamEvent};
use rig_core::tool::{Tool, ToolContext};
use serde::Deserialize;
use std::convert::Infallible;
use std::io::Write as _;

type Error = Box<dyn std::error::Error + Send + Sync>;

const DEFAULT_BASE_URL: &str = "http://127.0.0.1:18089/v1";
const QUESTION: &str = "Where is order 42? Please use every tool you have.";

/// What both tools take: the canned server calls a tool with `{"query": ...}`.
#[derive(Deserialize)]
struct Query {
    query: String,
}

fn query_schema(description: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": { "query": { "type": "string", "description": description } },
        "required": ["query"],
    })
}

/// The order database, in a real agent.
struct LookupOrder;

impl Tool for LookupOrder {
    const NAME: &'static str = "lookup_order";
    type Args = Query;
    type Output = String;
    type Error = Infallible;

    fn description(&self) -> String {
        "Status of an order by its number".into()
    }

    fn parameters(&self) -> serde_json::Value {
        query_schema("the order number or the customer's question")
    }

    async fn call(&self, _context: &mut ToolContext, args: Query) -> Result<String, Infallible> {
        tracing::info!(query_len = args.query.len(), "order looked up");
        Ok("order 42: shipped yesterday with parcel P-7731".into())
    }
}

/// The carrier's tracking API, in a real agent.
struct TrackShipment;

impl Tool for TrackShipment {
    const NAME: &'static str = "track_shipment";
    type Args = Query;
    type Output = String;
    type Error = Infallible;

    fn description(&self) -> String {
        "Where a parcel is now".into()
    }

    fn parameters(&self) -> serde_json::Value {
        query_schema("the parcel number or the customer's question")
    }

    async fn call(&self, _context: &mut ToolContext, args: Query) -> Result<String, Infallible> {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        tracing::info!(query_len = args.query.len(), "parcel tracked");
        Ok("parcel P-7731: at the Lyon depot, out for delivery tomorrow".into())
    }
}

/// Finds out where the order is, with both tools.
#[agent_step(agent = "support", description = "Answers questions about orders")]
async fn investigate(agent: &Agent, question: &str) -> Result<String, Error> {
    let response = agent.prompt(question).max_turns(4).await?;
    Ok(response.output())
}

/// Streams the reply to the customer; returns it and how many chunks it came in.
#[agent_step(agent = "writer", description = "Writes the reply to the customer")]
async fn write_reply(agent: &Agent, notes: &str) -> Result<(String, usize), Error> {
    let mut stream = agent
        .prompt(format!("Reply to the customer: {notes}"))
        .stream();
    let (mut reply, mut chunks) = (String::new(), 0);
    print!("writer: ");
    while let Some(item) = stream.next().await {
        if let MultiTurnStreamItem::StreamAssistantItem(Item::Event(StreamEvent::Text {
            text,
            ..
        })) = item?
        {
            print!("{text}");
            let _ = std::io::stdout().flush();
            reply.push_str(&text);
            chunks += 1;
        }
    }
    println!();
    Ok((reply, chunks))
}

/// One customer question, start to finish: one trace.
#[agent_step(kind = workflow, name = "order_support")]
async fn handle(support: &Agent, writer: &Agent, question: &str) -> Result<(String, usize), Error> {
    let notes = investigate(support, question).await?;
    write_reply(writer, &notes).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let _telemetry = otel_agent_runtime::init()?;

    let base_url = std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.into());
    let api_key = std::env::var("OPENAI_API_KEY").unwrap_or_else(|_| "test-key".into());
    let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let openai = OpenAIConfig::new(api_key).with_base_url(base_url).client();

    let support = AgentBuilder::new(openai.chat(&model))
        .name("support")
        .preamble("You answer questions about orders. Use the tools.")
        .tool(LookupOrder)
        .tool(TrackShipment)
        .build();
    let writer = AgentBuilder::new(openai.chat(&model))
        .name("writer")
        .preamble("You write short, friendly replies.")
        .build();

    let (reply, chunks) = handle(&support, &writer, QUESTION).await?;
    println!(
        "rig_agent: one workflow run: the support agent used 2 tools, the writer streamed \
         {chunks} chunks ({} chars)",
        reply.len()
    );
    Ok(())
}
