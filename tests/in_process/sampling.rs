//! Sampling: every `OTEL_TRACES_SAMPLER` value honoured, remote parents
//! respected, metrics complete whatever is sampled out, and a custom sampler that
//! sees the GenAI attributes (and the scope) when it decides.

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::Harness;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporterBuilder, Temporality};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SamplingDecision, SamplingResult, ShouldSample,
    SimpleSpanProcessor,
};
use otel_agent_runtime::propagation::TraceCarrier;
use otel_agent_runtime::{agent_step, context, llm_call, ExporterKind, LlmResponse, Usage};

fn harness_with(
    vars: &[(&str, &str)],
    custom: Option<
        Box<
            dyn FnOnce(
                otel_agent_runtime::TelemetryBuilder,
            ) -> otel_agent_runtime::TelemetryBuilder,
        >,
    >,
) -> Harness {
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporterBuilder::new()
        .with_temporality(Temporality::Cumulative)
        .build();
    let mut builder = otel_agent_runtime::builder()
        .env(vars.iter().copied())
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::None)
        .with_span_processor(SimpleSpanProcessor::new(spans.clone()))
        .with_metric_exporter(metrics.clone());
    if let Some(custom) = custom {
        builder = custom(builder);
    }
    Harness {
        spans,
        metrics,
        telemetry: builder.build().expect("telemetry builds"),
    }
}

#[derive(Debug)]
struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(100, 7))
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn chat() -> Result<Reply, std::io::Error> {
    Ok(Reply)
}

#[agent_step(kind = tool, name = "lookup")]
fn lookup() -> u8 {
    1
}

/// One trace of three spans: the agent, a tool, a model call.
#[agent_step(agent = "planner")]
fn plan() -> u8 {
    lookup() + chat().map(|_| 1).unwrap_or(0)
}

const SPANS_PER_TRACE: usize = 3;

fn step_calls(h: &Harness) -> u64 {
    let metrics = h.metrics();
    let AggregatedMetrics::U64(MetricData::Sum(sum)) =
        metrics.expect("otel_agent.step.calls").data()
    else {
        panic!("a u64 sum")
    };
    sum.data_points().map(|p| p.value()).sum()
}

fn llm_calls_and_tokens(h: &Harness) -> (u64, u64) {
    let metrics = h.metrics();
    let calls = common::f64_histogram_points(metrics.expect("gen_ai.client.operation.duration"))
        .iter()
        .map(|p| p.count())
        .sum();
    let tokens = common::u64_histogram_points(metrics.expect("gen_ai.client.token.usage"))
        .iter()
        .map(|p| p.sum())
        .sum();
    (calls, tokens)
}

#[test]
fn every_sampler_in_the_environment_is_honoured_and_metrics_stay_complete() {
    let cases: &[(&str, Option<&str>, usize)] = &[
        ("always_on", None, 10),
        ("always_off", None, 0),
        ("traceidratio", Some("1.0"), 10),
        ("traceidratio", Some("0.0"), 0),
        ("parentbased_always_on", None, 10),
        ("parentbased_always_off", None, 0),
        ("parentbased_traceidratio", Some("1"), 10),
        ("parentbased_traceidratio", Some("0"), 0),
    ];
    for &(sampler, arg, kept_traces) in cases {
        let mut vars = vec![("OTEL_TRACES_SAMPLER", sampler)];
        if let Some(arg) = arg {
            vars.push(("OTEL_TRACES_SAMPLER_ARG", arg));
        }
        let h = harness_with(&vars, None);
        h.run(|| {
            (0..10).for_each(|_| {
                plan();
            })
        });
        let case = format!("{sampler} {arg:?}");
        assert_eq!(
            h.finished_spans().len(),
            kept_traces * SPANS_PER_TRACE,
            "{case}"
        );
        assert_eq!(step_calls(&h), 20, "{case}: every step counted");
        assert_eq!(
            llm_calls_and_tokens(&h),
            (10, 1070),
            "{case}: every call counted"
        );
    }
}

#[test]
fn a_ratio_keeps_about_that_share_of_traces_and_whole_traces_only() {
    let h = harness_with(
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ],
        None,
    );
    h.run(|| {
        (0..400).for_each(|_| {
            plan();
        })
    });
    let spans = h.finished_spans();
    let mut per_trace: std::collections::HashMap<TraceId, usize> = Default::default();
    for s in &spans {
        *per_trace.entry(s.span_context.trace_id()).or_default() += 1;
    }
    assert!(
        (120..=280).contains(&per_trace.len()),
        "kept {} of 400 traces",
        per_trace.len()
    );
    assert!(
        per_trace.values().all(|&n| n == SPANS_PER_TRACE),
        "no trace is kept in part"
    );
    assert_eq!(step_calls(&h), 800);
}

const SAMPLED_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED_PARENT: &str = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

fn from_remote(traceparent: &str) -> TraceCarrier {
    TraceCarrier {
        traceparent: Some(traceparent.to_owned()),
        ..TraceCarrier::default()
    }
}

#[test]
fn parent_based_samplers_follow_a_remote_parent() {
    for (sampler, parent, kept) in [
        ("parentbased_always_off", SAMPLED_PARENT, SPANS_PER_TRACE),
        ("parentbased_always_off", UNSAMPLED_PARENT, 0),
        ("parentbased_always_on", UNSAMPLED_PARENT, 0),
        ("parentbased_always_on", SAMPLED_PARENT, SPANS_PER_TRACE),
        ("parentbased_traceidratio", SAMPLED_PARENT, SPANS_PER_TRACE),
    ] {
        let vars = [
            ("OTEL_TRACES_SAMPLER", sampler),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ];
        let h = harness_with(&vars, None);
        h.run(|| from_remote(parent).in_scope(plan));
        let spans = h.finished_spans();
        assert_eq!(spans.len(), kept, "{sampler} under {parent}");
        for s in &spans {
            assert_eq!(
                s.span_context.trace_id(),
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
            );
        }
        assert_eq!(step_calls(&h), 2, "{sampler} under {parent}");
    }
}

