//! Sessions, users, conversations, tenants and tags: on every span made in a
//! scope (root or child, sync or async, spawned or joined), never on metrics
//! except an allow-listed tenant.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{attr, harness, Harness};
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::trace::SpanData;
use otel_agent_runtime::{
    agent_step, context, llm_call, InCurrentContextExt as _, LlmResponse, Usage,
};
use tracing::instrument::WithSubscriber as _;

const SCOPE_ATTRIBUTES: [(&str, &str); 5] = [
    ("session.id", "s-1"),
    ("user.id", "u-9"),
    ("gen_ai.conversation.id", "c-3"),
    ("otel_agent.tenant", "acme"),
    ("otel_agent.tag.experiment", "b"),
];

fn full_scope() -> context::Scope {
    context::scope()
        .session_id("s-1")
        .user_id("u-9")
        .conversation_id("c-3")
        .tenant("acme")
        .tag("experiment", "b")
}

fn assert_scoped(span: &SpanData) {
    for (key, value) in SCOPE_ATTRIBUTES {
        assert_eq!(
            attr(span, key),
            Some(Value::from(value)),
            "{key} on span {}",
            span.name
        );
    }
}

fn assert_unscoped(span: &SpanData) {
    for (key, _) in SCOPE_ATTRIBUTES {
        assert_eq!(attr(span, key), None, "{key} on span {}", span.name);
    }
}

#[derive(Debug)]
struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(10, 2))
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn chat_sync() -> Result<Reply, std::io::Error> {
    Ok(Reply)
}

#[agent_step(kind = tool, name = "lookup")]
fn lookup() -> u8 {
    chat_sync().map(|_| 1).unwrap_or(0)
}

#[agent_step(agent = "planner")]
fn plan() -> u8 {
    lookup() + lookup()
}

#[test]
fn a_sync_scope_is_on_the_root_and_every_child() {
    let h = harness();
    assert_eq!(h.run(|| full_scope().in_scope(plan)), 2);
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 5);
    spans.iter().for_each(assert_scoped);
}

#[test]
fn spans_outside_a_scope_carry_nothing() {
    let h = harness();
    h.run(|| {
        full_scope().in_scope(|| {});
        plan()
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 5);
    spans.iter().for_each(assert_unscoped);
}

#[llm_call(model = "claude-sonnet-4-5", provider = "anthropic")]
async fn chat() -> Result<Reply, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    Ok(Reply)
}

#[agent_step(kind = tool, name = "search")]
async fn search(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(3 * (4 - i % 4))).await;
    chat().await.map(|_| i).unwrap_or(0)
}

#[agent_step(kind = workflow, name = "research")]
async fn research() -> u64 {
    let spawned = otel_agent_runtime::spawn(search(10)).await.unwrap();
    let joined: u64 = futures::future::join_all((0..4).map(search))
        .await
        .into_iter()
        .sum();
    let carried = tokio::spawn(search(20).in_current_context()).await.unwrap();
    // Read back inside a step, after awaits, on whatever thread.
    let here = context::current();
    assert_eq!(here.session_id(), Some("s-1"));
    assert_eq!(here.tag("experiment"), Some("b"));
    spawned + joined + carried
}

#[test]
fn an_async_scope_is_on_spawned_and_joined_spans() {
    let h = harness();
    assert_eq!(h.block_on(full_scope().instrument(research())), 36);
    let spans = h.finished_spans();
    // research + 6 searches with a chat each.
    assert_eq!(spans.len(), 13);
    spans.iter().for_each(assert_scoped);
}

#[test]
fn an_async_scope_holds_on_a_multi_threaded_runtime() {
    let h = harness();
    let total = h.run(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(full_scope().instrument(research()))
    });
    assert_eq!(total, 36);
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 13);
    spans.iter().for_each(assert_scoped);
}

#[test]
fn a_task_spawned_in_a_scope_outside_any_span_keeps_the_scope() {
    let h = harness();
    let n = h.block_on(full_scope().instrument(async {
        let a = otel_agent_runtime::spawn(search(1)).await.unwrap();
        let b = tokio::spawn(search(2).in_current_context()).await.unwrap();
        a + b
    }));
    assert_eq!(n, 3);
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 4);
    spans.iter().for_each(assert_scoped);
}

#[test]
fn inner_scopes_replace_their_keys_and_keep_the_rest() {
    let h = harness();
    h.run(|| {
        full_scope().in_scope(|| {
            context::scope()
                .user_id("u-10")
                .tag("experiment", "c")
                .tag("channel", "slack")
                .in_scope(lookup);
        })
    });
    let spans = h.finished_spans();
    let tool = common::span_named(&spans, "execute_tool lookup");
    assert_eq!(attr(tool, "session.id"), Some("s-1".into()));
    assert_eq!(attr(tool, "user.id"), Some("u-10".into()));
    assert_eq!(attr(tool, "otel_agent.tenant"), Some("acme".into()));
    assert_eq!(attr(tool, "otel_agent.tag.experiment"), Some("c".into()));
    assert_eq!(attr(tool, "otel_agent.tag.channel"), Some("slack".into()));
}

