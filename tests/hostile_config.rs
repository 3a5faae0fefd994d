//! Configuration from outside, at its worst: values far above any sensible
//! size or duration, bytes that are not UTF-8, header lists holding tokens,
//! endpoints holding passwords, a backend without a metrics receiver, and no
//! protocol at all.
//!
//! The environment is process-global, so every case that needs the real
//! process environment (non-UTF-8 values, the warnings a running program
//! prints) runs in a child process (this test binary again, running
//! `child_program` only) with its own environment; the others hand their
//! variables to `builder().env(..)`, which reads nothing else.
//!
//! The properties:
//! - every size and duration has an upper bound; above it, `init()` fails with
//!   an error naming the variable, the bound and what to write instead;
//! - a value that is not UTF-8 in any `OTEL_*` variable is an error naming the
//!   variable, never "unset";
//! - `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` / `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`
//!   are checked and bounded;
//! - no error or warning shows a header value or the password of an endpoint;
//! - a backend without a metrics receiver (404) is reported once, with the
//!   traces-only setting, which works;
//! - with no protocol given, OTLP goes over `http/protobuf`; port 4317 still
//!   means gRPC.

#[path = "common/http1.rs"]
mod http1;

use std::ffi::{OsStr, OsString};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otel_agent_runtime::{agent_step, InitError};

// ---------------------------------------------------------------------------
// The instrumented program (runs only in a child process)
// ---------------------------------------------------------------------------

const CHILD: &str = "OTEL_AGENT_HOSTILE_CHILD";

#[agent_step(kind = tool, name = "work")]
fn work(i: u64) -> u64 {
    i
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The child: `init()` from the process environment (with the endpoint of
/// `CHILD_ENDPOINT` in code, when set), `CHILD_SPANS` spans over
/// `CHILD_RUN_MS`, then `shutdown()`. Reports on stdout, `child: ` lines; an
/// init error is reported, not a failure.
#[test]
fn child_program() {
    if std::env::var_os(CHILD).is_none() {
        return; // Only meaningful when started by the tests below.
    }
    let mut builder = otel_agent_runtime::builder()
        .default_service_name("hostile-config")
        .shutdown_timeout(Duration::from_millis(env_u64("CHILD_SHUTDOWN_MS", 3000)));
    if let Ok(endpoint) = std::env::var("CHILD_ENDPOINT") {
        builder = builder.endpoint(endpoint);
    }
    let telemetry = match builder.init() {
        Ok(telemetry) => telemetry,
        Err(e) => {
            println!("child: init_error={e}");
            println!("child: init_debug={e:?}");
            return;
        }
    };
    println!("child: enabled={}", telemetry.is_enabled());
    let spans = env_u64("CHILD_SPANS", 5);
    let pause = Duration::from_millis(env_u64("CHILD_RUN_MS", 0)) / spans.max(1) as u32;
    for i in 0..spans {
        work(i);
        std::thread::sleep(pause);
    }
    println!("child: produced={}", telemetry.spans_ended());
    match telemetry.shutdown() {
        Ok(()) => println!("child: shutdown=ok"),
        Err(e) => println!("child: shutdown_error={e}"),
    }
}

// ---------------------------------------------------------------------------
// Running a child
// ---------------------------------------------------------------------------

struct Run {
    stdout: String,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }

    fn child(&self, key: &str) -> Option<&str> {
        // libtest may print `test child_program ... ` before it on the same line.
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .filter_map(|l| l.split_once("child: ").map(|(_, report)| report))
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    /// The telemetry's lines on standard error.
    fn reports(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("otel-agent:"))
            .collect()
    }
}

/// Runs the child with exactly these `OTEL_*` variables (and `CHILD_*`
/// settings); any value may be bytes that are not UTF-8.
fn run(vars: &[(&str, &OsStr)]) -> Run {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        "child_program",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars_os() {
        let name = key.as_bytes();
        if name.starts_with(b"OTEL_") || name == b"RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.env(CHILD, "1");
    for (key, value) in vars {
        command.env(key, value);
    }
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = output;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let run = Run {
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        status.success(),
        "the child failed ({status}):\n{}",
        run.text()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.text());
    run
}

fn text(value: &str) -> OsString {
    OsString::from(value)
}

/// A value with bytes that are not UTF-8.
fn bytes(value: &[u8]) -> OsString {
    OsStr::from_bytes(value).to_owned()
}

// ---------------------------------------------------------------------------
// Servers on 127.0.0.1
// ---------------------------------------------------------------------------

fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// What a server saw: the first line of every request (or `h2` for a gRPC
/// connection's preface).
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// An OTLP/HTTP receiver answering each path with the status `answer` gives
/// (200 for a backend that takes it, 404 for one without that receiver);
/// an HTTP/2 (gRPC) preface is recorded as `h2` and the connection closed.
fn http_server(answer: fn(&str) -> u16) -> (u16, Arc<Seen>) {
    let (listener, port) = listen();
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || serve(stream, &record, answer));
        }
    });
    (port, seen)
}

