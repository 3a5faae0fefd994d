//! The standard `OTEL_*` environment, parsed and checked.
//!
//! Parsing is strict on purpose: a typo in an exporter setting otherwise shows up
//! hours later as "no data in Grafana". Every error names the variable and what it
//! accepts. Unset or empty variables mean "use the default", as the OpenTelemetry
//! environment specification says.
//!
//! Everything that comes from outside has an upper bound, so that no value can
//! exhaust memory or hold an export forever; a value above it is an error
//! naming the variable, the bound and what to write instead:
//!
//! | variables | accepted |
//! |---|---|
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | 1 to [`MAX_QUEUE_SIZE`] spans |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | 1 to [`MAX_EXPORT_BATCH_SIZE`] spans, and at most the queue size |
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_METRIC_EXPORT_INTERVAL` (intervals) | up to [`MAX_INTERVAL`] (1 hour); the metric interval at least 1 ms |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT` (+ per signal), `OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_METRIC_EXPORT_TIMEOUT` (timeouts) | 1 ms to [`MAX_TIMEOUT`] (10 minutes) |
//! | `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` | 1 to [`MAX_ATTRIBUTE_VALUE_LENGTH`] characters |
//! | `OTEL_AGENT_METRIC_CARDINALITY_LIMIT` | 1 to [`MAX_CARDINALITY_LIMIT`] attribute sets per metric (default 2000) |
//!
//! A value that is not UTF-8 in any `OTEL_*` variable is an error naming the
//! variable ([`check_unicode`]), never "unset". Messages never show header
//! values or the credentials of a URL ([`printable_endpoint`](crate::printable::printable_endpoint),
//! [`printable_headers`](crate::printable::printable_headers)).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use crate::error::InitError;
use crate::printable::{holds_endpoint, holds_headers, printable_endpoint, printable_value};

/// The wire protocol of the OTLP exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (a collector's port 4317). Needs the runtime's
    /// `otlp-grpc` feature (on by default).
    Grpc,
    /// OTLP protobuf over HTTP (a collector's port 4318). Needs the runtime's
    /// `otlp-http` feature (on by default).
    HttpProtobuf,
}

impl Protocol {
    /// The otel-agent-runtime feature that exports over this protocol.
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Protocol::Grpc => "otlp-grpc",
            Protocol::HttpProtobuf => "otlp-http",
        }
    }

    /// Whether this build exports over this protocol.
    pub(crate) fn is_built(self) -> bool {
        match self {
            Protocol::Grpc => cfg!(feature = "otlp-grpc"),
            Protocol::HttpProtobuf => cfg!(feature = "otlp-http"),
        }
    }

    /// As `OTEL_EXPORTER_OTLP_PROTOCOL` spells it.
    fn env_name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    fn other(self) -> Self {
        match self {
            Protocol::Grpc => Protocol::HttpProtobuf,
            Protocol::HttpProtobuf => Protocol::Grpc,
        }
    }
}

/// Where a signal (traces or metrics) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterKind {
    /// OTLP to a collector or backend. Needs the runtime's `otlp-grpc` or
    /// `otlp-http` feature (both on by default), the one of the [`Protocol`].
    Otlp,
    /// The terminal: a trace tree and run summary for traces, periodic dumps for metrics.
    Console,
    /// Nowhere; the signal is still measured but not exported.
    None,
    /// Metrics only: served for Prometheus to scrape at `/metrics` on
    /// `OTEL_EXPORTER_PROMETHEUS_HOST:OTEL_EXPORTER_PROMETHEUS_PORT` (default
    /// `localhost:9464`). Needs the runtime's `prometheus` feature (on by default).
    Prometheus,
}

/// Which traces are kept, from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerKind {
    /// Keep every trace.
    AlwaysOn,
    /// Keep no trace (metrics are still complete).
    AlwaysOff,
    /// Keep this fraction of traces, chosen by trace id.
    TraceIdRatio(f64),
    /// Follow the parent's decision; for roots, keep all.
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; for roots, keep none.
    ParentBasedAlwaysOff,
    /// Follow the parent's decision; for roots, keep this fraction.
    ParentBasedTraceIdRatio(f64),
}

/// One signal's OTLP settings, resolved from the generic and per-signal variables.
/// Its `Debug` shows header keys only and the endpoint without credentials.
#[derive(Clone, PartialEq)]
pub(crate) struct OtlpSettings {
    /// The full URL to send to (for HTTP, including `/v1/traces` or `/v1/metrics`).
    pub endpoint: Option<String>,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

impl std::fmt::Debug for OtlpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpSettings")
            .field(
                "endpoint",
                &self.endpoint.as_deref().map(printable_endpoint),
            )
            .field("protocol", &self.protocol)
            .field("header_keys", &keys)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The variables that chose a signal's OTLP export, to name them when this
/// build leaves that export out.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OtlpOrigin {
    /// `OTEL_TRACES_EXPORTER` or `OTEL_METRICS_EXPORTER`, when it says `otlp`.
    pub exporter_var: Option<&'static str>,
    /// The endpoint variable in effect, and its value as messages show it
    /// (without credentials).
    pub endpoint: Option<(&'static str, String)>,
    /// The protocol variable in effect, and its value.
    pub protocol: Option<(&'static str, String)>,
}

/// Everything `init()` needs, after the environment and the builder have been merged.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub disabled: bool,
    pub resource: Vec<(String, String)>,
    pub service_name: Option<String>,
    pub traces: ExporterKind,
    pub metrics: ExporterKind,
    pub traces_otlp: OtlpSettings,
    pub metrics_otlp: OtlpSettings,
    /// Where the environment's OTLP choices came from, per signal.
    pub traces_origin: OtlpOrigin,
    pub metrics_origin: OtlpOrigin,
    pub metric_interval: Duration,
    pub sampler: SamplerKind,
    pub prometheus_host: String,
    pub prometheus_port: u16,
    pub batch: BatchSettings,
    /// The longest attribute value to export, in characters, from
    /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` (which wins) or
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`: 1 to [`MAX_ATTRIBUTE_VALUE_LENGTH`];
    /// `None` when neither is set (no limit from the environment).
    pub attribute_value_length_limit: Option<usize>,
    /// `OTEL_AGENT_METRIC_CARDINALITY_LIMIT`: attribute sets kept per metric
    /// before the SDK merges new ones into its overflow series.
    pub metric_cardinality_limit: usize,
}

/// The span queue of the OTLP exporter (`OTEL_BSP_*`): the memory cap while the
/// collector is slow or away. The queue grows only as spans wait (see
/// `span_queue.rs`), so its default count holds a burst of tens of thousands
/// of calls without costing memory until one comes; 64 MiB of span data
/// bound it as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSettings {
    /// Spans waiting for export at most; more are dropped (and counted).
    pub max_queue_size: usize,
    /// Spans in one export request at most.
    pub max_export_batch_size: usize,
    /// How long spans wait before an export is started.
    pub schedule_delay: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_queue_size: 65_536,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_secs(5),
        }
    }
}

/// Where the Prometheus endpoint listens unless told otherwise, as the
/// OpenTelemetry environment specification gives it.
pub(crate) const DEFAULT_PROMETHEUS_HOST: &str = "localhost";
/// The port registered for OpenTelemetry's Prometheus exporters.
pub(crate) const DEFAULT_PROMETHEUS_PORT: u16 = 9464;

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(60);

/// The largest span queue `OTEL_BSP_MAX_QUEUE_SIZE` may ask for: 2^20 spans.
/// A queued span holds its attributes and events (a kilobyte or more for a
/// model call), so a queue this full is already a gigabyte; the issue's
/// `100000000` aborted the process before it exported anything.
pub(crate) const MAX_QUEUE_SIZE: usize = 1 << 20;
/// The largest export batch `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` may ask for: 2^16
/// spans. Collectors refuse requests above a few megabytes (gRPC's default is
/// 4 MiB), which a batch this large already exceeds.
pub(crate) const MAX_EXPORT_BATCH_SIZE: usize = 1 << 16;
/// The longest interval or delay (`OTEL_METRIC_EXPORT_INTERVAL`,
/// `OTEL_BSP_SCHEDULE_DELAY`, the builder's `metric_export_interval`): one
/// hour. Beyond it, data waits so long that a restart loses it all.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// The longest timeout (`OTEL_EXPORTER_OTLP_TIMEOUT` and its per-signal
/// variants, `OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_METRIC_EXPORT_TIMEOUT`, the
/// builder's `shutdown_timeout`): ten minutes. An export that has not been
/// answered by then will not be.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The largest `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` /
/// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`: 2^20 characters, up to 4 MiB of
/// UTF-8, which is what a collector accepts in one request by default.
pub(crate) const MAX_ATTRIBUTE_VALUE_LENGTH: usize = 1 << 20;

