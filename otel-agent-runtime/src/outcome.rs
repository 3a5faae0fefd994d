//! How a call ended, and what that puts on its span: the outcome label, the
//! `error.type`, and the span status (its description redacted and cut short).

use std::borrow::Cow;

use tracing::Span;

use crate::layer::with_layer;
use crate::semconv;
use crate::span_state::panic_message;

/// The `error.type` of a call whose future was dropped before it finished.
pub const CANCELLED: &str = "cancelled";
/// The `error.type` of a call that panicked.
pub const PANIC: &str = "panic";

/// How an annotated call ended, as far as its return value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Any value that is not an `Err`.
    Success,
    /// An `Err`: its low-cardinality class and, when printable, its message.
    Failure {
        /// The `error.type` value.
        error_type: Cow<'static, str>,
        /// The error's `Display` text, used as the span status description.
        message: Option<String>,
    },
}

/// How a guard ended: with the outcome the call returned, or dropped
/// unfinished (a panic, or a cancelled future).
pub(crate) enum End {
    Returned(Outcome),
    Dropped,
}

impl End {
    /// `(outcome label, error.type, status message)`.
    pub(crate) fn describe(
        self,
        span: &Span,
    ) -> (&'static str, Option<Cow<'static, str>>, Option<String>) {
        match self {
            End::Returned(Outcome::Success) => ("success", None, None),
            End::Returned(Outcome::Failure {
                error_type,
                message,
            }) => ("failure", Some(error_type), message),
            End::Dropped => {
                // An async call's panic is noted on the span as it unwinds; a sync
                // call's guard is dropped while the thread is still panicking.
                let caught = panic_message(span);
                if caught.is_some() || std::thread::panicking() {
                    let message = caught.map_or_else(
                        || "the call panicked".to_owned(),
                        |m| format!("panicked: {m}"),
                    );
                    ("failure", Some(Cow::Borrowed(PANIC)), Some(message))
                } else {
                    (
                        CANCELLED,
                        Some(Cow::Borrowed(CANCELLED)),
                        Some("the call was cancelled before it finished".to_owned()),
                    )
                }
            }
        }
    }
}

/// Status descriptions come from error messages, which may quote user input:
/// they pass through the redaction hook and are kept short.
const MAX_STATUS_BYTES: usize = 512;

pub(crate) fn mark_error(span: &Span, error_type: &str, message: Option<&str>) {
    // Recorded as fields, not only set on the OpenTelemetry span: other
    // `tracing` layers (a log formatter) show how the call failed too.
    span.record(semconv::ERROR_TYPE, error_type);
    let mut description = error_type.to_owned();
    if let Some(message) = message {
        with_layer(span, |layer| {
            let redacted = layer.options.redact(message);
            let mut end = redacted.len().min(MAX_STATUS_BYTES);
            while !redacted.is_char_boundary(end) {
                end -= 1;
            }
            description = redacted[..end].to_owned();
        });
    }
    span.record("otel.status_code", "error");
    span.record("otel.status_description", description.as_str());
}
