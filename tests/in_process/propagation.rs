//! Messages between agents: the sender's span is the parent of the receiver's
//! step, in the same trace, with the same session, whatever carries the context
//! (a field in the message, a header map) and however the receiver runs.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::{attr, harness, span_named};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::SpanData;
use otel_agent_runtime::propagation::{self, TraceCarrier};
use otel_agent_runtime::{agent_step, context};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::instrument::WithSubscriber as _;

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    text: String,
    trace: TraceCarrier,
}

#[agent_step(agent = "writer")]
fn write_sync(text: &str) -> String {
    text.to_uppercase()
}

#[agent_step(agent = "writer")]
async fn write(text: String) -> String {
    tokio::time::sleep(Duration::from_millis(2)).await;
    text.to_uppercase()
}

#[agent_step(agent = "orchestrator")]
fn send_sync(text: &str) -> Message {
    Message {
        text: text.to_owned(),
        trace: TraceCarrier::current(),
    }
}

fn assert_child_of(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "{} is in the trace of {}",
        child.name,
        parent.name
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "{} is a child of {}",
        child.name,
        parent.name
    );
}

#[test]
fn a_carrier_in_a_json_message_makes_the_receiver_a_child_of_the_sender() {
    let h = harness();
    let wire = h.run(|| {
        let message = context::scope()
            .session_id("s-1")
            .in_scope(|| send_sync("hello"));
        serde_json::to_string(&message).unwrap()
    });
    // The receiver knows nothing but the bytes.
    let out = h.run(|| {
        let message: Message = serde_json::from_str(&wire).unwrap();
        message.trace.in_scope(|| write_sync(&message.text))
    });
    assert_eq!(out, "HELLO");
    let spans = h.finished_spans();
    let sender = span_named(&spans, "invoke_agent orchestrator");
    let receiver = span_named(&spans, "invoke_agent writer");
    assert_child_of(receiver, sender);
    assert_eq!(attr(receiver, "session.id"), Some("s-1".into()));
    let json: serde_json::Value = serde_json::from_str(&wire).unwrap();
    let traceparent = json["trace"]["traceparent"].as_str().unwrap();
    assert_eq!(
        traceparent,
        format!(
            "00-{}-{}-01",
            sender.span_context.trace_id(),
            sender.span_context.span_id()
        )
    );
    assert_eq!(json["trace"]["baggage"], "session.id=s-1");
    assert!(
        json["trace"].get("tracestate").is_none(),
        "absent fields are left out"
    );
}

#[agent_step(kind = workflow, name = "dispatch")]
async fn dispatch(to_writer: mpsc::Sender<Message>, topics: &[&str]) {
    for topic in topics {
        let message = Message {
            text: (*topic).to_owned(),
            trace: TraceCarrier::current(),
        };
        to_writer.send(message).await.unwrap();
    }
}

#[test]
fn an_agent_on_another_task_joins_the_trace_through_the_message_alone() {
    let h = harness();
    let replies = h.block_on(async {
        let (tx, mut rx) = mpsc::channel::<Message>(4);
        // A plain tokio::spawn: the task inherits no span and no context.
        let writer = tokio::spawn(
            async move {
                let mut out = Vec::new();
                while let Some(message) = rx.recv().await {
                    out.push(message.trace.instrument(write(message.text)).await);
                }
                out
            }
            .with_current_subscriber(),
        );
        context::scope()
            .session_id("s-2")
            .tenant("acme")
            .instrument(dispatch(tx, &["a", "b"]))
            .await;
        writer.await.unwrap()
    });
    assert_eq!(replies, ["A", "B"]);
    let spans = h.finished_spans();
    let workflow = span_named(&spans, "invoke_workflow dispatch");
    let writers: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "invoke_agent writer")
        .collect();
    assert_eq!(writers.len(), 2);
    for w in writers {
        assert_child_of(w, workflow);
        assert_eq!(attr(w, "session.id"), Some("s-2".into()));
        assert_eq!(attr(w, "otel_agent.tenant"), Some("acme".into()));
    }
}

