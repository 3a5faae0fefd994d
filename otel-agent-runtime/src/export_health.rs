//! What happens when the collector misbehaves: refuses connections, accepts them
//! and never answers, answers slowly, or answers with an error status.
//!
//! The program itself never waits for the collector: spans go into a bounded
//! queue (`OTEL_BSP_MAX_QUEUE_SIZE`, 65,536 by default, and 64 MiB) that a background thread
//! drains, and metrics are read and pushed by their own thread. What cannot be
//! delivered is dropped, never buffered without bound, and counted here:
//!
//! - the first failure of a signal prints **one** warning on standard error,
//!   naming the endpoint, what happened and what to check; later failures are
//!   only counted;
//! - when a failing export succeeds again, one line says so (the exporters
//!   reconnect by themselves, so a collector that comes back is used at once);
//! - a backend without a receiver for the signal (HTTP 404 or 405, gRPC
//!   UNIMPLEMENTED: MLflow and Phoenix have no `/v1/metrics`) gets that one warning too, naming the
//!   setting that sends the other signal only (`OTEL_METRICS_EXPORTER=none`);
//! - no message shows the user or password of the endpoint's URL, or of a URL
//!   in an exporter's own words ([`crate::printable::printable_endpoint`]);
//! - at shutdown, one line sums up what was not delivered, and apart from it
//!   what was sent but not confirmed: a request that timed out on our side may
//!   still have been stored by the backend, so it is never called lost.
//!
//! The causes are read from the texts the opentelemetry-otlp 0.33 exporters
//! give (see [`classify`]); where the HTTP exporter only says "network error",
//! the time the export took and one TCP connection to the endpoint tell
//! refused, unreachable, timed out, closed and TLS failures apart.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Why an export failed, as far as the exporter's error tells (and, where it
/// does not, the time the export took and a probe of the endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Nothing listens on the port.
    Refused,
    /// The host name does not resolve.
    Unresolved,
    /// A TCP connection got no answer (a firewall drops it, or the host is down).
    Unreachable,
    /// A connection opened and was closed or reset without an answer: most
    /// often the port of the other OTLP protocol. `grpc` names the exporter.
    Closed {
        /// Whether the gRPC exporter (rather than the HTTP one) saw it.
        grpc: bool,
    },
    /// The TLS handshake failed.
    Tls,
    /// The request went out and no answer came within the export timeout: the
    /// backend may have stored it.
    Timeout,
    /// The backend answered with this HTTP status.
    Http(u16),
    /// The backend answered with this gRPC status (its canonical name).
    Grpc(&'static str),
    /// The span queue was full.
    QueueFull,
    /// The HTTP exporter's "network error", whose cause it does not keep.
    Network,
    /// Anything else: the exporter's own words, shortened.
    Other(String),
}

/// What a failure asks the user to look at; one message each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Nothing answers the connection: the only class that asks whether the
    /// collector is running.
    Connection,
    Unresolved,
    WrongProtocol,
    Tls,
    Timeout,
    Credentials,
    NoEndpoint,
    TooLarge,
    /// gRPC RESOURCE_EXHAUSTED: too large, or back-pressure; the exporter's text
    /// does not keep the status message that would tell which.
    Exhausted,
    Rejected,
    Backpressure,
    ServerError,
    Refused4xx,
    Unexpected,
    Queue,
    Other,
}

/// tonic's `Code` names (its `Debug`, which the gRPC exporter prints) and the
/// canonical gRPC names users find in collector logs and documentation.
const GRPC_CODES: [(&str, &str); 17] = [
    ("Ok", "OK"),
    ("Cancelled", "CANCELLED"),
    ("Unknown", "UNKNOWN"),
    ("InvalidArgument", "INVALID_ARGUMENT"),
    ("DeadlineExceeded", "DEADLINE_EXCEEDED"),
    ("NotFound", "NOT_FOUND"),
    ("AlreadyExists", "ALREADY_EXISTS"),
    ("PermissionDenied", "PERMISSION_DENIED"),
    ("ResourceExhausted", "RESOURCE_EXHAUSTED"),
    ("FailedPrecondition", "FAILED_PRECONDITION"),
    ("Aborted", "ABORTED"),
    ("OutOfRange", "OUT_OF_RANGE"),
    ("Unimplemented", "UNIMPLEMENTED"),
    ("Internal", "INTERNAL"),
    ("Unavailable", "UNAVAILABLE"),
    ("DataLoss", "DATA_LOSS"),
    ("Unauthenticated", "UNAUTHENTICATED"),
];

/// The prefix of every status error of the OTLP/HTTP exporter
/// (`export_http_once` in opentelemetry-otlp 0.33).
const HTTP_STATUS_PREFIX: &str = "HTTP export failed with status code: ";
/// What the OTLP/HTTP exporter reports for any failure below HTTP: refused,
/// unresolved, timed out, reset, TLS. It logs the cause only at debug level.
const HTTP_NETWORK_ERROR: &str = "HTTP export failed: network error";
/// The gRPC exporter's `handle_tonic_export_error!`:
/// `"<Client> export failed with gRPC code: <Code:?>[: <source chain>]"`.
const GRPC_CODE_MARK: &str = " export failed with gRPC code: ";
/// The gRPC exporter's `handle_interceptor_error!`: the request never left.
const GRPC_INTERCEPTOR_MARK: &str = " export failed in interceptor with gRPC code: ";

/// Tells why an export failed from the exporter's error.
///
/// The texts are those of opentelemetry-otlp 0.33:
/// - HTTP (reqwest blocking client): `HTTP export failed with status code: 422`
///   for an answer, `HTTP export failed: network error` for everything below
///   HTTP ([`Failure::Network`]; the caller finds out which);
/// - gRPC (tonic): `TonicTracesClient export failed with gRPC code: Unavailable:
///   transport error: tcp connect error: …: Connection refused (os error 111)`;
///   a status the backend sent has no source chain (its message is not kept),
///   tonic's own timeout is `Cancelled: transport error: Timeout expired`, and an
///   HTTP answer without a gRPC status is mapped by tonic (404 → Unimplemented,
///   401 → Unauthenticated, 429/502/503/504 → Unavailable, …).
pub(crate) fn classify(error: &OTelSdkError) -> Failure {
    match error {
        OTelSdkError::Timeout(_) => Failure::Timeout,
        OTelSdkError::AlreadyShutdown => {
            Failure::Other("the exporter was already shut down".to_owned())
        }
        OTelSdkError::InternalFailure(text) => classify_text(text),
    }
}