fn serve(stream: TcpStream, seen: &Seen, answer: fn(&str) -> u16) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line.starts_with("PRI * HTTP/2.0") {
            seen.0.lock().unwrap().push("h2".to_owned());
            return;
        }
        let Some(_body) = http1::read_headers_and_body(&mut reader) else {
            return;
        };
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        seen.0.lock().unwrap().push(line.trim_end().to_owned());
        let status = answer(&path);
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let reply = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-protobuf\r\n\
             content-length: 0\r\n\r\n"
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn all_ok(_: &str) -> u16 {
    200
}

fn unauthorized(_: &str) -> u16 {
    401
}

/// MLflow: traces on `/v1/traces`, no `/v1/metrics`.
fn traces_only_backend(path: &str) -> u16 {
    if path.starts_with("/v1/traces") {
        200
    } else {
        404
    }
}

// ---------------------------------------------------------------------------
// Upper bounds
// ---------------------------------------------------------------------------

fn build_error(vars: &[(&str, &str)]) -> InitError {
    otel_agent_runtime::builder()
        .env(vars.iter().copied())
        .build()
        .expect_err("expected an error")
}

/// Each size and duration above its bound: the error names the variable, the
/// bound, and what to write instead (a smaller number, or unset for the
/// default), and nothing was allocated for it.
#[test]
fn every_bound_is_an_init_error_naming_the_variable_the_bound_and_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "100000000",
            "expected at most 1048576 spans (the upper bound, so that no setting can exhaust \
             memory): write a smaller number, or unset it for the default (65536)",
        ),
        (
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            "70000",
            "expected at most 65536 spans (the upper bound, so that no setting can exhaust \
             memory): write a smaller number, or unset it for the default (512)",
        ),
        (
            "OTEL_BSP_SCHEDULE_DELAY",
            "3600001",
            "expected at most 3600000 milliseconds (1 hour, the upper bound for this delay): \
             write a smaller number, or unset it for the default (5000)",
        ),
        (
            "OTEL_METRIC_EXPORT_INTERVAL",
            "86400000",
            "expected at most 3600000 milliseconds (1 hour, the upper bound for this interval): \
             write a smaller number, or unset it for the default (60000)",
        ),
        (
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "600001",
            "expected at most 600000 milliseconds (10 minutes, the upper bound for this \
             timeout): write a smaller number, or unset it for the default (10000)",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "99999999999999999999999999",
            "expected at most 600000 milliseconds (10 minutes, the upper bound for this timeout)",
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            "3600000",
            "expected at most 600000 milliseconds (10 minutes, the upper bound for this timeout)",
        ),
        (
            "OTEL_BSP_EXPORT_TIMEOUT",
            "86400000",
            "expected at most 600000 milliseconds (10 minutes, the upper bound for this \
             timeout): write a smaller number, or unset it for the default (30000)",
        ),
        (
            "OTEL_METRIC_EXPORT_TIMEOUT",
            "86400000",
            "expected at most 600000 milliseconds (10 minutes, the upper bound for this \
             timeout): write a smaller number, or unset it for the default (30000)",
        ),
        (
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "2000000",
            "expected at most 1048576 characters (the upper bound, so that no setting can \
             exhaust memory): write a smaller number, or unset it for no limit",
        ),
        (
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "18446744073709551616",
            "expected at most 1048576 characters",
        ),
    ];
    for (var, value, expected) in cases {
        // The batch size is checked against the largest queue, not the default one.
        let mut vars = vec![(*var, *value)];
        if *var == "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" {
            vars.push(("OTEL_BSP_MAX_QUEUE_SIZE", "1048576"));
        }
        let e = build_error(&vars);
        assert!(
            matches!(&e, InitError::InvalidEnv { var: v, .. } if v == var),
            "{e:?}"
        );
        let message = e.to_string();
        let want = format!("{var}={value:?} is not valid: {expected}");
        assert!(
            message.starts_with(&want),
            "for {var}:\n  got  {message}\n  want {want}"
        );
    }
}

