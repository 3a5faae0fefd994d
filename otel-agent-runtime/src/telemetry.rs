//! Telemetry: the [`builder`] resolves configuration, the [`pipeline`] is
//! built from it (providers, processors, exporters, instruments), and the
//! [`handle`] is the guard the program keeps, which flushes at exit.

mod builder;
mod exporters;
mod handle;
mod pipeline;

use std::sync::atomic::{AtomicBool, Ordering};

pub use builder::TelemetryBuilder;
pub use handle::Telemetry;

/// The instrumentation scope of the runtime's spans and metrics.
const SCOPE: &str = "otel-agent";

/// Set once `init()` has installed the global subscriber: from then on every
/// thread without a scoped one has a subscriber.
static GLOBAL_SUBSCRIBER_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether `init()` installed the global `tracing` subscriber.
pub(crate) fn global_subscriber_installed() -> bool {
    GLOBAL_SUBSCRIBER_INSTALLED.load(Ordering::Relaxed)
}