fn classify_text(text: &str) -> Failure {
    if let Some(code) = text.strip_prefix(HTTP_STATUS_PREFIX) {
        if let Ok(code) = code.trim().parse::<u16>() {
            return Failure::Http(code);
        }
    }
    if text == HTTP_NETWORK_ERROR {
        return Failure::Network;
    }
    if let Some((_, code)) = text.split_once(GRPC_INTERCEPTOR_MARK) {
        return Failure::Other(format!(
            "the request could not be prepared (gRPC interceptor: {})",
            grpc_name(code).unwrap_or(code)
        ));
    }
    if let Some((_, rest)) = text.split_once(GRPC_CODE_MARK) {
        let (code, source) = rest.split_once(": ").unwrap_or((rest, ""));
        // tonic reports what happened to the connection as UNAVAILABLE, UNKNOWN
        // or CANCELLED with the transport error as source: the source says more.
        if let Some(failure) = connection_failure(source, true) {
            return failure;
        }
        return match grpc_name(code) {
            // The backend's own deadline runs out with ours (tonic sends it as
            // `grpc-timeout`): the request arrived, its fate is unknown.
            Some("DEADLINE_EXCEEDED") => Failure::Timeout,
            Some(name) => Failure::Grpc(name),
            None => Failure::Other(shorten(text)),
        };
    }
    // Other exporters or versions: the words that tell the most.
    connection_failure(text, false).unwrap_or_else(|| Failure::Other(shorten(text)))
}

/// A connection-level failure named in an error text (a transport error's
/// source chain), if any.
fn connection_failure(text: &str, grpc: bool) -> Option<Failure> {
    let lower = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["connection refused"]) {
        Some(Failure::Refused)
    } else if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
    ]) {
        Some(Failure::Unresolved)
    } else if has(&[
        // Before "timed out": a connection that timed out never carried the request.
        "tcp connect error",
        "no route to host",
        "network is unreachable",
        "host is unreachable",
    ]) {
        Some(Failure::Unreachable)
    } else if has(&["timeout expired", "timed out", "deadline has elapsed"]) {
        Some(Failure::Timeout)
    } else if has(&[
        "certificate",
        "tls",
        "invalidcontenttype",
        "corrupt message",
    ]) {
        Some(Failure::Tls)
    } else if has(&[
        "connection error",
        "connection reset",
        "broken pipe",
        "connection closed",
        "unexpected eof",
    ]) {
        Some(Failure::Closed { grpc })
    } else {
        None
    }
}

fn grpc_name(debug_name: &str) -> Option<&'static str> {
    let debug_name = debug_name.trim();
    GRPC_CODES
        .iter()
        .find(|(debug, _)| *debug == debug_name)
        .map(|(_, name)| *name)
}