/// Our variable for the metrics' cardinality limit (the specification names
/// none); each attribute set costs memory for the life of the process.
const CARDINALITY_VAR: &str = "OTEL_AGENT_METRIC_CARDINALITY_LIMIT";

/// The most attribute sets a metric may keep: about 100 MB for one of our
/// histograms with this many series.
pub(crate) const MAX_CARDINALITY_LIMIT: usize = 100_000;

/// A source of environment values; tests pass a map, `init()` the process environment.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn get(lookup: Lookup<'_>, var: &str) -> Option<String> {
    lookup(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The error for `var=value`. Values that may hold credentials are never
/// kept as given: header lists show their keys only, URLs lose their user
/// and password.
fn invalid(var: &'static str, value: &str, expected: impl Into<String>) -> InitError {
    InitError::InvalidEnv {
        var,
        value: printable_value(var, value),
        expected: expected.into(),
    }
}

pub(crate) fn parse_bool(var: &'static str, value: &str) -> Result<bool, InitError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(var, value, "`true` or `false`")),
    }
}

/// A duration as the bounds are written: `1 hour`, `10 minutes`, `1 ms`.
fn words(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs, d.subsec_nanos()) {
        (0, _) => format!("{} ms", d.as_millis()),
        (s, 0) if s % 3600 == 0 => plural(s / 3600, "hour"),
        (s, 0) if s % 60 == 0 => plural(s / 60, "minute"),
        (s, 0) => plural(s, "second"),
        _ => format!("{} ms", d.as_millis()),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// What a duration variable accepts: its kind (for the message), its range
/// and its default.
#[derive(Debug, Clone, Copy)]
struct MillisRange {
    /// `interval`, `delay` or `timeout`.
    kind: &'static str,
    min: Duration,
    max: Duration,
    default: Duration,
}

/// A timeout: 1 ms to [`MAX_TIMEOUT`].
const TIMEOUT_RANGE: MillisRange = MillisRange {
    kind: "timeout",
    min: Duration::from_millis(1),
    max: MAX_TIMEOUT,
    default: DEFAULT_TIMEOUT,
};

impl MillisRange {
    fn expected(&self) -> String {
        format!(
            "a whole number of milliseconds from {} to {} ({}), e.g. `{}`",
            self.min.as_millis(),
            self.max.as_millis(),
            words(self.max),
            self.default.as_millis()
        )
    }

    fn too_long(&self) -> String {
        format!(
            "at most {} milliseconds ({}, the upper bound for this {}): write a smaller \
             number, or unset it for the default ({})",
            self.max.as_millis(),
            words(self.max),
            self.kind,
            self.default.as_millis()
        )
    }

    /// Checks a duration given in code, for `setting`.
    fn check_setting(&self, setting: &'static str, value: Duration) -> Result<Duration, InitError> {
        if (self.min..=self.max).contains(&value) {
            return Ok(value);
        }
        Err(InitError::InvalidSetting {
            setting,
            value: format!("{value:?}"),
            expected: format!(
                "a duration from {} to {} (the upper bound for this {})",
                words(self.min),
                words(self.max),
                self.kind
            ),
        })
    }
}

/// Milliseconds within `range`: beyond its bound is an error saying the bound.
fn parse_millis(var: &'static str, value: &str, range: MillisRange) -> Result<Duration, InitError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(var, value, range.expected()));
    }
    // All digits: a number too large for a u64 is above every bound too.
    let millis = value.parse::<u64>().unwrap_or(u64::MAX);
    let d = Duration::from_millis(millis);
    if d > range.max {
        Err(invalid(var, value, range.too_long()))
    } else if d < range.min {
        Err(invalid(var, value, range.expected()))
    } else {
        Ok(d)
    }
}

/// A count from 1 to `max` of `what` (`spans`, `characters`); `example` is
/// shown for a value that is not a number, `unset` says what unsetting gives.
fn parse_count(
    var: &'static str,
    value: &str,
    what: &str,
    max: usize,
    (example, unset): (&str, &str),
) -> Result<usize, InitError> {
    let expected = || format!("a positive whole number of {what}, at most {max}, e.g. `{example}`");
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(var, value, expected()));
    }
    match value.parse::<usize>() {
        Ok(0) => Err(invalid(var, value, expected())),
        Ok(n) if n <= max => Ok(n),
        // All digits: too large for a usize is above the bound too.
        _ => Err(invalid(
            var,
            value,
            format!(
                "at most {max} {what} (the upper bound, so that no setting can exhaust \
                 memory): write a smaller number, or unset it {unset}"
            ),
        )),
    }
}

/// A host name or IP address to listen on: no scheme, no port, no path.
pub(crate) fn check_listen_host(value: &str) -> Result<String, String> {
    const EXPECTED: &str = "a host name or IP address to listen on, such as `localhost`, \
                            `127.0.0.1` or `0.0.0.0` (no scheme, no port)";
    let host = value
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(value);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(host.to_owned());
    }
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid_name {
        Ok(host.to_owned())
    } else {
        Err(EXPECTED.to_owned())
    }
}

fn parse_batch(lookup: Lookup<'_>) -> Result<BatchSettings, InitError> {
    const QUEUE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
    const BATCH: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
    const DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
    const TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";
    let mut batch = BatchSettings::default();
    if let Some(v) = get(lookup, QUEUE) {
        let default = batch.max_queue_size.to_string();
        batch.max_queue_size = parse_count(
            QUEUE,
            &v,
            "spans",
            MAX_QUEUE_SIZE,
            (&default, &format!("for the default ({default})")),
        )?;
    }
    match get(lookup, BATCH) {
        Some(v) => {
            let default = batch.max_export_batch_size.to_string();
            batch.max_export_batch_size = parse_count(
                BATCH,
                &v,
                "spans",
                MAX_EXPORT_BATCH_SIZE,
                (&default, &format!("for the default ({default})")),
            )?;
            if batch.max_export_batch_size > batch.max_queue_size {
                return Err(invalid(
                    BATCH,
                    &v,
                    format!(
                        "at most {QUEUE} ({}), as the specification requires",
                        batch.max_queue_size
                    ),
                ));
            }
        }
        None => batch.max_export_batch_size = batch.max_export_batch_size.min(batch.max_queue_size),
    }
    if let Some(v) = get(lookup, DELAY) {
        batch.schedule_delay = parse_millis(
            DELAY,
            &v,
            MillisRange {
                kind: "delay",
                min: Duration::ZERO,
                max: MAX_INTERVAL,
                default: batch.schedule_delay,
            },
        )?;
    }
    // Read by the SDK's batch processors, not by ours (each export is bounded
    // by OTEL_EXPORTER_OTLP_TIMEOUT); checked so that no value is taken on trust.
    if let Some(v) = get(lookup, TIMEOUT) {
        parse_millis(
            TIMEOUT,
            &v,
            MillisRange {
                default: Duration::from_secs(30),
                ..TIMEOUT_RANGE
            },
        )?;
    }
    Ok(batch)
}

fn parse_protocol(var: &'static str, value: &str) -> Result<Protocol, InitError> {
    match value {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err(invalid(
            var,
            value,
            "`grpc` or `http/protobuf` (http/json is not supported by this exporter)",
        )),
        _ => Err(invalid(var, value, "`grpc` or `http/protobuf`")),
    }
}

fn parse_exporter(
    var: &'static str,
    value: &str,
    allowed: &[&str],
) -> Result<ExporterKind, InitError> {
    let expected = || {
        let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        format!("one of {}", list.join(", "))
    };
    if value.contains(',') {
        return Err(invalid(
            var,
            value,
            format!("a single exporter: {}", expected()),
        ));
    }
    let kind = match value {
        "otlp" => ExporterKind::Otlp,
        "console" | "logging" => ExporterKind::Console,
        "none" => ExporterKind::None,
        "prometheus" if allowed.contains(&"prometheus") => {
            if !cfg!(feature = "prometheus") {
                return Err(invalid(
                    var,
                    value,
                    format!(
                        "{} (`prometheus` needs otel-agent-runtime's `prometheus` feature, \
                         which this build leaves out)",
                        expected()
                    ),
                ));
            }
            ExporterKind::Prometheus
        }
        _ => return Err(invalid(var, value, expected())),
    };
    Ok(kind)
}

