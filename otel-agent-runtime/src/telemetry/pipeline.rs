//! The pipelines, built from one resolved configuration: the resource, the
//! tracer provider with its processors (export guard first, then the console
//! or the span queue and OTLP exporter), the meter provider with its readers,
//! and the instruments.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{MeterProviderBuilder, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::resource::{ResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, ShouldSample, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

use super::exporters::{metric_exporter, shown_endpoint, span_exporter, ExportRuntime};
use super::SCOPE;
use crate::cardinality::OverflowWatch;
use crate::config::{self, ExporterKind, SamplerKind, Settings};
use crate::console::ConsoleSink;
use crate::error::InitError;
use crate::export_guard::ExportGuard;
use crate::export_health::{
    stderr_report, CountingMetricExporter, CountingSpanExporter, SignalHealth, WatchedProcessor,
};
use crate::metrics::Instruments;
use crate::recording::RecordingOptions;
use crate::span_queue::{QueueLimits, SpanQueue, MAX_QUEUE_BYTES};

/// A span processor the user added, made when the pipeline starts.
pub(super) type ProcessorFactory = Box<dyn FnOnce() -> Box<dyn SpanProcessor>>;
/// A metric reader the user added, installed with the export interval.
pub(super) type ReaderInstaller =
    Box<dyn FnOnce(MeterProviderBuilder, Duration) -> MeterProviderBuilder>;

/// What the builder was given in code that is not configuration: parts of
/// the pipeline itself.
pub(super) struct InCode {
    pub default_service_name: Option<String>,
    pub resource: Vec<(String, String)>,
    pub sampler: Option<Box<dyn ShouldSample>>,
    pub processors: Vec<ProcessorFactory>,
    pub readers: Vec<ReaderInstaller>,
    /// Whether the runtime builds the attributes' spans itself.
    pub own_spans: bool,
}

/// The delivery counts of the OTLP exporters, and where `/metrics` is served.
#[derive(Default)]
pub(super) struct HealthWatch {
    pub traces: Option<Arc<SignalHealth>>,
    pub metrics: Option<Arc<SignalHealth>>,
    pub prometheus_addrs: Vec<SocketAddr>,
}

/// Both providers and what the layer and the shutdown need of them.
pub(super) struct Pipelines {
    pub tracer_provider: SdkTracerProvider,
    pub meter_provider: SdkMeterProvider,
    pub instruments: Arc<Instruments>,
    pub recording: Arc<RecordingOptions>,
    pub console: Option<ConsoleSink>,
    /// Whether the runtime builds the attributes' spans itself.
    pub own_spans: bool,
    pub health: HealthWatch,
    /// Set by the first shutdown, whoever does it (see `handle::Closer`).
    pub closed: Arc<std::sync::Mutex<bool>>,
    // Only held, and declared last: dropped after the providers that export through it.
    pub _export_runtime: Option<ExportRuntime>,
}

impl Pipelines {
    /// Starts the pipelines `settings` and `recording` describe; `spans_ended` counts the
    /// spans that end.
    pub(super) fn start(
        settings: Settings,
        recording: RecordingOptions,
        in_code: InCode,
        spans_ended: Arc<AtomicU64>,
    ) -> Result<Self, InitError> {
        let recording = Arc::new(recording);
        let resource = resource(&settings, &in_code);
        // Bound before anything starts, so that a taken port fails `init()` cleanly.
        #[cfg(feature = "prometheus")]
        let prometheus = match settings.metrics {
            ExporterKind::Prometheus => Some(crate::prometheus::PrometheusPipeline::bind(
                &settings.prometheus_host,
                settings.prometheus_port,
            )?),
            _ => None,
        };
        let export_runtime = ExportRuntime::for_settings(&settings)?;
        let mut health = HealthWatch::default();
        let SpanExport { exporting, console } =
            span_export(&settings, export_runtime.as_ref(), &mut health)?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(
                in_code
                    .sampler
                    .unwrap_or_else(|| Box::new(sampler(settings.sampler))),
            )
            .with_span_processor(Processors {
                guard: ExportGuard::new(recording.clone()),
                ended: spans_ended,
                extra: in_code
                    .processors
                    .into_iter()
                    .map(|factory| factory())
                    .collect(),
                exporting,
            })
            .build();

        let mut meter_builder =
            metric_readers(&settings, export_runtime.as_ref(), &mut health, resource)?;
        #[cfg(feature = "prometheus")]
        if let (Some(prometheus), Some(runtime)) = (prometheus, export_runtime.as_ref()) {
            meter_builder = meter_builder.with_reader(prometheus.reader);
            health.prometheus_addrs = prometheus.endpoint.serve(&runtime.handle())?;
        }
        for install in in_code.readers {
            meter_builder = install(meter_builder, settings.metric_interval);
        }
        let meter_provider = meter_builder.build();
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let instruments = Arc::new(Instruments::new(
            &opentelemetry::metrics::MeterProvider::meter_with_scope(&meter_provider, scope),
        ));
        Ok(Pipelines {
            tracer_provider,
            meter_provider,
            instruments,
            recording,
            own_spans: in_code.own_spans,
            console,
            health,
            closed: Arc::default(),
            _export_runtime: export_runtime,
        })
    }
}

