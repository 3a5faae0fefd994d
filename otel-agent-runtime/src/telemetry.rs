//! Building the pipelines: providers, exporters, the `tracing` layer and the guard
//! that flushes everything at exit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{global, InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::resource::{ResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use tracing_core::Subscriber;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer;

use crate::cardinality::OverflowWatch;
use crate::config::{self, ExporterKind, OtlpSettings, Protocol, SamplerKind, Settings};
use crate::console::ConsoleSink;
use crate::cost::PriceTable;
use crate::error::{InitError, ShutdownError};
use crate::export_guard::ExportGuard;
use crate::export_health::{
    shutdown_summary, stderr_report, CountingMetricExporter, CountingSpanExporter, SignalHealth,
    WatchedProcessor,
};
use crate::layer::InstrumentsLayer;
use crate::metrics::Instruments;
use crate::recording::{CaptureMode, RecordingOptions, RecordingOverrides};
use crate::span_queue::{QueueLimits, SpanQueue, MAX_QUEUE_BYTES};

const SCOPE: &str = "otel-agent";

type ProcessorFactory = Box<dyn FnOnce() -> Box<dyn SpanProcessor>>;
type ReaderInstaller = Box<
    dyn FnOnce(
        opentelemetry_sdk::metrics::MeterProviderBuilder,
        Duration,
    ) -> opentelemetry_sdk::metrics::MeterProviderBuilder,
>;

/// Configures telemetry in code. Start from [`builder()`](crate::builder).
///
/// Values set here win over the environment, as in every OpenTelemetry SDK, except
/// [`default_service_name`](Self::default_service_name), which the environment
/// overrides so that operators can always rename a service.
#[must_use]
pub struct TelemetryBuilder {
    env: Option<HashMap<String, String>>,
    default_service_name: Option<String>,
    resource: Vec<(String, String)>,
    endpoint: Option<String>,
    protocol: Option<Protocol>,
    traces: Option<ExporterKind>,
    metrics: Option<ExporterKind>,
    metric_interval: Option<Duration>,
    sampler: Option<SamplerKind>,
    custom_sampler: Option<Box<dyn opentelemetry_sdk::trace::ShouldSample>>,
    prometheus_address: Option<(String, u16)>,
    shutdown_timeout: Duration,
    processors: Vec<ProcessorFactory>,
    readers: Vec<ReaderInstaller>,
    recording: RecordingOverrides,
    spans_through_tracing_opentelemetry: bool,
}

impl Default for TelemetryBuilder {
    fn default() -> Self {
        Self {
            env: None,
            default_service_name: None,
            resource: Vec::new(),
            endpoint: None,
            protocol: None,
            traces: None,
            metrics: None,
            metric_interval: None,
            sampler: None,
            custom_sampler: None,
            prometheus_address: None,
            shutdown_timeout: Duration::from_secs(5),
            processors: Vec::new(),
            readers: Vec::new(),
            recording: RecordingOverrides::default(),
            spans_through_tracing_opentelemetry: false,
        }
    }
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("default_service_name", &self.default_service_name)
            .field(
                "endpoint",
                &self
                    .endpoint
                    .as_deref()
                    .map(crate::printable::printable_endpoint),
            )
            .field("protocol", &self.protocol)
            .field("traces", &self.traces)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// The service name used when neither `OTEL_SERVICE_NAME` nor `service.name`
    /// in `OTEL_RESOURCE_ATTRIBUTES` gives one.
    pub fn default_service_name(mut self, name: impl Into<String>) -> Self {
        self.default_service_name = Some(name.into());
        self
    }

