//! The `#[agent_step]` and `#[llm_call]` attributes of otel-agent.
//!
//! Use them through `otel-agent-runtime`, which re-exports them and holds
//! everything the generated code calls.
#![deny(missing_docs)]

mod args;
mod expand;

use proc_macro::TokenStream;

/// Instruments a step of an agent: an agent's turn, a tool, or a whole workflow.
///
/// ```ignore
/// #[agent_step(agent = "researcher")]               // span `invoke_agent researcher`
/// async fn research(topic: &str) -> Result<Notes, Error> { /* ... */ }
///
/// #[agent_step(kind = tool, name = "web_search")]    // span `execute_tool web_search`
/// fn search(q: &str) -> Vec<Hit> { /* ... */ }
///
/// #[agent_step(kind = workflow, name = "crew")]      // span `invoke_workflow crew`
/// async fn run_crew() -> anyhow::Result<()> { /* ... */ }
/// ```
///
/// Arguments (all optional):
/// - `kind = agent | tool | workflow` (default `agent`);
/// - `agent = "..."` (agents) or `name = "..."`: the name, default the function's;
/// - `description = "..."` (agents and tools).
///
/// The span nests under whatever span is current (yours or ours). An `Err` return
/// sets status ERROR and `error.type`; a panic or a dropped future ends the span as
/// `panic` or `cancelled`. Metrics: `otel_agent.step.duration`,
/// `otel_agent.step.calls` and `otel_agent.step.active`, with the operation, the
/// step name and the outcome as their only attributes.
///
/// An `async fn` expands roughly to:
///
/// ```ignore
/// async fn research(topic: &str) -> Result<Notes, Error> {
///     static SITE: StepSite = StepSite { operation: "invoke_agent", name: "researcher" };
///     let guard = StepGuard::start(&SITE, span!("invoke_agent researcher", gen_ai.operation.name = "invoke_agent", ...));
///     let result: Result<Notes, Error> = instrument(async move { /* your body */ }, guard.span()).await;
///     guard.finish(outcome_of(&result));
///     result
/// }
/// ```
#[proc_macro_attribute]
pub fn agent_step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::agent_step(args.into(), item.into()).into()
}

/// Instruments a call to a model.
///
/// ```ignore
/// #[llm_call(model = "gpt-4o", provider = "openai")]        // span `chat gpt-4o`, kind CLIENT
/// async fn complete(prompt: &str) -> Result<ChatResponse, Error> { /* ... */ }
///
/// #[llm_call(model = self.model, operation = chat)]          // model read when the call starts
/// async fn ask(&self, prompt: &str) -> anyhow::Result<Reply> { /* ... */ }
/// ```
///
/// Arguments:
/// - `model = "..."` or `model = <expression>` (required): `gen_ai.request.model`;
/// - `provider = "..."`: `gen_ai.provider.name`, inferred from the model's family
///   when left out (`gpt-*` is `openai`, `claude*` is `anthropic`, ...);
/// - `operation = chat | text_completion | generate_content | embeddings` (default `chat`).
///
/// Token usage, response model, id and finish reasons are read from the return
/// value through `otel_agent_runtime::LlmResponse`. Metrics:
/// `gen_ai.client.operation.duration` and (when usage is known)
/// `gen_ai.client.token.usage`.
///
/// An `async fn` expands roughly to:
///
/// ```ignore
/// async fn complete(prompt: &str) -> Result<ChatResponse, Error> {
///     static SITE: LlmSite = LlmSite { operation: "chat", provider: Some("openai") };
///     let model = ModelName::literal("gpt-4o");
///     let guard = LlmGuard::start(&SITE, model, "openai", span!("chat gpt-4o", otel.kind = "client", ...));
///     let result: Result<ChatResponse, Error> = instrument(async move { /* your body */ }, guard.span()).await;
///     guard.finish(outcome_of(&result), response_of(&result));
///     result
/// }
/// ```
#[proc_macro_attribute]
pub fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::llm_call(args.into(), item.into()).into()
}
