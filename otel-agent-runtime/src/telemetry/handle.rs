//! The running telemetry: the guard the program holds, its `tracing` layer,
//! and the one shutdown the guard and the signal handler share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_core::Subscriber;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::pipeline::Pipelines;
use super::SCOPE;
use crate::console::ConsoleSink;
#[cfg(feature = "tokio")]
use crate::error::InitError;
use crate::error::ShutdownError;
use crate::export_health::{shutdown_summary, SignalHealth};
use crate::layer::InstrumentsLayer;

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

/// What shutting down needs, shared by the guard and the signal handler:
/// whichever comes first shuts down, and the other waits for it to finish.
#[derive(Clone)]
struct Closer {
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
    fn close(&self) -> Result<(), ShutdownError> {
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

/// The running telemetry. Keep it alive for the life of the program: dropping it
/// flushes every buffered span and metric and shuts the exporters down (within the
/// shutdown timeout), then prints the console report when that is the exporter.
#[must_use = "dropping the guard shuts telemetry down at once"]
pub struct Telemetry {
    pub(super) pipelines: Option<Pipelines>,
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
    /// The guard of running pipelines.
    pub(super) fn running(
        pipelines: Pipelines,
        spans_ended: Arc<AtomicU64>,
        shutdown_timeout: Duration,
    ) -> Self {
        Self {
            pipelines: Some(pipelines),
            spans_ended,
            shutdown_timeout,
        }
    }

    /// The guard when `OTEL_SDK_DISABLED=true`: nothing runs.
    pub(super) fn disabled() -> Self {
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
    /// [`ExporterKind::Prometheus`](crate::ExporterKind::Prometheus); empty otherwise.
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
            let closer = p.closer(self.shutdown_timeout);
            crate::signal::exit_after_flush(move || closer.close())
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