/// The resource: what the SDK detects, then the environment's and the
/// builder's attributes and service name.
fn resource(settings: &Settings, in_code: &InCode) -> Resource {
    let attrs = config::resource_attributes(
        settings,
        in_code.default_service_name.as_deref(),
        &in_code.resource,
    );
    Resource::builder_empty()
        .with_attributes(
            TelemetryResourceDetector
                .detect()
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .with_attributes(attrs.into_iter().map(|(k, v)| KeyValue::new(k, v)))
        .build()
}

/// The processor that exports finished spans, and the console's sink when
/// the console is the exporter.
struct SpanExport {
    exporting: Option<Box<dyn SpanProcessor>>,
    console: Option<ConsoleSink>,
}

/// Where finished spans go: through the span queue to OTLP, or to the
/// console; with the console's sink when that is the exporter.
fn span_export(
    settings: &Settings,
    export_runtime: Option<&ExportRuntime>,
    health: &mut HealthWatch,
) -> Result<SpanExport, InitError> {
    let limits = QueueLimits {
        max_spans: settings.batch.max_queue_size,
        max_bytes: MAX_QUEUE_BYTES,
        batch: settings.batch.max_export_batch_size,
        delay: settings.batch.schedule_delay,
    };
    match settings.traces {
        ExporterKind::Otlp => {
            let exporter = span_exporter(&settings.traces_otlp, export_runtime)?;
            let watch = SignalHealth::traces(
                shown_endpoint(&settings.traces_otlp, "v1/traces"),
                settings.traces_otlp.timeout,
                settings.batch.max_queue_size,
                settings.batch.max_export_batch_size,
                stderr_report(),
            );
            let queue = SpanQueue::start(
                CountingSpanExporter::new(exporter, watch.clone()),
                limits,
                {
                    let watch = watch.clone();
                    Box::new(move |_| watch.queue_overflowed())
                },
            )
            .map_err(InitError::ExportThread)?;
            health.traces = Some(watch.clone());
            Ok(SpanExport {
                exporting: Some(Box::new(WatchedProcessor::new(queue, watch))),
                console: None,
            })
        }
        ExporterKind::Console => {
            let sink = ConsoleSink::default();
            let queue = SpanQueue::start(sink.clone(), limits, {
                let sink = sink.clone();
                Box::new(move |n| sink.count_dropped(n))
            })
            .map_err(InitError::ExportThread)?;
            Ok(SpanExport {
                exporting: Some(Box::new(queue)),
                console: Some(sink),
            })
        }
        // Refused when the settings were resolved.
        ExporterKind::None | ExporterKind::Prometheus => Ok(SpanExport {
            exporting: None,
            console: None,
        }),
    }
}

/// The meter provider's builder with its push reader (OTLP or console), the
/// cardinality limit and the resource; Prometheus's pull reader is added by
/// the caller, which bound its port first.
fn metric_readers(
    settings: &Settings,
    export_runtime: Option<&ExportRuntime>,
    health: &mut HealthWatch,
    resource: Resource,
) -> Result<MeterProviderBuilder, InitError> {
    let mut meter_builder = SdkMeterProvider::builder().with_resource(resource);
    let cardinality_limit = settings.metric_cardinality_limit;
    if cardinality_limit != crate::cardinality::DEFAULT_CARDINALITY_LIMIT {
        // A stream with no aggregation keeps each instrument's own buckets.
        meter_builder =
            meter_builder.with_view(move |_: &opentelemetry_sdk::metrics::Instrument| {
                opentelemetry_sdk::metrics::Stream::builder()
                    .with_cardinality_limit(cardinality_limit)
                    .build()
                    .ok()
            });
    }
    match settings.metrics {
        ExporterKind::Otlp => {
            let exporter = metric_exporter(&settings.metrics_otlp, export_runtime)?;
            let watch = SignalHealth::metrics(
                shown_endpoint(&settings.metrics_otlp, "v1/metrics"),
                settings.metrics_otlp.timeout,
                stderr_report(),
            );
            meter_builder = meter_builder.with_reader(
                PeriodicReader::builder(OverflowWatch::new(
                    CountingMetricExporter::new(exporter, watch.clone()),
                    cardinality_limit,
                    stderr_report(),
                ))
                .with_interval(settings.metric_interval)
                .build(),
            );
            health.metrics = Some(watch);
        }
        ExporterKind::Console => {
            let exporter = opentelemetry_stdout::MetricExporter::default();
            meter_builder = meter_builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(settings.metric_interval)
                    .build(),
            );
        }
        ExporterKind::Prometheus | ExporterKind::None => {}
    }
    Ok(meter_builder)
}