/// The bounds themselves, and zero where it means something (no delay).
#[test]
fn values_at_the_bounds_are_accepted() {
    let telemetry = otel_agent_runtime::builder()
        .env([
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1048576"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "65536"),
            ("OTEL_BSP_SCHEDULE_DELAY", "0"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "600000"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "3600000"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "600000"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "600000"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1048576"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])
        .build()
        .expect("values at the bounds are valid");
    assert!(telemetry.is_enabled());
    telemetry.shutdown().unwrap();
}

/// The builder's durations: the same bounds as the environment's.
#[test]
fn the_builders_durations_have_the_same_bounds() {
    let build =
        |b: otel_agent_runtime::TelemetryBuilder| b.env([("OTEL_TRACES_EXPORTER", "none")]).build();
    let e = build(
        otel_agent_runtime::builder().metric_export_interval(Duration::from_secs(2 * 60 * 60)),
    )
    .expect_err("two hours is above the bound");
    assert_eq!(
        e.to_string(),
        "invalid metric_export_interval \"7200s\": expected a duration from 1 ms to 1 hour (the \
         upper bound for this interval)"
    );
    let e = build(otel_agent_runtime::builder().metric_export_interval(Duration::ZERO))
        .expect_err("zero is no interval");
    assert!(
        matches!(
            e,
            InitError::InvalidSetting {
                setting: "metric_export_interval",
                ..
            }
        ),
        "{e}"
    );
    let e = build(otel_agent_runtime::builder().shutdown_timeout(Duration::from_secs(86_400)))
        .expect_err("a day is above the bound");
    assert_eq!(
        e.to_string(),
        "invalid shutdown_timeout \"86400s\": expected a duration from 0 ms to 10 minutes (the \
         upper bound for this timeout)"
    );
    build(
        otel_agent_runtime::builder()
            .metric_export_interval(Duration::from_secs(3600))
            .shutdown_timeout(Duration::from_secs(600)),
    )
    .expect("the bounds themselves are accepted")
    .shutdown()
    .unwrap();
}

// ---------------------------------------------------------------------------
// Values that are not UTF-8
// ---------------------------------------------------------------------------

/// `OTEL_SDK_DISABLED=$'\xff'` used to leave telemetry on; a bad endpoint fell
/// back to the console. Each is now an error naming the variable.
#[test]
fn a_value_that_is_not_utf8_is_an_error_naming_the_variable() {
    for (var, value, shown) in [
        ("OTEL_SDK_DISABLED", bytes(b"\xff"), "\"\\xff\""),
        ("OTEL_SERVICE_NAME", bytes(b"caf\xe9"), "\"caf\\xe9\""),
        (
            "OTEL_AGENT_SPAN_EVENTS",
            bytes(b"info\xc3"),
            "\"info\\xc3\"",
        ),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            bytes(b"tru\xe9"),
            "\"tru\\xe9\"",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            bytes(b"http://user:pa\xffss@127.0.0.1:4318"),
            "\"<not shown>\"",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            bytes(b"authorization=Bearer s3cr3t\xff"),
            "\"<not shown>\"",
        ),
    ] {
        let run = run(&[(var, &value)]);
        let error = run
            .child("init_error")
            .unwrap_or_else(|| panic!("{var}: init() succeeded:\n{}", run.text()));
        assert!(
            error.starts_with(&format!("{var}={shown} is not valid: expected UTF-8 text"))
                && error.ends_with(&format!("write it in UTF-8, or unset {var}")),
            "{var}: {error}"
        );
        assert!(
            !run.stdout.contains("s3cr3t") && !run.stdout.contains("user:pa"),
            "{}",
            run.text()
        );
    }
    // The same variables as UTF-8 are fine.
    let run = run(&[
        ("OTEL_SDK_DISABLED", &text("true")),
        ("OTEL_SERVICE_NAME", &text("café")),
    ]);
    assert_eq!(run.child("enabled"), Some("false"), "{}", run.text());
}

// ---------------------------------------------------------------------------
// Attribute value length
// ---------------------------------------------------------------------------

#[test]
fn attribute_value_length_limits_are_parsed_and_bounded() {
    let ok = |vars: &[(&str, &str)]| {
        let mut vars = vars.to_vec();
        vars.push(("OTEL_TRACES_EXPORTER", "none"));
        otel_agent_runtime::builder()
            .env(vars)
            .build()
            .map(|t| t.shutdown().unwrap())
            .map_err(|e| e.to_string())
    };
    assert_eq!(ok(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4096")]), Ok(()));
    assert_eq!(
        ok(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4096"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256"),
        ]),
        Ok(())
    );
    for (var, value) in [
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-5"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4k"),
    ] {
        assert_eq!(
            ok(&[(var, value)]),
            Err(format!(
                "{var}={value:?} is not valid: expected a positive whole number of characters, \
                 at most 1048576, e.g. `4096`"
            ))
        );
    }
    // The span variable wins, but a bad generic one is still an error.
    let e = ok(&[
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256"),
    ])
    .unwrap_err();
    assert!(
        e.starts_with("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=\"lots\""),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// No secret in a message
// ---------------------------------------------------------------------------

const TOKEN: &str = "sk-proj-s3cr3tT0k3nValue";

/// What `main() -> anyhow::Result` or `-> Result<(), InitError>` prints: the
/// error, its sources, and its `Debug`.
fn every_text(e: &InitError) -> String {
    let mut text = format!("{e}\n{e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    text
}

/// A malformed header list holding a bearer token: the error names the
/// variable and the entry that is wrong, and shows keys only.
#[test]
fn a_malformed_header_list_never_shows_its_token() {
    for value in [
        format!("authorization=Bearer {TOKEN},broken"),
        format!("authorization=Bearer%20{TOKEN},x-bad=%zz"),
        format!("Authorization: Bearer {TOKEN}"),
        TOKEN.to_string(),
        format!("{TOKEN}=="),
        format!("x-api-key={TOKEN}\u{1b}"),
        format!("=Bearer {TOKEN}"),
    ] {
        for var in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        ] {
            let e = build_error(&[(var, value.as_str())]);
            let text = every_text(&e);
            assert!(!text.contains("s3cr3t"), "{var}={value:?}:\n{text}");
            assert!(e.to_string().starts_with(&format!("{var}=")), "{e}");
        }
    }
    assert_eq!(
        build_error(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            &format!("authorization=Bearer {TOKEN},broken")
        )])
        .to_string(),
        "OTEL_EXPORTER_OTLP_HEADERS=\"authorization=***,***\" is not valid: expected a \
         comma-separated list of headers, e.g. `key1=value1,key2=value2` (entry 2 has no `=`)"
    );
    // The same token, valid, is sent and never printed: it is not an error.
    otel_agent_runtime::builder()
        .env([
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("authorization=Bearer%20{TOKEN}").as_str(),
            ),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])
        .build()
        .expect("a valid header list")
        .shutdown()
        .unwrap();
}

