//! The standard `OTEL_*` environment, parsed and checked.
//!
//! Parsing is strict on purpose: a typo in an exporter setting otherwise shows up
//! hours later as "no data in Grafana". Every error names the variable and what it
//! accepts. Unset or empty variables mean "use the default", as the OpenTelemetry
//! environment specification says.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::InitError;

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
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtlpSettings {
    /// The full URL to send to (for HTTP, including `/v1/traces` or `/v1/metrics`).
    pub endpoint: Option<String>,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

/// The variables that chose a signal's OTLP export, to name them when this
/// build leaves that export out.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OtlpOrigin {
    /// `OTEL_TRACES_EXPORTER` or `OTEL_METRICS_EXPORTER`, when it says `otlp`.
    pub exporter_var: Option<&'static str>,
    /// The endpoint variable in effect, and its value.
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
}

/// The span queue of the OTLP exporter (`OTEL_BSP_*`): the memory cap while the
/// collector is slow or away.
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
            max_queue_size: 2048,
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

/// A source of environment values; tests pass a map, `init()` the process environment.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn get(lookup: Lookup<'_>, var: &str) -> Option<String> {
    lookup(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn invalid(var: &'static str, value: &str, expected: impl Into<String>) -> InitError {
    InitError::InvalidEnv {
        var,
        value: value.to_owned(),
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

fn parse_millis(var: &'static str, value: &str) -> Result<Duration, InitError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(var, value, "a whole number of milliseconds, e.g. `10000`"))
}

fn parse_count(var: &'static str, value: &str) -> Result<usize, InitError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(var, value, "a positive whole number, e.g. `2048`")),
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
    let mut batch = BatchSettings::default();
    if let Some(v) = get(lookup, QUEUE) {
        batch.max_queue_size = parse_count(QUEUE, &v)?;
    }
    match get(lookup, BATCH) {
        Some(v) => {
            batch.max_export_batch_size = parse_count(BATCH, &v)?;
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
        batch.schedule_delay = parse_millis(DELAY, &v)?;
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
/// and resource-attribute lists are written.
fn parse_pairs(
    var: &'static str,
    value: &str,
    what: &str,
) -> Result<Vec<(String, String)>, InitError> {
    let expected = || format!("a comma-separated list of {what}, e.g. `key1=value1,key2=value2`");
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, val) = item
            .split_once('=')
            .ok_or_else(|| invalid(var, value, expected()))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid(var, value, expected()));
        }
        let val = percent_decode(val.trim()).ok_or_else(|| invalid(var, value, expected()))?;
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
    for (name, val) in &headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(val).is_err()
        {
            return Err(invalid(
                var,
                value,
                "headers as `name=value` pairs with valid HTTP header names and values",
            ));
        }
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

/// The port 4318 is the collector's OTLP/HTTP port: an endpoint on it with no
/// protocol given means HTTP, anything else gRPC (the Rust ecosystem's default).
/// With no endpoint either, a build with HTTP only uses HTTP (to the exporter's
/// default, `localhost:4318`).
fn default_protocol(endpoint: Option<&str>) -> Protocol {
    let Some(endpoint) = endpoint else {
        return if Protocol::Grpc.is_built() || !Protocol::HttpProtobuf.is_built() {
            Protocol::Grpc
        } else {
            Protocol::HttpProtobuf
        };
    };
    match endpoint
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.port_u16())
    {
        Some(4318) => Protocol::HttpProtobuf,
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
            (Some(e), _) => Some((vars.endpoint, e.clone())),
            (None, Some(b)) => Some(("OTEL_EXPORTER_OTLP_ENDPOINT", b.clone())),
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
    let headers = match get(lookup, vars.headers) {
        Some(v) => parse_headers(vars.headers, &v)?,
        None => match get(lookup, "OTEL_EXPORTER_OTLP_HEADERS") {
            Some(v) => parse_headers("OTEL_EXPORTER_OTLP_HEADERS", &v)?,
            None => Vec::new(),
        },
    };
    let timeout = match get(lookup, vars.timeout) {
        Some(v) => parse_millis(vars.timeout, &v)?,
        None => match get(lookup, "OTEL_EXPORTER_OTLP_TIMEOUT") {
            Some(v) => parse_millis("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?,
            None => DEFAULT_TIMEOUT,
        },
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
            .map(|v| parse_millis("OTEL_METRIC_EXPORT_INTERVAL", &v))
            .transpose()?
            .unwrap_or(DEFAULT_METRIC_INTERVAL);
        if metric_interval.is_zero() {
            return Err(invalid(
                "OTEL_METRIC_EXPORT_INTERVAL",
                "0",
                "a positive number of milliseconds",
            ));
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
        })
    }
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
            value: url.to_owned(),
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
    let port = match protocol {
        Protocol::Grpc => "not on port 4318",
        Protocol::HttpProtobuf => "on port 4318",
    };
    if builder.protocol.is_some() {
        return protocol_not_built(protocol);
    }
    if let Some(url) = builder.endpoint {
        return InitError::InvalidSetting {
            setting: "endpoint",
            value: url.to_owned(),
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
        Some((var, url)) => format!("for {var}={url:?} ({port})"),
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
    fn an_endpoint_selects_otlp_and_grpc_by_default() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]).unwrap();
        assert_eq!(s.traces, ExporterKind::Otlp);
        assert_eq!(s.metrics, ExporterKind::Otlp);
        assert_eq!(s.traces_otlp.protocol, Protocol::Grpc);
        assert_eq!(
            s.traces_otlp.endpoint.as_deref(),
            Some("http://127.0.0.1:4317")
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
        assert!(e.contains("positive"), "{e}");
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