/// An exporter's own words as the messages show them: at most 160
/// characters, and never the credentials of a URL they name.
fn shorten(text: &str) -> String {
    let text = crate::printable::printable_text(text);
    let mut short: String = text.chars().take(160).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

impl Failure {
    fn class(&self) -> Class {
        match self {
            Failure::Refused | Failure::Unreachable => Class::Connection,
            Failure::Unresolved => Class::Unresolved,
            Failure::Closed { .. } => Class::WrongProtocol,
            Failure::Tls => Class::Tls,
            Failure::Timeout => Class::Timeout,
            Failure::QueueFull => Class::Queue,
            Failure::Network | Failure::Other(_) => Class::Other,
            Failure::Http(code) => match code {
                401 | 403 => Class::Credentials,
                // Phoenix answers 405 on the metrics path it does not serve.
                404 | 405 => Class::NoEndpoint,
                413 => Class::TooLarge,
                400 | 422 => Class::Rejected,
                429 | 503 => Class::Backpressure,
                500..=599 => Class::ServerError,
                402..=499 => Class::Refused4xx,
                _ => Class::Unexpected,
            },
            Failure::Grpc(code) => match *code {
                "UNAUTHENTICATED" | "PERMISSION_DENIED" => Class::Credentials,
                "UNIMPLEMENTED" => Class::NoEndpoint,
                "RESOURCE_EXHAUSTED" => Class::Exhausted,
                "INVALID_ARGUMENT" => Class::Rejected,
                "UNAVAILABLE" => Class::Backpressure,
                "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => Class::ServerError,
                _ => Class::Refused4xx,
            },
        }
    }

    /// Sent, but not answered: the backend may have stored what it carried.
    fn unconfirmed(&self) -> bool {
        matches!(self, Failure::Timeout)
    }

    /// The short reason, in parentheses after the endpoint.
    fn reason(&self, timeout: Duration) -> String {
        match self {
            Failure::Refused => "connection refused".to_owned(),
            Failure::Unresolved => "the host name does not resolve".to_owned(),
            Failure::Unreachable => "no answer to a connection within 1 s".to_owned(),
            Failure::Closed { .. } => "the connection was closed without an answer".to_owned(),
            Failure::Tls => "the TLS handshake failed".to_owned(),
            Failure::Timeout => format!("no answer within {}", secs(timeout)),
            Failure::Http(code) => {
                match http::StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                {
                    Some(words) => format!("HTTP {code} {words}"),
                    None => format!("HTTP {code}"),
                }
            }
            Failure::Grpc(code) => format!("gRPC {code}"),
            Failure::QueueFull => "the span queue overflowed".to_owned(),
            Failure::Network => "a network error".to_owned(),
            Failure::Other(text) => text.clone(),
        }
    }
}

/// The delivery counts of one signal's exporter, and the once-only messages.
pub(crate) struct SignalHealth {
    signal: Signal,
    endpoint: String,
    timeout: Duration,
    /// Spans that entered the queue / metric exports started.
    submitted: AtomicU64,
    /// Spans / metric exports handed to the exporter (for spans: left the queue).
    handed: AtomicU64,
    /// Spans / metric exports the receiver accepted.
    delivered: AtomicU64,
    /// Spans / metric exports that certainly did not arrive: refused, never
    /// connected, or answered with an error.
    lost: AtomicU64,
    /// Spans / metric exports sent without an answer in time: they may have
    /// arrived.
    unconfirmed: AtomicU64,
    /// Above this many spans between the queue and the exporter, the queue has
    /// overflowed (queue capacity plus the batch being exported).
    queue_limit: u64,
    queue_size: usize,
    batch_size: usize,
    warned: AtomicBool,
    overflowed: AtomicBool,
    failing: AtomicBool,
    resume_noted: AtomicBool,
    /// Set by the shutdown summary, the last word: an export still in flight
    /// that fails afterwards (its runtime stops) is counted, never printed.
    quiet: AtomicBool,
    /// Why the latest lost export was lost.
    last_lost: Mutex<Option<Failure>>,
    /// The latest failure of any kind.
    last: Mutex<Option<Failure>>,
    /// What a probe found for a "network error" while exports keep failing
    /// (whether the export had run out its time, and the finding): one probe
    /// per outage and kind, not one per export.
    probed: Mutex<Option<(bool, Failure)>>,
    report: Report,
}

impl fmt::Debug for SignalHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHealth")
            .field("signal", &self.signal)
            .field("endpoint", &self.endpoint)
            .field("submitted", &self.submitted)
            .field("delivered", &self.delivered)
            .field("lost", &self.lost)
            .field("unconfirmed", &self.unconfirmed)
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
            // Every message names it: never with the credentials of its URL.
            endpoint: crate::printable::printable_endpoint(&endpoint),
            timeout,
            submitted: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            unconfirmed: AtomicU64::new(0),
            queue_limit: (queue_size + batch_size) as u64,
            queue_size,
            batch_size,
            warned: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            resume_noted: AtomicBool::new(false),
            quiet: AtomicBool::new(false),
            last_lost: Mutex::new(None),
            last: Mutex::new(None),
            probed: Mutex::new(None),
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

    /// Whether delivery went wrong in a way the warning and the shutdown
    /// summary report: then a failed flush or shutdown of this signal is that
    /// same problem, already on standard error.
    pub(crate) fn had_trouble(&self) -> bool {
        self.undelivered() > 0 || self.failing.load(Ordering::Relaxed)
    }

    /// Spans, or metric exports, that reached the receiver.
    #[cfg(test)]
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    fn span_ended(&self) {
        let submitted = self.submitted.fetch_add(1, Ordering::Relaxed) + 1;
        // Cheap while healthy: one load of a flag that is set once.
        if !self.overflowed.load(Ordering::Relaxed) {
            let waiting = submitted.saturating_sub(self.handed.load(Ordering::Relaxed));
            if waiting > self.queue_limit {
                self.queue_overflowed();
            }
        }
    }

    /// The span queue dropped a span (it was full by count or by bytes):
    /// reported once.
    pub(crate) fn queue_overflowed(&self) {
        if self.overflowed.swap(true, Ordering::Relaxed) {
            return;
        }
        self.remember(Failure::QueueFull, false);
        if !self.warned.swap(true, Ordering::Relaxed) {
            (self.report)(&format!(
                "otel-agent: the span queue is full ({} spans or 64 MiB waiting for {}); new \
                 spans are being dropped — the collector is too slow or does not answer \
                 (OTEL_BSP_MAX_QUEUE_SIZE sets the cap; further drops are counted, not printed)",
                self.queue_size, self.endpoint
            ));
        }
    }

    fn remember(&self, failure: Failure, lost: bool) {
        if lost {
            if let Ok(mut last) = self.last_lost.lock() {
                *last = Some(failure.clone());
            }
        }
        if let Ok(mut last) = self.last.lock() {
            *last = Some(failure);
        }
    }

    fn last_lost(&self) -> Option<Failure> {
        self.last_lost.lock().ok().and_then(|r| r.clone())
    }

    fn last(&self) -> Option<Failure> {
        self.last.lock().ok().and_then(|r| r.clone())
    }

    /// Counts an export of `items` that took `elapsed`.
    fn exported(&self, items: u64, elapsed: Duration, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                self.delivered.fetch_add(items, Ordering::Relaxed);
                if let Ok(mut probed) = self.probed.lock() {
                    *probed = None;
                }
                if self.failing.swap(false, Ordering::Relaxed)
                    && self.warned.load(Ordering::Relaxed)
                    && !self.quiet.load(Ordering::Relaxed)
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
                let failure = self.explain(error, elapsed);
                let lost = !failure.unconfirmed();
                if lost {
                    self.lost.fetch_add(items, Ordering::Relaxed);
                } else {
                    self.unconfirmed.fetch_add(items, Ordering::Relaxed);
                }
                self.failing.store(true, Ordering::Relaxed);
                if !self.quiet.load(Ordering::Relaxed) && !self.warned.swap(true, Ordering::Relaxed)
                {
                    (self.report)(&self.warning(&failure));
                }
                self.remember(failure, lost);
            }
        }
    }

    /// The failure behind `error`, finding out what the exporter did not say.
    fn explain(&self, error: &OTelSdkError, elapsed: Duration) -> Failure {
        match classify(error) {
            // The HTTP client's timeout covers the whole request, and the
            // exporter retries other network errors only while its time lasts:
            // an export that took the whole timeout is the one that timed out.
            Failure::Network => self.probe_once(elapsed >= self.timeout, true),
            // A connection that never opened times out too: only an endpoint
            // that accepts connections may have received the request. (A gRPC
            // server speaks first, so only the connection is looked at.)
            Failure::Timeout => self.probe_once(true, false),
            known => known,
        }
    }

    /// What one probe of the endpoint tells about a failed export that did, or
    /// did not, run out its time; `listen`: also wait briefly for the server.
    fn probe_once(&self, timed_out: bool, listen: bool) -> Failure {
        if let Ok(probed) = self.probed.lock() {
            if let Some((kind, failure)) = &*probed {
                if *kind == timed_out {
                    return failure.clone();
                }
            }
        }
        let https = self.endpoint.starts_with("https://");
        let listen = if listen { PROBE_LISTEN } else { Duration::ZERO };
        let failure = match probe(&self.endpoint, listen) {
            // It waits for a request, as a server that takes too long does.
            Ok(Answer::Silent) if timed_out => Failure::Timeout,
            // It accepts connections and the request failed before its time,
            // or the server closes connections (or speaks first, as an HTTP/2
            // gRPC server does): the connection broke, during the TLS
            // handshake for `https`.
            Ok(_) if https => Failure::Tls,
            Ok(_) => Failure::Closed { grpc: false },
            Err(failure) => failure,
        };
        if let Ok(mut probed) = self.probed.lock() {
            *probed = Some((timed_out, failure.clone()));
        }
        failure
    }

    /// The one warning: what happened, to what, and what to check.
    fn warning(&self, failure: &Failure) -> String {
        let consequence = match (self.signal, failure.unconfirmed()) {
            (Signal::Traces, false) => "spans are being dropped",
            (Signal::Metrics, false) => "metric exports are being dropped",
            (Signal::Traces, true) => "spans are not confirmed (the backend may have stored them)",
            (Signal::Metrics, true) => {
                "metric exports are not confirmed (the backend may have stored them)"
            }
        };
        format!(
            "otel-agent: cannot export {} to {} ({}); {consequence} — {} (further failures are \
             counted, not printed)",
            self.name(),
            self.endpoint,
            failure.reason(self.timeout),
            self.hint(failure)
        )
    }

    /// What to check for `failure`.
    fn hint(&self, failure: &Failure) -> String {
        let signal = self.name();
        let off = match self.signal {
            Signal::Traces => "OTEL_TRACES_EXPORTER=none",
            Signal::Metrics => "OTEL_METRICS_EXPORTER=none",
        };
        let smaller = match self.signal {
            Signal::Traces => format!(
                "lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE, now {}",
                self.batch_size
            ),
            Signal::Metrics => "raise the backend's request size limit, or record fewer \
                                attribute combinations"
                .to_owned(),
        };
        match failure.class() {
            Class::Connection => match failure {
                Failure::Unreachable => {
                    "is the collector running, and reachable from this host?".to_owned()
                }
                _ => "is the collector running?".to_owned(),
            },
            Class::Unresolved => "check the host name in OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            Class::WrongProtocol => match failure {
                Failure::Closed { grpc: true } => {
                    "is this an OTLP gRPC port? gRPC listens on 4317 by default and OTLP/HTTP \
                     on 4318; OTEL_EXPORTER_OTLP_PROTOCOL chooses"
                        .to_owned()
                }
                _ => "is this an OTLP/HTTP port? OTLP/HTTP listens on 4318 by default and gRPC \
                      on 4317; OTEL_EXPORTER_OTLP_PROTOCOL chooses"
                    .to_owned(),
            },
            Class::Tls => "check that the port serves TLS (or use http://), and that its \
                           certificate is valid for this host and trusted"
                .to_owned(),
            Class::Timeout => "the backend is slow or does not answer; \
                               OTEL_EXPORTER_OTLP_TIMEOUT sets how long to wait"
                .to_owned(),
            Class::Credentials => "the backend does not accept the credentials: check the API \
                                   key or token in OTEL_EXPORTER_OTLP_HEADERS"
                .to_owned(),
            // A backend that takes one signal only (MLflow has no /v1/metrics):
            // said once, with the setting that sends the other signal alone.
            Class::NoEndpoint => {
                let other = match self.signal {
                    Signal::Traces => "metrics",
                    Signal::Metrics => "traces",
                };
                match failure {
                    Failure::Grpc(_) => format!(
                        "the endpoint has no OTLP gRPC service for {signal}: to send {other} \
                         only, set {off}; if it should take {signal}, check \
                         OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL"
                    ),
                    _ => format!(
                        "the endpoint has no {signal} receiver: to send {other} only, set \
                         {off}; if it should take {signal}, check the path in \
                         OTEL_EXPORTER_OTLP_ENDPOINT"
                    ),
                }
            }
            Class::TooLarge => format!("the export is larger than the backend accepts: {smaller}"),
            Class::Exhausted => format!(
                "the export is larger than the backend accepts ({smaller}), or the backend asks \
                 to slow down"
            ),
            Class::Rejected => "the backend rejected the payload, or a header it requires is \
                                missing: check OTEL_EXPORTER_OTLP_HEADERS"
                .to_owned(),
            Class::Backpressure => "back-pressure: the backend is overloaded or over a quota and \
                                    asks to slow down"
                .to_owned(),
            Class::ServerError => {
                "the backend failed to handle the export: check its logs".to_owned()
            }
            Class::Refused4xx => "the backend refused the export: check the endpoint URL and \
                                  OTEL_EXPORTER_OTLP_HEADERS"
                .to_owned(),
            Class::Unexpected => {
                "the backend gave an unexpected answer: check the endpoint URL".to_owned()
            }
            Class::Queue => "OTEL_BSP_MAX_QUEUE_SIZE sets the cap".to_owned(),
            Class::Other => "check the collector's logs".to_owned(),
        }
    }
}