/// An endpoint with a password, in the environment or in code, in an init
/// error: shown without its credentials.
#[test]
fn an_endpoint_with_a_password_is_never_shown_in_an_init_error() {
    for (var, value) in [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://user:s3cr3t@collector:",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "user:s3cr3t@collector:4318",
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "ftp://user:s3cr3t@collector",
        ),
    ] {
        let e = build_error(&[(var, value)]);
        let text = every_text(&e);
        assert!(
            !text.contains("s3cr3t") && text.contains("***@collector"),
            "{text}"
        );
        assert!(e.to_string().starts_with(var), "{e}");
    }
    let e = otel_agent_runtime::builder()
        .env(Vec::<(String, String)>::new())
        .endpoint("user:s3cr3t@collector:4317")
        .build()
        .unwrap_err();
    let text = every_text(&e);
    assert!(
        !text.contains("s3cr3t") && text.contains("***@collector"),
        "{text}"
    );
}

/// A real backend that refuses every export (401), and a gRPC export to an
/// HTTP port: no warning or summary line shows the password in the endpoint,
/// set in the environment or in code.
#[test]
fn credentials_in_the_endpoint_never_reach_a_warning() {
    let (port, seen) = http_server(unauthorized);
    let endpoint = format!("http://user:s3cr3t@127.0.0.1:{port}");
    let timeout = text("2000");
    let metrics_fast = text("50");
    let otlp = text("otlp");
    let env_endpoint = text(&endpoint);
    for (protocol, in_code) in [
        ("http/protobuf", false),
        ("grpc", false),
        ("http/protobuf", true),
    ] {
        let protocol_value = text(protocol);
        let mut vars: Vec<(&str, &OsStr)> = vec![
            ("OTEL_EXPORTER_OTLP_PROTOCOL", &protocol_value),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", &timeout),
            ("OTEL_METRIC_EXPORT_INTERVAL", &metrics_fast),
            ("OTEL_METRICS_EXPORTER", &otlp),
            ("OTEL_TRACES_EXPORTER", &otlp),
        ];
        if in_code {
            vars.push(("CHILD_ENDPOINT", &env_endpoint));
        } else {
            vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", &env_endpoint));
        }
        let run = run(&vars);
        assert!(
            run.reports()
                .iter()
                .any(|l| l.starts_with("otel-agent: cannot export traces")),
            "{protocol}: a warning was expected:\n{}",
            run.text()
        );
        assert!(
            !run.stderr.contains("s3cr3t") && !run.stdout.contains("s3cr3t"),
            "{protocol}, in code: {in_code}:\n{}",
            run.text()
        );
        assert!(!run.stderr.contains("user:"), "{}", run.text());
    }
    assert!(
        seen.count("POST /v1/traces") > 0 && seen.count("h2") > 0,
        "{:?}",
        seen.lines()
    );
}

