//! Errors at the API edge: what `init()` and `shutdown()` can report.

use std::fmt;

/// Why telemetry could not be set up.
///
/// Every variant names what to change: the environment variable and the value it
/// expects, or the builder call that conflicts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// An `OTEL_*` environment variable holds a value that cannot be used.
    #[error("{var}={value:?} is not valid: expected {expected}")]
    InvalidEnv {
        /// The variable, e.g. `OTEL_EXPORTER_OTLP_PROTOCOL`.
        var: &'static str,
        /// The value found.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// A value given to the builder cannot be used.
    #[error("invalid {setting} {value:?}: expected {expected}")]
    InvalidSetting {
        /// The builder setting, e.g. `endpoint`.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// The OTLP exporter could not be built from an otherwise valid configuration.
    #[error("could not build the OTLP {signal} exporter: {source}")]
    Exporter {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// What the exporter reported.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The Prometheus endpoint could not listen on its address (most often: the
    /// port is taken by another process).
    #[error(
        "cannot serve Prometheus metrics on {address}: {source}; choose a free address with \
         OTEL_EXPORTER_PROMETHEUS_HOST / OTEL_EXPORTER_PROMETHEUS_PORT (or the builder's \
         `prometheus_address`)"
    )]
    PrometheusBind {
        /// The address asked for, `host:port`.
        address: String,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The background runtime that drives gRPC exports could not start.
    #[error("could not start the export thread: {0}")]
    ExportThread(#[source] std::io::Error),
    /// A global `tracing` subscriber was installed before `init()`.
    #[error(
        "a global tracing subscriber is already installed; build the telemetry with \
         `otel_agent_runtime::builder().build()?` and add `telemetry.layer()` to your own \
         subscriber instead of calling `init()`"
    )]
    SubscriberAlreadySet,
}

/// Why flushing or shutting down telemetry failed.
#[derive(Debug)]
pub struct ShutdownError {
    failures: Vec<(&'static str, String)>,
}

impl ShutdownError {
    pub(crate) fn new(failures: Vec<(&'static str, String)>) -> Option<Self> {
        if failures.is_empty() {
            None
        } else {
            Some(Self { failures })
        }
    }

    /// Each failing part (`traces`, `metrics`) with what it reported.
    pub fn failures(&self) -> &[(&'static str, String)] {
        &self.failures
    }
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("telemetry shutdown failed: ")?;
        for (i, (part, why)) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{part}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ShutdownError {}