fn sampler(kind: SamplerKind) -> Sampler {
    match kind {
        SamplerKind::AlwaysOn => Sampler::AlwaysOn,
        SamplerKind::AlwaysOff => Sampler::AlwaysOff,
        SamplerKind::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        SamplerKind::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerKind::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerKind::ParentBasedTraceIdRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    }
}

/// Runs every step (all processors flush or shut down, even after one fails) and
/// reports the first failure.
fn first_error(results: impl Iterator<Item = OTelSdkResult>) -> OTelSdkResult {
    let mut first = Ok(());
    for result in results {
        if first.is_ok() {
            first = result;
        }
    }
    first
}

/// Every span processor of a pipeline, as the one the SDK sees.
///
/// The SDK clones a finished span's data for each processor it has, even the
/// last; with this single one, the data is cloned only for extra processors a
/// user adds before the last one, and moved into the last.
#[derive(Debug)]
struct Processors {
    /// What of a span may leave the process, decided before any processor.
    guard: ExportGuard,
    /// Spans that ended and were sampled in: `Telemetry::spans_ended`.
    ended: Arc<AtomicU64>,
    extra: Vec<Box<dyn SpanProcessor>>,
    exporting: Option<Box<dyn SpanProcessor>>,
}

impl Processors {
    fn all(&self) -> impl Iterator<Item = &dyn SpanProcessor> {
        self.extra
            .iter()
            .chain(self.exporting.as_ref())
            .map(|p| &**p)
    }
}

impl SpanProcessor for Processors {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        crate::context::ScopeAttributes.on_start(span, cx);
        for processor in self.all() {
            processor.on_start(span, cx);
        }
    }

    fn on_end(&self, mut span: SpanData) {
        self.ended.fetch_add(1, Ordering::Relaxed);
        self.guard.apply(&mut span);
        // Every processor but the last gets a copy; the last gets the span.
        let mut all = self.all();
        let Some(mut current) = all.next() else {
            return;
        };
        for next in all {
            current.on_end(span.clone());
            current = next;
        }
        current.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        first_error(self.all().map(|p| p.force_flush()))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        first_error(self.all().map(|p| p.shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, resource: &Resource) {
        for processor in self.extra.iter_mut().chain(self.exporting.as_mut()) {
            processor.set_resource(resource);
        }
    }
}
