//! Spans that must end exactly once, with the right parent and the right outcome,
//! however the call leaves: panics, cancellation, spawned tasks, nesting, retries.

use crate::common;

use std::time::Duration;

use common::{attr, harness, span_named, span_trees, Harness};
use opentelemetry::trace::Status;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use otel_agent_runtime::{agent_step, llm_call, InCurrentContextExt as _, LlmResponse, Usage};

/// `(outcome, error.type)` of every `otel_agent.step.calls` point, with counts.
fn step_outcomes(h: &Harness) -> Vec<(String, String, u64)> {
    let metrics = h.metrics();
    let calls = metrics.expect("otel_agent.step.calls");
    let AggregatedMetrics::U64(MetricData::Sum(sum)) = calls.data() else {
        panic!("a u64 sum")
    };
    let mut out: Vec<_> = sum
        .data_points()
        .map(|p| {
            let attrs = common::point_attrs(p.attributes());
            (
                attrs["otel_agent.step.outcome"].clone(),
                attrs.get("error.type").cloned().unwrap_or_default(),
                p.value(),
            )
        })
        .collect();
    out.sort();
    out
}

fn in_flight(h: &Harness) -> i64 {
    let metrics = h.metrics();
    let AggregatedMetrics::I64(MetricData::Sum(sum)) =
        metrics.expect("otel_agent.step.active").data()
    else {
        panic!("an i64 sum")
    };
    sum.data_points().map(|p| p.value()).sum()
}

#[agent_step(agent = "sync_panicker")]
fn sync_panics() -> u8 {
    panic!("sync boom")
}

#[test]
fn a_sync_panic_ends_the_span_as_an_error_and_propagates() {
    let h = harness();
    let caught = h.run(|| std::panic::catch_unwind(sync_panics));
    let payload = caught.expect_err("the panic propagates");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"sync boom"));
    let spans = h.finished_spans();
    let span = span_named(&spans, "invoke_agent sync_panicker");
    assert_eq!(attr(span, "error.type"), Some("panic".into()));
    assert_eq!(
        span.status,
        Status::Error {
            description: "panicked: sync boom".into()
        }
    );
    assert_eq!(
        step_outcomes(&h),
        vec![("failure".into(), "panic".into(), 1)]
    );
    assert_eq!(in_flight(&h), 0);
}

#[agent_step(agent = "async_panicker")]
async fn async_panics(message: String) -> u8 {
    tokio::task::yield_now().await;
    panic!("{message}")
}

#[test]
fn an_async_panic_in_a_spawned_task_names_the_panic() {
    let h = harness();
    let joined =
        h.block_on(async { otel_agent_runtime::spawn(async_panics("async boom 42".into())).await });
    let err = joined.expect_err("the task panicked");
    assert!(err.is_panic());
    let payload = err.into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("async boom 42")
    );
    let spans = h.finished_spans();
    let span = span_named(&spans, "invoke_agent async_panicker");
    assert_eq!(attr(span, "error.type"), Some("panic".into()));
    assert_eq!(
        span.status,
        Status::Error {
            description: "panicked: async boom 42".into()
        }
    );
    assert_eq!(
        step_outcomes(&h),
        vec![("failure".into(), "panic".into(), 1)]
    );
}

#[agent_step(agent = "sleeper")]
async fn sleeps(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[test]
fn a_future_dropped_by_a_timeout_ends_its_span_as_cancelled() {
    let h = harness();
    let out =
        h.block_on(async { tokio::time::timeout(Duration::from_millis(10), sleeps(10_000)).await });
    assert!(out.is_err(), "the timeout fired");
    let spans = h.finished_spans();
    let span = span_named(&spans, "invoke_agent sleeper");
    assert_eq!(attr(span, "error.type"), Some("cancelled".into()));
    assert_eq!(
        span.status,
        Status::Error {
            description: "the call was cancelled before it finished".into()
        }
    );
    assert_eq!(
        step_outcomes(&h),
        vec![("cancelled".into(), "cancelled".into(), 1)]
    );
    assert_eq!(in_flight(&h), 0);
}

/// Logs when dropped: what a connection or a lock guard held across an
/// `.await` does when its call is cancelled.
struct LogsOnDrop;

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        tracing::warn!("released on cancel");
    }
}

