//! What happens when the collector misbehaves: refuses connections, accepts them
//! and never answers, or answers slowly.
//!
//! The program itself never waits for the collector: spans go into a bounded
//! queue (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048 by default) that a background thread
//! drains, and metrics are read and pushed by their own thread. What cannot be
//! delivered is dropped, never buffered without bound, and counted here:
//!
//! - the first failure of a signal prints **one** warning on standard error,
//!   naming the endpoint and the reason; later failures are only counted;
//! - when a failing export succeeds again, one line says so (the exporters
//!   reconnect by themselves, so a collector that comes back is used at once);
//! - at shutdown, one line sums up what was not delivered.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

/// Where the messages go: standard error, or a test's buffer.
pub(crate) type Report = Arc<dyn Fn(&str) + Send + Sync>;

/// Prints each message as one line on standard error.
pub(crate) fn stderr_report() -> Report {
    Arc::new(|line| eprintln!("{line}"))
}

/// Which signal a [`SignalHealth`] watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Spans, counted one by one.
    Traces,
    /// Metric exports, counted per export (each holds every series).
    Metrics,
}

/// The delivery counts of one signal's exporter, and the once-only messages.
pub(crate) struct SignalHealth {
    signal: Signal,
    endpoint: String,
    timeout: Duration,
    /// Spans that entered the queue / metric exports started.
    submitted: AtomicU64,
    /// Spans handed to the exporter (left the queue).
    handed: AtomicU64,
    /// Spans / metric exports the receiver accepted.
    delivered: AtomicU64,
    /// Spans / metric exports in exports that failed.
    failed: AtomicU64,
    /// Above this many spans between the queue and the exporter, the queue has
    /// overflowed (queue capacity plus the batch being exported).
    queue_limit: u64,
    queue_size: usize,
    warned: AtomicBool,
    failing: AtomicBool,
    resume_noted: AtomicBool,
    last_reason: Mutex<Option<String>>,
    report: Report,
}

impl fmt::Debug for SignalHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHealth")
            .field("signal", &self.signal)
            .field("endpoint", &self.endpoint)
            .field("submitted", &self.submitted)
            .field("delivered", &self.delivered)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl SignalHealth {
    /// Watches the span exporter to `endpoint`, whose queue holds `queue_size`
    /// spans and hands out batches of up to `batch_size`.
    pub(crate) fn traces(
        endpoint: String,
        timeout: Duration,
        queue_size: usize,
        batch_size: usize,
        report: Report,
    ) -> Arc<Self> {
        Arc::new(Self::new(
            Signal::Traces,
            endpoint,
            timeout,
            queue_size,
            batch_size,
            report,
        ))
    }

    /// Watches the metric exporter to `endpoint`.
    pub(crate) fn metrics(endpoint: String, timeout: Duration, report: Report) -> Arc<Self> {
        Arc::new(Self::new(Signal::Metrics, endpoint, timeout, 0, 0, report))
    }

    fn new(
        signal: Signal,
        endpoint: String,
        timeout: Duration,
        queue_size: usize,
        batch_size: usize,
        report: Report,
    ) -> Self {
        Self {
            signal,
            endpoint,
            timeout,
            submitted: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            queue_limit: (queue_size + batch_size) as u64,
            queue_size,
            warned: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            resume_noted: AtomicBool::new(false),
            last_reason: Mutex::new(None),
            report,
        }
    }

    fn name(&self) -> &'static str {
        match self.signal {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// Spans, or metric exports, that did not reach the receiver (so far).
    pub(crate) fn undelivered(&self) -> u64 {
        self.submitted
            .load(Ordering::Relaxed)
            .saturating_sub(self.delivered.load(Ordering::Relaxed))
    }

    /// Spans, or metric exports, that reached the receiver.
    #[cfg(test)]
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    fn span_ended(&self) {
        let submitted = self.submitted.fetch_add(1, Ordering::Relaxed) + 1;
        // Cheap while healthy: one load of a flag that is set once.
        if !self.warned.load(Ordering::Relaxed) {
            let waiting = submitted.saturating_sub(self.handed.load(Ordering::Relaxed));
            if waiting > self.queue_limit && !self.warned.swap(true, Ordering::Relaxed) {
                self.set_reason("the span queue overflowed".to_owned());
                (self.report)(&format!(
                    "otel-agent: the span queue is full ({} spans waiting for {}); new spans are \
                     being dropped — the collector is too slow or does not answer \
                     (OTEL_BSP_MAX_QUEUE_SIZE sets the cap; further drops are counted, not printed)",
                    self.queue_size, self.endpoint
                ));
            }
        }
    }

    fn set_reason(&self, reason: String) {
        if let Ok(mut last) = self.last_reason.lock() {
            *last = Some(reason);
        }
    }

    fn exported(&self, items: u64, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                self.delivered.fetch_add(items, Ordering::Relaxed);
                if self.failing.swap(false, Ordering::Relaxed)
                    && self.warned.load(Ordering::Relaxed)
                    && !self.resume_noted.swap(true, Ordering::Relaxed)
                {
                    (self.report)(&format!(
                        "otel-agent: exporting {} to {} again",
                        self.name(),
                        self.endpoint
                    ));
                }
            }
            Err(error) => {
                self.failed.fetch_add(items, Ordering::Relaxed);
                self.failing.store(true, Ordering::Relaxed);
                let mut reason = reason(error, self.timeout);
                if reason == VAGUE_NETWORK_ERROR {
                    // The HTTP exporter drops the cause; find it out once.
                    reason = match self.reason_now() {
                        Some(known) => known,
                        None => probe(&self.endpoint, self.timeout),
                    };
                }
                if !self.warned.swap(true, Ordering::Relaxed) {
                    let dropped = match self.signal {
                        Signal::Traces => "spans are being dropped",
                        Signal::Metrics => "metric exports are being dropped",
                    };
                    (self.report)(&format!(
                        "otel-agent: cannot export {} to {} ({reason}); {dropped} — is the \
                         collector running? (further failures are counted, not printed)",
                        self.name(),
                        self.endpoint
                    ));
                }
                self.set_reason(reason);
            }
        }
    }

    fn reason_now(&self) -> Option<String> {
        self.last_reason.lock().ok().and_then(|r| r.clone())
    }
}

