//! The `#[agent_step]` and `#[llm_call]` attributes of otel-agent.
//!
//! Use them through `otel-agent-runtime`, which re-exports them and holds
//! everything the generated code calls.
//!
//! The crate is three stages, one module each: `item` reads the annotated
//! function (its body stays raw tokens), `args` parses and validates the
//! arguments, collecting every error with its exact span, and `expand` generates
//! the code. `keys` knows which attribute keys are allowed where.
#![deny(missing_docs)]

mod args;
mod diagnostics;
mod expand;
#[cfg(test)]
mod expansions;
mod item;
mod keys;
mod suggest;

use proc_macro::TokenStream;

/// Instruments a step of an agent: an agent's turn, a tool, or a whole workflow.
///
/// ```ignore
/// use otel_agent_runtime::agent_step;
///
/// #[agent_step(agent = "researcher")]               // span `invoke_agent researcher`
/// async fn research(topic: &str) -> Result<Notes, Error> { /* ... */ }
///
/// #[agent_step(kind = tool, name = "web_search", fields(query))]
/// fn search(query: &str) -> Vec<Hit> { /* ... */ }  // span `execute_tool web_search`
///
/// #[agent_step(kind = workflow, name = "crew")]      // span `invoke_workflow crew`
/// async fn run_crew() -> anyhow::Result<()> { /* ... */ }
/// ```
///
/// # Arguments
///
/// All optional; every mistake is a compile error on the offending token that
/// says what to write instead.
///
/// - `kind = agent | tool | workflow` (default `agent`).
/// - `agent = "..."` (agents) or `name = "..."`: the name, by default the
///   function's.
/// - `description = "..."`: agents and tools.
/// - `fields(...)`: extra span attributes, evaluated when the call starts:
///   `key = value`, `key = %value` (`Display`), `key = ?value` (`Debug`), or a
///   parameter's name alone (`fields(query)`, recorded with `Display`; `?query`
///   for `Debug`). Keys are dotted words (`app.query_len`) or strings
///   (`"app.query-len"`). Keys in `gen_ai.*` must be attributes the GenAI
///   semantic conventions define (a typo such as `gen_ai.usage.input_token` is an
///   error with the closest valid key); keys the attribute sets itself cannot be
///   set again.
/// - `skip(param, ...)` and `skip_all`: accepted for code coming from
///   `#[tracing::instrument]`. Parameters are never recorded unless named in
///   `fields(...)`, so these only check that each name is a parameter.
/// - `metric_attributes(key = "value", ...)`: extra metric attributes, string
///   literals only. Ids and per-user keys (`session.id`, `user.id`,
///   `gen_ai.conversation.id`, `*.id`, `*_id`, ...) are rejected: they belong on
///   the span (`fields(...)`), never on metrics.
///
/// The span nests under whatever span is current (yours or ours). An `Err` return
/// sets status ERROR and `error.type`; a panic or a dropped future ends the span as
/// `panic` or `cancelled`. Metrics: `otel_agent.step.duration`,
/// `otel_agent.step.calls` and `otel_agent.step.active`, with the operation, the
/// step name, the outcome and `metric_attributes` as their only attributes.
///
/// Works on free functions and methods (any receiver), sync or `async`, generic,
/// with `impl Trait` arguments or return types, trait default methods, stacked
/// with `#[async_trait]` (the span covers the awaited work), `#[tokio::main]`,
/// `#[tokio::test]` and `#[cfg_attr(...)]`. The generated code only uses absolute
/// paths, so it compiles under `#![no_implicit_prelude]`.
///
/// # What it expands to
///
/// ```ignore
/// #[agent_step(agent = "researcher", fields(topic))]
/// pub async fn research(topic: &str) -> Result<Notes, Error> {
///     let hits = search(topic).await?;
///     Ok(Notes::from(hits))
/// }
/// ```
///
/// becomes (names shortened; generated locals are hidden from your code):
///
/// ```ignore
/// pub async fn research(topic: &str) -> Result<Notes, Error> {
///     // The call site, a `static`: what the step is, fixed at compile time.
///     __agent_step_site!(SITE, "invoke_agent", "researcher", None, &[]);
///     // `Some(guard)` only when something listens to the span (a subscriber
///     // whose filters let it through): the span (target `otel_agent::step`)
///     // and its fields are made here, before the body can move what they read.
///     let guard = __agent_step_start!(
///         if_enabled, SITE, agent, "invoke_agent researcher"; "topic" = display(&(topic))
///     );
///     // Polled as the body alone when there is no guard; with one, each poll
///     // runs in the span, and the closure records the outcome at the end.
///     InstrumentedCall::new(
///         async move {
///             // (a line that tells type inference the block returns `Result<Notes, Error>`)
///             let hits = search(topic).await?;
///             Ok(Notes::from(hits))
///         },
///         guard,
///         |guard, result| __agent_step_finish!(guard, *result), // Ok, or Err's error.type
///     )
///     .await
/// }
/// ```
///
/// A sync function binds its body as a closure, `move || { ... }`, called as
/// it is when nothing listens and through `in_call(guard.span(), body)`
/// otherwise. A non-`async` function whose body is `Box::pin(async move { ... })`
/// or `async move { ... }` (which is what `#[async_trait]` makes of an `async fn`)
/// gets the same treatment inside that future. A function returning `!` always
/// makes its guard (when nothing listens, the span is disabled and the guard
/// records nothing). The expansion snapshots in this crate's `src/snapshots/`
/// show the complete output for each shape.
#[proc_macro_attribute]
pub fn agent_step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::agent_step(args.into(), item.into()).into()
}

