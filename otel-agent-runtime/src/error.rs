//! Errors at the API edge: what `init()` and `shutdown()` can report.

use std::fmt;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;

use crate::printable::{printable_text, printable_value};

/// Why telemetry could not be set up.
///
/// Every variant names what to change: the environment variable and the value it
/// expects, or the builder call that conflicts.
///
/// Neither its `Display` nor its `Debug` shows a secret: header lists
/// (`OTEL_EXPORTER_OTLP_HEADERS`) appear by their keys only (`authorization=***`),
/// endpoints without the user and password of their URL.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// An `OTEL_*` environment variable holds a value that cannot be used.
    #[error(
        "{var}={:?} is not valid: expected {expected}",
        printable_value(.var, .value)
    )]
    InvalidEnv {
        /// The variable, e.g. `OTEL_EXPORTER_OTLP_PROTOCOL`.
        var: &'static str,
        /// The value found (for header lists, the keys only; for endpoints,
        /// without credentials).
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// A value given to the builder cannot be used.
    #[error(
        "invalid {setting} {:?}: expected {expected}",
        printable_value(.setting, .value)
    )]
    InvalidSetting {
        /// The builder setting, e.g. `endpoint`.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// An `OTEL_*` environment variable holds bytes that are not UTF-8 (which
    /// reading it as text would otherwise take for "unset").
    #[error(
        "{var}=\"{value}\" is not valid: expected UTF-8 text (the value is not UTF-8 from byte \
         {position} on; bytes shown escaped): write it in UTF-8, or unset {var}"
    )]
    NotUnicode {
        /// The variable, e.g. `OTEL_SDK_DISABLED`.
        var: String,
        /// The value with its bytes escaped (`\xff`), or `<not shown>` for a
        /// variable that may hold credentials.
        value: String,
        /// Where the first byte that is not UTF-8 is.
        position: usize,
    },
    /// The OTLP exporter could not be built from an otherwise valid configuration.
    #[error(
        "could not build the OTLP {signal} exporter: {}",
        printable_text(&.source.to_string())
    )]
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

/// As derived, but with the values that may hold credentials made printable
/// (`fn main() -> Result<(), InitError>` prints this).
impl fmt::Debug for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::InvalidEnv {
                var,
                value,
                expected,
            } => f
                .debug_struct("InvalidEnv")
                .field("var", var)
                .field("value", &printable_value(var, value))
                .field("expected", expected)
                .finish(),
            InitError::InvalidSetting {
                setting,
                value,
                expected,
            } => f
                .debug_struct("InvalidSetting")
                .field("setting", setting)
                .field("value", &printable_value(setting, value))
                .field("expected", expected)
                .finish(),
            InitError::NotUnicode {
                var,
                value,
                position,
            } => f
                .debug_struct("NotUnicode")
                .field("var", var)
                .field("value", value)
                .field("position", position)
                .finish(),
            InitError::Exporter { signal, source } => f
                .debug_struct("Exporter")
                .field("signal", signal)
                .field(
                    "source",
                    &format_args!("{}", printable_text(&format!("{source:?}"))),
                )
                .finish(),
            InitError::PrometheusBind { address, source } => f
                .debug_struct("PrometheusBind")
                .field("address", address)
                .field("source", source)
                .finish(),
            InitError::ExportThread(e) => f.debug_tuple("ExportThread").field(e).finish(),
            InitError::SubscriberAlreadySet => f.write_str("SubscriberAlreadySet"),
        }
    }
}

