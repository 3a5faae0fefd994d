//! Every signature shape the attributes accept produces its span, with the body
//! running inside it (across `.await`s too), the outcome recorded, and the
//! `fields(...)` recorded: sync and async, free functions and methods, every
//! receiver, generics, lifetimes, `impl Trait`, `?` and early `return`, trait
//! default methods, `#[async_trait]`, `#[tokio::test]` and `#[cfg_attr]`.
//!
//! A small `tracing` layer records what the generated code does, independently
//! of the OpenTelemetry pipeline (whose output other tests cover).

use crate::common;

use common::suspend;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use otel_agent_runtime::{agent_step, llm_call};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

// ---------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct SpanRecord {
    name: String,
    fields: BTreeMap<String, String>,
    closed: bool,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<SpanRecord>>>);

struct Values<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Values<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut record = SpanRecord {
            name: attrs.metadata().name().to_owned(),
            ..SpanRecord::default()
        };
        attrs.record(&mut Values(&mut record.fields));
        let mut spans = self.0.lock().unwrap();
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(spans.len());
        }
        spans.push(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(index) = ctx
            .span(id)
            .and_then(|s| s.extensions().get::<usize>().copied())
        else {
            return;
        };
        values.record(&mut Values(&mut self.0.lock().unwrap()[index].fields));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(index) = ctx
            .span(&id)
            .and_then(|s| s.extensions().get::<usize>().copied())
        {
            self.0.lock().unwrap()[index].closed = true;
        }
    }
}

impl Recorder {
    fn spans(&self) -> Vec<SpanRecord> {
        self.0.lock().unwrap().clone()
    }

    /// The one span named `name`, which must have ended.
    fn span(&self, name: &str) -> SpanRecord {
        let found: Vec<SpanRecord> = self
            .spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "spans named {name:?} in {:#?}",
            self.spans()
        );
        assert!(found[0].closed, "{name} did not end");
        found[0].clone()
    }
}

/// Runs `f` with a recording subscriber as the default on this thread.
fn recorded<T>(f: impl FnOnce() -> T) -> (T, Recorder) {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let value = tracing::subscriber::with_default(subscriber, f);
    (value, recorder)
}

/// Runs a future to completion on this thread, with a recording subscriber.
fn recorded_async<T>(future: impl Future<Output = T>) -> (T, Recorder) {
    recorded(|| futures::executor::block_on(future))
}

/// The name of the span the caller runs in.
fn current() -> String {
    tracing::Span::current()
        .metadata()
        .map_or_else(|| "none".to_owned(), |m| m.name().to_owned())
}

// ---------------------------------------------------------------------------
// Free functions
// ---------------------------------------------------------------------------

#[agent_step]
fn sync_free(x: u32) -> (u32, String) {
    (x + 1, current())
}

#[agent_step(kind = tool, name = "generic_tool")]
#[allow(clippy::needless_lifetimes)] // the shape under test
fn sync_generic<'a, T: AsRef<str> + ?Sized>(
    item: &'a T,
    extra: impl Into<String>,
) -> (usize, String) {
    (item.as_ref().len() + extra.into().len(), current())
}

#[agent_step(kind = workflow, name = "checked")]
fn sync_question_mark(input: &str) -> Result<u32, std::num::ParseIntError> {
    if input.is_empty() {
        return Ok(0);
    }
    let n: u32 = input.parse()?;
    Ok(n)
}

#[agent_step]
fn sync_impl_trait_return(n: u32) -> impl Iterator<Item = u32> {
    assert_eq!(current(), "invoke_agent sync_impl_trait_return");
    0..n
}

#[agent_step]
async fn async_free(x: u32) -> (u32, String, String) {
    let before = current();
    suspend().await;
    (x + 1, before, current())
}

#[agent_step]
async fn async_lifetimes<'a>(a: &'a str, b: &str) -> Result<&'a str, String> {
    suspend().await;
    if b.is_empty() {
        return Err("empty".to_owned());
    }
    assert_eq!(current(), "invoke_agent async_lifetimes");
    Ok(a)
}