#[test]
fn an_unsampled_sender_tells_the_receiver_not_to_sample_either() {
    let h = harness_with(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")], None);
    let carrier = h.run(|| {
        #[agent_step(agent = "sender")]
        fn send() -> TraceCarrier {
            TraceCarrier::current()
        }
        send()
    });
    let traceparent = carrier.traceparent.clone().expect("a traceparent");
    assert!(traceparent.ends_with("-00"), "{traceparent}");
    h.run(|| carrier.in_scope(plan));
    assert!(h.finished_spans().is_empty());
    assert_eq!(step_calls(&h), 3);
}

/// What a sampler saw for each span: its name, kind and attributes.
type Seen = Arc<Mutex<Vec<(String, SpanKind, BTreeMap<String, String>)>>>;

/// Records what it is shown; drops the spans of one model, and everything
/// for one tenant (read from the scope's baggage in the parent context).
#[derive(Debug, Clone, Default)]
struct Recording {
    seen: Seen,
}

impl ShouldSample for Recording {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let attrs: BTreeMap<String, String> = attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        let cheap_model =
            attrs.get("gen_ai.request.model").map(String::as_str) == Some("gpt-4o-mini");
        let noisy_tenant = parent_context
            .and_then(|cx| {
                cx.baggage()
                    .get(context::TENANT)
                    .map(|v| v.as_str() == "noisy")
            })
            .unwrap_or(false);
        self.seen
            .lock()
            .unwrap()
            .push((name.to_owned(), span_kind.clone(), attrs));
        SamplingResult {
            decision: if cheap_model || noisy_tenant {
                SamplingDecision::Drop
            } else {
                SamplingDecision::RecordAndSample
            },
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

struct Model {
    name: String,
}

impl Model {
    #[llm_call(model = self.name, provider = "openai", operation = text_completion)]
    fn complete(&self) -> Result<Reply, std::io::Error> {
        Ok(Reply)
    }
}

#[test]
fn a_custom_sampler_sees_the_genai_attributes_when_it_decides() {
    let sampler = Recording::default();
    let seen = sampler.seen.clone();
    // The code's sampler wins over the environment's.
    let h = harness_with(
        &[("OTEL_TRACES_SAMPLER", "always_off")],
        Some(Box::new(move |b| b.with_sampler(sampler))),
    );
    h.run(|| {
        plan();
        Model {
            name: "gpt-4o-mini".into(),
        }
        .complete()
        .unwrap();
        Model { name: "o3".into() }.complete().unwrap();
    });
    let seen = seen.lock().unwrap().clone();
    let find = |name: &str| {
        seen.iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("the sampler never saw {name}: {seen:#?}"))
    };
    let (_, kind, chat) = find("chat gpt-4o");
    assert_eq!(*kind, SpanKind::Client);
    assert_eq!(chat["gen_ai.operation.name"], "chat");
    assert_eq!(chat["gen_ai.provider.name"], "openai");
    assert_eq!(chat["gen_ai.request.model"], "gpt-4o");
    let (_, _, agent) = find("invoke_agent planner");
    assert_eq!(agent["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(agent["gen_ai.agent.name"], "planner");
    let (_, _, tool) = find("execute_tool lookup");
    assert_eq!(tool["gen_ai.tool.name"], "lookup");
    // A model named at run time: the real span name and model, at sampling time.
    let (_, _, mini) = find("text_completion gpt-4o-mini");
    assert_eq!(mini["gen_ai.request.model"], "gpt-4o-mini");
    assert_eq!(mini["gen_ai.operation.name"], "text_completion");

    let kept: Vec<String> = h
        .finished_spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert!(kept.contains(&"text_completion o3".to_owned()), "{kept:?}");
    assert!(
        !kept.contains(&"text_completion gpt-4o-mini".to_owned()),
        "{kept:?}"
    );
    assert_eq!(llm_calls_and_tokens(&h).0, 3, "dropped calls still count");
}

#[test]
fn a_custom_sampler_can_decide_on_the_scope() {
    let h = harness_with(
        &[],
        Some(Box::new(|b| b.with_sampler(Recording::default()))),
    );
    h.run(|| {
        context::scope().tenant("noisy").in_scope(plan);
        context::scope().tenant("acme").in_scope(plan);
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), SPANS_PER_TRACE);
    assert!(spans
        .iter()
        .all(|s| common::attr(s, "otel_agent.tenant") == Some("acme".into())));
    assert_eq!(step_calls(&h), 4);
}

#[test]
fn the_builder_sampler_setting_and_a_standard_sampler_in_code_work_too() {
    let h = harness_with(
        &[("OTEL_TRACES_SAMPLER", "always_on")],
        Some(Box::new(|b| {
            b.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        })),
    );
    h.run(plan);
    assert!(h.finished_spans().is_empty());
    let h = harness_with(
        &[("OTEL_TRACES_SAMPLER", "always_on")],
        Some(Box::new(|b| {
            b.sampler(otel_agent_runtime::SamplerKind::AlwaysOff)
        })),
    );
    h.run(plan);
    assert!(h.finished_spans().is_empty());
    assert_eq!(step_calls(&h), 2);
}
