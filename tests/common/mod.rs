//! A telemetry pipeline with in-memory exporters, scoped to one test.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, HistogramDataPoint, Metric, MetricData};
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, InMemoryMetricExporterBuilder, Temporality,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor, SpanData};
use otel_agent_runtime::{ExporterKind, Telemetry, TelemetryBuilder};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt as _;

pub struct Metrics(pub Vec<opentelemetry_sdk::metrics::data::ResourceMetrics>);

impl Metrics {
    /// The latest export of the metric (exports are cumulative).
    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.0
            .iter()
            .rev()
            .flat_map(|rm| {
                rm.scope_metrics()
                    .flat_map(|sm| sm.metrics())
                    .collect::<Vec<_>>()
            })
            .find(|m| m.name() == name)
    }

    pub fn expect(&self, name: &str) -> &Metric {
        self.get(name).unwrap_or_else(|| panic!("no metric {name}"))
    }
}

pub struct Harness {
    pub spans: InMemorySpanExporter,
    pub metrics: InMemoryMetricExporter,
    pub telemetry: Telemetry,
}

/// Telemetry that exports to memory only, ignoring the process environment.
pub fn harness() -> Harness {
    harness_with(|builder| builder)
}

/// The same, with more settings; later settings win over the defaults here.
pub fn harness_with(configure: impl FnOnce(TelemetryBuilder) -> TelemetryBuilder) -> Harness {
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporterBuilder::new()
        .with_temporality(Temporality::Cumulative)
        .build();
    let builder = otel_agent_runtime::builder()
        .env(Vec::<(String, String)>::new())
        .default_service_name("test-service")
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::None)
        .with_span_processor(SimpleSpanProcessor::new(spans.clone()))
        .with_metric_exporter(metrics.clone());
    let telemetry = configure(builder).build().expect("telemetry builds");
    Harness {
        spans,
        metrics,
        telemetry,
    }
}

impl Harness {
    /// Runs `f` with this pipeline as the thread's subscriber.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let subscriber = tracing_subscriber::registry().with(self.telemetry.layer());
        tracing::subscriber::with_default(subscriber, f)
    }

    /// Runs a future to completion on a current-thread runtime under this pipeline.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(future)
        })
    }

    pub fn finished_spans(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().expect("spans")
    }

    /// The exported metrics after a flush.
    pub fn metrics(&self) -> Metrics {
        self.telemetry.force_flush().expect("flush");
        Metrics(self.metrics.get_finished_metrics().expect("metrics"))
    }
}

fn value_json(v: &OtelValue) -> Value {
    match v {
        OtelValue::Bool(b) => json!(b),
        OtelValue::I64(i) => json!(i),
        OtelValue::F64(f) => json!(f),
        OtelValue::String(s) => json!(s.as_str()),
        OtelValue::Array(a) => json!(a.to_string()),
        _ => json!(v.to_string()),
    }
}

/// Attributes whose values differ run to run.
const VOLATILE: &[&str] = &[
    "busy_ns",
    "idle_ns",
    "thread.id",
    "thread.name",
    "code.line.number",
    "code.file.path",
];

fn span_json(span: &SpanData, children: &HashMap<SpanId, Vec<&SpanData>>) -> Value {
    let attrs: BTreeMap<String, Value> = span
        .attributes
        .iter()
        .filter(|kv| !VOLATILE.contains(&kv.key.as_str()))
        .map(|kv| (kv.key.to_string(), value_json(&kv.value)))
        .collect();
    let kind = match span.span_kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    };
    let status = match &span.status {
        Status::Unset => json!("unset"),
        Status::Ok => json!("ok"),
        Status::Error { description } => json!({ "error": description.to_string() }),
    };
    let kids: Vec<Value> = children
        .get(&span.span_context.span_id())
        .map(|v| v.iter().map(|c| span_json(c, children)).collect())
        .unwrap_or_default();
    let mut node = json!({ "name": span.name.to_string(), "kind": kind, "status": status, "attributes": attrs });
    if !kids.is_empty() {
        node["children"] = json!(kids);
    }
    node
}

/// The finished spans as trees (roots first, children by start time), with ids
/// and times left out so that snapshots are stable.
pub fn span_trees(spans: &[SpanData]) -> Value {
    let ids: std::collections::HashSet<SpanId> =
        spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut sorted: Vec<&SpanData> = spans.iter().collect();
    sorted.sort_by_key(|s| s.start_time);
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    let mut roots = Vec::new();
    for span in sorted {
        if ids.contains(&span.parent_span_id) {
            children.entry(span.parent_span_id).or_default().push(span);
        } else {
            roots.push(span);
        }
    }
    json!(roots
        .iter()
        .map(|r| span_json(r, &children))
        .collect::<Vec<_>>())
}

pub fn span_named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span named {name}"))
}

pub fn attr(span: &SpanData, key: &str) -> Option<OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// The sum of an integer attribute over every span that has it: what a
/// backend totals for a trace.
pub fn sum_over_spans(spans: &[SpanData], key: &str) -> i64 {
    spans
        .iter()
        .filter_map(|s| match attr(s, key) {
            Some(OtelValue::I64(n)) => Some(n),
            _ => None,
        })
        .sum()
}

/// Attribute sets of a metric's data points, with their values rendered.
pub fn point_attrs<'a>(
    attrs: impl Iterator<Item = &'a opentelemetry::KeyValue>,
) -> BTreeMap<String, String> {
    attrs
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

pub fn f64_histogram_points(metric: &Metric) -> Vec<&HistogramDataPoint<f64>> {
    match metric.data() {
        AggregatedMetrics::F64(MetricData::Histogram(h)) => h.data_points().collect(),
        other => panic!("{} is not an f64 histogram: {other:?}", metric.name()),
    }
}

pub fn u64_histogram_points(metric: &Metric) -> Vec<&HistogramDataPoint<u64>> {
    match metric.data() {
        AggregatedMetrics::U64(MetricData::Histogram(h)) => h.data_points().collect(),
        other => panic!("{} is not a u64 histogram: {other:?}", metric.name()),
    }
}

/// Returns `Pending` once, so that the caller is suspended and resumed.
pub async fn suspend() {
    let mut first = true;
    std::future::poll_fn(|cx| {
        if std::mem::take(&mut first) {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
}