/// Instruments a call to a model.
///
/// ```ignore
/// use otel_agent_runtime::llm_call;
///
/// #[llm_call(model = "gpt-4o", provider = "openai")]  // span `chat gpt-4o`, kind CLIENT
/// async fn complete(prompt: &str) -> Result<ChatResponse, Error> { /* ... */ }
///
/// #[llm_call(model = self.model, operation = chat, fields(gen_ai.request.temperature = self.temperature))]
/// async fn ask(&self, prompt: &str) -> anyhow::Result<Reply> { /* ... */ }
/// ```
///
/// # Arguments
///
/// - `model = "..."` or `model = <expression>` (required): `gen_ai.request.model`.
///   An expression is evaluated when the call starts and must give a `&str` or a
///   `String`.
/// - `provider = "..."`: `gen_ai.provider.name`; when left out, inferred from the
///   model's family (`gpt-*` is `openai`, `claude*` is `anthropic`, ...).
/// - `operation = chat | text_completion | generate_content | embeddings`
///   (default `chat`).
/// - `request = <expression>`: a request implementing
///   `otel_agent_runtime::LlmRequest` (async-openai's chat request does, with the
///   `async-openai` feature), read when the call starts: its temperature, max
///   tokens, top_p and other settings become `gen_ai.request.*` attributes.
/// - `capture_content` (or `capture_content = true`): record the messages this
///   call hands to `otel_agent_runtime::content::record_input` / `record_output`
///   even when content capture is off for the process.
/// - `stream`: the function returns a stream behind a type alias the macro cannot
///   see through (a `Pin<Box<dyn Stream<..>>>` alias). Return types written as
///   `impl Stream<Item = T>`, `Pin<Box<dyn Stream<Item = T>>>` or
///   `BoxStream<'_, T>` are recognised without it.
/// - `fields(...)`, `skip(...)`, `skip_all`, `metric_attributes(...)`: as for
///   [`macro@agent_step`]. The keys this attribute sets itself (operation,
///   provider, request and response model, response id, finish reasons, token
///   usage, `error.type`) cannot be set through them.
///
/// Token usage, response model, id and finish reasons are read from the return
/// value through `otel_agent_runtime::LlmResponse`. Metrics:
/// `gen_ai.client.operation.duration` and (when usage is known)
/// `gen_ai.client.token.usage`.
///
/// # Streams
///
/// When the function returns a stream of chunks, the call lasts until the stream
/// ends: the span stays open while it is consumed, with `gen_ai.request.stream`
/// set; the first chunk records `gen_ai.response.time_to_first_chunk` and the
/// `gen_ai.client.operation.time_to_first_chunk` histogram; chunks implementing
/// `LlmResponse` fill in usage (providers send it in the final chunk), response
/// model, id and finish reasons; an `Err` chunk fails the call; a stream dropped
/// before its end ends the span as `cancelled`.
///
/// ```ignore
/// #[llm_call(model = "gpt-4o")]
/// fn chat_stream(prompt: &str) -> impl Stream<Item = Result<Chunk, Error>> { /* ... */ }
/// ```
///
/// When nothing listens, a boxed stream (`Pin<Box<dyn Stream>>`, `BoxStream`, or
/// an alias with `stream`) is returned as the body made it. An `impl Stream` is
/// always wrapped, since the wrapped and the plain stream are two types behind
/// one `impl`: its guard is made, and with a disabled span records nothing.
///
/// # What it expands to
///
/// ```ignore
/// #[llm_call(model = "gpt-4o", provider = "openai")]
/// async fn complete(prompt: &str) -> Result<ChatResponse, Error> {
///     client().chat(prompt).await
/// }
/// ```
///
/// becomes (names shortened):
///
/// ```ignore
/// async fn complete(prompt: &str) -> Result<ChatResponse, Error> {
///     __llm_call_site!(SITE, "chat", "openai");
///     // One runtime call starts the call's work when something listens: the
///     // model and its provider (one typed `CallStart`, which the bridge
///     // reads too), the span (target `otel_agent::llm_call`), the guard
///     // (boxed: the future holds a pointer); request and fields are read
///     // before the body can move them.
///     let guard = __llm_call_start!(boxed_if_enabled, SITE, "gpt-4o", "chat gpt-4o", literal);
///     InstrumentedCall::new(
///         async move { client().chat(prompt).await },
///         guard,
///         // Anything listening? Content captured? Then the outcome (Ok, or
///         // Err's error.type) and the response (usage, model, ...: LlmResponse).
///         |guard, result| __llm_call_finish!(guard, *result),
///     )
///     .await
/// }
/// ```
///
/// With `model = <expression>`, the span's name (`chat {model}`) is only known at
/// run time: the `tracing` span is named after the operation and carries the full
/// name in `otel.name`.
#[proc_macro_attribute]
pub fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::llm_call(args.into(), item.into()).into()
}
