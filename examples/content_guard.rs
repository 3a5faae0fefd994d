//! What leaves the process when libraries are chatty: run it against a real
//! receiver and search what arrived for the canary.
//!
//! ```text
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example content_guard
//! ```
//!
//! Inside an `#[agent_step]` and an `#[llm_call]`, it logs a canary prompt the
//! way HTTP stacks and agent frameworks do (DEBUG and TRACE events under their
//! targets), and opens a framework's `chat` span carrying every content
//! attribute, with an API key in the prompt. With content capture off (the
//! default) none of it is exported; with
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` the content is,
//! with the key redacted. Neither prints the canary to the terminal.

use otel_agent_runtime::{agent_step, llm_call, LlmResponse, Usage};

/// Searched for in everything the receiver got.
const CANARY: &str = "CANARY-e2e-7b41-prompt";
/// Looks like an OpenAI key: the default redaction scrubs it.
const SECRET: &str = "sk-proj-E2ESECRETabcdefghijklmnop";

struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(12, 3))
    }
}

/// What a framework inside the call does.
fn framework_call() {
    tracing::debug!(target: "hyper_util::client::legacy::connect", "connecting for {CANARY}");
    tracing::trace!(target: "rig::completions", request = %format!("{{\"prompt\":\"{CANARY}\"}}"), "sending request");
    tracing::debug!(target: "rig::agent", "prompt: {CANARY}");
    let messages = format!(
        "[{{\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"content\":\"{CANARY} {SECRET}\"}}]}}]"
    );
    let span = tracing::info_span!(
        target: "rig::completions",
        "chat",
        otel.name = "chat stand-in",
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "stand-in",
        gen_ai.input.messages = messages.as_str(),
        gen_ai.output.messages = messages.as_str(),
        gen_ai.system_instructions = CANARY,
        gen_ai.tool.call.arguments = CANARY,
        gen_ai.tool.call.result = CANARY,
        gen_ai.prompt = CANARY,
        gen_ai.completion = CANARY,
    );
    let _entered = span.enter();
    tracing::info!(target: "rig::completions", "response received");
}

#[llm_call(model = "stand-in", provider = "openai")]
fn ask() -> Reply {
    framework_call();
    Reply
}

#[agent_step(agent = "guarded")]
fn run() {
    let _ = ask();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = otel_agent_runtime::init()?;
    run();
    println!("otel-agent: produced {} spans", telemetry.spans_ended());
    Ok(())
}
