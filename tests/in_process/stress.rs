//! 1,000 concurrent steps on a multi-threaded runtime: every span exported
//! exactly once, each under its own parent. One test in this file: it installs
//! the process-wide subscriber.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use otel_agent_runtime::agent_step;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[agent_step(kind = tool, name = "leaf")]
async fn leaf(i: u64) -> u64 {
    tokio::time::sleep(Duration::from_micros(i % 7 * 100)).await;
    tokio::task::yield_now().await;
    i
}

#[agent_step(agent = "parent")]
async fn parent(i: u64) -> u64 {
    let a = otel_agent_runtime::spawn(leaf(i)).await.unwrap();
    let b = leaf(i + 1).await;
    tracing::Span::current().record("gen_ai.agent.description", i.to_string().as_str());
    a + b
}

#[test]
fn a_thousand_concurrent_steps_each_end_once_under_their_parent() {
    let h = common::harness();
    tracing_subscriber::registry()
        .with(h.telemetry.layer())
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let total: u64 = runtime.block_on(async {
        let handles: Vec<_> = (0..1000).map(|i| tokio::spawn(parent(i * 10))).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(total, (0..1000).map(|i| 2 * i * 10 + 1).sum::<u64>());
    let finished = h.finished_spans();
    assert_eq!(finished.len(), 3000, "1,000 parents and 2,000 leaves");
    let unique: HashSet<_> = finished.iter().map(|s| s.span_context.span_id()).collect();
    assert_eq!(unique.len(), 3000, "no span exported twice");

    let parents: HashMap<_, _> = finished
        .iter()
        .filter(|s| s.name == "invoke_agent parent")
        .map(|s| (s.span_context.span_id(), s))
        .collect();
    assert_eq!(parents.len(), 1000);
    let mut children_per_parent: HashMap<_, usize> = HashMap::new();
    for leaf in finished.iter().filter(|s| s.name == "execute_tool leaf") {
        let parent = parents
            .get(&leaf.parent_span_id)
            .expect("every leaf has its parent step");
        assert_eq!(leaf.span_context.trace_id(), parent.span_context.trace_id());
        *children_per_parent.entry(leaf.parent_span_id).or_default() += 1;
    }
    assert!(
        children_per_parent.values().all(|&n| n == 2),
        "each parent has its own two leaves"
    );
    let traces: HashSet<_> = parents
        .values()
        .map(|s| s.span_context.trace_id())
        .collect();
    assert_eq!(traces.len(), 1000, "each root step starts its own trace");
}
