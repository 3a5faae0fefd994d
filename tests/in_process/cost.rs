//! Cost from a price table: on the span, rolled up onto steps, as a counter;
//! evaluations; the compatibility names for older backends.

use crate::common;

use common::{attr, harness, span_named};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use otel_agent_runtime::cost::{Price, PriceTable};
use otel_agent_runtime::evaluation::{self, Evaluation};
use otel_agent_runtime::{agent_step, llm_call, LlmResponse, TelemetryBuilder, Usage};

struct Reply {
    model: &'static str,
    input: u64,
    output: u64,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input, self.output))
    }
    fn response_model(&self) -> Option<&str> {
        Some(self.model)
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn gpt(input: u64) -> Option<Reply> {
    Some(Reply {
        model: "gpt-4o-2024-08-06",
        input,
        output: 1_000,
    })
}

#[llm_call(model = "mystery-1", provider = "acme")]
fn unpriced() -> Option<Reply> {
    Some(Reply {
        model: "mystery-1",
        input: 5,
        output: 5,
    })
}

#[agent_step(agent = "researcher")]
fn research() {
    gpt(1_000_000);
    gpt(0);
    unpriced();
    evaluation::record(
        Evaluation::new("relevance")
            .score(0.75)
            .label("relevant")
            .explanation("on topic"),
    );
}

#[agent_step(kind = workflow, name = "crew")]
fn crew() {
    research();
}

struct Run {
    spans: Vec<opentelemetry_sdk::trace::SpanData>,
    metrics: common::Metrics,
}

fn run(configure: impl FnOnce(TelemetryBuilder) -> TelemetryBuilder) -> Run {
    let h = common::harness_with(configure);
    h.run(crew);
    let metrics = h.metrics();
    Run {
        spans: h.finished_spans(),
        metrics,
    }
}

fn f64_value(v: Option<opentelemetry::Value>) -> f64 {
    match v {
        Some(opentelemetry::Value::F64(f)) => f,
        other => panic!("not an f64: {other:?}"),
    }
}

#[test]
fn calls_are_priced_and_rolled_up_onto_every_enclosing_step() {
    let table = PriceTable::new().with_model("gpt-4o", Price::new(2.5, 10.0));
    let run = run(|b| b.prices(table));
    let calls: Vec<_> = run
        .spans
        .iter()
        .filter(|s| s.name == "chat gpt-4o")
        .collect();
    let costs: Vec<f64> = calls
        .iter()
        .map(|s| f64_value(attr(s, "otel_agent.cost.usd")))
        .collect();
    assert!(
        (costs[0] - 2.51).abs() < 1e-9 && (costs[1] - 0.01).abs() < 1e-9,
        "{costs:?}"
    );
    for step in ["invoke_agent researcher", "invoke_workflow crew"] {
        let span = span_named(&run.spans, step);
        // Summed under roll-up keys of our own: the calls' spans carry the
        // usage and cost, and a backend summing them over the trace must count
        // each call once.
        assert!((f64_value(attr(span, "otel_agent.rollup.cost.usd")) - 2.52).abs() < 1e-9);
        assert_eq!(attr(span, "otel_agent.cost.usd"), None);
        assert_eq!(
            attr(span, "otel_agent.rollup.usage.input_tokens"),
            Some(1_000_005_i64.into())
        );
        assert_eq!(
            attr(span, "otel_agent.rollup.usage.output_tokens"),
            Some(2_005_i64.into())
        );
        assert_eq!(attr(span, "gen_ai.usage.input_tokens"), None);
        assert_eq!(attr(span, "gen_ai.usage.output_tokens"), None);
    }

    let cost = run.metrics.expect("otel_agent.llm.cost.usd");
    let AggregatedMetrics::F64(MetricData::Sum(sum)) = cost.data() else {
        panic!("an f64 sum")
    };
    let points: Vec<_> = sum
        .data_points()
        .map(|p| (common::point_attrs(p.attributes()), p.value()))
        .collect();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].0["gen_ai.request.model"], "gpt-4o");
    assert!(
        !points[0].0.contains_key("gen_ai.response.model"),
        "low-cardinality attributes only"
    );
    assert!((points[0].1 - 2.52).abs() < 1e-9);

    let unpriced = run.metrics.expect("otel_agent.llm.unpriced_calls");
    let AggregatedMetrics::U64(MetricData::Sum(sum)) = unpriced.data() else {
        panic!("a u64 sum")
    };
    let points: Vec<_> = sum
        .data_points()
        .map(|p| (common::point_attrs(p.attributes()), p.value()))
        .collect();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].0["gen_ai.request.model"], "mystery-1");
    assert_eq!(points[0].1, 1);
}

#[test]
fn without_a_price_table_no_cost_is_invented() {
    let run = run(|b| b);
    assert!(run
        .spans
        .iter()
        .all(|s| attr(s, "otel_agent.cost.usd").is_none()
            && attr(s, "otel_agent.rollup.cost.usd").is_none()));
    assert!(run
        .metrics
        .get("otel_agent.llm.cost.usd")
        .is_none_or(|m| match m.data() {
            AggregatedMetrics::F64(MetricData::Sum(sum)) => sum.data_points().count() == 0,
            _ => false,
        }));
    // Tokens still roll up onto the steps.
    let step = span_named(&run.spans, "invoke_agent researcher");
    assert_eq!(
        attr(step, "otel_agent.rollup.usage.input_tokens"),
        Some(1_000_005_i64.into())
    );
}

#[test]
fn evaluations_are_span_events_and_a_histogram() {
    let run = run(|b| b);
    let step = span_named(&run.spans, "invoke_agent researcher");
    let event = step
        .events
        .iter()
        .find(|e| e.name == "gen_ai.evaluation.result")
        .expect("the event");
    let attrs: std::collections::BTreeMap<_, _> = event
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect();
    assert_eq!(attrs["gen_ai.evaluation.name"], "relevance");
    assert_eq!(attrs["gen_ai.evaluation.score.value"], "0.75");
    assert_eq!(attrs["gen_ai.evaluation.score.label"], "relevant");
    assert_eq!(attrs["gen_ai.evaluation.explanation"], "on topic");
    let points = common::f64_histogram_points(run.metrics.expect("otel_agent.evaluation.score"));
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].sum(), 0.75);
    let labels = common::point_attrs(points[0].attributes());
    assert!(
        !labels.contains_key("gen_ai.evaluation.explanation"),
        "free text never on metrics"
    );
}

#[test]
fn the_compatibility_mode_adds_the_deprecated_names() {
    let h = harness();
    h.run(|| gpt(7));
    let span = span_named(&h.finished_spans(), "chat gpt-4o").clone();
    assert_eq!(attr(&span, "gen_ai.system"), None, "off by default");

    let run = run(|b| b.env([("OTEL_SEMCONV_STABILITY_OPT_IN", "http,gen_ai/dup")]));
    let span = run.spans.iter().find(|s| s.name == "chat gpt-4o").unwrap();
    assert_eq!(attr(span, "gen_ai.system"), Some("openai".into()));
    assert_eq!(
        attr(span, "gen_ai.usage.prompt_tokens"),
        Some(1_000_000_i64.into())
    );
    assert_eq!(
        attr(span, "gen_ai.usage.completion_tokens"),
        Some(1_000_i64.into())
    );
    assert_eq!(
        attr(span, "gen_ai.usage.input_tokens"),
        Some(1_000_000_i64.into()),
        "new names stay"
    );
}
