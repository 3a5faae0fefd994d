//! The builder: what the program sets in code, resolved with the environment
//! into one [`Resolved`] value in [`TelemetryBuilder::resolve`], the only
//! place configuration is read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::global;
use opentelemetry_sdk::metrics::PeriodicReader;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SpanProcessor;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer;

use super::handle::Telemetry;
use super::pipeline::{InCode, Pipelines, ProcessorFactory, ReaderInstaller};
use super::GLOBAL_SUBSCRIBER_INSTALLED;
use crate::config::{self, ExporterKind, Protocol, SamplerKind, Settings};
use crate::cost::PriceTable;
use crate::error::InitError;
use crate::recording::{CaptureMode, RecordingOptions, RecordingOverrides};

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

    /// Reads the environment (or the map given to [`env`](Self::env)) once and
    /// applies what was set in code over it: the one configuration the
    /// pipelines are built from.
    fn resolve(&mut self) -> Result<Resolved, InitError> {
        let overrides = std::mem::take(&mut self.recording);
        let map = self.env.as_ref();
        if map.is_none() {
            config::check_unicode(std::env::vars_os())?;
        }
        let lookup = |var: &str| match map {
            Some(map) => map.get(var).cloned(),
            None => std::env::var(var).ok(),
        };
        let mut settings = Settings::from_env(&lookup)?;
        let mut recording = RecordingOptions::resolve(&lookup, overrides)?;
        recording.attribute_value_length_limit = settings.attribute_value_length_limit;
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
        Ok(Resolved {
            settings,
            recording,
        })
    }

    /// Builds the pipelines without installing anything globally: add
    /// [`Telemetry::layer`] to your own subscriber.
    pub fn build(mut self) -> Result<Telemetry, InitError> {
        let resolved = self.resolve()?;
        if resolved.settings.disabled {
            return Ok(Telemetry::disabled());
        }
        let spans_ended = Arc::new(AtomicU64::new(0));
        let in_code = InCode {
            default_service_name: self.default_service_name,
            resource: self.resource,
            sampler: self.custom_sampler,
            processors: self.processors,
            readers: self.readers,
            own_spans: !self.spans_through_tracing_opentelemetry,
        };
        let Resolved {
            settings,
            recording,
        } = resolved;
        let pipelines = Pipelines::start(settings, recording, in_code, spans_ended.clone())?;
        Ok(Telemetry::running(
            pipelines,
            spans_ended,
            self.shutdown_timeout,
        ))
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

/// The configuration the pipelines are built from: environment and builder,
/// resolved.
struct Resolved {
    pub settings: Settings,
    pub recording: RecordingOptions,
}