#[agent_step(agent = "holder")]
async fn holds_across_await(ms: u64) -> u64 {
    let _held = LogsOnDrop;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[test]
fn what_a_cancelled_body_drops_is_recorded_inside_its_span() {
    let h = harness();
    let out = h.block_on(async {
        tokio::time::timeout(Duration::from_millis(10), holds_across_await(10_000)).await
    });
    assert!(out.is_err(), "the timeout fired");
    let spans = h.finished_spans();
    let span = span_named(&spans, "invoke_agent holder");
    assert_eq!(attr(span, "error.type"), Some("cancelled".into()));
    let events: Vec<_> = span.events.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(
        events,
        ["released on cancel"],
        "the drop's event is on the span"
    );
}

#[test]
fn the_loser_of_a_select_and_an_aborted_task_are_cancelled() {
    let h = harness();
    h.block_on(async {
        tokio::select! {
            fast = sleeps(1) => assert_eq!(fast, 1),
            _ = sleeps(5_000) => unreachable!(),
        }
        let task = otel_agent_runtime::spawn(sleeps(5_000));
        tokio::time::sleep(Duration::from_millis(20)).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    });
    assert_eq!(
        step_outcomes(&h),
        vec![
            ("cancelled".into(), "cancelled".into(), 2),
            ("success".into(), String::new(), 1)
        ]
    );
    assert_eq!(h.finished_spans().len(), 3, "every span ends exactly once");
    assert_eq!(in_flight(&h), 0);
}

#[agent_step(kind = tool, name = "worker")]
async fn worker(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(5 * (10 - i % 10))).await;
    i
}

#[agent_step(kind = workflow, name = "fan_out")]
async fn fan_out() -> u64 {
    let spawned = otel_agent_runtime::spawn(worker(100)).await.unwrap();
    let joined = futures::future::join_all((0..10).map(worker)).await;
    let carried = tokio::spawn(worker(200).in_current_context())
        .await
        .unwrap();
    spawned + joined.iter().sum::<u64>() + carried
}

#[test]
fn spawned_and_concurrent_steps_keep_their_parent() {
    let h = harness();
    assert_eq!(h.block_on(fan_out()), 345);
    let spans = h.finished_spans();
    let root = span_named(&spans, "invoke_workflow fan_out");
    let workers: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "execute_tool worker")
        .collect();
    assert_eq!(workers.len(), 12);
    for w in workers {
        assert_eq!(w.parent_span_id, root.span_context.span_id());
        assert_eq!(w.span_context.trace_id(), root.span_context.trace_id());
    }
}

#[derive(Debug)]
struct Reply(u64);

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.0, 1))
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn client_call(tokens: u64) -> Result<Reply, std::io::Error> {
    Ok(Reply(tokens))
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn wrapper_call(tokens: u64) -> Result<Reply, std::io::Error> {
    client_call(tokens).await
}

#[test]
fn a_nested_llm_call_counts_tokens_and_duration_once() {
    let h = harness();
    h.block_on(wrapper_call(40)).unwrap();
    let spans = h.finished_spans();
    assert_eq!(
        spans.iter().filter(|s| s.name == "chat gpt-4o").count(),
        2,
        "both spans are in the tree"
    );
    let metrics = h.metrics();
    let durations =
        common::f64_histogram_points(metrics.expect("gen_ai.client.operation.duration"));
    assert_eq!(durations.iter().map(|p| p.count()).sum::<u64>(), 1);
    let tokens = common::u64_histogram_points(metrics.expect("gen_ai.client.token.usage"));
    let input: u64 = tokens
        .iter()
        .filter(|p| common::point_attrs(p.attributes())["gen_ai.token.type"] == "input")
        .map(|p| p.sum())
        .sum();
    assert_eq!(input, 40);
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn flaky(attempt: u32) -> Result<Reply, std::io::Error> {
    if attempt < 2 {
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"))
    } else {
        Ok(Reply(10))
    }
}

#[agent_step(agent = "retrier")]
async fn retrier() -> Result<u64, std::io::Error> {
    let mut attempt = 0;
    loop {
        match flaky(attempt).await {
            Ok(r) => return Ok(r.0),
            Err(_) if attempt < 3 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn each_retry_is_its_own_span_and_the_step_shows_the_final_outcome() {
    let h = harness();
    assert_eq!(h.block_on(retrier()).unwrap(), 10);
    insta::assert_yaml_snapshot!(span_trees(&h.finished_spans()));
    assert_eq!(
        step_outcomes(&h),
        vec![("success".into(), String::new(), 1)]
    );
}
