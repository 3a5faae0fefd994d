//! The exported metric points: names, units, bucket boundaries, attributes.

use crate::common;

use common::{f64_histogram_points, harness, point_attrs, u64_histogram_points};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use otel_agent_runtime::metrics::{DURATION_BUCKETS, TOKEN_BUCKETS};
use otel_agent_runtime::{agent_step, llm_call, LlmResponse, Usage};

#[derive(Debug)]
struct Reply(Option<Usage>);

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        self.0
    }
    fn response_model(&self) -> Option<&str> {
        Some("gpt-4o-2024-08-06")
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn call(usage: Option<Usage>) -> Result<Reply, std::io::Error> {
    Ok(Reply(usage))
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn failing() -> Result<Reply, std::io::Error> {
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "took too long",
    ))
}

#[test]
fn llm_calls_record_duration_and_tokens_with_semconv_units_and_buckets() {
    let h = harness();
    h.run(|| {
        call(Some(Usage::new(100, 20))).unwrap();
        call(Some(Usage::new(50, 10))).unwrap();
    });
    let metrics = h.metrics();

    let duration = metrics.expect("gen_ai.client.operation.duration");
    assert_eq!(duration.unit(), "s");
    let points = f64_histogram_points(duration);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count(), 2);
    assert_eq!(
        points[0].bounds().collect::<Vec<_>>(),
        DURATION_BUCKETS.to_vec()
    );
    insta::assert_yaml_snapshot!("duration_attributes", point_attrs(points[0].attributes()));

    let tokens = metrics.expect("gen_ai.client.token.usage");
    assert_eq!(tokens.unit(), "{token}");
    let mut points: Vec<_> = u64_histogram_points(tokens)
        .into_iter()
        .map(|p| {
            assert_eq!(p.bounds().collect::<Vec<_>>(), TOKEN_BUCKETS.to_vec());
            (
                point_attrs(p.attributes())["gen_ai.token.type"].clone(),
                p.count(),
                p.sum(),
            )
        })
        .collect();
    points.sort();
    assert_eq!(
        points,
        vec![("input".to_owned(), 2, 150), ("output".to_owned(), 2, 30)]
    );
}

#[test]
fn unknown_usage_records_no_token_metric() {
    let h = harness();
    h.run(|| call(None).unwrap());
    let metrics = h.metrics();
    assert!(metrics.get("gen_ai.client.operation.duration").is_some());
    assert!(
        metrics.get("gen_ai.client.token.usage").is_none(),
        "token counts must never be invented"
    );
}

#[test]
fn failures_carry_a_low_cardinality_error_type() {
    let h = harness();
    h.run(|| failing().unwrap_err());
    let metrics = h.metrics();
    let points = f64_histogram_points(metrics.expect("gen_ai.client.operation.duration"));
    let attrs = point_attrs(points[0].attributes());
    assert_eq!(attrs["error.type"], "TimedOut");
    assert!(!attrs.contains_key("gen_ai.response.model"));
}

#[agent_step(kind = tool, name = "lookup")]
fn lookup(fail: bool) -> Result<u8, String> {
    if fail {
        Err("boom".into())
    } else {
        Ok(1)
    }
}

#[test]
fn steps_record_latency_outcomes_and_in_flight_counts() {
    let h = harness();
    h.run(|| {
        lookup(false).unwrap();
        lookup(false).unwrap();
        lookup(true).unwrap_err();
    });
    let metrics = h.metrics();

    let duration = metrics.expect("otel_agent.step.duration");
    assert_eq!(duration.unit(), "s");
    let mut outcomes: Vec<_> = f64_histogram_points(duration)
        .into_iter()
        .map(|p| (point_attrs(p.attributes()), p.count()))
        .collect();
    outcomes.sort();
    insta::assert_yaml_snapshot!("step_duration_points", outcomes);

    let calls = metrics.expect("otel_agent.step.calls");
    let AggregatedMetrics::U64(MetricData::Sum(sum)) = calls.data() else {
        panic!("calls is a u64 sum")
    };
    assert!(sum.is_monotonic());
    let total: u64 = sum.data_points().map(|p| p.value()).sum();
    assert_eq!(total, 3);

    let active = metrics.expect("otel_agent.step.active");
    let AggregatedMetrics::I64(MetricData::Sum(sum)) = active.data() else {
        panic!("active is an i64 sum")
    };
    assert!(!sum.is_monotonic());
    assert_eq!(
        sum.data_points().map(|p| p.value()).sum::<i64>(),
        0,
        "every step came back down"
    );
}
