//! A library's GenAI spans are completed like the attributes' own: the
//! conventions' metrics with the same attributes and buckets, the steps'
//! roll-ups and the console, counted once however they nest with our calls.

use crate::common;

use common::{attr, span_named};
use opentelemetry::Value;
use otel_agent_runtime::{agent_step, llm_call, ExporterKind, LlmResponse, Usage};
use tracing::Span;

/// A `chat` span the way rig makes one: an internal span, the usage and the
/// response model recorded once the answer is in.
fn library_chat(model: &'static str, input: u64, output: u64, fail: bool) {
    let span = tracing::info_span!(
        target: "rig::completions",
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = model,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        gen_ai.response.time_to_first_chunk = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let _entered = span.enter();
    if fail {
        span.record("otel.status_code", "error");
        return;
    }
    span.record("gen_ai.response.time_to_first_chunk", 0.05);
    span.record("gen_ai.response.model", format!("{model}-2024").as_str());
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
}

/// A library that sums its usage onto whatever span is current, as rig's
/// agent loop does when it has no span of its own.
fn library_records_on_current(input: u64) {
    Span::current().record("gen_ai.usage.input_tokens", input);
}

struct Reply(u64);

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.0, 1))
    }
}

/// The user's call around the library's: the library's span counts it.
#[llm_call(model = "gpt-4o", provider = "openai")]
fn wrapped_library_call() -> Reply {
    library_chat("gpt-4o", 40, 4, false);
    Reply(40)
}

#[agent_step(agent = "researcher")]
fn research() {
    library_chat("gpt-4o-mini", 10, 2, false);
    library_chat("gpt-4o-mini", 0, 0, true);
    let _ = wrapped_library_call();
    library_records_on_current(999);
}