// ---------------------------------------------------------------------------
// A backend without a metrics receiver
// ---------------------------------------------------------------------------

/// MLflow takes traces and answers 404 on `/v1/metrics`: across dozens of
/// metric intervals, one warning, which names the traces-only setting; the
/// traces arrive.
#[test]
fn a_backend_without_metrics_is_reported_once() {
    let (port, seen) = http_server(traces_only_backend);
    let endpoint = text(&format!("http://127.0.0.1:{port}"));
    let interval = text("20");
    let delay = text("20");
    let spans = text("40");
    let run_ms = text("1500");
    let run = run(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_METRIC_EXPORT_INTERVAL", &interval),
        ("OTEL_BSP_SCHEDULE_DELAY", &delay),
        ("CHILD_SPANS", &spans),
        ("CHILD_RUN_MS", &run_ms),
    ]);
    let metric_requests = seen.count("POST /v1/metrics");
    assert!(
        metric_requests >= 10,
        "many intervals: {metric_requests}\n{}",
        run.text()
    );
    let warnings: Vec<&str> = run
        .reports()
        .into_iter()
        .filter(|l| l.contains("metric") && !l.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|l| l.starts_with("otel-agent: cannot export"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "otel-agent: cannot export metrics to http://127.0.0.1:{port}/v1/metrics (HTTP 404 \
             Not Found); metric exports are being dropped — the endpoint has no metrics \
             receiver: to send traces only, set OTEL_METRICS_EXPORTER=none; if it should take \
             metrics, check the path in OTEL_EXPORTER_OTLP_ENDPOINT (further failures are \
             counted, not printed)"
        )],
        "{}",
        run.text()
    );
    // Besides it, only the summary at exit; the traces were all delivered.
    assert_eq!(run.reports().len(), 2, "{}", run.text());
    let summary = run.reports()[1];
    assert!(
        summary.contains("metric exports could not be delivered")
            && summary.contains("(HTTP 404 Not Found)")
            && !summary.contains("span"),
        "{summary}"
    );
    assert!(seen.count("POST /v1/traces") > 0);
    assert_eq!(run.child("shutdown"), Some("ok"), "{}", run.text());
}