/// How long a probe waits to see whether the server closes the connection or
/// speaks first.
const PROBE_LISTEN: Duration = Duration::from_millis(150);

/// What a server did with a connection a probe opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Kept it open and waited for a request.
    Silent,
    /// Closed or reset it.
    Closed,
    /// Sent something first (an HTTP/2 server's settings).
    Spoke,
}

/// Connects to `endpoint` once (at most one second, then `listen` for what
/// the server does), for errors that do not say why.
fn probe(endpoint: &str, listen: Duration) -> Result<Answer, Failure> {
    use std::io::Read as _;
    use std::net::{TcpStream, ToSocketAddrs as _};
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return Err(Failure::Other(HTTP_NETWORK_ERROR.to_owned()));
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
        return Err(Failure::Unresolved);
    };
    let mut why = Failure::Unresolved;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) if listen.is_zero() => return Ok(Answer::Silent),
            Ok(mut stream) => {
                if stream.set_read_timeout(Some(listen)).is_err() {
                    return Ok(Answer::Silent);
                }
                return Ok(match stream.read(&mut [0u8; 1]) {
                    Ok(0) => Answer::Closed,
                    Ok(_) => Answer::Spoke,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        Answer::Silent
                    }
                    Err(_) => Answer::Closed,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                why = Failure::Refused;
            }
            Err(_) => why = Failure::Unreachable,
        }
    }
    Err(why)
}

/// A duration as the messages show it: `10 s`, `1500 ms`.
pub(crate) fn secs(d: Duration) -> String {
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

/// What a failed `force_flush` of one signal means, in words: the delivery
/// problem when there is one, else the SDK's failure.
pub(crate) fn flush_failure(health: Option<&SignalHealth>, error: &OTelSdkError) -> String {
    let Some(health) = health.filter(|h| h.failing.load(Ordering::Relaxed)) else {
        return crate::error::plain_words(error);
    };
    match health.last() {
        Some(failure) if failure.unconfirmed() => format!(
            "not confirmed by {} within {} (the backend may have stored it)",
            health.endpoint,
            secs(health.timeout)
        ),
        Some(failure) => format!(
            "could not be delivered to {} ({})",
            health.endpoint,
            failure.reason(health.timeout)
        ),
        None => crate::error::plain_words(error),
    }
}

/// One part of the shutdown summary: some of one signal's items, what became
/// of them, and why.
#[derive(Clone)]
struct Clause<'a> {
    health: &'a SignalHealth,
    count: u64,
    /// `true`: sent and not answered; `false`: certainly not delivered.
    unconfirmed: bool,
    /// After "to <endpoint>" (lost) or "by <endpoint>" (unconfirmed).
    why: String,
}

impl SignalHealth {
    fn what(&self, n: u64) -> String {
        match self.signal {
            Signal::Traces => plural(n, "span", "spans"),
            Signal::Metrics => plural(n, "metric export", "metric exports"),
        }
    }

    /// `http://c:4318/v1/traces` and `http://c:4318/v1/metrics` are one collector.
    fn base(&self) -> &str {
        self.endpoint
            .strip_suffix("/v1/traces")
            .or_else(|| self.endpoint.strip_suffix("/v1/metrics"))
            .unwrap_or(&self.endpoint)
    }