#[llm_call(model = "gpt-4o")]
#[allow(clippy::manual_async_fn)] // the shape under test
fn returns_future(prompt: &str) -> impl Future<Output = (usize, String)> + '_ {
    async move {
        suspend().await;
        (prompt.len(), current())
    }
}

#[test]
fn free_functions_run_inside_their_spans() {
    let ((n, inside), spans) = recorded(|| sync_free(1));
    assert_eq!((n, inside.as_str()), (2, "invoke_agent sync_free"));
    let span = spans.span("invoke_agent sync_free");
    assert_eq!(span.fields["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(span.fields["gen_ai.agent.name"], "sync_free");

    let ((n, inside), spans) = recorded(|| sync_generic("abc", "de"));
    assert_eq!((n, inside.as_str()), (5, "execute_tool generic_tool"));
    assert_eq!(
        spans.span("execute_tool generic_tool").fields["gen_ai.tool.name"],
        "generic_tool"
    );

    let (count, spans) = recorded(|| sync_impl_trait_return(3).count());
    assert_eq!(count, 3);
    spans.span("invoke_agent sync_impl_trait_return");
}

#[test]
fn question_mark_and_early_return_record_the_outcome() {
    let (ok, spans) = recorded(|| sync_question_mark(""));
    assert_eq!(ok, Ok(0));
    assert!(!spans
        .span("invoke_workflow checked")
        .fields
        .contains_key("error.type"));

    let (err, spans) = recorded(|| sync_question_mark("x"));
    assert!(err.is_err());
    let span = spans.span("invoke_workflow checked");
    assert_eq!(span.fields["error.type"], "ParseIntError");
    assert_eq!(span.fields["otel.status_code"], "error");

    let (err, spans) = recorded_async(async_lifetimes("a", ""));
    assert_eq!(err, Err("empty".to_owned()));
    assert_eq!(
        spans.span("invoke_agent async_lifetimes").fields["error.type"],
        "_OTHER"
    );
}

#[test]
fn async_bodies_stay_in_their_span_across_awaits() {
    let ((n, before, after), spans) = recorded_async(async_free(1));
    assert_eq!(n, 2);
    assert_eq!(before, "invoke_agent async_free");
    assert_eq!(after, "invoke_agent async_free");
    spans.span("invoke_agent async_free");

    let (ok, _) = recorded_async(async_lifetimes("a", "b"));
    assert_eq!(ok, Ok("a"));

    // A function returning `impl Future` whose body is an `async move` block:
    // the span covers the awaited work, not just the making of the future.
    let ((n, inside), spans) = recorded_async(returns_future("abc"));
    assert_eq!((n, inside.as_str()), (3, "chat gpt-4o"));
    let span = spans.span("chat gpt-4o");
    assert_eq!(span.fields["gen_ai.request.model"], "gpt-4o");
    assert_eq!(span.fields["gen_ai.provider.name"], "openai");
}

#[test]
fn a_future_never_polled_makes_no_span() {
    let ((), spans) = recorded(|| drop(async_free(1)));
    assert!(spans.spans().is_empty(), "{:#?}", spans.spans());
}

// ---------------------------------------------------------------------------
// Methods and receivers
// ---------------------------------------------------------------------------

struct Agent {
    model: String,
    notes: Vec<String>,
}

impl Agent {
    fn new() -> Self {
        Self {
            model: "claude-sonnet-4-5".to_owned(),
            notes: Vec::new(),
        }
    }

    #[agent_step(agent = "by_value")]
    fn by_value(self) -> (usize, String) {
        (self.notes.len(), current())
    }

    #[agent_step(agent = "by_ref")]
    fn by_ref(&self) -> &str {
        assert_eq!(current(), "invoke_agent by_ref");
        &self.model
    }

    #[agent_step(agent = "by_mut")]
    fn by_mut(&mut self) -> &mut Vec<String> {
        assert_eq!(current(), "invoke_agent by_mut");
        &mut self.notes
    }

    #[agent_step(agent = "boxed")]
    #[allow(clippy::boxed_local)] // the shape under test
    fn boxed(self: Box<Self>) -> String {
        current()
    }

    #[llm_call(model = self.model, provider = "anthropic")]
    async fn ask(&mut self, prompt: &str) -> String {
        suspend().await;
        self.notes.push(prompt.to_owned());
        current()
    }

    #[agent_step(agent = "async_boxed")]
    async fn async_boxed(self: Box<Self>) -> String {
        suspend().await;
        current()
    }
}

#[test]
fn every_receiver_works() {
    let ((n, inside), spans) = recorded(|| Agent::new().by_value());
    assert_eq!((n, inside.as_str()), (0, "invoke_agent by_value"));
    spans.span("invoke_agent by_value");

    let mut agent = Agent::new();
    let ((), spans) = recorded(|| {
        assert_eq!(agent.by_ref(), "claude-sonnet-4-5");
        agent.by_mut().push("n".to_owned());
    });
    spans.span("invoke_agent by_ref");
    spans.span("invoke_agent by_mut");
    assert_eq!(agent.notes, ["n"]);

    let (inside, _) = recorded(|| Box::new(Agent::new()).boxed());
    assert_eq!(inside, "invoke_agent boxed");

    let (inside, spans) = recorded_async(agent.ask("hi"));
    // With a model chosen at run time, the tracing name is the operation and
    // `otel.name` carries the full span name.
    assert_eq!(inside, "chat");
    let span = spans.span("chat");
    assert_eq!(span.fields["otel.name"], "chat claude-sonnet-4-5");
    assert_eq!(span.fields["gen_ai.request.model"], "claude-sonnet-4-5");
    assert_eq!(span.fields["gen_ai.provider.name"], "anthropic");
    assert_eq!(agent.notes, ["n", "hi"]);

    let (inside, _) = recorded_async(Box::new(Agent::new()).async_boxed());
    assert_eq!(inside, "invoke_agent async_boxed");
}

// ---------------------------------------------------------------------------
// Traits: default methods, #[async_trait]
// ---------------------------------------------------------------------------

trait Tool {
    fn label(&self) -> &str;

    #[agent_step(kind = tool, name = "describe")]
    fn describe(&self) -> String {
        format!("{} in {}", self.label(), current())
    }

    #[agent_step(kind = tool, name = "run")]
    async fn run(&self) -> String {
        suspend().await;
        format!("{} in {}", self.label(), current())
    }
}

struct Search;

impl Tool for Search {
    fn label(&self) -> &str {
        "search"
    }
}

#[test]
fn trait_default_methods_are_instrumented() {
    let (text, spans) = recorded(|| Search.describe());
    assert_eq!(text, "search in execute_tool describe");
    spans.span("execute_tool describe");
    let (text, _) = recorded_async(Search.run());
    assert_eq!(text, "search in execute_tool run");
}

#[async_trait]
trait Model: Sync {
    async fn complete(&self, prompt: &str) -> Result<String, std::io::Error>;

    #[agent_step(agent = "provided")]
    async fn provided(&self) -> String {
        suspend().await;
        current()
    }
}

struct Stub {
    model: String,
}

#[async_trait]
impl Model for Stub {
    #[llm_call(model = self.model, fields(app.prompt_len = prompt.len()))]
    async fn complete(&self, prompt: &str) -> Result<String, std::io::Error> {
        suspend().await;
        if prompt.is_empty() {
            return Err(std::io::Error::other("empty prompt"));
        }
        Ok(current())
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn async_trait_methods_are_instrumented_around_the_awaited_work() {
    let stub = Stub {
        model: "gpt-4o".to_owned(),
    };
    let (inside, spans) = recorded_async(assert_send(stub.complete("hi")));
    assert_eq!(inside.unwrap(), "chat");
    let span = spans.span("chat");
    assert_eq!(span.fields["otel.name"], "chat gpt-4o");
    assert_eq!(span.fields["app.prompt_len"], "2");

    let (err, spans) = recorded_async(stub.complete(""));
    assert!(err.is_err());
    let span = spans.span("chat");
    assert!(span.fields.contains_key("error.type"), "{span:?}");
    assert_eq!(span.fields["otel.status_code"], "error");

    let (inside, _) = recorded_async(assert_send(stub.provided()));
    assert_eq!(inside, "invoke_agent provided");

    // The boxed future makes no span until it is polled.
    let ((), spans) = recorded(|| drop(stub.complete("hi")));
    assert!(spans.spans().is_empty());
}

// ---------------------------------------------------------------------------
// Other attributes: #[tokio::test], #[cfg_attr]
// ---------------------------------------------------------------------------

#[tokio::main(flavor = "current_thread")]
#[agent_step(kind = workflow, name = "tokio_outer")]
async fn tokio_main_then_ours() -> String {
    suspend().await;
    tokio::task::yield_now().await;
    current()
}

#[agent_step(kind = workflow, name = "tokio_inner")]
#[tokio::main(flavor = "current_thread")]
async fn ours_then_tokio_main() -> String {
    tokio::task::yield_now().await;
    current()
}

#[test]
fn stacked_with_tokio_main_in_either_order() {
    let (inside, spans) = recorded(tokio_main_then_ours);
    assert_eq!(inside, "invoke_workflow tokio_outer");
    spans.span("invoke_workflow tokio_outer");
    let (inside, spans) = recorded(ours_then_tokio_main);
    assert_eq!(inside, "invoke_workflow tokio_inner");
    spans.span("invoke_workflow tokio_inner");
}

// `#[tokio::test]` in either order: no subscriber is installed before the span
// starts here, so these check that the stack compiles and runs its body.
#[tokio::test]
#[agent_step(kind = workflow, name = "tokio_test_outer")]
async fn tokio_test_then_ours() -> Result<(), String> {
    tokio::task::yield_now().await;
    Ok(())
}

#[agent_step(kind = workflow, name = "tokio_test_inner")]
#[tokio::test]
async fn ours_then_tokio_test() {
    tokio::task::yield_now().await;
}

#[cfg_attr(test, agent_step(kind = tool, name = "enabled"))]
fn cfg_enabled() -> String {
    current()
}

#[cfg_attr(not(test), agent_step(kind = tool, name = "disabled"))]
fn cfg_disabled() -> String {
    current()
}

#[test]
fn cfg_attr_applies_the_attribute_when_its_condition_holds() {
    let ((enabled, disabled), _) = recorded(|| (cfg_enabled(), cfg_disabled()));
    assert_eq!(enabled, "execute_tool enabled");
    assert_eq!(disabled, "none");
}

// ---------------------------------------------------------------------------
// fields(...)
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Depth(u8);

#[agent_step(
    kind = tool,
    name = "web_search",
    fields(query, ?depth, app.query_len = query.len(), "app.flag" = true, app.upper = %query.to_uppercase()),
    skip(client),
    metric_attributes(app.team = "search")
)]
fn web_search(client: &str, query: &str, depth: Depth) -> usize {
    client.len() + query.len() + usize::from(depth.0)
}

#[test]
fn fields_are_recorded_on_the_span() {
    let (n, spans) = recorded(|| web_search("c", "rust", Depth(2)));
    assert_eq!(n, 7);
    let span = spans.span("execute_tool web_search");
    assert_eq!(span.fields["query"], "rust");
    assert_eq!(span.fields["depth"], "Depth(2)");
    assert_eq!(span.fields["app.query_len"], "4");
    assert_eq!(span.fields["app.flag"], "true");
    assert_eq!(span.fields["app.upper"], "RUST");
    assert!(
        !span.fields.contains_key("client"),
        "parameters are never recorded implicitly"
    );
}