/// Checks an endpoint URL: `http://` or `https://`, a host, an optional port.
pub(crate) fn check_endpoint(value: &str) -> Result<(), String> {
    const EXPECTED: &str = "a URL such as `http://localhost:4317`";
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| format!("{EXPECTED} (with the http:// or https:// scheme)"))?;
    let uri: http::Uri = value.parse().map_err(|_| EXPECTED.to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if uri.host().is_none_or(str::is_empty) || authority.is_empty() {
        return Err(format!("{EXPECTED} (the host is missing)"));
    }
    if authority.ends_with(':') {
        return Err(format!("{EXPECTED} (the port after `:` is missing)"));
    }
    Ok(())
}

fn parse_endpoint(var: &'static str, value: &str) -> Result<String, InitError> {
    check_endpoint(value).map_err(|expected| invalid(var, value, expected))?;
    Ok(value.to_owned())
}

/// `key=value,key2=value2`, values percent-decoded, as the specification's header
/// and resource-attribute lists are written. An error names the entry that is
/// wrong by its position (and its key, when that is printable), never by its value.
fn parse_pairs(
    var: &'static str,
    value: &str,
    what: &str,
) -> Result<Vec<(String, String)>, InitError> {
    let expected = |why: String| {
        format!("a comma-separated list of {what}, e.g. `key1=value1,key2=value2` ({why})")
    };
    let mut out = Vec::new();
    let items = value.split(',').map(str::trim).filter(|s| !s.is_empty());
    for (i, item) in items.enumerate() {
        let entry = format!("entry {}", i + 1);
        let (key, val) = item
            .split_once('=')
            .ok_or_else(|| invalid(var, value, expected(format!("{entry} has no `=`"))))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid(
                var,
                value,
                expected(format!("{entry} has no key before `=`")),
            ));
        }
        let val = percent_decode(val.trim()).ok_or_else(|| {
            invalid(
                var,
                value,
                expected(format!(
                    "the value of {entry} is not valid percent-encoding: `%` must be followed \
                     by two hex digits, and the result must be UTF-8"
                )),
            )
        })?;
        out.push((key.to_owned(), val));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_headers(var: &'static str, value: &str) -> Result<Vec<(String, String)>, InitError> {
    let headers = parse_pairs(var, value, "headers")?;
    for (i, (name, val)) in headers.iter().enumerate() {
        let why = if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            format!(
                "the name of entry {} is not a valid HTTP header name",
                i + 1
            )
        } else if val.trim_matches('=').trim().is_empty() {
            // Most often a pasted token whose base64 padding looked like `=`.
            format!("entry {} has no value after `=`", i + 1)
        } else if http::HeaderValue::from_str(val).is_err() {
            format!(
                "the value of entry {} (`{name}`) is not a valid HTTP header value",
                i + 1
            )
        } else {
            continue;
        };
        return Err(invalid(
            var,
            value,
            format!(
                "headers as `name=value` pairs with valid HTTP header names and values, e.g. \
                 `authorization=Bearer%20<token>` ({why}; values are not shown)"
            ),
        ));
    }
    Ok(headers)
}

fn parse_sampler(lookup: Lookup<'_>) -> Result<SamplerKind, InitError> {
    const VAR: &str = "OTEL_TRACES_SAMPLER";
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let ratio = || -> Result<f64, InitError> {
        match get(lookup, ARG) {
            None => Ok(1.0),
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(invalid(ARG, &v, "a sampling ratio between 0.0 and 1.0")),
            },
        }
    };
    let Some(value) = get(lookup, VAR) else {
        return Ok(SamplerKind::ParentBasedAlwaysOn);
    };
    Ok(match value.as_str() {
        "always_on" => SamplerKind::AlwaysOn,
        "always_off" => SamplerKind::AlwaysOff,
        "traceidratio" => SamplerKind::TraceIdRatio(ratio()?),
        "parentbased_always_on" => SamplerKind::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerKind::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerKind::ParentBasedTraceIdRatio(ratio()?),
        _ => {
            return Err(invalid(
                VAR,
                &value,
                "one of `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, \
                 `parentbased_always_off`, `parentbased_traceidratio`",
            ))
        }
    })
}

/// The names of one signal's variables.
struct SignalVars {
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    timeout: &'static str,
    path: &'static str,
}

const TRACES: SignalVars = SignalVars {
    endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    path: "v1/traces",
};

const METRICS: SignalVars = SignalVars {
    endpoint: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    path: "v1/metrics",
};

/// The protocol when none is given: `http/protobuf`, the OpenTelemetry
/// specification's default, except for an endpoint on port 4317 (the
/// collector's OTLP gRPC port), which means gRPC. A build without the
/// `otlp-http` feature uses gRPC for any endpoint not on port 4318 (the
/// OTLP/HTTP port, which always means HTTP). With no endpoint, the exporter
/// sends to its default, `localhost:4318` (HTTP) or `localhost:4317` (gRPC).
pub(crate) fn default_protocol(endpoint: Option<&str>) -> Protocol {
    let port = endpoint
        .and_then(|e| e.parse::<http::Uri>().ok())
        .and_then(|u| u.port_u16());
    match port {
        Some(4317) => Protocol::Grpc,
        Some(4318) => Protocol::HttpProtobuf,
        _ if Protocol::HttpProtobuf.is_built() || !Protocol::Grpc.is_built() => {
            Protocol::HttpProtobuf
        }
        _ => Protocol::Grpc,
    }
}

fn join_path(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path)
}