#[test]
fn a_scope_inside_a_step_applies_to_the_spans_below() {
    #[agent_step(agent = "router")]
    fn route() -> u8 {
        context::scope().session_id("late").in_scope(lookup)
    }
    let h = harness();
    h.run(route);
    let spans = h.finished_spans();
    let router = common::span_named(&spans, "invoke_agent router");
    let tool = common::span_named(&spans, "execute_tool lookup");
    assert_eq!(attr(router, "session.id"), None);
    assert_eq!(attr(tool, "session.id"), Some("late".into()));
    assert_eq!(tool.parent_span_id, router.span_context.span_id());
}

#[test]
fn your_own_tracing_spans_carry_the_scope_too() {
    let h = harness();
    h.run(|| {
        full_scope().in_scope(|| {
            tracing::info_span!("load documents").in_scope(lookup);
        })
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 3);
    spans.iter().for_each(assert_scoped);
}

#[test]
fn other_baggage_is_carried_but_not_copied_onto_spans() {
    let h = harness();
    h.run(|| {
        let cx = opentelemetry::Context::current_with_baggage([
            KeyValue::new("authorization", "secret"),
            KeyValue::new("session.id", "s-upstream"),
        ]);
        let _guard = cx.attach();
        context::scope().user_id("u-1").in_scope(|| {
            assert_eq!(
                opentelemetry::Context::current()
                    .baggage()
                    .get("authorization")
                    .map(|v| v.as_str().to_owned()),
                Some("secret".to_owned())
            );
            lookup()
        })
    });
    let spans = h.finished_spans();
    for span in &spans {
        assert_eq!(attr(span, "authorization"), None);
        assert_eq!(attr(span, "session.id"), Some("s-upstream".into()));
        assert_eq!(attr(span, "user.id"), Some("u-1".into()));
    }
}

/// Every attribute key on every metric point, with its values.
fn metric_attribute_values(h: &Harness) -> BTreeMap<String, Vec<String>> {
    let metrics = h.metrics();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rm in &metrics.0 {
        for sm in rm.scope_metrics() {
            for metric in sm.metrics() {
                let mut add = |attrs: BTreeMap<String, String>| {
                    for (k, v) in attrs {
                        out.entry(k).or_default().push(v);
                    }
                };
                match metric.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => h
                        .data_points()
                        .for_each(|p| add(common::point_attrs(p.attributes()))),
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => h
                        .data_points()
                        .for_each(|p| add(common::point_attrs(p.attributes()))),
                    AggregatedMetrics::U64(MetricData::Sum(s)) => s
                        .data_points()
                        .for_each(|p| add(common::point_attrs(p.attributes()))),
                    AggregatedMetrics::I64(MetricData::Sum(s)) => s
                        .data_points()
                        .for_each(|p| add(common::point_attrs(p.attributes()))),
                    AggregatedMetrics::F64(MetricData::Sum(s)) => s
                        .data_points()
                        .for_each(|p| add(common::point_attrs(p.attributes()))),
                    _ => {}
                }
            }
        }
    }
    out
}

#[test]
fn ids_and_tags_never_reach_metrics_and_the_tenant_only_when_allowed() {
    let h = harness();
    h.run(|| full_scope().in_scope(plan));
    h.block_on(full_scope().instrument(research()));
    let keys = metric_attribute_values(&h);
    assert!(keys.contains_key("gen_ai.operation.name"), "{keys:?}");
    for (key, _) in SCOPE_ATTRIBUTES {
        assert!(!keys.contains_key(key), "{key} on a metric: {keys:?}");
    }
}

fn harness_with_tenant_on_metrics() -> Harness {
    common::harness_with(|b| b.tenant_on_metrics(true))
}

#[test]
fn an_allowed_tenant_is_on_metrics_and_the_ids_still_are_not() {
    let h = harness_with_tenant_on_metrics();
    h.run(|| full_scope().in_scope(plan));
    h.block_on(full_scope().instrument(research()));
    h.run(plan);
    let keys = metric_attribute_values(&h);
    let tenants = &keys["otel_agent.tenant"];
    assert!(tenants.iter().all(|t| t == "acme"), "{tenants:?}");
    for key in [
        "session.id",
        "user.id",
        "gen_ai.conversation.id",
        "otel_agent.tag.experiment",
    ] {
        assert!(!keys.contains_key(key), "{key} on a metric");
    }
    assert_in_flight_is_zero(&h);
}

fn assert_in_flight_is_zero(h: &Harness) {
    let metrics = h.metrics();
    let AggregatedMetrics::I64(MetricData::Sum(active)) =
        metrics.expect("otel_agent.step.active").data()
    else {
        panic!("an i64 sum")
    };
    for point in active.data_points() {
        assert_eq!(
            point.value(),
            0,
            "steps in flight at {:?}",
            common::point_attrs(point.attributes())
        );
    }
}

#[agent_step(agent = "sleeper")]
async fn sleeper() {
    tokio::time::sleep(Duration::from_secs(30)).await;
}

#[test]
fn a_cancelled_step_brings_its_tenants_in_flight_count_back_down() {
    let h = harness_with_tenant_on_metrics();
    h.block_on(async {
        // A task in the tenant's scope, aborted while its step runs: the step's
        // guard is dropped by the runtime, outside any context.
        let task = tokio::spawn(full_scope().instrument(sleeper()).with_current_subscriber());
        tokio::time::sleep(Duration::from_millis(20)).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    });
    assert_in_flight_is_zero(&h);
}