    /// What was not delivered, by what became of it, in the summary's order:
    /// failed exports, spans never sent, timed-out exports, exports still
    /// waiting for an answer at the shutdown deadline.
    fn clauses(&self, shutdown_timeout: Duration) -> [Option<Clause<'_>>; 4] {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let handed = load(&self.handed);
        let lost = load(&self.lost);
        let unconfirmed = load(&self.unconfirmed);
        let never_sent = load(&self.submitted).saturating_sub(handed);
        let in_flight = handed
            .saturating_sub(load(&self.delivered))
            .saturating_sub(lost)
            .saturating_sub(unconfirmed);
        let clause = |count: u64, unconfirmed: bool, why: String| {
            (count > 0).then_some(Clause {
                health: self,
                count,
                unconfirmed,
                why,
            })
        };
        [
            clause(
                lost,
                false,
                format!(
                    "({})",
                    self.last_lost().map_or_else(
                        || "the export failed".to_owned(),
                        |f| f.reason(self.timeout)
                    )
                ),
            ),
            clause(
                never_sent,
                false,
                if self.overflowed.load(Ordering::Relaxed) {
                    format!("({})", Failure::QueueFull.reason(self.timeout))
                } else {
                    format!(
                        "(still queued when the {} shutdown timeout ran out)",
                        secs(shutdown_timeout)
                    )
                },
            ),
            clause(unconfirmed, true, format!("within {}", secs(self.timeout))),
            clause(
                in_flight,
                true,
                format!(
                    "before the {} shutdown timeout ran out",
                    secs(shutdown_timeout)
                ),
            ),
        ]
    }
}