fn parse_signal(
    lookup: Lookup<'_>,
    vars: &SignalVars,
) -> Result<(OtlpSettings, OtlpOrigin), InitError> {
    let signal_endpoint = get(lookup, vars.endpoint)
        .map(|v| parse_endpoint(vars.endpoint, &v))
        .transpose()?;
    let base_endpoint = get(lookup, "OTEL_EXPORTER_OTLP_ENDPOINT")
        .map(|v| parse_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", &v))
        .transpose()?;
    let protocol_var = match get(lookup, vars.protocol) {
        Some(v) => Some((vars.protocol, v)),
        None => {
            get(lookup, "OTEL_EXPORTER_OTLP_PROTOCOL").map(|v| ("OTEL_EXPORTER_OTLP_PROTOCOL", v))
        }
    };
    let protocol = match &protocol_var {
        Some((var, v)) => parse_protocol(var, v)?,
        None => default_protocol(signal_endpoint.as_deref().or(base_endpoint.as_deref())),
    };
    let origin = OtlpOrigin {
        exporter_var: None,
        endpoint: match (&signal_endpoint, &base_endpoint) {
            (Some(e), _) => Some((vars.endpoint, printable_endpoint(e))),
            (None, Some(b)) => Some(("OTEL_EXPORTER_OTLP_ENDPOINT", printable_endpoint(b))),
            (None, None) => None,
        },
        protocol: protocol_var,
    };
    // Per the specification, a signal-specific URL is used as is, while the
    // generic one gets the signal's path appended for HTTP.
    let endpoint = match (signal_endpoint, base_endpoint, protocol) {
        (Some(e), _, _) => Some(e),
        (None, Some(b), Protocol::HttpProtobuf) => Some(join_path(&b, vars.path)),
        (None, Some(b), Protocol::Grpc) => Some(b),
        (None, None, _) => None,
    };
    let generic_headers = get(lookup, "OTEL_EXPORTER_OTLP_HEADERS")
        .map(|v| parse_headers("OTEL_EXPORTER_OTLP_HEADERS", &v))
        .transpose()?;
    let headers = match get(lookup, vars.headers) {
        Some(v) => parse_headers(vars.headers, &v)?,
        None => generic_headers.unwrap_or_default(),
    };
    // Both are checked, whichever is used.
    let generic_timeout = get(lookup, "OTEL_EXPORTER_OTLP_TIMEOUT")
        .map(|v| parse_millis("OTEL_EXPORTER_OTLP_TIMEOUT", &v, TIMEOUT_RANGE))
        .transpose()?;
    let timeout = match get(lookup, vars.timeout) {
        Some(v) => parse_millis(vars.timeout, &v, TIMEOUT_RANGE)?,
        None => generic_timeout.unwrap_or(DEFAULT_TIMEOUT),
    };
    Ok((
        OtlpSettings {
            endpoint,
            protocol,
            headers,
            timeout,
        },
        origin,
    ))
}

impl Settings {
    /// Reads every supported variable; the first invalid one is the error.
    pub(crate) fn from_env(lookup: Lookup<'_>) -> Result<Self, InitError> {
        let disabled = get(lookup, "OTEL_SDK_DISABLED")
            .map(|v| parse_bool("OTEL_SDK_DISABLED", &v))
            .transpose()?
            .unwrap_or(false);
        let resource = get(lookup, "OTEL_RESOURCE_ATTRIBUTES")
            .map(|v| parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &v, "resource attributes"))
            .transpose()?
            .unwrap_or_default();
        let service_name = get(lookup, "OTEL_SERVICE_NAME");
        let (traces_otlp, mut traces_origin) = parse_signal(lookup, &TRACES)?;
        let (metrics_otlp, mut metrics_origin) = parse_signal(lookup, &METRICS)?;
        // With no endpoint and no exporter named, the embedded default applies:
        // the terminal, so that a first run needs no collector.
        let traces = match get(lookup, "OTEL_TRACES_EXPORTER") {
            Some(v) => parse_exporter("OTEL_TRACES_EXPORTER", &v, &["otlp", "console", "none"])?,
            None if traces_origin.endpoint.is_some() => ExporterKind::Otlp,
            None => ExporterKind::Console,
        };
        let metrics = match get(lookup, "OTEL_METRICS_EXPORTER") {
            Some(v) => parse_exporter(
                "OTEL_METRICS_EXPORTER",
                &v,
                &["otlp", "prometheus", "console", "none"],
            )?,
            None if metrics_origin.endpoint.is_some() => ExporterKind::Otlp,
            None => ExporterKind::None,
        };
        if get(lookup, "OTEL_TRACES_EXPORTER").is_some() && traces == ExporterKind::Otlp {
            traces_origin.exporter_var = Some("OTEL_TRACES_EXPORTER");
        }
        if get(lookup, "OTEL_METRICS_EXPORTER").is_some() && metrics == ExporterKind::Otlp {
            metrics_origin.exporter_var = Some("OTEL_METRICS_EXPORTER");
        }
        let metric_interval = get(lookup, "OTEL_METRIC_EXPORT_INTERVAL")
            .map(|v| parse_millis("OTEL_METRIC_EXPORT_INTERVAL", &v, METRIC_INTERVAL_RANGE))
            .transpose()?
            .unwrap_or(DEFAULT_METRIC_INTERVAL);
        // Read by the SDK's async-runtime reader only, not by ours (each export
        // is bounded by OTEL_EXPORTER_OTLP_TIMEOUT); checked all the same.
        if let Some(v) = get(lookup, "OTEL_METRIC_EXPORT_TIMEOUT") {
            parse_millis(
                "OTEL_METRIC_EXPORT_TIMEOUT",
                &v,
                MillisRange {
                    default: Duration::from_secs(30),
                    ..TIMEOUT_RANGE
                },
            )?;
        }
        let prometheus_host = match get(lookup, "OTEL_EXPORTER_PROMETHEUS_HOST") {
            Some(v) => check_listen_host(&v)
                .map_err(|expected| invalid("OTEL_EXPORTER_PROMETHEUS_HOST", &v, expected))?,
            None => DEFAULT_PROMETHEUS_HOST.to_owned(),
        };
        let prometheus_port = match get(lookup, "OTEL_EXPORTER_PROMETHEUS_PORT") {
            Some(v) => v.parse::<u16>().map_err(|_| {
                invalid(
                    "OTEL_EXPORTER_PROMETHEUS_PORT",
                    &v,
                    "a port number from 0 to 65535 (default 9464)",
                )
            })?,
            None => DEFAULT_PROMETHEUS_PORT,
        };
        Ok(Self {
            disabled,
            resource,
            service_name,
            traces,
            metrics,
            traces_otlp,
            metrics_otlp,
            traces_origin,
            metrics_origin,
            metric_interval,
            sampler: parse_sampler(lookup)?,
            prometheus_host,
            prometheus_port,
            batch: parse_batch(lookup)?,
            attribute_value_length_limit: parse_attribute_value_length_limit(lookup)?,
            metric_cardinality_limit: get(lookup, CARDINALITY_VAR)
                .map(|v| {
                    parse_count(
                        CARDINALITY_VAR,
                        &v,
                        "attribute sets",
                        MAX_CARDINALITY_LIMIT,
                        ("10000", "for the default of 2000"),
                    )
                })
                .transpose()?
                .unwrap_or(crate::cardinality::DEFAULT_CARDINALITY_LIMIT),
        })
    }
}

/// The metric export interval: 1 ms to [`MAX_INTERVAL`].
const METRIC_INTERVAL_RANGE: MillisRange = MillisRange {
    kind: "interval",
    min: Duration::from_millis(1),
    max: MAX_INTERVAL,
    default: DEFAULT_METRIC_INTERVAL,
};

/// Checks the durations given to the builder against the same bounds as the
/// environment's: `metric_export_interval` as `OTEL_METRIC_EXPORT_INTERVAL`
/// (1 ms to 1 hour), `shutdown_timeout` up to [`MAX_TIMEOUT`] (zero allowed:
/// do not wait).
pub(crate) fn check_builder_durations(
    metric_interval: Option<Duration>,
    shutdown_timeout: Duration,
) -> Result<(), InitError> {
    if let Some(interval) = metric_interval {
        METRIC_INTERVAL_RANGE.check_setting("metric_export_interval", interval)?;
    }
    MillisRange {
        min: Duration::ZERO,
        ..TIMEOUT_RANGE
    }
    .check_setting("shutdown_timeout", shutdown_timeout)?;
    Ok(())
}

/// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`
/// (both are checked); `None`: no limit.
fn parse_attribute_value_length_limit(lookup: Lookup<'_>) -> Result<Option<usize>, InitError> {
    let parse = |var: &'static str| {
        get(lookup, var)
            .map(|v| {
                parse_count(
                    var,
                    &v,
                    "characters",
                    MAX_ATTRIBUTE_VALUE_LENGTH,
                    ("4096", "for no limit"),
                )
            })
            .transpose()
    };
    let generic = parse("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")?;
    let span = parse("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")?;
    Ok(span.or(generic))
}

/// The longest value a non-UTF-8 error shows, in bytes.
const SHOWN_BYTES: usize = 64;

/// Refuses the first `OTEL_*` variable (which includes `OTEL_AGENT_*`) whose
/// value is not UTF-8: `std::env::var` reports it as unset, which would turn
/// `OTEL_SDK_DISABLED` off or an endpoint into the console default without a
/// word. The error shows the value with its bytes escaped, except for
/// variables that may hold credentials.
pub(crate) fn check_unicode(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<(), InitError> {
    for (name, value) in vars {
        let name_bytes = name.as_encoded_bytes();
        if !name_bytes.starts_with(b"OTEL_") || value.to_str().is_some() {
            continue;
        }
        let var = name.to_string_lossy().into_owned();
        let bytes = value.as_encoded_bytes();
        let shown = if holds_headers(&var) || holds_endpoint(&var) {
            "<not shown>".to_owned()
        } else {
            let mut shown = bytes[..bytes.len().min(SHOWN_BYTES)]
                .escape_ascii()
                .to_string();
            if bytes.len() > SHOWN_BYTES {
                shown.push('…');
            }
            shown
        };
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        return Err(InitError::NotUnicode {
            var,
            value: shown,
            position: at,
        });
    }
    Ok(())
}

/// What the builder set that decides OTLP export, for [`check_otlp_built`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuilderOtlp<'a> {
    pub traces: Option<ExporterKind>,
    pub metrics: Option<ExporterKind>,
    pub endpoint: Option<&'a str>,
    pub protocol: Option<Protocol>,
}

/// What an error says of a feature this build leaves out.
fn left_out(features: &str) -> String {
    format!("otel-agent-runtime's {features} feature, which this build leaves out")
}

const OTLP_FEATURES: &str = "`otlp-grpc` or `otlp-http`";

/// The error for exporting over `protocol`, which this build leaves out.
pub(crate) fn protocol_not_built(protocol: Protocol) -> InitError {
    let other = protocol.other();
    let expected = if other.is_built() {
        format!(
            "`{other:?}`: `{protocol:?}` needs {}",
            left_out(&format!("`{}`", protocol.feature()))
        )
    } else {
        format!("none: OTLP export needs {}", left_out(OTLP_FEATURES))
    };
    InitError::InvalidSetting {
        setting: "protocol",
        value: format!("{protocol:?}"),
        expected,
    }
}