    /// Adds a resource attribute (the environment's `OTEL_RESOURCE_ATTRIBUTES` win on conflict).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource.push((key.into(), value.into()));
        self
    }

    /// Sends traces and metrics over OTLP to this collector URL, e.g.
    /// `http://localhost:4318` (HTTP) or `http://localhost:4317` (gRPC).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The OTLP protocol (default: `http/protobuf` as the specification says, or
    /// gRPC when the endpoint's port is 4317).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Where spans go.
    pub fn traces_exporter(mut self, kind: ExporterKind) -> Self {
        self.traces = Some(kind);
        self
    }

    /// Where metrics go.
    pub fn metrics_exporter(mut self, kind: ExporterKind) -> Self {
        self.metrics = Some(kind);
        self
    }

    /// How often metrics are exported.
    pub fn metric_export_interval(mut self, interval: Duration) -> Self {
        self.metric_interval = Some(interval);
        self
    }

    /// Which traces are kept.
    pub fn sampler(mut self, sampler: SamplerKind) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Decides which traces are kept with your own sampler, instead of
    /// [`sampler`](Self::sampler) and `OTEL_TRACES_SAMPLER`. It sees each span's
    /// name, kind and the attributes set when the span starts (for the macros'
    /// spans: `gen_ai.operation.name`, `gen_ai.provider.name`,
    /// `gen_ai.request.model`, `gen_ai.agent.name`, ...), and the parent context,
    /// whose baggage holds the [`context`](crate::context) scope. Metrics are
    /// recorded whatever it decides.
    pub fn with_sampler<S: opentelemetry_sdk::trace::ShouldSample + 'static>(
        mut self,
        sampler: S,
    ) -> Self {
        self.custom_sampler = Some(Box::new(sampler));
        self
    }

    /// Where `/metrics` is served when the metrics exporter is
    /// [`ExporterKind::Prometheus`] (default `localhost:9464`, or
    /// `OTEL_EXPORTER_PROMETHEUS_HOST` / `OTEL_EXPORTER_PROMETHEUS_PORT`). Port 0
    /// picks a free port: read it from [`Telemetry::prometheus_addrs`].
    ///
    /// ```no_run
    /// use otel_agent_runtime::ExporterKind;
    ///
    /// let _telemetry = otel_agent_runtime::builder()
    ///     .metrics_exporter(ExporterKind::Prometheus)
    ///     .prometheus_address("0.0.0.0", 9464)
    ///     .init()?;
    /// # Ok::<(), otel_agent_runtime::InitError>(())
    /// ```
    pub fn prometheus_address(mut self, host: impl Into<String>, port: u16) -> Self {
        self.prometheus_address = Some((host.into(), port));
        self
    }

    /// The longest time the flush at shutdown may take (default 5 s), so that an
    /// unreachable collector never holds up the end of the program longer.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Reads configuration from these variables instead of the process
    /// environment (useful in tests).
    pub fn env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Adds a span processor besides the configured exporter, e.g. a
    /// `SimpleSpanProcessor` around an in-memory exporter in tests.
    pub fn with_span_processor<P: SpanProcessor + 'static>(mut self, processor: P) -> Self {
        self.processors.push(Box::new(move || Box::new(processor)));
        self
    }

    /// Adds a metric exporter besides the configured one, read at the export
    /// interval and on [`Telemetry::force_flush`], e.g. an in-memory exporter in tests.
    pub fn with_metric_exporter<E: opentelemetry_sdk::metrics::exporter::PushMetricExporter>(
        mut self,
        exporter: E,
    ) -> Self {
        self.readers.push(Box::new(move |builder, interval| {
            builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(interval)
                    .build(),
            )
        }));
        self
    }

    /// Records prompts and completions where this says (default: the
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` variable, else nowhere).
    pub fn capture_message_content(mut self, mode: CaptureMode) -> Self {
        self.recording.capture = Some(mode);
        self
    }

    /// The largest captured message attribute, in bytes (default 16 KiB, or
    /// `OTEL_AGENT_MAX_CONTENT_BYTES`); longer content is cut, the JSON kept valid.
    pub fn max_content_bytes(mut self, bytes: usize) -> Self {
        self.recording.max_content_bytes = Some(bytes);
        self
    }

    /// Replaces the redaction applied to captured content and error messages
    /// (default: [`content::default_redactor`](crate::content::default_redactor)).
    pub fn redact<F>(mut self, redactor: F) -> Self
    where
        F: Fn(&str) -> std::borrow::Cow<'_, str> + Send + Sync + 'static,
    {
        self.recording.redactor = Some(Arc::new(redactor));
        self
    }

    /// Prices model calls with this table (default: the TOML file named by
    /// `OTEL_AGENT_PRICES_FILE`, else no cost is recorded).
    pub fn prices(mut self, table: PriceTable) -> Self {
        self.recording.prices = Some(table);
        self
    }

    /// Also emits the deprecated `gen_ai.system`, `gen_ai.usage.prompt_tokens` and
    /// `gen_ai.usage.completion_tokens` for older backends (the same as
    /// `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai/dup`).
    pub fn legacy_semconv_names(mut self, enabled: bool) -> Self {
        self.recording.legacy_names = Some(enabled);
        self
    }

    /// Lets `tracing-opentelemetry` build the attributes' spans too, as it
    /// builds every other span (default: off, the runtime builds them itself,
    /// at about half the cost; see `docs/performance.md`).
    ///
    /// Turn it on when code inside annotated functions calls
    /// `tracing_opentelemetry::OpenTelemetrySpanExt` methods (`context()`,
    /// `set_attribute`, `add_event`, `set_parent`) on their spans: those reach
    /// only spans `tracing-opentelemetry` built. [`SpanExt`](crate::SpanExt)
    /// and [`opentelemetry::Context::current`] work either way, and so do
    /// spans created with an explicit `parent:` (a framework's spans under the
    /// attributes' ones stay in the trace in both modes).
    pub fn spans_through_tracing_opentelemetry(mut self, enabled: bool) -> Self {
        self.spans_through_tracing_opentelemetry = enabled;
        self
    }

    /// Which `tracing` events inside spans are exported as span events, in
    /// `EnvFilter` syntax (default `info`, or `OTEL_AGENT_SPAN_EVENTS`):
    /// `"warn"`, `"info,my_agent=debug"`, `"off"`. Libraries log requests and
    /// whole prompts at DEBUG and TRACE; events of the HTTP stacks and of the
    /// exporters are never exported, whatever this says. Spans are not
    /// filtered: every span keeps its place in the trace.
    pub fn span_events(mut self, directives: impl Into<String>) -> Self {
        self.recording.span_events = Some(directives.into());
        self
    }

    /// Whether GenAI spans made by other libraries (rig, genai, your own
    /// `info_span!("chat", gen_ai.operation.name = "chat", ...)`) get the
    /// conventions' metrics, cost and the steps' roll-ups (default: on). Turn it
    /// off when you record those metrics for such spans yourself, so that they
    /// are not counted twice; their spans are still exported, through the same
    /// export guard.
    pub fn complete_library_spans(mut self, enabled: bool) -> Self {
        self.recording.library_spans = Some(enabled);
        self
    }

    /// Puts the tenant (`otel_agent.tenant` baggage) on metrics. Off by default:
    /// every distinct value is a new series in every metric, so allow it only
    /// when tenants are few.
    pub fn tenant_on_metrics(mut self, enabled: bool) -> Self {
        self.recording.tenant_on_metrics = Some(enabled);
        self
    }

    fn settings(&self) -> Result<Settings, InitError> {
        let mut settings = match &self.env {
            Some(map) => Settings::from_env(&|k| map.get(k).cloned())?,
            None => Settings::from_process_env()?,
        };
        if let Some(url) = &self.endpoint {
            config::check_endpoint(url).map_err(|expected| InitError::InvalidSetting {
                setting: "endpoint",
                value: url.clone(),
                expected,
            })?;
            let protocol = self
                .protocol
                .unwrap_or_else(|| config::default_protocol(Some(url)));
            for (otlp, path) in [
                (&mut settings.traces_otlp, "v1/traces"),
                (&mut settings.metrics_otlp, "v1/metrics"),
            ] {
                otlp.protocol = protocol;
                otlp.endpoint = Some(match protocol {
                    Protocol::Grpc => url.clone(),
                    Protocol::HttpProtobuf => format!("{}/{path}", url.trim_end_matches('/')),
                });
            }
            settings.traces = ExporterKind::Otlp;
            settings.metrics = ExporterKind::Otlp;
        } else if let Some(protocol) = self.protocol {
            settings.traces_otlp.protocol = protocol;
            settings.metrics_otlp.protocol = protocol;
        }
        if let Some(kind) = self.traces {
            settings.traces = kind;
        }
        if let Some(kind) = self.metrics {
            settings.metrics = kind;
        }
        config::check_builder_durations(self.metric_interval, self.shutdown_timeout)?;
        if let Some(interval) = self.metric_interval {
            settings.metric_interval = interval;
        }
        if let Some(sampler) = self.sampler {
            settings.sampler = sampler;
        }
        if let Some((host, port)) = &self.prometheus_address {
            settings.prometheus_host =
                config::check_listen_host(host).map_err(|expected| InitError::InvalidSetting {
                    setting: "prometheus_address",
                    value: host.clone(),
                    expected,
                })?;
            settings.prometheus_port = *port;
        }
        if settings.traces == ExporterKind::Prometheus {
            return Err(InitError::InvalidSetting {
                setting: "traces_exporter",
                value: "Prometheus".to_owned(),
                expected: "`Otlp`, `Console` or `None` (Prometheus takes metrics only)".to_owned(),
            });
        }
        if settings.metrics == ExporterKind::Prometheus && !cfg!(feature = "prometheus") {
            return Err(InitError::InvalidSetting {
                setting: "metrics_exporter",
                value: "Prometheus".to_owned(),
                expected: "`Otlp`, `Console` or `None`: `Prometheus` needs otel-agent-runtime's \
                           `prometheus` feature, which this build leaves out"
                    .to_owned(),
            });
        }
        config::check_otlp_built(
            &settings,
            &config::BuilderOtlp {
                traces: self.traces,
                metrics: self.metrics,
                endpoint: self.endpoint.as_deref(),
                protocol: self.protocol,
            },
        )?;
        Ok(settings)
    }

    /// Builds the pipelines without installing anything globally: add
    /// [`Telemetry::layer`] to your own subscriber.
    pub fn build(self) -> Result<Telemetry, InitError> {
        let settings = self.settings()?;
        let mut recording = match &self.env {
            Some(map) => RecordingOptions::resolve(&|k| map.get(k).cloned(), self.recording)?,
            None => RecordingOptions::resolve(&|k| std::env::var(k).ok(), self.recording)?,
        };
        recording.attribute_value_length_limit = settings.attribute_value_length_limit;
        let recording = Arc::new(recording);
        if settings.disabled {
            return Ok(Telemetry::disabled());
        }
        let attrs = config::resource_attributes(
            &settings,
            self.default_service_name.as_deref(),
            &self.resource,
        );
        let resource = Resource::builder_empty()
            .with_attributes(
                TelemetryResourceDetector
                    .detect()
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .with_attributes(attrs.into_iter().map(|(k, v)| KeyValue::new(k, v)))
            .build();

        // Bound before anything starts, so that a taken port fails `init()` cleanly.
        #[cfg(feature = "prometheus")]
        let prometheus = match settings.metrics {
            ExporterKind::Prometheus => Some(crate::prometheus::PrometheusPipeline::bind(
                &settings.prometheus_host,
                settings.prometheus_port,
            )?),
            _ => None,
        };
        // Only gRPC export and the Prometheus endpoint run on Tokio (a build
        // without them has no export runtime).
        #[cfg(any(feature = "otlp-grpc", feature = "prometheus"))]
        let needs_runtime = (settings.traces == ExporterKind::Otlp
            && settings.traces_otlp.protocol == Protocol::Grpc)
            || (settings.metrics == ExporterKind::Otlp
                && settings.metrics_otlp.protocol == Protocol::Grpc)
            || settings.metrics == ExporterKind::Prometheus;
        #[cfg(any(feature = "otlp-grpc", feature = "prometheus"))]
        let export_runtime = if needs_runtime {
            Some(ExportRuntime::start()?)
        } else {
            None
        };
        #[cfg(not(any(feature = "otlp-grpc", feature = "prometheus")))]
        let export_runtime: Option<ExportRuntime> = None;
        let mut health = HealthWatch::default();

        let spans_ended = Arc::new(AtomicU64::new(0));
        let tracer_builder = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(
                self.custom_sampler
                    .unwrap_or_else(|| Box::new(sampler(settings.sampler))),
            );
        let mut exporting: Option<Box<dyn SpanProcessor>> = None;
        let mut console = None;
        match settings.traces {
            ExporterKind::Otlp => {
                let exporter = span_exporter(&settings.traces_otlp, export_runtime.as_ref())?;
                let batch = settings.batch;
                let watch = SignalHealth::traces(
                    shown_endpoint(&settings.traces_otlp, "v1/traces"),
                    settings.traces_otlp.timeout,
                    batch.max_queue_size,
                    batch.max_export_batch_size,
                    stderr_report(),
                );
                let queue = SpanQueue::start(
                    CountingSpanExporter::new(exporter, watch.clone()),
                    QueueLimits {
                        max_spans: batch.max_queue_size,
                        max_bytes: MAX_QUEUE_BYTES,
                        batch: batch.max_export_batch_size,
                        delay: batch.schedule_delay,
                    },
                    {
                        let watch = watch.clone();
                        Box::new(move |_| watch.queue_overflowed())
                    },
                )
                .map_err(InitError::ExportThread)?;
                exporting = Some(Box::new(WatchedProcessor::new(queue, watch.clone())));
                health.traces = Some(watch);
            }
            ExporterKind::Console => {
                let sink = ConsoleSink::default();
                let queue = SpanQueue::start(
                    sink.clone(),
                    QueueLimits {
                        max_spans: settings.batch.max_queue_size,
                        max_bytes: MAX_QUEUE_BYTES,
                        batch: settings.batch.max_export_batch_size,
                        delay: settings.batch.schedule_delay,
                    },
                    {
                        let sink = sink.clone();
                        Box::new(move |n| sink.count_dropped(n))
                    },
                )
                .map_err(InitError::ExportThread)?;
                exporting = Some(Box::new(queue));
                console = Some(sink);
            }
            // Refused by `settings()`.
            ExporterKind::None | ExporterKind::Prometheus => {}
        }
        let tracer_provider = tracer_builder
            .with_span_processor(Processors {
                guard: ExportGuard::new(recording.clone()),
                ended: spans_ended.clone(),
                extra: self
                    .processors
                    .into_iter()
                    .map(|factory| factory())
                    .collect(),
                exporting,
            })
            .build();

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
                let exporter = metric_exporter(&settings.metrics_otlp, export_runtime.as_ref())?;
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
            #[cfg(feature = "prometheus")]
            ExporterKind::Prometheus => {
                if let (Some(prometheus), Some(runtime)) = (prometheus, export_runtime.as_ref()) {
                    meter_builder = meter_builder.with_reader(prometheus.reader);
                    health.prometheus_addrs = prometheus.endpoint.serve(&runtime.handle())?;
                }
            }
            #[cfg(not(feature = "prometheus"))]
            ExporterKind::Prometheus => {}
            ExporterKind::Console => {
                let exporter = opentelemetry_stdout::MetricExporter::default();
                meter_builder = meter_builder.with_reader(
                    PeriodicReader::builder(exporter)
                        .with_interval(settings.metric_interval)
                        .build(),
                );
            }
            ExporterKind::None => {}
        }
        for install in self.readers {
            meter_builder = install(meter_builder, settings.metric_interval);
        }
        let meter_provider = meter_builder.build();
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let instruments = Arc::new(Instruments::new(
            &opentelemetry::metrics::MeterProvider::meter_with_scope(&meter_provider, scope),
        ));
        Ok(Telemetry {
            pipelines: Some(Pipelines {
                tracer_provider,
                meter_provider,
                instruments,
                recording,
                own_spans: !self.spans_through_tracing_opentelemetry,
                console,
                health,
                closed: Arc::default(),
                _export_runtime: export_runtime,
            }),
            spans_ended,
            shutdown_timeout: self.shutdown_timeout,
        })
    }

    /// Builds the pipelines and installs them for the whole process: a global
    /// `tracing` subscriber (with a `RUST_LOG`-filtered log printer when `RUST_LOG`
    /// is set), the W3C trace-context and baggage propagators, and the global
    /// meter provider.
    pub fn init(self) -> Result<Telemetry, InitError> {
        let telemetry = self.build()?;
        let Some(pipelines) = &telemetry.pipelines else {
            return Ok(telemetry);
        };
        let logs = match std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            Some(directives) => {
                let filter = tracing_subscriber::EnvFilter::try_new(&directives).map_err(|e| {
                    InitError::InvalidEnv {
                        var: "RUST_LOG",
                        value: directives.clone(),
                        expected: format!(
                            "tracing filter directives such as `info` or `my_crate=debug` ({e})"
                        ),
                    }
                })?;
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_filter(filter),
                )
            }
            None => None,
        };
        tracing_subscriber::registry()
            .with(telemetry.layer())
            .with(logs)
            .try_init()
            .map_err(|_| InitError::SubscriberAlreadySet)?;
        GLOBAL_SUBSCRIBER_INSTALLED.store(true, Ordering::Relaxed);
        global::set_text_map_propagator(
            opentelemetry::propagation::TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(BaggagePropagator::new()),
            ]),
        );
        global::set_meter_provider(pipelines.meter_provider.clone());
        global::set_tracer_provider(pipelines.tracer_provider.clone());
        Ok(telemetry)
    }
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

/// A one-thread Tokio runtime owned by the telemetry: the gRPC channel lives on
/// it, so gRPC export works whatever runtime (or none) the program uses, and so
/// does the Prometheus endpoint.
#[cfg(any(feature = "otlp-grpc", feature = "prometheus"))]
struct ExportRuntime(Option<tokio::runtime::Runtime>);

/// A build without gRPC and Prometheus runs nothing on Tokio: it has no export
/// runtime.
#[cfg(not(any(feature = "otlp-grpc", feature = "prometheus")))]
enum ExportRuntime {}

#[cfg(any(feature = "otlp-grpc", feature = "prometheus"))]
impl ExportRuntime {
    fn start() -> Result<Self, InitError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otel-agent-export")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(InitError::ExportThread)
    }

    #[cfg(feature = "otlp-grpc")]
    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(tokio::runtime::Runtime::enter)
    }

    #[cfg(feature = "prometheus")]
    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle().clone(),
            // Only emptied by `drop`.
            None => unreachable!("the export runtime is running until dropped"),
        }
    }
}

/// Set once `init()` has installed the global subscriber: from then on every
/// thread without a scoped one has a subscriber.
static GLOBAL_SUBSCRIBER_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether `init()` installed the global `tracing` subscriber.
pub(crate) fn global_subscriber_installed() -> bool {
    GLOBAL_SUBSCRIBER_INSTALLED.load(Ordering::Relaxed)
}

/// The endpoint as the warnings show it: the configured URL, or the exporter's
/// default when none is set.
fn shown_endpoint(settings: &OtlpSettings, path: &str) -> String {
    let Some(endpoint) = &settings.endpoint else {
        return match settings.protocol {
            Protocol::Grpc => "http://localhost:4317".to_owned(),
            Protocol::HttpProtobuf => format!("http://localhost:4318/{path}"),
        };
    };
    // The messages go to terminals and logs: never show credentials put in the
    // URL (`user:secret@host`, or a key in the query).
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return endpoint.clone();
    };
    match (uri.scheme_str(), uri.host()) {
        (Some(scheme), Some(host)) => {
            let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            let path = match uri.path() {
                "/" => "",
                path => path,
            };
            format!("{scheme}://{host}{port}{path}")
        }
        _ => endpoint.clone(),
    }
}

/// The delivery counts of the OTLP exporters, and where `/metrics` is served.
#[derive(Default)]
struct HealthWatch {
    traces: Option<Arc<SignalHealth>>,
    metrics: Option<Arc<SignalHealth>>,
    prometheus_addrs: Vec<SocketAddr>,
}

/// Runs one provider's shutdown on its own thread, so that traces and metrics
/// shut down side by side and the caller can stop waiting at its deadline.
fn shutdown_in_thread(
    shutdown: impl FnOnce() -> OTelSdkResult + Send + 'static,
) -> mpsc::Receiver<OTelSdkResult> {
    let (done, result) = mpsc::channel();
    // If no thread can be started, the receiver reports a disconnection and the
    // provider's own drop shuts it down.
    let _ = std::thread::Builder::new()
        .name("otel-agent-shutdown".to_owned())
        .spawn(move || {
            let _ = done.send(shutdown());
        });
    result
}

#[cfg(any(feature = "otlp-grpc", feature = "prometheus"))]
impl Drop for ExportRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which Tokio forbids inside async code; the
        // guard is often dropped at the end of an async main.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(feature = "otlp-http")]
fn headers_map(settings: &OtlpSettings) -> HashMap<String, String> {
    settings.headers.iter().cloned().collect()
}

/// The OTLP span exporter of this build.
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
type OtlpSpanExporter = opentelemetry_otlp::SpanExporter;
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
type OtlpSpanExporter = NoOtlp;

/// The OTLP metric exporter of this build.
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
type OtlpMetricExporter = opentelemetry_otlp::MetricExporter;
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
type OtlpMetricExporter = NoOtlp;

/// A build without `otlp-grpc` and `otlp-http` has no OTLP exporter: this one
/// cannot exist, and `settings()` refuses OTLP before any is asked for.
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
#[derive(Debug)]
enum NoOtlp {}

#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
impl opentelemetry_sdk::trace::SpanExporter for NoOtlp {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        match *self {}
    }
}

#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for NoOtlp {
    async fn export(
        &self,
        _metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> OTelSdkResult {
        match *self {}
    }

    fn force_flush(&self) -> OTelSdkResult {
        match *self {}
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        match *self {}
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        match *self {}
    }
}

#[cfg_attr(not(feature = "otlp-grpc"), allow(unused_variables))]
fn span_exporter(
    settings: &OtlpSettings,
    runtime: Option<&ExportRuntime>,
) -> Result<OtlpSpanExporter, InitError> {
    #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
    let err = |source| InitError::Exporter {
        signal: "traces",
        source,
    };
    match settings.protocol {
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => {
            use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
            let _entered = runtime.and_then(ExportRuntime::enter);
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_timeout(settings.timeout)
                .with_metadata(metadata(settings));
            if let Some(endpoint) = &settings.endpoint {
                b = b.with_endpoint(endpoint.clone());
            }
            b.build().map_err(err)
        }
        #[cfg(feature = "otlp-http")]
        Protocol::HttpProtobuf => {
            use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(settings.timeout)
                .with_headers(headers_map(settings));
            if let Some(endpoint) = &settings.endpoint {
                b = b.with_endpoint(endpoint.clone());
            }
            b.build().map_err(err)
        }
        // Refused by `settings()` already; never a panic.
        #[cfg(not(all(feature = "otlp-grpc", feature = "otlp-http")))]
        protocol => Err(config::protocol_not_built(protocol)),
    }
}

#[cfg_attr(not(feature = "otlp-grpc"), allow(unused_variables))]
fn metric_exporter(
    settings: &OtlpSettings,
    runtime: Option<&ExportRuntime>,
) -> Result<OtlpMetricExporter, InitError> {
    #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
    let err = |source| InitError::Exporter {
        signal: "metrics",
        source,
    };
    match settings.protocol {
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => {
            use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
            let _entered = runtime.and_then(ExportRuntime::enter);
            let mut b = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_timeout(settings.timeout)
                .with_metadata(metadata(settings));
            if let Some(endpoint) = &settings.endpoint {
                b = b.with_endpoint(endpoint.clone());
            }
            b.build().map_err(err)
        }
        #[cfg(feature = "otlp-http")]
        Protocol::HttpProtobuf => {
            use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
            let mut b = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(settings.timeout)
                .with_headers(headers_map(settings));
            if let Some(endpoint) = &settings.endpoint {
                b = b.with_endpoint(endpoint.clone());
            }
            b.build().map_err(err)
        }
        // Refused by `settings()` already; never a panic.
        #[cfg(not(all(feature = "otlp-grpc", feature = "otlp-http")))]
        protocol => Err(config::protocol_not_built(protocol)),
    }
}

#[cfg(feature = "otlp-grpc")]
fn metadata(settings: &OtlpSettings) -> opentelemetry_otlp::tonic_types::metadata::MetadataMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &settings.headers {
        // Both were validated when the settings were parsed.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers)
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

/// What shutting down needs, shared by the guard and the signal handler:
/// whichever comes first shuts down, and the other waits for it to finish.
#[derive(Clone)]
pub(crate) struct Closer {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    console: Option<ConsoleSink>,
    traces: Option<Arc<SignalHealth>>,
    metrics: Option<Arc<SignalHealth>>,
    timeout: Duration,
    closed: Arc<std::sync::Mutex<bool>>,
}

impl Closer {
    /// Flushes and shuts down, once; `Err` only for what the SDK itself could
    /// not do (see [`Telemetry::shutdown`]).
    pub(crate) fn close(&self) -> Result<(), ShutdownError> {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if *closed {
            return Ok(());
        }
        *closed = true;
        // Traces and metrics flush side by side, and the whole shutdown ends by
        // the deadline even when a collector accepts connections and never
        // answers: what is still in flight then is abandoned (and counted).
        let timeout = self.timeout;
        let deadline = Instant::now() + timeout;
        let tracer_provider = self.tracer_provider.clone();
        let traces = shutdown_in_thread(move || tracer_provider.shutdown_with_timeout(timeout));
        let meter_provider = self.meter_provider.clone();
        let metrics = shutdown_in_thread(move || meter_provider.shutdown_with_timeout(timeout));
        let mut failures = Vec::new();
        for (part, result, watch) in [
            ("traces", traces, self.traces.as_deref()),
            ("metrics", metrics, self.metrics.as_deref()),
        ] {
            let left = deadline.saturating_duration_since(Instant::now());
            let result = result.recv_timeout(left);
            // A backend that was down, slow or refused the data is reported on
            // standard error (the first warning, and the summary below); it is
            // not a failure of the shutdown, which then errs only for what the
            // SDK itself could not do. The SDK's texts are `Debug` dumps: words.
            let reported = watch.is_some_and(|h| h.had_trouble());
            match result {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Timeout) if reported => {}
                Ok(Err(e)) => failures.push((part, crate::error::plain_words(&e))),
                Err(mpsc::RecvTimeoutError::Timeout) => failures.push((
                    part,
                    format!(
                        "not finished within the {} shutdown timeout",
                        crate::export_health::secs(timeout)
                    ),
                )),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    failures.push((part, "the shutdown thread could not start".to_owned()))
                }
            }
        }
        if let Some(console) = &self.console {
            eprint!("{}", console.render());
        }
        if let Some(line) =
            shutdown_summary(self.traces.as_deref(), self.metrics.as_deref(), timeout)
        {
            eprintln!("{line}");
        }
        ShutdownError::new(failures).map_or(Ok(()), Err)
    }
}

impl Pipelines {
    fn closer(&self, timeout: Duration) -> Closer {
        Closer {
            tracer_provider: self.tracer_provider.clone(),
            meter_provider: self.meter_provider.clone(),
            console: self.console.clone(),
            traces: self.health.traces.clone(),
            metrics: self.health.metrics.clone(),
            timeout,
            closed: self.closed.clone(),
        }
    }
}

struct Pipelines {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    instruments: Arc<Instruments>,
    recording: Arc<RecordingOptions>,
    console: Option<ConsoleSink>,
    /// Whether the runtime builds the attributes' spans itself.
    own_spans: bool,
    health: HealthWatch,
    /// Set by the first shutdown, whoever does it (see [`Closer`]).
    closed: Arc<std::sync::Mutex<bool>>,
    // Only held, and declared last: dropped after the providers that export through it.
    _export_runtime: Option<ExportRuntime>,
}

/// The running telemetry. Keep it alive for the life of the program: dropping it
/// flushes every buffered span and metric and shuts the exporters down (within the
/// shutdown timeout), then prints the console report when that is the exporter.
#[must_use = "dropping the guard shuts telemetry down at once"]
pub struct Telemetry {
    pipelines: Option<Pipelines>,
    spans_ended: Arc<AtomicU64>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.is_enabled())
            .field("spans_ended", &self.spans_ended())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    fn disabled() -> Self {
        Self {
            pipelines: None,
            spans_ended: Arc::new(AtomicU64::new(0)),
            shutdown_timeout: Duration::ZERO,
        }
    }

    /// False when `OTEL_SDK_DISABLED=true`: nothing is recorded.
    pub fn is_enabled(&self) -> bool {
        self.pipelines.is_some()
    }

    /// The spans that ended and were sampled in so far.
    pub fn spans_ended(&self) -> u64 {
        self.spans_ended.load(Ordering::Relaxed)
    }

    /// The addresses `/metrics` is served on, when the metrics exporter is
    /// [`ExporterKind::Prometheus`]; empty otherwise.
    pub fn prometheus_addrs(&self) -> &[SocketAddr] {
        self.pipelines
            .as_ref()
            .map_or(&[], |p| p.health.prometheus_addrs.as_slice())
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans and lets the
    /// macros record metrics. Add it to a subscriber you build yourself:
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    ///
    /// let telemetry = otel_agent_runtime::builder().build()?;
    /// tracing_subscriber::registry()
    ///     .with(telemetry.layer())
    ///     .with(tracing_subscriber::fmt::layer())
    ///     .init();
    /// # Ok::<(), otel_agent_runtime::InitError>(())
    /// ```
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        self.pipelines.as_ref().map(|p| {
            let tracer = p.tracer_provider.tracer_with_scope(
                InstrumentationScope::builder(SCOPE)
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build(),
            );
            let users = tracing_opentelemetry::layer()
                .with_tracer(tracer.clone())
                .with_level(false)
                .with_target(false);
            // The attributes' own spans bypass the filter (it lets every span
            // through, and they are built by the bridge); every event and
            // every other span passes it.
            let filtered = crate::bridge::OwnSpanEvents::new(users, p.own_spans)
                .with_filter(p.recording.span_events.filter());
            if p.recording.capture.any() {
                crate::recording::note_capture_somewhere();
            }
            let instruments = InstrumentsLayer {
                instruments: p.instruments.clone(),
                options: p.recording.clone(),
            };
            crate::bridge::Bridge::new(filtered, tracer, p.own_spans, instruments.clone())
                .and_then(instruments)
        })
    }

    /// Exports everything buffered now; `Err` when that export failed.
    pub fn force_flush(&self) -> Result<(), ShutdownError> {
        let Some(p) = &self.pipelines else {
            return Ok(());
        };
        // A flush is asked for to deliver now, so a delivery failure is its
        // error here (unlike at shutdown), said in words rather than the SDK's
        // nested `Debug` text.
        let mut failures = Vec::new();
        if let Err(e) = p.tracer_provider.force_flush() {
            failures.push((
                "traces",
                crate::export_health::flush_failure(p.health.traces.as_deref(), &e),
            ));
        }
        if let Err(e) = p.meter_provider.force_flush() {
            failures.push((
                "metrics",
                crate::export_health::flush_failure(p.health.metrics.as_deref(), &e),
            ));
        }
        ShutdownError::flush(failures).map_or(Ok(()), Err)
    }

    /// Flushes and shuts down. `Err` only for what the SDK itself could not do:
    /// a collector that was down, slow or refused the data has already been
    /// reported on standard error, and is not a failure of the shutdown. The
    /// console report, if that is the exporter, is printed to standard error.
    pub fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<(), ShutdownError> {
        let Some(p) = self.pipelines.take() else {
            return Ok(());
        };
        let result = p.closer(self.shutdown_timeout).close();
        drop(p);
        result
    }

    /// On the first SIGTERM or SIGINT (Ctrl-C), flushes and shuts the
    /// telemetry down as dropping this guard would, then ends the process with
    /// the status the signal would have given (143 or 130). Without it, a
    /// signal ends the program at once and whatever was not exported yet (the
    /// last spans, and all metrics since the last interval) is lost.
    ///
    /// ```no_run
    /// let _telemetry = otel_agent_runtime::init()?.flush_on_signal()?;
    /// # Ok::<(), otel_agent_runtime::InitError>(())
    /// ```
    ///
    /// It takes the signals for the whole process: a program that handles
    /// them itself (a server's graceful shutdown) should instead end its main
    /// work on [`shutdown_signal`](crate::shutdown_signal) and let the guard
    /// drop. Needs the `tokio` feature (on by default).
    #[cfg(feature = "tokio")]
    pub fn flush_on_signal(self) -> Result<Self, InitError> {
        if let Some(p) = &self.pipelines {
            crate::signal::exit_after_flush(p.closer(self.shutdown_timeout))
                .map_err(InitError::ExportThread)?;
        }
        Ok(self)
    }

    /// The console report so far (trace tree and run summary), when the console is
    /// the traces exporter. Call [`force_flush`](Self::force_flush) first.
    pub fn console_report(&self) -> Option<String> {
        self.pipelines
            .as_ref()?
            .console
            .as_ref()
            .map(ConsoleSink::render)
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_inner() {
            eprintln!("otel-agent: {e}");
        }
    }
}