/// What the OTLP/HTTP exporter reports for any failure below HTTP.
const VAGUE_NETWORK_ERROR: &str = "HTTP export failed: network error";

/// Tells why `endpoint` cannot be reached by opening a TCP connection to it
/// (at most one second), for errors that do not say.
fn probe(endpoint: &str, timeout: Duration) -> String {
    use std::net::{TcpStream, ToSocketAddrs as _};
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return VAGUE_NETWORK_ERROR.to_owned();
    };
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return "the host name does not resolve".to_owned();
    };
    let mut why = "the host name does not resolve".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            // It accepts connections, so the export itself got no answer.
            Ok(_) => return format!("no answer within {}", secs(timeout)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                why = "connection refused".to_owned();
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                why = "no answer to a connection within 1 s".to_owned();
            }
            Err(e) => why = e.to_string(),
        }
    }
    why
}

/// A short, human reason for a failed export.
fn reason(error: &OTelSdkError, timeout: Duration) -> String {
    let text = match error {
        OTelSdkError::Timeout(_) => return format!("no answer within {}", secs(timeout)),
        OTelSdkError::InternalFailure(text) => text.clone(),
        other => other.to_string(),
    };
    let lower = text.to_ascii_lowercase();
    if lower.contains("connection refused") {
        "connection refused".to_owned()
    } else if lower.contains("timed out")
        || lower.contains("timeout")
        || lower.contains("deadline")
        || lower.contains("deadlineexceeded")
    {
        format!("no answer within {}", secs(timeout))
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        "the host name does not resolve".to_owned()
    } else {
        let mut short: String = text.chars().take(160).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        short
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The line printed at shutdown when something was not delivered, or `None`.
pub(crate) fn shutdown_summary(
    traces: Option<&SignalHealth>,
    metrics: Option<&SignalHealth>,
    shutdown_timeout: Duration,
) -> Option<String> {
    let parts: Vec<(&SignalHealth, String)> = [
        traces.map(|t| (t, plural(t.undelivered(), "span", "spans"))),
        metrics.map(|m| {
            (
                m,
                plural(m.undelivered(), "metric export", "metric exports"),
            )
        }),
    ]
    .into_iter()
    .flatten()
    .filter(|(h, _)| h.undelivered() > 0)
    .collect();
    if parts.is_empty() {
        return None;
    }
    let why = |h: &SignalHealth| {
        h.reason_now().unwrap_or_else(|| {
            format!(
                "still in flight when the {} shutdown timeout ran out",
                secs(shutdown_timeout)
            )
        })
    };
    // `http://c:4318/v1/traces` and `http://c:4318/v1/metrics` are one collector.
    let base = |h: &SignalHealth| {
        h.endpoint
            .strip_suffix("/v1/traces")
            .or_else(|| h.endpoint.strip_suffix("/v1/metrics"))
            .unwrap_or(&h.endpoint)
            .to_owned()
    };
    let what: Vec<&str> = parts.iter().map(|(_, s)| s.as_str()).collect();
    let (first, _) = parts[0];
    let alike = parts
        .iter()
        .all(|(h, _)| base(h) == base(first) && why(h) == why(first));
    let line = if alike {
        format!(
            "otel-agent: {} could not be delivered to {} ({})",
            what.join(" and "),
            base(first),
            why(first)
        )
    } else {
        let each: Vec<String> = parts
            .iter()
            .map(|(h, _)| format!("{} to {}: {}", h.name(), h.endpoint, why(h)))
            .collect();
        format!(
            "otel-agent: {} could not be delivered ({})",
            what.join(" and "),
            each.join("; ")
        )
    };
    Some(line)
}

/// Counts the spans entering the exporting processor, to tell when its queue
/// overflows.
#[derive(Debug)]
pub(crate) struct WatchedProcessor<P> {
    inner: P,
    health: Arc<SignalHealth>,
}

impl<P> WatchedProcessor<P> {
    pub(crate) fn new(inner: P, health: Arc<SignalHealth>) -> Self {
        Self { inner, health }
    }
}

impl<P: SpanProcessor> SpanProcessor for WatchedProcessor<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.health.span_ended();
        self.inner.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A span exporter that counts what it delivers and what fails.
#[derive(Debug)]
pub(crate) struct CountingSpanExporter<E> {
    inner: E,
    health: Arc<SignalHealth>,
}

impl<E> CountingSpanExporter<E> {
    pub(crate) fn new(inner: E, health: Arc<SignalHealth>) -> Self {
        Self { inner, health }
    }
}

impl<E: SpanExporter> SpanExporter for CountingSpanExporter<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let items = batch.len() as u64;
        self.health.handed.fetch_add(items, Ordering::Relaxed);
        let export = self.inner.export(batch);
        async move {
            let result = export.await;
            self.health.exported(items, &result);
            result
        }
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A metric exporter that counts the exports it delivers and those that fail.
#[derive(Debug)]
pub(crate) struct CountingMetricExporter<E> {
    inner: E,
    health: Arc<SignalHealth>,
}

impl<E> CountingMetricExporter<E> {
    pub(crate) fn new(inner: E, health: Arc<SignalHealth>) -> Self {
        Self { inner, health }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for CountingMetricExporter<E> {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.health.submitted.fetch_add(1, Ordering::Relaxed);
        let export = self.inner.export(metrics);
        async move {
            let result = export.await;
            self.health.exported(1, &result);
            result
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn capture() -> (Report, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        (
            Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned())),
            lines,
        )
    }

    /// Fails while `down` is set, like a collector that is away.
    #[derive(Debug, Default, Clone)]
    struct Flaky {
        down: Arc<AtomicBool>,
        calls: Arc<AtomicUsize>,
    }

    impl SpanExporter for Flaky {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if self.down.load(Ordering::Relaxed) {
                Err(OTelSdkError::InternalFailure(
                    "ExportFailed: transport error: tcp connect error: Connection refused (os error 111)"
                        .into(),
                ))
            } else {
                Ok(())
            }
        }
    }

    fn span() -> SpanData {
        SpanData {
            span_context: opentelemetry::trace::SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Internal,
            name: "s".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    fn export(exporter: &CountingSpanExporter<Flaky>, health: &SignalHealth, n: usize) {
        for _ in 0..n {
            health.span_ended();
        }
        let _ = futures_executor_lite(exporter.export(vec![span(); n]));
    }

    /// The futures here complete on their first poll.
    fn futures_executor_lite<F: std::future::Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the test exporter does not wait"),
        }
    }

    #[test]
    fn the_first_failure_is_reported_once_then_counted_and_recovery_noted_once() {
        let (report, lines) = capture();
        let health = SignalHealth::traces(
            "http://127.0.0.1:4317".into(),
            Duration::from_secs(10),
            2048,
            512,
            report,
        );
        let flaky = Flaky::default();
        let exporter = CountingSpanExporter::new(flaky.clone(), health.clone());
        export(&exporter, &health, 3);
        flaky.down.store(true, Ordering::Relaxed);
        for _ in 0..50 {
            export(&exporter, &health, 10);
        }
        flaky.down.store(false, Ordering::Relaxed);
        export(&exporter, &health, 4);
        flaky.down.store(true, Ordering::Relaxed);
        export(&exporter, &health, 2);
        let lines = lines.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "otel-agent: cannot export traces to http://127.0.0.1:4317 (connection refused); \
                 spans are being dropped — is the collector running? (further failures are \
                 counted, not printed)",
                "otel-agent: exporting traces to http://127.0.0.1:4317 again",
            ]
        );
        assert_eq!(health.delivered(), 7);
        assert_eq!(health.undelivered(), 502);
        assert_eq!(
            shutdown_summary(Some(&health), None, Duration::from_secs(5)).as_deref(),
            Some(
                "otel-agent: 502 spans could not be delivered to http://127.0.0.1:4317 \
                 (connection refused)"
            )
        );
    }

    #[test]
    fn a_full_queue_is_reported_once() {
        let (report, lines) = capture();
        let health = SignalHealth::traces(
            "http://c:4318/v1/traces".into(),
            Duration::from_secs(1),
            8,
            2,
            report,
        );
        for _ in 0..100 {
            health.span_ended();
        }
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "otel-agent: the span queue is full (8 spans waiting for http://c:4318/v1/traces)"
            ),
            "{lines:?}"
        );
        let summary = shutdown_summary(Some(&health), None, Duration::from_secs(5)).unwrap();
        assert_eq!(
            summary,
            "otel-agent: 100 spans could not be delivered to http://c:4318 \
             (the span queue overflowed)"
        );
    }

    #[test]
    fn the_summary_names_both_signals_and_is_silent_when_all_arrived() {
        let (report, lines) = capture();
        let traces = SignalHealth::traces(
            "http://c:4317".into(),
            Duration::from_millis(1500),
            8,
            2,
            report.clone(),
        );
        let metrics =
            SignalHealth::metrics("http://c:4317".into(), Duration::from_millis(1500), report);
        assert_eq!(
            shutdown_summary(Some(&traces), Some(&metrics), Duration::from_secs(5)),
            None
        );
        traces.span_ended();
        traces.exported(1, &Err(OTelSdkError::Timeout(Duration::from_secs(1))));
        metrics.submitted.fetch_add(2, Ordering::Relaxed);
        metrics.exported(1, &Err(OTelSdkError::Timeout(Duration::from_secs(1))));
        assert_eq!(
            lines.lock().unwrap()[1..],
            [
                "otel-agent: cannot export metrics to http://c:4317 (no answer within 1500 ms); \
              metric exports are being dropped — is the collector running? (further failures \
              are counted, not printed)"
            ]
        );
        assert_eq!(
            shutdown_summary(Some(&traces), Some(&metrics), Duration::from_secs(5)).as_deref(),
            Some(
                "otel-agent: 1 span and 2 metric exports could not be delivered to \
                 http://c:4317 (no answer within 1500 ms)"
            )
        );
    }

    #[test]
    fn the_summary_gives_each_reason_when_they_differ() {
        let (report, _) = capture();
        let traces = SignalHealth::traces(
            "http://c:4318/v1/traces".into(),
            Duration::from_secs(1),
            8,
            2,
            report.clone(),
        );
        let metrics = SignalHealth::metrics(
            "http://c:4318/v1/metrics".into(),
            Duration::from_secs(1),
            report,
        );
        traces.span_ended();
        metrics.submitted.fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            shutdown_summary(Some(&traces), Some(&metrics), Duration::from_secs(5)).as_deref(),
            Some(
                "otel-agent: 1 span and 1 metric export could not be delivered to http://c:4318 \
                 (still in flight when the 5 s shutdown timeout ran out)"
            )
        );
        metrics.exported(
            0,
            &Err(OTelSdkError::InternalFailure(
                "HTTP export failed with status code: 503".into(),
            )),
        );
        assert_eq!(
            shutdown_summary(Some(&traces), Some(&metrics), Duration::from_secs(5)).as_deref(),
            Some(
                "otel-agent: 1 span and 1 metric export could not be delivered (traces to \
                 http://c:4318/v1/traces: still in flight when the 5 s shutdown timeout ran out; \
                 metrics to http://c:4318/v1/metrics: HTTP export failed with status code: 503)"
            )
        );
    }

    #[test]
    fn a_vague_network_error_is_explained_by_a_probe() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        assert_eq!(
            probe(&open, Duration::from_millis(500)),
            "no answer within 500 ms"
        );
        drop(listener);
        assert_eq!(
            probe(&open, Duration::from_millis(500)),
            "connection refused"
        );
    }

    #[test]
    fn reasons_are_short() {
        let t = Duration::from_secs(10);
        let r = |s: &str| reason(&OTelSdkError::InternalFailure(s.into()), t);
        assert_eq!(
            r("error sending request: Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(r("operation timed out"), "no answer within 10 s");
        assert_eq!(
            r("HTTP export failed. Status Code: 503"),
            "HTTP export failed. Status Code: 503"
        );
    }
}