/// Why flushing or shutting down telemetry failed: the OpenTelemetry SDK itself
/// could not finish, for example because it was already shut down or a flush
/// did not end in time.
///
/// A backend that was down, slow or refused the data does **not** make
/// [`Telemetry::shutdown`](crate::Telemetry::shutdown) fail: the telemetry has
/// already reported it on standard error (one warning when exports start
/// failing, one line at shutdown naming what was not delivered or not
/// confirmed), and a finished run should not turn into a failed program
/// because its telemetry could not be sent. [`Telemetry::force_flush`](crate::Telemetry::force_flush),
/// whose purpose is delivery now, does report such failures.
///
/// Both ways of ending are fine:
///
/// ```no_run
/// let telemetry = otel_agent_runtime::init()?;
/// // ... the program ...
/// if let Err(e) = telemetry.shutdown() {
///     eprintln!("{e}");
/// }
/// # Ok::<(), otel_agent_runtime::InitError>(())
/// ```
///
/// or simply letting the guard drop at the end of `main`, which shuts down the
/// same way and prints the error, if any, on standard error. Use
/// `telemetry.shutdown()?` only when an SDK failure should fail the program.
///
/// Its `Display` is one plain sentence, e.g. `telemetry shutdown failed:
/// metrics: the exporter did not shut down cleanly`.
#[derive(Debug)]
pub struct ShutdownError {
    /// `shutdown` or `flush`.
    action: &'static str,
    failures: Vec<(&'static str, String)>,
}

impl ShutdownError {
    /// A failed shutdown, or `None` when nothing failed.
    pub(crate) fn new(failures: Vec<(&'static str, String)>) -> Option<Self> {
        Self::of("shutdown", failures)
    }

    /// A failed `force_flush`, or `None` when nothing failed.
    pub(crate) fn flush(failures: Vec<(&'static str, String)>) -> Option<Self> {
        Self::of("flush", failures)
    }

    fn of(action: &'static str, failures: Vec<(&'static str, String)>) -> Option<Self> {
        if failures.is_empty() {
            None
        } else {
            Some(Self { action, failures })
        }
    }

    /// Each failing part (`traces`, `metrics`) with what went wrong, in words.
    pub fn failures(&self) -> &[(&'static str, String)] {
        &self.failures
    }
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "telemetry {} failed: ", self.action)?;
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

/// An SDK error in words, for people.
///
/// The SDK's own texts are for logs: its providers nest the errors of each
/// processor or reader in `Debug` form (`[InternalFailure("Failed to
/// shutdown")]`), which must not reach a terminal. This looks for what they
/// say and names it.
pub(crate) fn plain_words(error: &OTelSdkError) -> String {
    match error {
        OTelSdkError::AlreadyShutdown => "already shut down".to_owned(),
        OTelSdkError::Timeout(d) => format!("not finished within {}", seconds(*d)),
        OTelSdkError::InternalFailure(text) => internal_words(text),
    }
}

fn internal_words(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&[
        "alreadyshutdown",
        "already shut",
        "shutdown already invoked",
    ]) {
        "already shut down".to_owned()
    } else if has(&["timeout(", "timed out"]) {
        "not finished in time".to_owned()
    } else if has(&["failed to shutdown"]) {
        // The periodic reader's final export or its exporter's shutdown failed.
        "the exporter did not shut down cleanly".to_owned()
    } else if has(&["failed to flush"]) {
        "the exporter did not flush cleanly".to_owned()
    } else if has(&["control channel is full"]) {
        "a previous flush or shutdown was still running".to_owned()
    } else if has(&["poison"]) {
        "an internal lock was poisoned by a panic".to_owned()
    } else if !text.is_empty() && !text.contains(['[', ']', '{', '}', '(', ')', '"']) {
        // Already plain words (a custom processor's or reader's own text).
        text.to_owned()
    } else {
        "the SDK reported an internal failure".to_owned()
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_errors_become_words() {
        let internal = |s: &str| plain_words(&OTelSdkError::InternalFailure(s.to_owned()));
        assert_eq!(
            internal("[InternalFailure(\"Failed to shutdown\")]"),
            "the exporter did not shut down cleanly"
        );
        assert_eq!(
            internal("[InternalFailure(\"Failed to flush\")]"),
            "the exporter did not flush cleanly"
        );
        assert_eq!(
            internal("Shutdown errors: [AlreadyShutdown]"),
            "already shut down"
        );
        assert_eq!(
            internal("Shutdown errors: [Timeout(5s)]"),
            "not finished in time"
        );
        assert_eq!(
            internal("errs: [Ok(()), Err(InternalFailure(\"x\"))]"),
            "the SDK reported an internal failure"
        );
        assert_eq!(internal("the disk is full"), "the disk is full");
        assert_eq!(
            plain_words(&OTelSdkError::AlreadyShutdown),
            "already shut down"
        );
        assert_eq!(
            plain_words(&OTelSdkError::Timeout(Duration::from_millis(1500))),
            "not finished within 1500 ms"
        );
    }

    #[test]
    fn the_error_is_one_plain_sentence() {
        let e = ShutdownError::new(vec![
            (
                "traces",
                "not finished within the 5 s shutdown timeout".into(),
            ),
            (
                "metrics",
                plain_words(&OTelSdkError::InternalFailure(
                    "[InternalFailure(\"Failed to shutdown\")]".into(),
                )),
            ),
        ])
        .unwrap();
        assert_eq!(
            e.to_string(),
            "telemetry shutdown failed: traces: not finished within the 5 s shutdown timeout; \
             metrics: the exporter did not shut down cleanly"
        );
        assert_eq!(e.failures().len(), 2);
        assert!(ShutdownError::new(Vec::new()).is_none());
        let flush = ShutdownError::flush(vec![("traces", "already shut down".into())]).unwrap();
        assert_eq!(
            flush.to_string(),
            "telemetry flush failed: traces: already shut down"
        );
    }
}