/// Refuses a signal set to OTLP over a protocol this build leaves out (or with
/// no OTLP in the build at all), naming the builder setting or the variable
/// that chose it: the builder's, which win, first.
pub(crate) fn check_otlp_built(
    settings: &Settings,
    builder: &BuilderOtlp<'_>,
) -> Result<(), InitError> {
    if settings.disabled {
        // Nothing is exported: nothing is missing.
        return Ok(());
    }
    let (code_alternatives, env_alternatives) = if cfg!(feature = "prometheus") {
        (
            "`Console`, `Prometheus` or `None`",
            "`console`, `prometheus` or `none`",
        )
    } else {
        ("`Console` or `None`", "`console` or `none`")
    };
    let signals = [
        (
            settings.traces,
            &settings.traces_otlp,
            &settings.traces_origin,
            builder.traces,
            "traces_exporter",
            "OTEL_TRACES_EXPORTER",
            ("`Console` or `None`", "`console` or `none`"),
        ),
        (
            settings.metrics,
            &settings.metrics_otlp,
            &settings.metrics_origin,
            builder.metrics,
            "metrics_exporter",
            "OTEL_METRICS_EXPORTER",
            (code_alternatives, env_alternatives),
        ),
    ];
    for (kind, otlp, origin, chosen, setting, var, alternatives) in signals {
        if kind != ExporterKind::Otlp || otlp.protocol.is_built() {
            continue;
        }
        return Err(if otlp.protocol.other().is_built() {
            protocol_left_out(otlp.protocol, origin, builder)
        } else {
            otlp_left_out(setting, var, alternatives, chosen, origin, builder)
        });
    }
    Ok(())
}

/// A build with neither OTLP feature, asked for OTLP export.
fn otlp_left_out(
    setting: &'static str,
    var: &'static str,
    (code_alternatives, env_alternatives): (&str, &str),
    chosen: Option<ExporterKind>,
    origin: &OtlpOrigin,
    builder: &BuilderOtlp<'_>,
) -> InitError {
    let why = left_out(OTLP_FEATURES);
    let refused_kind = || InitError::InvalidSetting {
        setting,
        value: "Otlp".to_owned(),
        expected: format!("{code_alternatives}: `Otlp` needs {why}"),
    };
    if chosen == Some(ExporterKind::Otlp) {
        return refused_kind();
    }
    if let Some(url) = builder.endpoint {
        return InitError::InvalidSetting {
            setting: "endpoint",
            value: printable_endpoint(url),
            expected: format!("none: OTLP export needs {why}"),
        };
    }
    if let Some(var) = origin.exporter_var {
        return invalid(
            var,
            "otlp",
            format!("{env_alternatives} (`otlp` needs {why})"),
        );
    }
    match &origin.endpoint {
        Some((endpoint_var, url)) => invalid(
            endpoint_var,
            url,
            format!("no endpoint: OTLP export needs {why} (or set {var} to {env_alternatives})"),
        ),
        None => refused_kind(),
    }
}

/// A build with one OTLP protocol, asked for the other.
fn protocol_left_out(
    protocol: Protocol,
    origin: &OtlpOrigin,
    builder: &BuilderOtlp<'_>,
) -> InitError {
    let other = protocol.other();
    let why = left_out(&format!("`{}`", protocol.feature()));
    // Without a protocol, this build picks the one it leaves out only for the
    // port that always means it.
    let port = match protocol {
        Protocol::Grpc => "on port 4317",
        Protocol::HttpProtobuf => "on port 4318",
    };
    if builder.protocol.is_some() {
        return protocol_not_built(protocol);
    }
    if let Some(url) = builder.endpoint {
        return InitError::InvalidSetting {
            setting: "endpoint",
            value: printable_endpoint(url),
            expected: format!(
                "`protocol(Protocol::{other:?})` with it: without a protocol, an endpoint \
                 {port} means `{protocol:?}`, which needs {why}"
            ),
        };
    }
    if let Some((var, value)) = &origin.protocol {
        return invalid(
            var,
            value,
            format!(
                "`{}` (`{}` needs {why})",
                other.env_name(),
                protocol.env_name()
            ),
        );
    }
    let reason = match &origin.endpoint {
        Some((var, url)) => format!("for {var}={:?} ({port})", printable_endpoint(url)),
        None => "(the default)".to_owned(),
    };
    invalid(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "",
        format!(
            "`{}`: unset, it means `{}` {reason}, which needs {why}",
            other.env_name(),
            protocol.env_name()
        ),
    )
}

