//! Spans created with an explicit `parent:` nest where their author put them,
//! whichever layer built the parent: a framework's spans (rig makes its `chat`
//! and tool spans this way, tools on a task of their own) under the attributes'
//! spans, and the other way round, all in one trace.

use crate::common;

use common::{attr, span_named};
use opentelemetry_sdk::trace::SpanData;
use otel_agent_runtime::agent_step;
use tracing::Span;

fn parent_of<'a>(spans: &'a [SpanData], child: &SpanData) -> Option<&'a SpanData> {
    spans
        .iter()
        .find(|s| s.span_context.span_id() == child.parent_span_id)
}

/// What a framework does under the user's step: a `chat` span whose parent is
/// given explicitly, a nested span under that one, an event in it, and a tool
/// span created on another thread with an explicit parent.
fn framework_turn(parent: Span, dispatch: tracing::Dispatch) {
    let chat = tracing::info_span!(
        target: "rig::completions",
        parent: &parent,
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = "mock",
        gen_ai.usage.input_tokens = tracing::field::Empty,
    );
    let stream = tracing::info_span!(target: "rig::streaming", parent: &chat, "stream chunk");
    drop(stream);
    {
        let _entered = chat.enter();
        tracing::info!(target: "rig::completions", "turn done");
        let contextual = tracing::info_span!("inside chat");
        drop(contextual);
    }
    chat.record("gen_ai.usage.input_tokens", 21_u64);
    let tool_parent = parent.clone();
    std::thread::spawn(move || {
        let _default = tracing::dispatcher::set_default(&dispatch);
        let tool = tracing::info_span!(
            target: "rig::tool",
            parent: &tool_parent,
            "execute_tool",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = "lookup",
        );
        let _entered = tool.enter();
        let inner = tracing::info_span!("tool body");
        drop(inner);
    })
    .join()
    .expect("tool thread");
}

#[agent_step(agent = "researcher")]
fn research(dispatch: tracing::Dispatch) {
    framework_turn(Span::current(), dispatch);
}

#[agent_step(kind = workflow, name = "run")]
fn run(dispatch: tracing::Dispatch) {
    research(dispatch);
    // A user span made the parent explicitly, then a step inside it.
    let user = tracing::info_span!("user stage");
    let child = tracing::info_span!(parent: &user, "explicit user child");
    let _entered = child.enter();
    inner_step();
}

#[agent_step(agent = "inner")]
fn inner_step() {}

#[test]
fn explicit_parents_are_honoured_across_layers_threads_and_kinds() {
    let h = common::harness();
    let subscriber = tracing_subscriber::layer::SubscriberExt::with(
        tracing_subscriber::registry(),
        h.telemetry.layer(),
    );
    let dispatch = tracing::Dispatch::new(subscriber);
    // The spawned tool thread needs the subscriber too: handed over explicitly,
    // as a framework's runtime thread would have the global one.
    let d = dispatch.clone();
    tracing::dispatcher::with_default(&dispatch, || run(d));
    let spans = h.finished_spans();

    let root = span_named(&spans, "invoke_workflow run");
    for span in &spans {
        assert_eq!(
            span.span_context.trace_id(),
            root.span_context.trace_id(),
            "{} is in another trace",
            span.name
        );
    }
    let expect_parent = |child: &str, parent: &str| {
        let c = span_named(&spans, child);
        let p = parent_of(&spans, c).unwrap_or_else(|| panic!("{child} has no parent"));
        assert_eq!(p.name, parent, "parent of {child}");
    };
    expect_parent("chat mock", "invoke_agent researcher");
    expect_parent("stream chunk", "chat mock");
    expect_parent("inside chat", "chat mock");
    expect_parent("execute_tool lookup", "invoke_agent researcher");
    expect_parent("tool body", "execute_tool lookup");
    expect_parent("explicit user child", "user stage");
    expect_parent("invoke_agent inner", "explicit user child");

    let chat = span_named(&spans, "chat mock");
    assert_eq!(attr(chat, "gen_ai.usage.input_tokens"), Some(21_i64.into()));
    assert!(chat.events.iter().any(|e| e.name == "turn done"));
    assert_eq!(
        spans.len(),
        10,
        "one span per thing: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
}
