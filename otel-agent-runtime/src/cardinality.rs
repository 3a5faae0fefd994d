//! One warning per metric whose attribute sets reached the SDK's cardinality
//! limit: past it, new sets are merged into one series marked
//! `otel.metric.overflow=true`, and without a word the dashboards would show
//! one anonymous series where the program had thousands.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;

use crate::export_health::Report;

/// The attribute the SDK puts on the series that absorbs the overflow.
const OVERFLOW_KEY: &str = "otel.metric.overflow";

/// The SDK's limit on attribute sets per metric when no view sets another.
pub(crate) const DEFAULT_CARDINALITY_LIMIT: usize = 2000;

/// A metric exporter that reads what passes through it and reports each
/// metric that overflowed, once.
pub(crate) struct OverflowWatch<E> {
    inner: E,
    limit: usize,
    reported: Mutex<HashSet<String>>,
    report: Report,
}

impl<E: std::fmt::Debug> std::fmt::Debug for OverflowWatch<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverflowWatch")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<E: PushMetricExporter> PushMetricExporter for OverflowWatch<E> {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.check(metrics);
        self.inner.export(metrics)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

impl<E> OverflowWatch<E> {
    pub(crate) fn new(inner: E, limit: usize, report: Report) -> Self {
        Self {
            inner,
            limit,
            reported: Mutex::new(HashSet::new()),
            report,
        }
    }

    /// Reports each metric of `metrics` that has an overflow series and was not
    /// reported before, naming the attribute with the most distinct values.
    pub(crate) fn check(&self, metrics: &ResourceMetrics) {
        for metric in metrics.scope_metrics().flat_map(|scope| scope.metrics()) {
            let sets = attribute_sets(metric);
            if !sets.iter().any(|set| set.iter().any(is_overflow)) {
                continue;
            }
            let Ok(mut reported) = self.reported.lock() else {
                return;
            };
            if !reported.insert(metric.name().to_owned()) {
                continue;
            }
            drop(reported);
            let culprit = widest_attribute(&sets)
                .map(|(key, values)| format!("; `{key}` has {values} distinct values"))
                .unwrap_or_default();
            (self.report)(&format!(
                "otel-agent: metric `{}` reached {} attribute sets{culprit}: further sets are \
                 merged into one series marked `{OVERFLOW_KEY}=true`. Keep run-time ids and \
                 free text out of model, tool, agent and tenant names, or raise the limit with \
                 OTEL_AGENT_METRIC_CARDINALITY_LIMIT",
                metric.name(),
                self.limit,
            ));
        }
    }
}

fn is_overflow(kv: &&KeyValue) -> bool {
    kv.key.as_str() == OVERFLOW_KEY
}

/// The attribute sets of a metric's data points, whatever its kind.
fn attribute_sets(metric: &Metric) -> Vec<Vec<&KeyValue>> {
    macro_rules! sets {
        ($data:expr) => {
            match $data {
                MetricData::Gauge(g) => g.data_points().map(|p| p.attributes().collect()).collect(),
                MetricData::Sum(s) => s.data_points().map(|p| p.attributes().collect()).collect(),
                MetricData::Histogram(h) => {
                    h.data_points().map(|p| p.attributes().collect()).collect()
                }
                MetricData::ExponentialHistogram(h) => {
                    h.data_points().map(|p| p.attributes().collect()).collect()
                }
            }
        };
    }
    match metric.data() {
        AggregatedMetrics::F64(data) => sets!(data),
        AggregatedMetrics::U64(data) => sets!(data),
        AggregatedMetrics::I64(data) => sets!(data),
    }
}

/// The attribute key with the most distinct values among the sets, and that
/// number: the likely cause of the overflow.
fn widest_attribute(sets: &[Vec<&KeyValue>]) -> Option<(String, usize)> {
    let mut values: HashMap<&str, HashSet<String>> = HashMap::new();
    for kv in sets.iter().flatten().filter(|kv| !is_overflow(kv)) {
        values
            .entry(kv.key.as_str())
            .or_default()
            .insert(kv.value.as_str().into_owned());
    }
    values
        .into_iter()
        .map(|(key, distinct)| (key.to_owned(), distinct.len()))
        .filter(|(_, n)| *n > 1)
        .max_by_key(|(key, n)| (*n, std::cmp::Reverse(key.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider;
    use opentelemetry_sdk::metrics::{Instrument, PeriodicReader, SdkMeterProvider, Stream};
    use std::sync::Arc;

    /// Accepts every export and keeps nothing: the watch is what is tested.
    #[derive(Debug)]
    struct Discard;

    impl PushMetricExporter for Discard {
        async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    fn run(limit: usize, models: usize) -> Vec<String> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let report: Report = Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned()));
        let provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(OverflowWatch::new(Discard, limit, report)).build(),
            )
            .with_view(move |_: &Instrument| {
                Stream::builder().with_cardinality_limit(limit).build().ok()
            })
            .build();
        let histogram = provider.meter("t").f64_histogram("calls.duration").build();
        let steady = provider.meter("t").u64_counter("steps").build();
        for model in 0..models {
            let attrs = [
                KeyValue::new("provider", "openai"),
                KeyValue::new("model", format!("m-{model}")),
            ];
            histogram.record(1.0, &attrs);
            steady.add(1, &attrs[..1]);
        }
        provider.force_flush().unwrap();
        provider.force_flush().unwrap();
        let lines = lines.lock().unwrap().clone();
        lines
    }

    #[test]
    fn an_overflowing_metric_is_reported_once_with_the_attribute_to_blame() {
        let lines = run(10, 25);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(
            line.starts_with(
                "otel-agent: metric `calls.duration` reached 10 attribute sets; `model` has"
            ),
            "{line}"
        );
        assert!(
            line.contains("OTEL_AGENT_METRIC_CARDINALITY_LIMIT"),
            "{line}"
        );
    }

    #[test]
    fn metrics_within_their_limit_are_not_reported() {
        assert_eq!(run(10, 5), Vec::<String>::new());
        assert_eq!(run(DEFAULT_CARDINALITY_LIMIT, 1500), Vec::<String>::new());
    }
}
