//! The exporters of this build (OTLP over gRPC or HTTP, or none), and the
//! Tokio runtime the gRPC channel and the Prometheus endpoint run on.

#[cfg(feature = "otlp-http")]
use std::collections::HashMap;
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
use std::time::Duration;

#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
use opentelemetry_sdk::error::OTelSdkResult;
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
use opentelemetry_sdk::trace::SpanData;

#[cfg(not(all(feature = "otlp-grpc", feature = "otlp-http")))]
use crate::config;
use crate::config::{ExporterKind, OtlpSettings, Protocol, Settings};
use crate::error::InitError;

/// A one-thread Tokio runtime owned by the telemetry: the gRPC channel lives on
/// it, so gRPC export works whatever runtime (or none) the program uses, and so
/// does the Prometheus endpoint.
#[cfg(any(feature = "otlp-grpc", feature = "prometheus"))]
pub(super) struct ExportRuntime(Option<tokio::runtime::Runtime>);

/// A build without gRPC and Prometheus runs nothing on Tokio: it has no export
/// runtime.
#[cfg(not(any(feature = "otlp-grpc", feature = "prometheus")))]
pub(super) enum ExportRuntime {}

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
    pub(super) fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle().clone(),
            // Only emptied by `drop`.
            None => unreachable!("the export runtime is running until dropped"),
        }
    }
}

impl ExportRuntime {
    /// The export runtime, when these settings need one: only gRPC export
    /// and the Prometheus endpoint run on Tokio.
    pub(super) fn for_settings(settings: &Settings) -> Result<Option<Self>, InitError> {
        let needs_runtime = (settings.traces == ExporterKind::Otlp
            && settings.traces_otlp.protocol == Protocol::Grpc)
            || (settings.metrics == ExporterKind::Otlp
                && settings.metrics_otlp.protocol == Protocol::Grpc)
            || settings.metrics == ExporterKind::Prometheus;
        #[cfg(any(feature = "otlp-grpc", feature = "prometheus"))]
        if needs_runtime {
            return Self::start().map(Some);
        }
        #[cfg(not(any(feature = "otlp-grpc", feature = "prometheus")))]
        debug_assert!(
            !needs_runtime,
            "resolve() refuses gRPC and Prometheus when their features are off"
        );
        Ok(None)
    }
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
pub(super) type OtlpSpanExporter = opentelemetry_otlp::SpanExporter;
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
pub(super) type OtlpSpanExporter = NoOtlp;

/// The OTLP metric exporter of this build.
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
pub(super) type OtlpMetricExporter = opentelemetry_otlp::MetricExporter;
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
pub(super) type OtlpMetricExporter = NoOtlp;

/// A build without `otlp-grpc` and `otlp-http` has no OTLP exporter: this one
/// cannot exist, and `resolve()` refuses OTLP before any is asked for.
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
#[derive(Debug)]
pub(super) enum NoOtlp {}

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

/// Makes the function that builds one signal's OTLP exporter: both signals
/// build theirs the same way from their settings, only the SDK's builder
/// (`SpanExporter` or `MetricExporter`) differs.
macro_rules! otlp_exporter {
    ($name:ident, $exporter:ident, $output:ty, $signal:literal) => {
        #[cfg_attr(not(feature = "otlp-grpc"), allow(unused_variables))]
        pub(super) fn $name(
            settings: &OtlpSettings,
            runtime: Option<&ExportRuntime>,
        ) -> Result<$output, InitError> {
            #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
            let err = |source| InitError::Exporter {
                signal: $signal,
                source,
            };
            match settings.protocol {
                #[cfg(feature = "otlp-grpc")]
                Protocol::Grpc => {
                    use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
                    let _entered = runtime.and_then(ExportRuntime::enter);
                    let mut b = opentelemetry_otlp::$exporter::builder()
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
                    let mut b = opentelemetry_otlp::$exporter::builder()
                        .with_http()
                        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                        .with_timeout(settings.timeout)
                        .with_headers(headers_map(settings));
                    if let Some(endpoint) = &settings.endpoint {
                        b = b.with_endpoint(endpoint.clone());
                    }
                    b.build().map_err(err)
                }
                // Refused by `resolve()` already; never a panic.
                #[cfg(not(all(feature = "otlp-grpc", feature = "otlp-http")))]
                protocol => Err(config::protocol_not_built(protocol)),
            }
        }
    };
}

otlp_exporter!(span_exporter, SpanExporter, OtlpSpanExporter, "traces");
otlp_exporter!(
    metric_exporter,
    MetricExporter,
    OtlpMetricExporter,
    "metrics"
);

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

/// The endpoint as the warnings show it: the configured URL, or the exporter's
/// default when none is set.
pub(super) fn shown_endpoint(settings: &OtlpSettings, path: &str) -> String {
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