/// The line printed at shutdown when something was not delivered, or `None`.
///
/// Lost and unconfirmed items are told apart: "could not be delivered" only
/// for what certainly did not arrive; "not confirmed" for what was sent and
/// not answered in time, which the backend may well have stored.
pub(crate) fn shutdown_summary(
    traces: Option<&SignalHealth>,
    metrics: Option<&SignalHealth>,
    shutdown_timeout: Duration,
) -> Option<String> {
    let each: Vec<[Option<Clause<'_>>; 4]> = [traces, metrics]
        .into_iter()
        .flatten()
        .map(|h| {
            h.quiet.store(true, Ordering::Relaxed);
            h.clauses(shutdown_timeout)
        })
        .collect();
    let mut groups: Vec<Vec<Clause<'_>>> = Vec::new();
    for kind in 0..4 {
        for clause in each.iter().filter_map(|c| c[kind].as_ref()) {
            // Traces and metrics that fared alike at one collector: one clause.
            let joins = groups.last().is_some_and(|group: &Vec<Clause<'_>>| {
                group.iter().all(|c| {
                    c.unconfirmed == clause.unconfirmed
                        && c.why == clause.why
                        && c.health.base() == clause.health.base()
                        && c.health.signal != clause.health.signal
                })
            });
            match groups.last_mut() {
                Some(group) if joins => group.push(clause.clone()),
                _ => groups.push(vec![clause.clone()]),
            }
        }
    }
    if groups.is_empty() {
        return None;
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|group| {
            let what: Vec<String> = group.iter().map(|c| c.health.what(c.count)).collect();
            let first = &group[0];
            let base = first.health.base();
            if first.unconfirmed {
                let total: u64 = group.iter().map(|c| c.count).sum();
                let them = if total == 1 { "it" } else { "them" };
                format!(
                    "{} not confirmed by {base} {} (the backend may have stored {them})",
                    what.join(" and "),
                    first.why
                )
            } else {
                format!(
                    "{} could not be delivered to {base} {}",
                    what.join(" and "),
                    first.why
                )
            }
        })
        .collect();
    Some(format!("otel-agent: {}", parts.join("; ")))
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
        // Timed from here: the HTTP exporter does all its work when polled.
        let started = Instant::now();
        let export = self.inner.export(batch);
        async move {
            let result = export.await;
            self.health.exported(items, started.elapsed(), &result);
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
        self.health.handed.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let export = self.inner.export(metrics);
        async move {
            let result = export.await;
            self.health.exported(1, started.elapsed(), &result);
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
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    fn capture() -> (Report, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        (
            Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned())),
            lines,
        )
    }

    fn internal(text: &str) -> OTelSdkError {
        OTelSdkError::InternalFailure(text.to_owned())
    }

    /// A port that accepts connections (the kernel's backlog) and never answers.
    fn silent() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        (listener, format!("127.0.0.1:{}", address.port()))
    }

    /// A port nothing listens on.
    fn refused() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
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
                Err(internal(
                    "TonicTracesClient export failed with gRPC code: Unavailable: transport \
                     error: tcp connect error: tcp connect error: Connection refused (os error 111)",
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

    /// `n` spans that entered the queue, left it, and failed with `error`
    /// after `elapsed`.
    fn spans_failed(health: &SignalHealth, n: u64, elapsed: Duration, error: &OTelSdkError) {
        for _ in 0..n {
            health.span_ended();
        }
        health.handed.fetch_add(n, Ordering::Relaxed);
        health.exported(n, elapsed, &Err(clone(error)));
    }

    fn clone(error: &OTelSdkError) -> OTelSdkError {
        match error {
            OTelSdkError::AlreadyShutdown => OTelSdkError::AlreadyShutdown,
            OTelSdkError::Timeout(d) => OTelSdkError::Timeout(*d),
            OTelSdkError::InternalFailure(s) => OTelSdkError::InternalFailure(s.clone()),
        }
    }

    fn traces(endpoint: &str, timeout: Duration, report: Report) -> Arc<SignalHealth> {
        SignalHealth::traces(endpoint.to_owned(), timeout, 2048, 512, report)
    }

    /// The texts opentelemetry-otlp 0.33 gave against servers on 127.0.0.1
    /// (recorded from its HTTP and tonic exporters), and what they mean.
    #[test]
    fn the_exporters_texts_are_classified() {
        let c = |text: &str| classify(&internal(text));
        for code in [400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504] {
            assert_eq!(
                c(&format!("HTTP export failed with status code: {code}")),
                Failure::Http(code)
            );
        }
        assert_eq!(c("HTTP export failed: network error"), Failure::Network);
        let grpc = |rest: &str| {
            c(&format!(
                "TonicTracesClient export failed with gRPC code: {rest}"
            ))
        };
        assert_eq!(
            grpc(
                "Unavailable: transport error: tcp connect error: tcp connect error: Connection \
                 refused (os error 111)"
            ),
            Failure::Refused
        );
        assert_eq!(
            grpc("Cancelled: transport error: Timeout expired"),
            Failure::Timeout
        );
        assert_eq!(
            grpc("Unknown: transport error: connection error: connection reset"),
            Failure::Closed { grpc: true }
        );
        assert_eq!(
            grpc("Unknown: transport error: connection error: stream closed because of a broken pipe"),
            Failure::Closed { grpc: true }
        );
        assert_eq!(
            grpc(
                "Unavailable: transport error: dns error: dns error: failed to lookup address \
                 information: Name or service not known"
            ),
            Failure::Unresolved
        );
        assert_eq!(
            grpc("Unavailable: transport error: tcp connect error: Connection timed out (os error 110)"),
            Failure::Unreachable
        );
        assert_eq!(
            grpc("Unavailable: transport error: invalid peer certificate: UnknownIssuer"),
            Failure::Tls
        );
        for (debug, name) in GRPC_CODES {
            let expected = match name {
                "DEADLINE_EXCEEDED" => Failure::Timeout,
                _ => Failure::Grpc(name),
            };
            assert_eq!(grpc(debug), expected, "{debug}");
            assert_eq!(
                c(&format!(
                    "TonicMetricsClient export failed with gRPC code: {debug}"
                )),
                expected
            );
        }
        assert_eq!(
            c("TonicTracesClient export failed in interceptor with gRPC code: Unauthenticated"),
            Failure::Other(
                "the request could not be prepared (gRPC interceptor: UNAUTHENTICATED)".into()
            )
        );
        assert_eq!(
            classify(&OTelSdkError::Timeout(Duration::from_secs(1))),
            Failure::Timeout
        );
        assert_eq!(
            c("error sending request: Connection refused (os error 111)"),
            Failure::Refused
        );
        assert_eq!(c("operation timed out"), Failure::Timeout);
        let long = "x".repeat(300);
        assert_eq!(c(&long), Failure::Other(format!("{}…", "x".repeat(160))));
    }

    /// Each status class, and its short reason: only connection failures ask
    /// whether the collector runs.
    #[test]
    fn each_class_says_what_to_check() {
        let (report, _) = capture();
        let health = traces("http://c:4318/v1/traces", Duration::from_secs(10), report);
        let hint = |f: Failure| (f.reason(health.timeout), health.hint(&f));
        let check = |f: Failure, reason: &str, hint_has: &str| {
            let (r, h) = hint(f.clone());
            assert_eq!(r, reason, "{f:?}");
            assert!(h.contains(hint_has), "{f:?}: {h}");
            let asks = h.contains("is the collector running");
            assert_eq!(
                asks,
                matches!(f, Failure::Refused | Failure::Unreachable),
                "{f:?}: {h}"
            );
        };
        check(
            Failure::Refused,
            "connection refused",
            "is the collector running?",
        );
        check(
            Failure::Unreachable,
            "no answer to a connection within 1 s",
            "reachable from this host",
        );
        check(
            Failure::Unresolved,
            "the host name does not resolve",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        );
        check(
            Failure::Timeout,
            "no answer within 10 s",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        );
        check(Failure::Tls, "the TLS handshake failed", "certificate");
        check(
            Failure::Closed { grpc: false },
            "the connection was closed without an answer",
            "is this an OTLP/HTTP port?",
        );
        check(
            Failure::Closed { grpc: true },
            "the connection was closed without an answer",
            "is this an OTLP gRPC port?",
        );
        for (code, reason) in [(401, "HTTP 401 Unauthorized"), (403, "HTTP 403 Forbidden")] {
            check(Failure::Http(code), reason, "OTEL_EXPORTER_OTLP_HEADERS");
        }
        for code in ["UNAUTHENTICATED", "PERMISSION_DENIED"] {
            check(
                Failure::Grpc(code),
                &format!("gRPC {code}"),
                "the backend does not accept the credentials",
            );
        }
        check(
            Failure::Http(404),
            "HTTP 404 Not Found",
            "the endpoint has no traces receiver: to send metrics only, set \
             OTEL_TRACES_EXPORTER=none; if it should take traces, check the path in \
             OTEL_EXPORTER_OTLP_ENDPOINT",
        );
        check(
            Failure::Grpc("UNIMPLEMENTED"),
            "gRPC UNIMPLEMENTED",
            "no OTLP gRPC service for traces",
        );
        check(
            Failure::Http(413),
            "HTTP 413 Payload Too Large",
            "lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE, now 512",
        );
        check(
            Failure::Grpc("RESOURCE_EXHAUSTED"),
            "gRPC RESOURCE_EXHAUSTED",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE, now 512), or the backend asks to slow down",
        );
        for (code, reason) in [
            (400, "HTTP 400 Bad Request"),
            (422, "HTTP 422 Unprocessable Entity"),
        ] {
            check(
                Failure::Http(code),
                reason,
                "rejected the payload, or a header it requires is missing: check \
                 OTEL_EXPORTER_OTLP_HEADERS",
            );
        }
        check(
            Failure::Grpc("INVALID_ARGUMENT"),
            "gRPC INVALID_ARGUMENT",
            "rejected the payload",
        );
        for (code, reason) in [
            (429, "HTTP 429 Too Many Requests"),
            (503, "HTTP 503 Service Unavailable"),
        ] {
            check(Failure::Http(code), reason, "back-pressure");
        }
        check(
            Failure::Grpc("UNAVAILABLE"),
            "gRPC UNAVAILABLE",
            "back-pressure",
        );
        for (code, reason) in [
            (500, "HTTP 500 Internal Server Error"),
            (502, "HTTP 502 Bad Gateway"),
            (504, "HTTP 504 Gateway Timeout"),
        ] {
            check(Failure::Http(code), reason, "the backend failed");
        }
        check(
            Failure::Grpc("INTERNAL"),
            "gRPC INTERNAL",
            "the backend failed",
        );
        check(
            Failure::Http(405),
            "HTTP 405 Method Not Allowed",
            "the endpoint has no traces receiver",
        );
        check(
            Failure::Http(406),
            "HTTP 406 Not Acceptable",
            "the backend refused the export",
        );
        let metrics = SignalHealth::metrics(
            "http://c:4318/v1/metrics".into(),
            Duration::from_secs(1),
            capture().0,
        );
        assert_eq!(
            metrics.hint(&Failure::Http(404)),
            "the endpoint has no metrics receiver: to send traces only, set \
             OTEL_METRICS_EXPORTER=none; if it should take metrics, check the path in \
             OTEL_EXPORTER_OTLP_ENDPOINT"
        );
        assert!(metrics
            .hint(&Failure::Grpc("UNIMPLEMENTED"))
            .starts_with("the endpoint has no OTLP gRPC service for metrics: to send traces only, set OTEL_METRICS_EXPORTER=none"));
        assert!(metrics
            .hint(&Failure::Http(413))
            .contains("record fewer attribute combinations"));
    }

    #[test]
    fn the_first_failure_is_reported_once_then_counted_and_recovery_noted_once() {
        let (report, lines) = capture();
        let health = traces("http://127.0.0.1:4317", Duration::from_secs(10), report);
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

    /// A backend without a metrics receiver (MLflow answers 404 on
    /// /v1/metrics): one warning in a run of many intervals, naming the
    /// setting that sends traces only; later 404s are only counted.
    #[test]
    fn a_missing_receiver_is_reported_once_whatever_the_intervals() {
        let (report, lines) = capture();
        let metrics = SignalHealth::metrics(
            "http://127.0.0.1:5000/v1/metrics".into(),
            Duration::from_secs(10),
            report,
        );
        let not_found = internal("HTTP export failed with status code: 404");
        for _ in 0..500 {
            metrics.submitted.fetch_add(1, Ordering::Relaxed);
            metrics.handed.fetch_add(1, Ordering::Relaxed);
            metrics.exported(1, Duration::from_millis(2), &Err(clone(&not_found)));
        }
        // Phoenix's answer, the same warning.
        let (phoenix_report, phoenix_lines) = capture();
        let phoenix = SignalHealth::metrics(
            "http://127.0.0.1:6006/v1/metrics".into(),
            Duration::from_secs(10),
            phoenix_report,
        );
        for _ in 0..3 {
            phoenix.submitted.fetch_add(1, Ordering::Relaxed);
            phoenix.handed.fetch_add(1, Ordering::Relaxed);
            phoenix.exported(
                1,
                Duration::from_millis(2),
                &Err(internal("HTTP export failed with status code: 405")),
            );
        }
        let phoenix_lines = phoenix_lines.lock().unwrap().clone();
        assert_eq!(phoenix_lines.len(), 1, "{phoenix_lines:?}");
        assert!(
            phoenix_lines[0].contains("set OTEL_METRICS_EXPORTER=none"),
            "{phoenix_lines:?}"
        );
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "otel-agent: cannot export metrics to http://127.0.0.1:5000/v1/metrics (HTTP 404 \
              Not Found); metric exports are being dropped — the endpoint has no metrics \
              receiver: to send traces only, set OTEL_METRICS_EXPORTER=none; if it should take \
              metrics, check the path in OTEL_EXPORTER_OTLP_ENDPOINT (further failures are \
              counted, not printed)"
            ]
        );
        assert_eq!(metrics.undelivered(), 500);
    }

    /// Credentials in the endpoint URL, or in an exporter's text, never reach
    /// a message.
    #[test]
    fn credentials_never_reach_a_message() {
        let (report, lines) = capture();
        let (_listener, open) = silent();
        let health = traces(
            &format!("http://user:s3cret@{open}/v1/traces?api_key=k3y"),
            Duration::from_millis(500),
            report,
        );
        spans_failed(
            &health,
            2,
            Duration::from_millis(1),
            &internal("HTTP export failed with status code: 401"),
        );
        spans_failed(
            &health,
            1,
            Duration::from_millis(1),
            &internal("error sending request for url (http://user:s3cret@h/v1/traces): boom"),
        );
        let mut texts = lines.lock().unwrap().clone();
        texts.extend(shutdown_summary(
            Some(&health),
            None,
            Duration::from_secs(5),
        ));
        texts.push(flush_failure(Some(&health), &internal("x")));
        texts.push(format!("{health:?}"));
        assert_eq!(
            classify(&internal("weird: https://u:s3cret@h:1/x failed")),
            Failure::Other("weird: https://***@h:1/x failed".into())
        );
        for text in &texts {
            assert!(!text.contains("s3cret") && !text.contains("k3y"), "{text}");
        }
        assert!(
            texts[0].contains(&format!("http://***@{open}/v1/traces")),
            "{texts:?}"
        );
        // The probe still finds the endpoint.
        assert_eq!(
            health.explain(
                &internal("HTTP export failed: network error"),
                Duration::from_millis(1)
            ),
            Failure::Closed { grpc: false }
        );
    }

    #[test]
    fn an_error_status_is_not_a_connection_problem() {
        let (report, lines) = capture();
        let health = traces("http://c:4318/v1/traces", Duration::from_secs(10), report);
        spans_failed(
            &health,
            13,
            Duration::from_millis(5),
            &internal("HTTP export failed with status code: 422"),
        );
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "otel-agent: cannot export traces to http://c:4318/v1/traces (HTTP 422 \
                 Unprocessable Entity); spans are being dropped — the backend rejected the \
                 payload, or a header it requires is missing: check OTEL_EXPORTER_OTLP_HEADERS \
                 (further failures are counted, not printed)"
            ]
        );
        assert_eq!(
            shutdown_summary(Some(&health), None, Duration::from_secs(5)).as_deref(),
            Some(
                "otel-agent: 13 spans could not be delivered to http://c:4318 (HTTP 422 \
                 Unprocessable Entity)"
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
                "otel-agent: the span queue is full (8 spans or 64 MiB waiting for \
                 http://c:4318/v1/traces)"
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

    /// A request that timed out went out: the backend may have stored it, so it
    /// is "not confirmed", never "could not be delivered".
    #[test]
    fn a_timed_out_export_is_not_confirmed_rather_than_lost() {
        let (_listener, address) = silent();
        let endpoint = format!("http://{address}");
        let (report, lines) = capture();
        let timeout = Duration::from_millis(1500);
        let traces = traces(&endpoint, timeout, report.clone());
        let metrics = SignalHealth::metrics(endpoint.clone(), timeout, report);
        let tonic_timeout = internal(
            "TonicTracesClient export failed with gRPC code: Cancelled: transport error: Timeout \
             expired",
        );
        spans_failed(&traces, 13, timeout, &tonic_timeout);
        metrics.submitted.fetch_add(2, Ordering::Relaxed);
        metrics.handed.fetch_add(2, Ordering::Relaxed);
        metrics.exported(2, timeout, &Err(OTelSdkError::Timeout(timeout)));
        assert_eq!(
            *lines.lock().unwrap(),
            [
                format!(
                    "otel-agent: cannot export traces to {endpoint} (no answer within 1500 ms); \
                     spans are not confirmed (the backend may have stored them) — the backend \
                     is slow or does not answer; OTEL_EXPORTER_OTLP_TIMEOUT sets how long to \
                     wait (further failures are counted, not printed)"
                ),
                format!(
                    "otel-agent: cannot export metrics to {endpoint} (no answer within 1500 ms); \
                     metric exports are not confirmed (the backend may have stored them) — the \
                     backend is slow or does not answer; OTEL_EXPORTER_OTLP_TIMEOUT sets how \
                     long to wait (further failures are counted, not printed)"
                ),
            ]
        );
        assert_eq!(
            shutdown_summary(Some(&traces), Some(&metrics), Duration::from_secs(5)),
            Some(format!(
                "otel-agent: 13 spans and 2 metric exports not confirmed by {endpoint} within \
                 1500 ms (the backend may have stored them)"
            ))
        );
    }

    /// Lost, never sent, timed out and still in flight at the deadline: each
    /// said as what it is, in one line.
    #[test]
    fn the_summary_tells_lost_from_unconfirmed() {
        let (_listener, address) = silent();
        let endpoint = format!("http://{address}/v1/traces");
        let (report, _) = capture();
        let health = SignalHealth::traces(endpoint, Duration::from_secs(10), 8, 2, report);
        spans_failed(
            &health,
            3,
            Duration::from_millis(2),
            &internal("HTTP export failed with status code: 503"),
        );
        spans_failed(
            &health,
            1,
            Duration::from_secs(10),
            &internal("HTTP export failed: network error"),
        );
        // Two sent and not answered yet, five still queued.
        for _ in 0..7 {
            health.span_ended();
        }
        health.handed.fetch_add(2, Ordering::Relaxed);
        assert_eq!(
            shutdown_summary(Some(&health), None, Duration::from_millis(1500)),
            Some(format!(
                "otel-agent: 3 spans could not be delivered to http://{address} (HTTP 503 Service \
                 Unavailable); 5 spans could not be delivered to http://{address} (still queued \
                 when the 1500 ms shutdown timeout ran out); 1 span not confirmed by \
                 http://{address} within 10 s (the backend may have stored it); 2 spans not \
                 confirmed by http://{address} before the 1500 ms shutdown timeout ran out (the \
                 backend may have stored them)"
            ))
        );
    }

    /// Nothing to say when everything arrived; and after the summary, nothing
    /// more: an export that fails later is counted, not printed.
    #[test]
    fn the_summary_is_silent_when_all_arrived_and_is_the_last_word() {
        let (report, lines) = capture();
        let health = traces("http://c:4317", Duration::from_secs(1), report);
        let exporter = CountingSpanExporter::new(Flaky::default(), health.clone());
        export(&exporter, &health, 3);
        assert_eq!(
            shutdown_summary(Some(&health), None, Duration::from_secs(5)),
            None
        );
        spans_failed(
            &health,
            1,
            Duration::from_millis(1),
            &internal("TonicTracesClient export failed with gRPC code: Unknown"),
        );
        assert!(lines.lock().unwrap().is_empty());
        assert_eq!(health.undelivered(), 1);
    }

    #[test]
    fn the_summary_gives_each_reason_when_they_differ() {
        let (report, _) = capture();
        let traces = traces(
            "http://c:4318/v1/traces",
            Duration::from_secs(1),
            report.clone(),
        );
        let metrics = SignalHealth::metrics(
            "http://c:4318/v1/metrics".into(),
            Duration::from_secs(1),
            report,
        );
        traces.span_ended();
        metrics.submitted.fetch_add(1, Ordering::Relaxed);
        metrics.handed.fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            shutdown_summary(Some(&traces), Some(&metrics), Duration::from_secs(5)).as_deref(),
            Some(
                "otel-agent: 1 span could not be delivered to http://c:4318 (still queued when \
                 the 5 s shutdown timeout ran out); 1 metric export not confirmed by \
                 http://c:4318 before the 5 s shutdown timeout ran out (the backend may have \
                 stored it)"
            )
        );
        metrics.exported(
            1,
            Duration::from_millis(3),
            &Err(internal("HTTP export failed with status code: 404")),
        );
        traces.handed.fetch_add(1, Ordering::Relaxed);
        traces.exported(
            1,
            Duration::from_millis(3),
            &Err(internal("HTTP export failed with status code: 404")),
        );
        assert_eq!(
            shutdown_summary(Some(&traces), Some(&metrics), Duration::from_secs(5)).as_deref(),
            Some(
                "otel-agent: 1 span and 1 metric export could not be delivered to http://c:4318 \
                 (HTTP 404 Not Found)"
            )
        );
    }

    /// The HTTP exporter says "network error" for everything below HTTP; the
    /// time the export took and one connection tell which.
    #[test]
    fn a_network_error_is_explained_by_its_duration_and_a_probe() {
        let network = internal("HTTP export failed: network error");
        let timeout = Duration::from_millis(500);
        let explain = |endpoint: String, elapsed: Duration| {
            let health = traces(&endpoint, timeout, capture().0);
            health.explain(&network, elapsed)
        };
        let (_listener, open) = silent();
        assert_eq!(
            explain(format!("http://{open}/v1/traces"), timeout),
            Failure::Timeout
        );
        assert_eq!(
            explain(
                format!("http://{open}/v1/traces"),
                Duration::from_millis(40)
            ),
            Failure::Closed { grpc: false }
        );
        assert_eq!(
            explain(
                format!("https://{open}/v1/traces"),
                Duration::from_millis(40)
            ),
            Failure::Tls
        );
        // A server that closes every connection, even after the whole timeout
        // (the exporter's retries can take that long): closed, not timed out.
        let closing = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = closing.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in closing.incoming() {
                drop(stream);
            }
        });
        assert_eq!(
            explain(format!("http://{at}/v1/traces"), timeout),
            Failure::Closed { grpc: false }
        );
        let closed = refused();
        for elapsed in [Duration::from_millis(300), timeout] {
            assert_eq!(
                explain(format!("http://{closed}/v1/traces"), elapsed),
                Failure::Refused
            );
        }
        assert_eq!(
            explain("http://nowhere.invalid:4318/v1/traces".into(), timeout),
            Failure::Unresolved
        );
    }

    /// One probe per outage: later failures reuse it until an export succeeds.
    #[test]
    fn the_probe_runs_once_per_outage() {
        let network = internal("HTTP export failed: network error");
        let closed = refused();
        let health = traces(
            &format!("http://{closed}/v1/traces"),
            Duration::from_millis(500),
            capture().0,
        );
        assert_eq!(
            health.explain(&network, Duration::from_millis(1)),
            Failure::Refused
        );
        let listener = TcpListener::bind(&closed).unwrap();
        assert_eq!(
            health.explain(&network, Duration::from_millis(1)),
            Failure::Refused,
            "reused"
        );
        health.exported(0, Duration::ZERO, &Ok(()));
        assert_eq!(
            health.explain(&network, Duration::from_millis(1)),
            Failure::Closed { grpc: false },
            "probed again after a success"
        );
        drop(listener);
    }

    #[test]
    fn a_failed_flush_is_said_in_words() {
        let (report, _) = capture();
        let health = traces("http://c:4318/v1/traces", Duration::from_secs(1), report);
        let failed =
            internal("errs: [Err(InternalFailure(\"HTTP export failed with status code: 401\"))]");
        assert_eq!(
            flush_failure(Some(&health), &failed),
            "the SDK reported an internal failure"
        );
        spans_failed(
            &health,
            1,
            Duration::from_millis(1),
            &internal("HTTP export failed with status code: 401"),
        );
        assert_eq!(
            flush_failure(Some(&health), &failed),
            "could not be delivered to http://c:4318/v1/traces (HTTP 401 Unauthorized)"
        );
        assert!(health.had_trouble());
        assert_eq!(
            flush_failure(None, &OTelSdkError::Timeout(Duration::from_secs(5))),
            "not finished within 5 s"
        );
    }
}