/// The traces-only setting the warning names: no metric request, no
/// warning, no summary; every span delivered.
#[test]
fn otel_metrics_exporter_none_sends_traces_only() {
    let (port, seen) = http_server(traces_only_backend);
    let endpoint = text(&format!("http://127.0.0.1:{port}"));
    let none = text("none");
    let interval = text("20");
    let run_ms = text("500");
    let run = run(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_METRICS_EXPORTER", &none),
        ("OTEL_METRIC_EXPORT_INTERVAL", &interval),
        ("CHILD_RUN_MS", &run_ms),
    ]);
    assert_eq!(run.reports(), Vec::<&str>::new(), "{}", run.text());
    assert_eq!(seen.count("/v1/metrics"), 0, "{:?}", seen.lines());
    assert!(seen.count("POST /v1/traces") > 0, "{:?}", seen.lines());
    assert_eq!(run.child("shutdown"), Some("ok"), "{}", run.text());
}

// ---------------------------------------------------------------------------
// The default protocol
// ---------------------------------------------------------------------------

/// No protocol, an endpoint on any port but 4317: OTLP/HTTP (`POST
/// /v1/traces`), the specification's default, from the environment and from
/// the builder's `endpoint()`.
#[test]
fn the_default_protocol_is_http_protobuf() {
    let (port, seen) = http_server(all_ok);
    let endpoint = text(&format!("http://127.0.0.1:{port}"));
    let run_env = run(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
    assert_eq!(run_env.reports(), Vec::<&str>::new(), "{}", run_env.text());
    assert!(
        seen.count("POST /v1/traces HTTP/1.1") > 0,
        "{:?}",
        seen.lines()
    );
    assert!(
        seen.count("POST /v1/metrics HTTP/1.1") > 0,
        "{:?}",
        seen.lines()
    );
    assert_eq!(seen.count("h2"), 0, "{:?}", seen.lines());

    let (port, seen) = http_server(all_ok);
    let endpoint = text(&format!("http://127.0.0.1:{port}"));
    let run_code = run(&[("CHILD_ENDPOINT", &endpoint)]);
    assert_eq!(
        run_code.reports(),
        Vec::<&str>::new(),
        "{}",
        run_code.text()
    );
    assert!(
        seen.count("POST /v1/traces HTTP/1.1") > 0,
        "{:?}",
        seen.lines()
    );
    assert_eq!(seen.count("h2"), 0, "{:?}", seen.lines());
}

/// Port 4317 still means gRPC, and an explicit protocol always wins.
#[test]
fn port_4317_means_grpc_and_an_explicit_protocol_wins() {
    // An explicit gRPC wins over the default on any port.
    let (port, seen) = http_server(all_ok);
    let endpoint = text(&format!("http://127.0.0.1:{port}"));
    let grpc = text("grpc");
    let timeout = text("1000");
    run(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", &grpc),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", &timeout),
    ]);
    assert!(seen.count("h2") > 0, "{:?}", seen.lines());
    assert_eq!(seen.count("POST"), 0, "{:?}", seen.lines());

    // Port 4317 itself, when this machine leaves it free.
    let Ok(listener) = TcpListener::bind("127.0.0.1:4317") else {
        eprintln!("127.0.0.1:4317 is taken on this machine: its case is left to the unit tests");
        return;
    };
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || serve(stream, &record, all_ok));
        }
    });
    let endpoint = text("http://127.0.0.1:4317");
    let http = text("http/protobuf");
    run(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", &timeout),
    ]);
    assert!(seen.count("h2") > 0, "gRPC on 4317: {:?}", seen.lines());
    assert_eq!(seen.count("POST"), 0, "{:?}", seen.lines());
    run(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", &http),
    ]);
    assert!(seen.count("POST /v1/traces") > 0, "{:?}", seen.lines());
}