/// Resource attributes in the order of precedence: `OTEL_SERVICE_NAME` over
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES` over the code's default.
pub(crate) fn resource_attributes(
    settings: &Settings,
    default_service_name: Option<&str>,
    extra: &[(String, String)],
) -> BTreeMap<String, String> {
    let mut attrs: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in extra.iter().chain(settings.resource.iter()) {
        attrs.insert(k.clone(), v.clone());
    }
    let service = settings
        .service_name
        .clone()
        .or_else(|| attrs.get("service.name").cloned())
        .or_else(|| default_service_name.map(str::to_owned))
        .unwrap_or_else(|| {
            let exe = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
            format!("unknown_service:{}", exe.unwrap_or_default())
        });
    attrs.insert("service.name".to_owned(), service);
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printable::printable_text;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, InitError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(&move |k| map.get(k).cloned())
    }

    fn err(vars: &[(&str, &str)]) -> String {
        settings(vars).expect_err("expected an error").to_string()
    }

    #[test]
    fn no_variables_means_the_embedded_default() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.traces, ExporterKind::Console);
        assert_eq!(s.metrics, ExporterKind::None);
        assert!(!s.disabled);
        assert_eq!(s.sampler, SamplerKind::ParentBasedAlwaysOn);
    }

    #[test]
    fn an_endpoint_selects_otlp_over_http_protobuf_by_default() {
        // The specification's default, whatever the port but 4317.
        for endpoint in [
            "http://127.0.0.1:4318",
            "http://collector:5000",
            "https://api.example.com",
            "http://localhost:6006/",
        ] {
            let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)]).unwrap();
            assert_eq!(s.traces, ExporterKind::Otlp);
            assert_eq!(s.metrics, ExporterKind::Otlp);
            let expected = if HTTP_BUILT || !GRPC_BUILT || endpoint.contains(":4318") {
                Protocol::HttpProtobuf
            } else {
                Protocol::Grpc
            };
            assert_eq!(s.traces_otlp.protocol, expected, "{endpoint}");
            assert_eq!(s.metrics_otlp.protocol, expected, "{endpoint}");
            if expected == Protocol::HttpProtobuf {
                assert_eq!(
                    s.traces_otlp.endpoint,
                    Some(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                );
            }
        }
        // Nothing set: the exporters' default endpoint, over HTTP too.
        let s = settings(&[("OTEL_TRACES_EXPORTER", "otlp")]).unwrap();
        let expected = if HTTP_BUILT || !GRPC_BUILT {
            Protocol::HttpProtobuf
        } else {
            Protocol::Grpc
        };
        assert_eq!(s.traces_otlp.protocol, expected);
        assert_eq!(s.traces_otlp.endpoint, None);
    }

    #[test]
    fn port_4317_still_means_grpc_and_an_explicit_protocol_always_wins() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]).unwrap();
        assert_eq!(s.traces_otlp.protocol, Protocol::Grpc);
        assert_eq!(s.metrics_otlp.protocol, Protocol::Grpc);
        assert_eq!(
            s.traces_otlp.endpoint.as_deref(),
            Some("http://127.0.0.1:4317"),
            "gRPC takes the endpoint as it is"
        );
        // A per-signal endpoint on 4317 decides for its signal only.
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
        ])
        .unwrap();
        assert_eq!(s.traces_otlp.protocol, Protocol::Grpc);
        assert_eq!(s.metrics_otlp.protocol, Protocol::HttpProtobuf);
        // An explicit protocol wins over every port.
        for (endpoint, protocol, expected) in [
            ("http://c:4317", "http/protobuf", Protocol::HttpProtobuf),
            ("http://c:4318", "grpc", Protocol::Grpc),
            ("http://c:9999", "grpc", Protocol::Grpc),
        ] {
            let s = settings(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ])
            .unwrap();
            assert_eq!(s.traces_otlp.protocol, expected, "{endpoint} {protocol}");
        }
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(s.traces_otlp.protocol, Protocol::Grpc);
        assert_eq!(s.metrics_otlp.protocol, Protocol::HttpProtobuf);
        assert_eq!(
            s.metrics_otlp.endpoint.as_deref(),
            Some("http://c:4317/v1/metrics")
        );
        // What the builder's `endpoint()` uses.
        assert_eq!(default_protocol(Some("http://c:4317")), Protocol::Grpc);
        assert_eq!(
            default_protocol(Some("http://c:4318")),
            Protocol::HttpProtobuf
        );
    }

    #[test]
    fn http_appends_the_signal_path_to_the_generic_endpoint_only() {
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://other:9999/custom",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(
            s.traces_otlp.endpoint.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            s.metrics_otlp.endpoint.as_deref(),
            Some("http://other:9999/custom")
        );
    }

    #[test]
    fn port_4318_without_protocol_means_http() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")]).unwrap();
        assert_eq!(s.traces_otlp.protocol, Protocol::HttpProtobuf);
        assert_eq!(
            s.traces_otlp.endpoint.as_deref(),
            Some("http://localhost:4318/v1/traces")
        );
    }

    #[test]
    fn per_signal_variables_override_generic_ones() {
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-a=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-b=2%203"),
        ])
        .unwrap();
        assert_eq!(s.traces_otlp.timeout, Duration::from_millis(700));
        assert_eq!(s.metrics_otlp.timeout, Duration::from_millis(500));
        assert_eq!(s.traces_otlp.headers, vec![("x-a".into(), "1".into())]);
        assert_eq!(s.metrics_otlp.headers, vec![("x-b".into(), "2 3".into())]);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_fix() {
        let e = err(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grcp")]);
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"grcp\"")
                && e.contains("`grpc` or `http/protobuf`"),
            "{e}"
        );
        let e = err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]);
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && e.contains("http://"),
            "{e}"
        );
        let e = err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://:4317")]);
        assert!(e.contains("host is missing"), "{e}");
        let e = err(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://host:/v1/traces",
        )]);
        assert!(e.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "{e}");
        let e = err(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization")]);
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_HEADERS") && e.contains("key1=value1"),
            "{e}"
        );
        let e = err(&[("OTEL_EXPORTER_OTLP_HEADERS", "bad header=1")]);
        assert!(e.contains("valid HTTP header names"), "{e}");
        let e = err(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]);
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_TIMEOUT") && e.contains("milliseconds"),
            "{e}"
        );
        let e = err(&[("OTEL_METRIC_EXPORT_INTERVAL", "fast")]);
        assert!(e.contains("OTEL_METRIC_EXPORT_INTERVAL"), "{e}");
        let e = err(&[("OTEL_METRIC_EXPORT_INTERVAL", "0")]);
        assert!(e.contains("from 1 to 3600000"), "{e}");
        let e = err(&[("OTEL_SDK_DISABLED", "yes")]);
        assert!(
            e.contains("OTEL_SDK_DISABLED") && e.contains("`true` or `false`"),
            "{e}"
        );
        let e = err(&[("OTEL_TRACES_EXPORTER", "jaeger")]);
        assert!(
            e.contains("OTEL_TRACES_EXPORTER") && e.contains("`otlp`"),
            "{e}"
        );
        let e = err(&[("OTEL_METRICS_EXPORTER", "otlp,console")]);
        assert!(e.contains("a single exporter"), "{e}");
        let e = err(&[("OTEL_TRACES_SAMPLER", "ratio")]);
        assert!(e.contains("traceidratio"), "{e}");
        let e = err(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]);
        assert!(
            e.contains("OTEL_TRACES_SAMPLER_ARG") && e.contains("0.0 and 1.0"),
            "{e}"
        );
        let e = err(&[("OTEL_RESOURCE_ATTRIBUTES", "team")]);
        assert!(e.contains("OTEL_RESOURCE_ATTRIBUTES"), "{e}");
        let e = err(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn prometheus_defaults_to_localhost_9464() {
        let s = settings(&[("OTEL_METRICS_EXPORTER", "prometheus")]);
        if !cfg!(feature = "prometheus") {
            let e = s.expect_err("the feature is off").to_string();
            assert!(e.contains("`prometheus` feature"), "{e}");
            return;
        }
        let s = s.unwrap();
        assert_eq!(s.metrics, ExporterKind::Prometheus);
        assert_eq!(s.traces, ExporterKind::Console, "traces keep their default");
        assert_eq!(
            (s.prometheus_host.as_str(), s.prometheus_port),
            ("localhost", 9464)
        );
        let s = settings(&[
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "0.0.0.0"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "9100"),
        ])
        .unwrap();
        assert_eq!(
            (s.prometheus_host.as_str(), s.prometheus_port),
            ("0.0.0.0", 9100)
        );
        let s = settings(&[("OTEL_EXPORTER_PROMETHEUS_HOST", "[::1]")]).unwrap();
        assert_eq!(s.prometheus_host, "::1");
    }

    #[test]
    fn prometheus_settings_are_checked() {
        let e = err(&[("OTEL_EXPORTER_PROMETHEUS_PORT", "99999")]);
        assert!(
            e.contains("OTEL_EXPORTER_PROMETHEUS_PORT=\"99999\"") && e.contains("0 to 65535"),
            "{e}"
        );
        let e = err(&[("OTEL_EXPORTER_PROMETHEUS_HOST", "http://localhost:9464")]);
        assert!(
            e.contains("OTEL_EXPORTER_PROMETHEUS_HOST") && e.contains("no scheme, no port"),
            "{e}"
        );
        let e = err(&[("OTEL_TRACES_EXPORTER", "prometheus")]);
        assert!(
            e.contains("OTEL_TRACES_EXPORTER") && !e.contains("`prometheus`"),
            "traces cannot go to Prometheus: {e}"
        );
    }

    #[test]
    fn the_span_queue_is_configurable_and_checked() {
        assert_eq!(settings(&[]).unwrap().batch, BatchSettings::default());
        let s = settings(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
        ])
        .unwrap();
        assert_eq!(
            s.batch,
            BatchSettings {
                max_queue_size: 100,
                max_export_batch_size: 100,
                schedule_delay: Duration::from_millis(250),
            }
        );
        let e = err(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")]);
        assert!(
            e.contains("OTEL_BSP_MAX_QUEUE_SIZE") && e.contains("positive"),
            "{e}"
        );
        let e = err(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20"),
        ]);
        assert!(
            e.contains("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
                && e.contains("at most OTEL_BSP_MAX_QUEUE_SIZE (10)"),
            "{e}"
        );
        let e = err(&[("OTEL_BSP_SCHEDULE_DELAY", "5s")]);
        assert!(e.contains("OTEL_BSP_SCHEDULE_DELAY"), "{e}");
    }

    /// Every number from outside has an upper bound; the error names the
    /// variable, the bound and what to write instead.
    #[test]
    fn sizes_and_durations_have_upper_bounds() {
        let s = settings(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1048576"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "65536"),
            ("OTEL_BSP_SCHEDULE_DELAY", "3600000"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "600000"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "3600000"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "600000"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "600000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "600000"),
        ])
        .expect("the bounds themselves are accepted");
        assert_eq!(s.batch.max_queue_size, MAX_QUEUE_SIZE);
        assert_eq!(s.batch.max_export_batch_size, MAX_EXPORT_BATCH_SIZE);
        assert_eq!(s.batch.schedule_delay, MAX_INTERVAL);
        assert_eq!(s.metric_interval, MAX_INTERVAL);
        assert_eq!(s.traces_otlp.timeout, Duration::from_millis(1));
        assert_eq!(s.metrics_otlp.timeout, MAX_TIMEOUT);
        assert_eq!(
            settings(&[("OTEL_BSP_SCHEDULE_DELAY", "0")])
                .unwrap()
                .batch
                .schedule_delay,
            Duration::ZERO,
            "no delay: export as spans come"
        );

        let queue = String::from(
            "OTEL_BSP_MAX_QUEUE_SIZE=\"100000000\" is not valid: expected at most 1048576 spans \
             (the upper bound, so that no setting can exhaust memory): write a smaller number, \
             or unset it for the default (65536)",
        );
        assert_eq!(err(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100000000")]), queue);
        // Too large for any integer type: the same bound, not "not a number".
        let e = err(&[("OTEL_BSP_MAX_QUEUE_SIZE", "99999999999999999999999")]);
        assert!(e.contains("at most 1048576 spans"), "{e}");
        let e = err(&[("OTEL_BSP_MAX_QUEUE_SIZE", "1048577")]);
        assert!(e.contains("at most 1048576 spans"), "{e}");
        let e = err(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1048576"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "65537"),
        ]);
        assert!(
            e.starts_with("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=\"65537\" is not valid")
                && e.contains("at most 65536 spans")
                && e.contains("unset it for the default (512)"),
            "{e}"
        );
        for (var, bound, words, default) in [
            ("OTEL_METRIC_EXPORT_INTERVAL", 3_600_000, "1 hour", "60000"),
            ("OTEL_BSP_SCHEDULE_DELAY", 3_600_000, "1 hour", "5000"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", 600_000, "10 minutes", "10000"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                600_000,
                "10 minutes",
                "10000",
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                600_000,
                "10 minutes",
                "10000",
            ),
            ("OTEL_BSP_EXPORT_TIMEOUT", 600_000, "10 minutes", "30000"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", 600_000, "10 minutes", "30000"),
        ] {
            let over = (bound + 1).to_string();
            let e = err(&[(var, over.as_str())]);
            let kind = if var.contains("TIMEOUT") {
                "timeout"
            } else if var.contains("DELAY") {
                "delay"
            } else {
                "interval"
            };
            assert_eq!(
                e,
                format!(
                    "{var}=\"{over}\" is not valid: expected at most {bound} milliseconds \
                     ({words}, the upper bound for this {kind}): write a smaller number, or \
                     unset it for the default ({default})"
                )
            );
            let e = err(&[(var, "18446744073709551616")]);
            assert!(e.contains(&format!("at most {bound} milliseconds")), "{e}");
        }
        // A zero timeout can never deliver anything.
        let e = err(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "0")]);
        assert!(
            e.contains("a whole number of milliseconds from 1 to 600000 (10 minutes)"),
            "{e}"
        );
        // The generic variable is checked even when a per-signal one is set.
        let e = err(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "99999999"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1000"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "1000"),
        ]);
        assert!(e.starts_with("OTEL_EXPORTER_OTLP_TIMEOUT="), "{e}");
    }

    #[test]
    fn the_builders_durations_have_the_same_bounds() {
        assert!(check_builder_durations(None, Duration::from_secs(5)).is_ok());
        assert!(check_builder_durations(Some(MAX_INTERVAL), MAX_TIMEOUT).is_ok());
        assert!(check_builder_durations(None, Duration::ZERO).is_ok());
        let e = check_builder_durations(
            Some(MAX_INTERVAL + Duration::from_millis(1)),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            InitError::InvalidSetting {
                setting: "metric_export_interval",
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "invalid metric_export_interval \"3600.001s\": expected a duration from 1 ms to 1 \
             hour (the upper bound for this interval)"
        );
        let e = check_builder_durations(Some(Duration::ZERO), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("from 1 ms to 1 hour"), "{e}");
        let e = check_builder_durations(None, Duration::from_secs(3600)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid shutdown_timeout \"3600s\": expected a duration from 0 ms to 10 minutes \
             (the upper bound for this timeout)"
        );
    }

    #[test]
    fn the_attribute_value_length_limit_is_parsed_and_bounded() {
        assert_eq!(settings(&[]).unwrap().attribute_value_length_limit, None);
        let limit = |vars: &[(&str, &str)]| settings(vars).unwrap().attribute_value_length_limit;
        assert_eq!(
            limit(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4096")]),
            Some(4096)
        );
        assert_eq!(
            limit(&[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")]),
            Some(100)
        );
        assert_eq!(
            limit(&[
                ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4096"),
                ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256"),
            ]),
            Some(256),
            "the span variable wins"
        );
        assert_eq!(
            limit(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1048576")]),
            Some(MAX_ATTRIBUTE_VALUE_LENGTH)
        );
        assert_eq!(
            err(&[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1048577")]),
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT=\"1048577\" is not valid: expected at most \
             1048576 characters (the upper bound, so that no setting can exhaust memory): write \
             a smaller number, or unset it for no limit"
        );
        for bad in ["0", "-1", "1k", "4096.0"] {
            let e = err(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", bad)]);
            assert_eq!(
                e,
                format!(
                    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=\"{bad}\" is not valid: expected a \
                     positive whole number of characters, at most 1048576, e.g. `4096`"
                )
            );
        }
        // Both are checked, even when the span one wins.
        let e = err(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256"),
        ]);
        assert!(e.starts_with("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="), "{e}");
    }

    fn os(bytes: &[u8]) -> OsString {
        use std::os::unix::ffi::OsStrExt as _;
        std::ffi::OsStr::from_bytes(bytes).to_owned()
    }

    #[test]
    fn a_value_that_is_not_utf8_is_an_error_naming_the_variable() {
        let vars = |pairs: &[(&str, &[u8])]| -> Vec<(OsString, OsString)> {
            pairs
                .iter()
                .map(|(k, v)| (OsString::from(k), os(v)))
                .collect()
        };
        assert!(check_unicode(vars(&[
            ("OTEL_SDK_DISABLED", b"true"),
            ("HOME", b"/home/\xff"),
            ("NOT_OTEL_X", b"\xff"),
        ]))
        .is_ok());
        let e =
            check_unicode(vars(&[("PATH", b"/bin"), ("OTEL_SDK_DISABLED", b"\xff")])).unwrap_err();
        assert!(matches!(&e, InitError::NotUnicode { var, .. } if var == "OTEL_SDK_DISABLED"));
        assert_eq!(
            e.to_string(),
            "OTEL_SDK_DISABLED=\"\\xff\" is not valid: expected UTF-8 text (the value is not \
             UTF-8 from byte 0 on; bytes shown escaped): write it in UTF-8, or unset \
             OTEL_SDK_DISABLED"
        );
        // OTEL_AGENT_* and variables we do not read ourselves are OTEL_* too.
        for var in [
            "OTEL_AGENT_SPAN_EVENTS",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "OTEL_SERVICE_NAME",
        ] {
            let e = check_unicode(vars(&[(var, b"caf\xe9")])).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{var}=\"caf\\xe9\" is not valid"))
                    && text.contains("from byte 3 on"),
                "{text}"
            );
        }
        // Values that may hold credentials are not shown at all.
        for var in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let e = check_unicode(vars(&[(var, b"authorization=Bearer s3cret\xff")]))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("{var}=\"<not shown>\" is not valid"))
                    && !e.contains("s3cret"),
                "{e}"
            );
        }
        // A long value is cut.
        let mut long = vec![b'a'; 1000];
        long.push(0xff);
        let e = check_unicode(vars(&[("OTEL_SERVICE_NAME", &long)]))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 300 && e.contains("from byte 1000 on"), "{e}");
    }

    /// A header list's values never reach a message: only its keys, and not
    /// even those when they could be a pasted token.
    #[test]
    fn header_values_are_never_shown() {
        const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.s3cr3tT0k3n";
        for value in [
            format!("authorization=Bearer {TOKEN},broken"),
            format!("authorization=Bearer%20{TOKEN},x-bad=%zz"),
            format!("authorization: Bearer {TOKEN}"),
            format!("Authorization=Bearer {TOKEN}\u{7},x=1"),
            TOKEN.to_string(),
            format!("{TOKEN}=="),
            format!("=Bearer {TOKEN}"),
            format!("bad header=Bearer {TOKEN}"),
        ] {
            for var in [
                "OTEL_EXPORTER_OTLP_HEADERS",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            ] {
                let e = settings(&[(var, value.as_str())]).expect_err(&value);
                let (display, debug) = (e.to_string(), format!("{e:?}"));
                for text in [&display, &debug] {
                    assert!(
                        !text.contains("s3cr3t") && !text.contains("c2VjcmV0"),
                        "{var}={value}: {text}"
                    );
                    assert!(text.contains(var), "{text}");
                }
            }
        }
        assert_eq!(
            err(&[(
                "OTEL_EXPORTER_OTLP_HEADERS",
                &format!("authorization=Bearer {TOKEN},broken")
            )]),
            "OTEL_EXPORTER_OTLP_HEADERS=\"authorization=***,***\" is not valid: expected a \
             comma-separated list of headers, e.g. `key1=value1,key2=value2` (entry 2 has no `=`)"
        );
        let e = err(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-api-key=ok,authorization=Bearer\u{7}secret",
        )]);
        assert!(
            e.contains("x-api-key=***,authorization=***")
                && e.contains(
                    "the value of entry 2 (`authorization`) is not a valid HTTP header value"
                )
                && !e.contains("secret\u{7}"),
            "{e}"
        );
        // Settings' `Debug` shows the keys only.
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:pw1@c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                &format!("authorization=Bearer%20{TOKEN}"),
            ),
        ])
        .unwrap();
        assert_eq!(s.traces_otlp.headers[0].1, format!("Bearer {TOKEN}"));
        let debug = format!("{s:?}");
        assert!(
            debug.contains("authorization") && !debug.contains("s3cr3t") && !debug.contains("pw1"),
            "{debug}"
        );
    }

    #[test]
    fn endpoints_are_printed_without_credentials() {
        for (url, shown) in [
            ("http://127.0.0.1:4317", "http://127.0.0.1:4317"),
            ("https://c:4318/v1/traces", "https://c:4318/v1/traces"),
            ("http://user:password@host:4318", "http://***@host:4318"),
            (
                "http://user:password@host:4318/v1/traces",
                "http://***@host:4318/v1/traces",
            ),
            ("http://token@host", "http://***@host"),
            ("http://u:p@ss@host/x", "http://***@host/x"),
            ("http://u:pa/ss@host", "http://***@host"),
            ("user:password@host:4317", "***@host:4317"),
            (
                "http://host/v1/traces?api_key=k3y&x",
                "http://host/v1/traces?api_key=***&***",
            ),
            ("http://host/#frag", "http://host/#***"),
            ("collector:4317", "collector:4317"),
        ] {
            assert_eq!(printable_endpoint(url), shown, "{url}");
            assert_eq!(printable_endpoint(shown), shown, "idempotent: {shown}");
        }
        assert_eq!(
            printable_text(
                "error sending request for url (http://user:password@host:4318/v1/traces): x"
            ),
            "error sending request for url (http://***@host:4318/v1/traces): x"
        );
        assert_eq!(printable_text("no url here"), "no url here");
        // In every error: the environment's and the builder's.
        let e = err(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://user:password@host:/x",
        )]);
        assert!(
            e.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT=\"http://***@host:/x\" is not valid")
                && !e.contains("password"),
            "{e}"
        );
        let e = err(&[(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "user:password@host:4318",
        )]);
        assert!(
            !e.contains("password") && e.contains("with the http://"),
            "{e}"
        );
        let setting = InitError::InvalidSetting {
            setting: "endpoint",
            value: "http://user:password@host".into(),
            expected: "x".into(),
        };
        for text in [setting.to_string(), format!("{setting:?}")] {
            assert!(
                !text.contains("password") && text.contains("***@host"),
                "{text}"
            );
        }
    }

    #[test]
    fn samplers_parse() {
        let s = settings(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap();
        assert_eq!(s.sampler, SamplerKind::ParentBasedTraceIdRatio(0.25));
        let s = settings(&[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap();
        assert_eq!(s.sampler, SamplerKind::AlwaysOff);
    }

    #[test]
    fn service_name_precedence() {
        let s = settings(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs,team=ml%2Fops",
        )])
        .unwrap();
        let attrs = resource_attributes(&s, Some("from-code"), &[]);
        assert_eq!(attrs["service.name"], "from-attrs");
        assert_eq!(attrs["team"], "ml/ops");
        let s = settings(&[
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x"),
        ])
        .unwrap();
        assert_eq!(
            resource_attributes(&s, Some("from-code"), &[])["service.name"],
            "from-env"
        );
        let s = settings(&[]).unwrap();
        assert_eq!(
            resource_attributes(&s, Some("from-code"), &[])["service.name"],
            "from-code"
        );
    }

    const GRPC_BUILT: bool = cfg!(feature = "otlp-grpc");
    const HTTP_BUILT: bool = cfg!(feature = "otlp-http");
    const NO_OTLP: &str = "otel-agent-runtime's `otlp-grpc` or `otlp-http` feature, which this \
                           build leaves out";

    /// `check_otlp_built` on what the environment says.
    fn env_built(vars: &[(&str, &str)]) -> Result<(), String> {
        check_otlp_built(&settings(vars).unwrap(), &BuilderOtlp::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn otlp_in_the_environment_needs_its_feature() {
        for (endpoint, var, protocol) in [
            (
                "http://collector:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                Protocol::Grpc,
            ),
            (
                "http://collector:4318",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                Protocol::HttpProtobuf,
            ),
        ] {
            let named = [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                (var, protocol.env_name()),
            ];
            // The protocol guessed from the port, then named.
            for vars in [&named[..1], &named[..]] {
                let result = env_built(vars);
                if protocol.is_built() {
                    assert_eq!(result, Ok(()), "{vars:?}");
                    continue;
                }
                let e = result.expect_err("left out of this build");
                if protocol.other().is_built() {
                    let feature = format!(
                        "needs otel-agent-runtime's `{}` feature, which this build leaves out",
                        protocol.feature()
                    );
                    let (var, value) = match vars.len() {
                        1 => ("OTEL_EXPORTER_OTLP_PROTOCOL", ""),
                        _ => (var, protocol.env_name()),
                    };
                    assert!(
                        e.contains(&format!("{var}={value:?} is not valid"))
                            && e.contains(&format!("expected `{}`", protocol.other().env_name()))
                            && e.contains(&format!("`{}`", protocol.env_name()))
                            && e.contains(&feature),
                        "{e}"
                    );
                    if vars.len() == 1 {
                        assert!(e.contains(endpoint), "the endpoint that chose it: {e}");
                    }
                } else {
                    assert_eq!(
                        e,
                        format!(
                            "OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?} is not valid: expected no \
                             endpoint: OTLP export needs {NO_OTLP} (or set OTEL_TRACES_EXPORTER \
                             to `console` or `none`)"
                        )
                    );
                }
            }
        }
        // With no endpoint and no protocol: the one this build has.
        let e = env_built(&[("OTEL_METRICS_EXPORTER", "otlp")]);
        if GRPC_BUILT || HTTP_BUILT {
            assert_eq!(e, Ok(()));
        } else {
            let e = e.unwrap_err();
            assert!(
                e.starts_with("OTEL_METRICS_EXPORTER=\"otlp\" is not valid") && e.contains(NO_OTLP),
                "{e}"
            );
        }
        // Nothing is exported: nothing is missing.
        assert_eq!(
            env_built(&[
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ]),
            Ok(())
        );
    }

    #[test]
    fn otlp_chosen_in_code_needs_its_feature() {
        // The builder's choices, as `settings()` merges them.
        let check = |traces: ExporterKind, builder: BuilderOtlp<'_>| {
            let mut s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317")]).unwrap();
            s.traces = traces;
            s.metrics = ExporterKind::None;
            if let Some(p) = builder.protocol {
                s.traces_otlp.protocol = p;
            }
            check_otlp_built(&s, &builder).map_err(|e| e.to_string())
        };
        // Code that turns OTLP off wins over an environment this build cannot serve.
        let console = BuilderOtlp {
            traces: Some(ExporterKind::Console),
            metrics: Some(ExporterKind::None),
            ..BuilderOtlp::default()
        };
        assert_eq!(check(ExporterKind::Console, console), Ok(()));
        let otlp = BuilderOtlp {
            traces: Some(ExporterKind::Otlp),
            ..BuilderOtlp::default()
        };
        if !GRPC_BUILT && !HTTP_BUILT {
            assert_eq!(
                check(ExporterKind::Otlp, otlp),
                Err(format!(
                    "invalid traces_exporter \"Otlp\": expected `Console` or `None`: `Otlp` \
                     needs {NO_OTLP}"
                ))
            );
            let endpoint = BuilderOtlp {
                endpoint: Some("http://code:4317"),
                ..BuilderOtlp::default()
            };
            let e = check(ExporterKind::Otlp, endpoint).unwrap_err();
            assert!(
                e.starts_with("invalid endpoint \"http://code:4317\""),
                "{e}"
            );
            return;
        }
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
            let chosen = BuilderOtlp {
                protocol: Some(protocol),
                ..otlp
            };
            let result = check(ExporterKind::Otlp, chosen);
            if protocol.is_built() {
                assert_eq!(result, Ok(()));
            } else {
                assert_eq!(
                    result,
                    Err(format!(
                        "invalid protocol \"{protocol:?}\": expected `{:?}`: `{protocol:?}` \
                         needs otel-agent-runtime's `{}` feature, which this build leaves out",
                        protocol.other(),
                        protocol.feature()
                    ))
                );
                assert_eq!(
                    protocol_not_built(protocol).to_string(),
                    result.unwrap_err(),
                    "what the exporters say if ever asked"
                );
            }
        }
    }
}