fn points(
    metrics: &common::Metrics,
    name: &str,
) -> Vec<(std::collections::BTreeMap<String, String>, u64, f64)> {
    let metric = metrics.expect(name);
    match metric.data() {
        opentelemetry_sdk::metrics::data::AggregatedMetrics::F64(
            opentelemetry_sdk::metrics::data::MetricData::Histogram(h),
        ) => h
            .data_points()
            .map(|p| (common::point_attrs(p.attributes()), p.count(), p.sum()))
            .collect(),
        opentelemetry_sdk::metrics::data::AggregatedMetrics::U64(
            opentelemetry_sdk::metrics::data::MetricData::Histogram(h),
        ) => h
            .data_points()
            .map(|p| {
                (
                    common::point_attrs(p.attributes()),
                    p.count(),
                    p.sum() as f64,
                )
            })
            .collect(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_library_call_gets_the_conventions_metrics_once() {
    let h = common::harness();
    h.run(research);
    let metrics = h.metrics();

    let durations = points(&metrics, "gen_ai.client.operation.duration");
    let count = |model: &str, failed: bool| -> u64 {
        durations
            .iter()
            .filter(|(a, _, _)| {
                a.get("gen_ai.request.model").map(String::as_str) == Some(model)
                    && a.contains_key("error.type") == failed
            })
            .map(|(_, n, _)| n)
            .sum()
    };
    assert_eq!(count("gpt-4o-mini", false), 1, "{durations:?}");
    assert_eq!(
        count("gpt-4o-mini", true),
        1,
        "a failed library call counts, as _OTHER"
    );
    assert_eq!(
        count("gpt-4o", false),
        1,
        "the wrapped call once, not twice"
    );
    let failed = durations
        .iter()
        .find(|(a, _, _)| a.contains_key("error.type"))
        .expect("a failed point");
    assert_eq!(failed.0["error.type"], "_OTHER");
    let ok = durations
        .iter()
        .find(|(a, _, _)| {
            a.get("gen_ai.request.model").map(String::as_str) == Some("gpt-4o-mini")
                && !a.contains_key("error.type")
        })
        .expect("the library's call");
    assert_eq!(ok.0["gen_ai.operation.name"], "chat");
    assert_eq!(ok.0["gen_ai.provider.name"], "openai");
    assert_eq!(ok.0["gen_ai.response.model"], "gpt-4o-mini-2024");

    let tokens = points(&metrics, "gen_ai.client.token.usage");
    let input: f64 = tokens
        .iter()
        .filter(|(a, _, _)| a.get("gen_ai.token.type").map(String::as_str) == Some("input"))
        .map(|(_, _, sum)| sum)
        .sum();
    assert_eq!(input, 50.0, "10 + 40, each call once: {tokens:?}");

    let ttfc = points(&metrics, "gen_ai.client.operation.time_to_first_chunk");
    assert_eq!(ttfc.iter().map(|(_, n, _)| n).sum::<u64>(), 2, "{ttfc:?}");

    let spans = h.finished_spans();
    let step = span_named(&spans, "invoke_agent researcher");
    assert_eq!(
        attr(step, "otel_agent.rollup.usage.input_tokens"),
        Some(Value::I64(50)),
        "the step's roll-up counts the library's calls; what the library recorded \
         on the step itself (999) yields to it"
    );
    assert_eq!(attr(step, "gen_ai.usage.input_tokens"), None);
    let sum = common::sum_over_spans(&spans, "gen_ai.usage.input_tokens");
    assert_eq!(sum, 50, "counted once over the trace");
}

#[agent_step(agent = "plain")]
fn library_only_on_the_step() {
    library_records_on_current(77);
}

#[test]
fn usage_a_library_records_on_a_step_span_is_kept_as_its_rollup() {
    let h = common::harness();
    h.run(library_only_on_the_step);
    let spans = h.finished_spans();
    let step = span_named(&spans, "invoke_agent plain");
    assert_eq!(
        attr(step, "otel_agent.rollup.usage.input_tokens"),
        Some(Value::I64(77))
    );
}

#[test]
fn the_console_summary_shows_library_calls_with_model_and_tokens() {
    let h = common::harness_with(|b| b.traces_exporter(ExporterKind::Console));
    h.run(research);
    h.telemetry.force_flush().expect("flush");
    let report = h.telemetry.console_report().expect("console");
    assert!(report.contains("gpt-4o-mini"), "{report}");
    assert!(report.contains("tokens 10 in / 2 out"), "{report}");
}

#[agent_step(agent = "priced")]
fn priced_library_call() {
    library_chat("gpt-4o-mini", 1_000_000, 1_000_000, false);
}

#[test]
fn a_library_call_is_priced_like_ours() {
    use otel_agent_runtime::cost::{Price, PriceTable};
    let table = PriceTable::new().with_model("gpt-4o-mini", Price::new(0.15, 0.6));
    let h = common::harness_with(|b| b.prices(table));
    h.run(priced_library_call);
    let spans = h.finished_spans();
    let chat = span_named(&spans, "chat gpt-4o-mini");
    let Some(Value::F64(cost)) = attr(chat, "otel_agent.cost.usd") else {
        panic!("no cost on the library's span: {:?}", chat.attributes)
    };
    assert!((cost - 0.75).abs() < 1e-9, "{cost}");
    let step = span_named(&spans, "invoke_agent priced");
    let Some(Value::F64(rolled)) = attr(step, "otel_agent.rollup.cost.usd") else {
        panic!("no roll-up cost on the step: {:?}", step.attributes)
    };
    assert!((rolled - 0.75).abs() < 1e-9, "{rolled}");
    assert_eq!(attr(step, "otel_agent.cost.usd"), None);
    let metrics = h.metrics();
    assert!(format!("{:?}", metrics.expect("otel_agent.llm.cost.usd")).contains("0.75"));
}

#[test]
fn a_library_spans_integer_fields_are_exported_as_integers() {
    let h = common::harness();
    h.run(|| {
        let span = tracing::info_span!(
            target: "genai",
            "chat gpt-4o",
            gen_ai.operation.name = "chat",
            gen_ai.request.model = "gpt-4o",
            gen_ai.request.max_tokens = 256_u64,
            server.port = 443_u64,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        span.record("gen_ai.usage.output_tokens", 9_u64);
    });
    let spans = h.finished_spans();
    let chat = span_named(&spans, "chat gpt-4o");
    assert_eq!(
        attr(chat, "gen_ai.request.max_tokens"),
        Some(Value::I64(256))
    );
    assert_eq!(attr(chat, "server.port"), Some(Value::I64(443)));
    assert_eq!(
        attr(chat, "gen_ai.usage.output_tokens"),
        Some(Value::I64(9))
    );
}

/// A framework's tool span: it needs no `#[agent_step(kind = tool)]` for the
/// step metrics (annotating the same tool too would show the call twice).
fn library_tool(name: &'static str, fail: bool) {
    // rig names the tool once the span exists.
    let span = tracing::info_span!(
        target: "rig::tool",
        "execute_tool",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    span.record("gen_ai.tool.name", name);
    let _entered = span.enter();
    if fail {
        span.record("otel.status_code", "error");
    }
}

#[test]
fn a_library_tool_span_gets_the_step_metrics() {
    let h = common::harness();
    h.run(|| {
        library_tool("lookup_order", false);
        library_tool("lookup_order", true);
    });
    let metrics = h.metrics();
    let calls = metrics.expect("otel_agent.step.calls");
    let points: Vec<_> = match calls.data() {
        opentelemetry_sdk::metrics::data::AggregatedMetrics::U64(
            opentelemetry_sdk::metrics::data::MetricData::Sum(sum),
        ) => sum
            .data_points()
            .map(|p| (common::point_attrs(p.attributes()), p.value()))
            .collect(),
        other => panic!("{other:?}"),
    };
    let outcome = |o: &str| {
        points
            .iter()
            .find(|(a, _)| a["otel_agent.step.outcome"] == o)
            .unwrap_or_else(|| panic!("no {o} point: {points:?}"))
    };
    assert_eq!(outcome("success").1, 1);
    assert_eq!(outcome("failure").1, 1);
    assert_eq!(outcome("failure").0["error.type"], "_OTHER");
    assert_eq!(outcome("success").0["otel_agent.step.name"], "lookup_order");
    assert_eq!(
        outcome("success").0["gen_ai.operation.name"],
        "execute_tool"
    );
    let durations = points_of(&metrics, "otel_agent.step.duration");
    assert_eq!(durations, 2);
    let active = metrics.expect("otel_agent.step.active");
    let in_flight: i64 = match active.data() {
        opentelemetry_sdk::metrics::data::AggregatedMetrics::I64(
            opentelemetry_sdk::metrics::data::MetricData::Sum(sum),
        ) => sum.data_points().map(|p| p.value()).sum(),
        other => panic!("{other:?}"),
    };
    assert_eq!(in_flight, 0, "back to none in flight");
}

fn points_of(metrics: &common::Metrics, name: &str) -> u64 {
    points(metrics, name).iter().map(|(_, n, _)| n).sum()
}

/// rig's streamed turn: the span is named by its operation alone, is
/// INTERNAL, records the operation and the usage twice, and a failed call sets
/// only the status.
#[test]
fn a_library_span_is_completed_to_the_conventions_at_export() {
    let h = common::harness();
    h.run(|| {
        for fail in [false, true] {
            let span = tracing::info_span!(
                target: "rig::agent_chat",
                "chat",
                gen_ai.operation.name = tracing::field::Empty,
                gen_ai.request.model = tracing::field::Empty,
                gen_ai.usage.input_tokens = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            span.record("gen_ai.operation.name", "chat");
            span.record("gen_ai.request.model", "gpt-4o-mini");
            span.record("gen_ai.operation.name", "chat");
            span.record("gen_ai.usage.input_tokens", 5_u64);
            span.record("gen_ai.usage.input_tokens", 12_u64);
            if fail {
                span.record("otel.status_code", "error");
            }
        }
        library_tool("lookup_order", false);
    });
    let spans = h.finished_spans();
    let chats: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "chat gpt-4o-mini")
        .collect();
    assert_eq!(
        chats.len(),
        2,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for chat in &chats {
        assert_eq!(chat.span_kind, opentelemetry::trace::SpanKind::Client);
        let keys: Vec<&str> = chat.attributes.iter().map(|kv| kv.key.as_str()).collect();
        for key in ["gen_ai.operation.name", "gen_ai.usage.input_tokens"] {
            assert_eq!(
                keys.iter().filter(|k| **k == key).count(),
                1,
                "{key} once: {keys:?}"
            );
        }
        assert_eq!(
            attr(chat, "gen_ai.usage.input_tokens"),
            Some(Value::I64(12)),
            "the last value"
        );
    }
    let failed = chats
        .iter()
        .find(|s| matches!(s.status, opentelemetry::trace::Status::Error { .. }))
        .expect("the failed call");
    assert_eq!(attr(failed, "error.type"), Some("_OTHER".into()));
    span_named(&spans, "execute_tool lookup_order");
    let metrics = h.metrics();
    let tokens = points(&metrics, "gen_ai.client.token.usage");
    let input: f64 = tokens.iter().map(|(_, _, sum)| sum).sum();
    assert_eq!(input, 24.0, "12 per call, once each: {tokens:?}");
}

#[test]
fn completing_library_spans_can_be_turned_off_for_code_that_records_its_own_metrics() {
    let h = common::harness_with(|b| b.complete_library_spans(false));
    h.run(|| library_chat("gpt-4o-mini", 10, 2, false));
    let metrics = h.metrics();
    assert!(
        metrics
            .get("gen_ai.client.operation.duration")
            .is_none_or(|m| format!("{m:?}").matches("gpt-4o-mini").count() == 0),
        "no metrics derived from the library's span"
    );
    // The span itself still leaves, through the same export guard.
    let spans = h.finished_spans();
    span_named(&spans, "chat gpt-4o-mini");
}

/// The user's `#[llm_call]` inside a library's call span (a custom rig
/// `CompletionModel` whose `completion()` is annotated): ours talks to the
/// provider and counts the call; the library's span, which also records usage,
/// keeps it under the roll-up keys only. Also when the library says its
/// operation only after ours started.
#[test]
fn our_call_inside_a_library_call_is_counted_once_even_when_it_names_itself_late() {
    #[llm_call(model = "gpt-4o", provider = "openai")]
    fn inner(tokens: u64) -> Reply {
        Reply(tokens)
    }
    let h = common::harness();
    h.run(|| {
        for late in [false, true] {
            let span = tracing::info_span!(
                target: "rig::agent_chat",
                "chat",
                gen_ai.operation.name = tracing::field::Empty,
                gen_ai.request.model = "gpt-4o",
                gen_ai.usage.input_tokens = tracing::field::Empty,
            );
            if !late {
                span.record("gen_ai.operation.name", "chat");
            }
            let _entered = span.enter();
            let _ = inner(30);
            if late {
                span.record("gen_ai.operation.name", "chat");
            }
            span.record("gen_ai.usage.input_tokens", 30_u64);
        }
    });
    let spans = h.finished_spans();
    let sum = common::sum_over_spans(&spans, "gen_ai.usage.input_tokens");
    assert_eq!(sum, 60, "each of the two calls once");
    let library: Vec<_> = spans
        .iter()
        .filter(|s| {
            s.instrumentation_scope.name() == "otel-agent"
                && attr(s, "code.module.name").is_some()
                && s.name == "chat gpt-4o"
                && attr(s, "otel_agent.rollup.usage.input_tokens").is_some()
        })
        .collect();
    assert_eq!(
        library.len(),
        2,
        "both library spans keep the figure as a roll-up"
    );
    assert!(spans
        .iter()
        .all(|s| attr(s, "otel_agent.delegated").is_none()));
    let metrics = h.metrics();
    let tokens = points(&metrics, "gen_ai.client.token.usage");
    let input: f64 = tokens
        .iter()
        .filter(|(a, _, _)| a["gen_ai.token.type"] == "input")
        .map(|(_, _, sum)| sum)
        .sum();
    assert_eq!(input, 60.0, "{tokens:?}");
}

/// A provider call other than a chat (rig's rerank) keeps its usage.
#[test]
fn usage_on_a_provider_call_of_another_operation_stays() {
    let h = common::harness();
    h.run(|| {
        let span = tracing::info_span!(
            target: "rig::modalities",
            "rerank",
            gen_ai.operation.name = "rerank",
            gen_ai.request.model = "rerank-v3",
            gen_ai.usage.input_tokens = 7_u64,
        );
        drop(span);
    });
    let spans = h.finished_spans();
    let rerank = span_named(&spans, "rerank rerank-v3");
    assert_eq!(
        attr(rerank, "gen_ai.usage.input_tokens"),
        Some(Value::I64(7))
    );
}
