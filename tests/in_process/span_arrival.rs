//! A filter on events never loses a span: spans of every kind, opened right
//! before and right after events that the span-event filter drops or keeps,
//! all arrive. One test in its own binary, with one subscriber for the whole
//! process, so that callsites cache their interest as they do under `init()`
//! (a span whose interest is cached is created without asking the filters).

use crate::common;

use otel_agent_runtime::{agent_step, llm_call};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

fn filtered_http_event() {
    tracing::debug!(target: "hyper_util::client::legacy::pool", "reuse idle connection");
}
fn filtered_library_event() {
    tracing::trace!(target: "rig::completions", "request body");
}
fn kept_event() {
    tracing::info!(target: "my_agent", "kept");
}
fn below_the_filter() {
    tracing::debug!(target: "my_agent", "debug detail");
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn ours_call(event: fn()) -> u8 {
    event();
    1
}

#[agent_step(agent = "stepper")]
fn ours_step(event: fn()) {
    event();
}

#[agent_step(agent = "wrapper")]
fn step_then_plain(event: fn()) {
    event();
    plain(event);
}

fn foreign_genai(event: fn()) {
    let span = tracing::info_span!(
        target: "rig::completions",
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = "mock"
    );
    let _e = span.enter();
    event();
}

fn plain(event: fn()) {
    let span = tracing::debug_span!("plain");
    let _e = span.enter();
    event();
}

#[test]
fn every_span_arrives_whatever_events_came_before_or_inside_it() {
    let h = common::harness();
    // As `init()` builds it with RUST_LOG set: a printer with its own filter
    // beside the telemetry layer.
    let printer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(tracing_subscriber::EnvFilter::new("warn"));
    let subscriber = tracing_subscriber::registry()
        .with(h.telemetry.layer())
        .with(printer);
    let _default = tracing::subscriber::set_default(subscriber);

    let events: [fn(); 4] = [
        filtered_http_event,
        filtered_library_event,
        kept_event,
        below_the_filter,
    ];
    type Opens = fn(fn());
    let spans: [Opens; 4] = [
        |e| {
            ours_call(e);
        },
        ours_step,
        foreign_genai,
        plain,
    ];
    let mut expected = 0;
    for round in 0..2 {
        for event in events {
            for (i, open) in spans.iter().enumerate() {
                // An event inside one of our spans, then a span of each kind,
                // inside the same call and after it.
                step_then_plain(event);
                open(event);
                event();
                spans[(i + 1 + round) % spans.len()](event);
                expected += 4;
            }
        }
    }
    drop(_default);
    let finished = h.finished_spans();
    let count = |name: &str| finished.iter().filter(|s| s.name == name).count();
    let arrived = count("chat gpt-4o")
        + count("invoke_agent wrapper")
        + count("invoke_agent stepper")
        + count("chat mock")
        + count("plain");
    assert_eq!(
        arrived,
        expected,
        "spans lost: chat gpt-4o {}, invoke_agent stepper {}, chat {}, plain {}",
        count("chat gpt-4o"),
        count("invoke_agent stepper"),
        count("chat mock"),
        count("plain")
    );
    let kept = finished
        .iter()
        .flat_map(|s| s.events.iter())
        .filter(|e| e.name == "kept")
        .count();
    assert!(kept > 0, "kept events still become span events");
    assert!(finished
        .iter()
        .flat_map(|s| s.events.iter())
        .all(|e| e.name == "kept"));
}