#[test]
fn header_maps_carry_the_context_both_ways() {
    let h = harness();
    let (headers, http_headers) = h.run(|| {
        context::scope().user_id("u-1").in_scope(|| {
            #[agent_step(agent = "client")]
            fn call() -> (HashMap<String, String>, http::HeaderMap) {
                let mut headers = HashMap::new();
                propagation::inject(&mut headers);
                let mut http_headers = http::HeaderMap::new();
                propagation::inject(&mut http_headers);
                (headers, http_headers)
            }
            call()
        })
    });
    assert!(headers.contains_key("traceparent"));
    assert_eq!(headers["baggage"], "user.id=u-1");
    h.run(|| {
        let _a = propagation::extract(&headers).attach();
        write_sync("one");
    });
    h.run(|| {
        let _a = propagation::extract(&http_headers).attach();
        write_sync("two");
    });
    let spans = h.finished_spans();
    let client = span_named(&spans, "invoke_agent client");
    let writers: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "invoke_agent writer")
        .collect();
    assert_eq!(writers.len(), 2);
    for w in writers {
        assert_child_of(w, client);
        assert_eq!(attr(w, "user.id"), Some("u-1".into()));
    }
}

#[test]
fn a_remote_parent_from_another_sdk_is_honoured() {
    let h = harness();
    let carrier = TraceCarrier {
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        tracestate: Some("vendor=opaque".into()),
        baggage: Some("session.id=from%20python,otel_agent.tag.channel=slack".into()),
    };
    h.run(|| carrier.in_scope(|| write_sync("x")));
    let spans = h.finished_spans();
    let w = span_named(&spans, "invoke_agent writer");
    assert_eq!(
        w.span_context.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert_eq!(
        w.parent_span_id,
        SpanId::from_hex("00f067aa0ba902b7").unwrap()
    );
    assert!(w.parent_span_is_remote);
    assert_eq!(w.span_context.trace_state().header(), "vendor=opaque");
    assert_eq!(attr(w, "session.id"), Some("from python".into()));
    assert_eq!(attr(w, "otel_agent.tag.channel"), Some("slack".into()));
}

#[test]
fn an_empty_or_broken_carrier_leaves_the_receiver_a_root() {
    let h = harness();
    let broken = TraceCarrier {
        traceparent: Some("01-garbage".into()),
        tracestate: None,
        baggage: None,
    };
    h.run(|| {
        TraceCarrier::default().in_scope(|| write_sync("a"));
        broken.in_scope(|| write_sync("b"));
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 2);
    for s in &spans {
        assert_eq!(s.parent_span_id, SpanId::INVALID);
    }
    assert_ne!(
        spans[0].span_context.trace_id(),
        spans[1].span_context.trace_id()
    );
}

#[test]
fn a_carrier_made_outside_any_span_carries_only_the_scope() {
    let carrier = context::scope()
        .conversation_id("c-1")
        .in_scope(TraceCarrier::current);
    assert_eq!(carrier.traceparent, None);
    assert_eq!(
        carrier.baggage.as_deref(),
        Some("gen_ai.conversation.id=c-1")
    );
    assert!(TraceCarrier::current().is_empty());
}

#[allow(dead_code)]
#[path = "../../examples/message_bus.rs"]
mod message_bus;

#[test]
fn the_message_bus_example_makes_one_trace_per_session_with_the_session_on_every_span() {
    let h = harness();
    let sessions = [("s-a", "u-1", "tracing"), ("s-b", "u-2", "sampling")];
    let articles = h.block_on(message_bus::run_sessions(&sessions));
    assert_eq!(
        articles,
        [
            "An article about tracing, for example a support bot.",
            "An article about sampling, for example a support bot."
        ]
    );
    let spans = h.finished_spans();
    let roots: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "invoke_workflow publish")
        .collect();
    assert_eq!(roots.len(), 2);
    for root in roots {
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        let session = attr(root, "session.id").expect("a session");
        let trace: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.span_context.trace_id() == root.span_context.trace_id())
            .collect();
        // writer, critic, writer, critic, each with its model call.
        assert_eq!(trace.len(), 9, "{session}");
        for span in &trace {
            assert_eq!(
                attr(span, "session.id"),
                Some(session.clone()),
                "{}",
                span.name
            );
            assert_eq!(attr(span, "otel_agent.tag.channel"), Some("bus".into()));
            if span.name.starts_with("invoke_agent") {
                assert_child_of(span, root);
            } else if span.name.starts_with("chat") {
                let parent = trace
                    .iter()
                    .find(|p| p.span_context.span_id() == span.parent_span_id)
                    .expect("a parent in the trace");
                assert!(parent.name.starts_with("invoke_agent"));
            }
        }
    }
}
