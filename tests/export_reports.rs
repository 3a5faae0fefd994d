//! What a program prints when its telemetry cannot be delivered, for each way
//! a backend fails: nothing listens, it never answers, it closes connections,
//! it does not speak TLS, or it answers with an HTTP or gRPC error status.
//!
//! Every case runs an instrumented program in a child process (this test binary
//! again, running `child_program` only) against a real server on 127.0.0.1
//! with an OS-assigned port, and reads the child's real standard error:
//!
//! - one warning per signal, naming the endpoint, what happened and what to
//!   check; only a failure to connect asks "is the collector running?";
//! - one line at shutdown, saying "could not be delivered" only for what
//!   certainly did not arrive, and "not confirmed" for what was sent and not
//!   answered in time (the backend may have stored it);
//! - never the SDK's `Debug` texts, and `shutdown()` is `Ok` when the only
//!   trouble was the backend (already reported).

#[path = "common/http1.rs"]
mod http1;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otel_agent_runtime::agent_step;

// ---------------------------------------------------------------------------
// The instrumented program (runs only in a child process)
// ---------------------------------------------------------------------------

const CHILD: &str = "OTEL_AGENT_REPORTS_CHILD";

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

/// The child: `CHILD_SPANS` spans, then `shutdown()`. Reports on stdout.
#[test]
fn child_program() {
    if std::env::var_os(CHILD).is_none() {
        return; // Only meaningful when started by the tests below.
    }
    let telemetry = otel_agent_runtime::builder()
        .default_service_name("export-reports")
        .shutdown_timeout(Duration::from_millis(env_u64("CHILD_SHUTDOWN_MS", 3000)))
        .init()
        .expect("a failing backend is not an init error");
    for i in 0..env_u64("CHILD_SPANS", 5) {
        work(i);
    }
    println!("child: produced={}", telemetry.spans_ended());
    match telemetry.shutdown() {
        Ok(()) => println!("child: shutdown=ok"),
        Err(e) => println!("child: shutdown_error={e}"),
    }
}

// ---------------------------------------------------------------------------
// Servers on 127.0.0.1
// ---------------------------------------------------------------------------

fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A port on which nothing listens: connections are refused.
fn refused_port() -> u16 {
    listen().1
}

/// Reads one HTTP/1.1 request; `false` when the connection ended.
fn read_request(reader: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return false;
    }
    http1::read_headers_and_body(reader).is_some()
}

/// Answers every request with `status` after `delay`; counts the requests.
fn http_server(status: u16, delay: Duration) -> (u16, Arc<AtomicU64>) {
    let (listener, port) = listen();
    let requests = Arc::new(AtomicU64::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let Ok(mut writer) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                while read_request(&mut reader) {
                    count.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(delay);
                    let reason = http::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("");
                    let reply = format!(
                        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n\
                         content-length: 0\r\n\r\n"
                    );
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, requests)
}

/// Accepts connections and never reads or answers.
fn black_hole() -> u16 {
    let (listener, port) = listen();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// Accepts connections and closes them at once.
fn closing_server() -> u16 {
    let (listener, port) = listen();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    port
}

/// How the gRPC server answers every call.
#[derive(Clone, Copy)]
enum GrpcAnswer {
    /// A gRPC status in the trailers, as an OTLP receiver does.
    Status(u16),
    /// A bare HTTP status without any gRPC status, as a proxy in front does.
    Http(u16),
}

/// gRPC over HTTP/2 (h2): answers each unary `Export` with `answer`.
fn grpc_server(answer: GrpcAnswer) -> u16 {
    let (listener, port) = listen();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(socket).await else {
                        return;
                    };
                    while let Some(Ok((request, respond))) = connection.accept().await {
                        tokio::spawn(answer_grpc(request, respond, answer));
                    }
                });
            }
        });
    });
    port
}

async fn answer_grpc(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    answer: GrpcAnswer,
) {
    let mut body = request.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    match answer {
        GrpcAnswer::Http(status) => {
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "text/plain")
                .body(())
                .unwrap();
            let _ = respond.send_response(response, true);
        }
        GrpcAnswer::Status(code) => {
            let response = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let Ok(mut send) = respond.send_response(response, false) else {
                return;
            };
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from(code));
            trailers.insert(
                "grpc-message",
                http::HeaderValue::from_static("refused%20by%20the%20test"),
            );
            let _ = send.send_trailers(trailers);
        }
    }
}

// ---------------------------------------------------------------------------
// Running a child
// ---------------------------------------------------------------------------

struct Run {
    stdout: String,
    stderr: Vec<String>,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr.join("\n")
        )
    }

    fn child(&self, key: &str) -> Option<&str> {
        // libtest may print `test child_program ... ` before it on the same line.
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .filter_map(|l| l.split_once("child: ").map(|(_, report)| report))
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    fn produced(&self) -> u64 {
        self.child("produced")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no count of spans:\n{}", self.text()))
    }

    /// The telemetry's lines on standard error.
    fn reports(&self) -> Vec<&str> {
        self.stderr
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with("otel-agent:"))
            .collect()
    }

    fn warnings(&self) -> Vec<&str> {
        self.reports()
            .into_iter()
            .filter(|l| l.starts_with("otel-agent: cannot export"))
            .collect()
    }

    /// The shutdown summary: the line that starts with a count.
    fn summary(&self) -> Option<&str> {
        self.reports().into_iter().find(|l| {
            l.strip_prefix("otel-agent: ")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
    }

    /// What every case shares: `shutdown()` is fine, no SDK `Debug` text
    /// reaches the terminal, and only connection failures ask about the
    /// collector running.
    fn assert_plain(&self, asks_if_running: bool) {
        assert_eq!(
            self.child("shutdown"),
            Some("ok"),
            "shutdown() fails only for SDK failures, not for a backend already reported:\n{}",
            self.text()
        );
        for line in self.reports() {
            for debug in [
                "InternalFailure",
                "Operation failed",
                "Err(",
                "Some(",
                "Status {",
            ] {
                assert!(
                    !line.contains(debug),
                    "SDK debug text {debug:?} in {line:?}"
                );
            }
        }
        let asks = self
            .reports()
            .iter()
            .any(|l| l.contains("is the collector running"));
        assert_eq!(asks, asks_if_running, "{}", self.text());
        assert!(
            !self.stderr.iter().any(|l| l.contains("panicked")),
            "{}",
            self.text()
        );
    }
}

/// Runs the child with these `OTEL_*` settings (on top of a 500 ms export
/// timeout, a 50 ms batch delay and metrics off unless set here).
fn run(settings: &[(&str, String)]) -> Run {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        "child_program",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .env(CHILD, "1")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "100")
        .env("OTEL_METRICS_EXPORTER", "none");
    for (key, value) in settings {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
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
        stderr: err.join().unwrap().lines().map(str::to_owned).collect(),
    };
    assert!(
        status.success(),
        "the child failed ({status}):\n{}",
        run.text()
    );
    run
}

fn otlp(protocol: &str, endpoint: String) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
    ]
}

fn http_at(port: u16) -> Vec<(&'static str, String)> {
    otlp("http/protobuf", format!("http://127.0.0.1:{port}"))
}

fn grpc_at(port: u16) -> Vec<(&'static str, String)> {
    otlp("grpc", format!("http://127.0.0.1:{port}"))
}

fn warning(signal: &str, endpoint: &str, reason: &str, dropped: &str, hint: &str) -> String {
    format!(
        "otel-agent: cannot export {signal} to {endpoint} ({reason}); {dropped} — {hint} \
         (further failures are counted, not printed)"
    )
}

const SPANS_DROPPED: &str = "spans are being dropped";

/// The backend answers with an error status: one warning naming the status and
/// what to check, and every span counted as not delivered, for that reason.
fn rejected(settings: Vec<(&'static str, String)>, shown: &str, reason: &str, hint: &str) {
    let run = run(&settings);
    let base = shown.trim_end_matches("/v1/traces");
    assert_eq!(
        run.warnings(),
        [warning("traces", shown, reason, SPANS_DROPPED, hint)],
        "{}",
        run.text()
    );
    assert_eq!(
        run.summary(),
        Some(
            format!(
                "otel-agent: {} spans could not be delivered to {base} ({reason})",
                run.produced()
            )
            .as_str()
        ),
        "{}",
        run.text()
    );
    assert_eq!(run.reports().len(), 2, "{}", run.text());
    run.assert_plain(false);
}

fn http_status(status: u16, reason: &str, hint: &str) {
    let (port, requests) = http_server(status, Duration::ZERO);
    rejected(
        http_at(port),
        &format!("http://127.0.0.1:{port}/v1/traces"),
        reason,
        hint,
    );
    assert!(requests.load(Ordering::Relaxed) > 0);
}

fn grpc_status(answer: GrpcAnswer, reason: &str, hint: &str) {
    let port = grpc_server(answer);
    rejected(
        grpc_at(port),
        &format!("http://127.0.0.1:{port}"),
        reason,
        hint,
    );
}

const CREDENTIALS: &str = "the backend does not accept the credentials: check the API key or \
                           token in OTEL_EXPORTER_OTLP_HEADERS";
const REJECTED: &str = "the backend rejected the payload, or a header it requires is missing: \
                        check OTEL_EXPORTER_OTLP_HEADERS";
const BACKPRESSURE: &str =
    "back-pressure: the backend is overloaded or over a quota and asks to slow down";
const SERVER_ERROR: &str = "the backend failed to handle the export: check its logs";
const GRPC_NO_TRACES: &str = "the endpoint has no OTLP gRPC service for traces: to send metrics \
                              only, set OTEL_TRACES_EXPORTER=none; if it should take traces, \
                              check OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL";

// ---------------------------------------------------------------------------
// OTLP/HTTP status classes
// ---------------------------------------------------------------------------

#[test]
fn http_400_rejected_payload() {
    http_status(400, "HTTP 400 Bad Request", REJECTED);
}

#[test]
fn http_422_rejected_payload_is_not_a_connection_problem() {
    http_status(422, "HTTP 422 Unprocessable Entity", REJECTED);
}

#[test]
fn http_401_credentials() {
    http_status(401, "HTTP 401 Unauthorized", CREDENTIALS);
}

#[test]
fn http_403_credentials() {
    http_status(403, "HTTP 403 Forbidden", CREDENTIALS);
}

#[test]
fn http_404_no_endpoint_for_the_signal() {
    http_status(
        404,
        "HTTP 404 Not Found",
        "the endpoint has no traces receiver: to send metrics only, set \
         OTEL_TRACES_EXPORTER=none; if it should take traces, check the path in \
         OTEL_EXPORTER_OTLP_ENDPOINT",
    );
}

#[test]
fn http_413_payload_too_large() {
    http_status(
        413,
        "HTTP 413 Payload Too Large",
        "the export is larger than the backend accepts: lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE, \
         now 512",
    );
}

#[test]
fn http_429_back_pressure() {
    http_status(429, "HTTP 429 Too Many Requests", BACKPRESSURE);
}

#[test]
fn http_503_back_pressure() {
    http_status(503, "HTTP 503 Service Unavailable", BACKPRESSURE);
}

#[test]
fn http_500_backend_error() {
    http_status(500, "HTTP 500 Internal Server Error", SERVER_ERROR);
}

#[test]
fn http_502_backend_error() {
    http_status(502, "HTTP 502 Bad Gateway", SERVER_ERROR);
}

/// The metrics endpoint missing (a traces-only backend): the metrics warning
/// says how to turn metrics off, and shutdown no longer fails with the SDK's
/// `[InternalFailure("Failed to shutdown")]`.
#[test]
fn http_404_for_metrics_says_how_to_turn_them_off() {
    let (port, _) = http_server(404, Duration::ZERO);
    let mut settings = http_at(port);
    settings.push(("OTEL_TRACES_EXPORTER", "none".to_owned()));
    settings.push(("OTEL_METRICS_EXPORTER", "otlp".to_owned()));
    let run = run(&settings);
    assert_eq!(
        run.warnings(),
        [warning(
            "metrics",
            &format!("http://127.0.0.1:{port}/v1/metrics"),
            "HTTP 404 Not Found",
            "metric exports are being dropped",
            "the endpoint has no metrics receiver: to send traces only, set \
             OTEL_METRICS_EXPORTER=none; if it should take metrics, check the path in \
             OTEL_EXPORTER_OTLP_ENDPOINT"
        )],
        "{}",
        run.text()
    );
    let summary = run.summary().unwrap_or_default();
    let count = summary
        .strip_prefix("otel-agent: ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(count > 0, "{}", run.text());
    assert_eq!(
        summary,
        format!(
            "otel-agent: {} could not be delivered to http://127.0.0.1:{port} (HTTP 404 Not Found)",
            if count == 1 {
                "1 metric export".to_owned()
            } else {
                format!("{count} metric exports")
            }
        )
    );
    run.assert_plain(false);
}

// ---------------------------------------------------------------------------
// OTLP gRPC status classes
// ---------------------------------------------------------------------------

#[test]
fn grpc_invalid_argument_rejected_payload() {
    grpc_status(GrpcAnswer::Status(3), "gRPC INVALID_ARGUMENT", REJECTED);
}

#[test]
fn grpc_unauthenticated_credentials() {
    grpc_status(GrpcAnswer::Status(16), "gRPC UNAUTHENTICATED", CREDENTIALS);
}

#[test]
fn grpc_permission_denied_credentials() {
    grpc_status(GrpcAnswer::Status(7), "gRPC PERMISSION_DENIED", CREDENTIALS);
}

#[test]
fn grpc_unimplemented_no_service_for_the_signal() {
    grpc_status(GrpcAnswer::Status(12), "gRPC UNIMPLEMENTED", GRPC_NO_TRACES);
}

#[test]
fn grpc_resource_exhausted_too_large_or_slow_down() {
    grpc_status(
        GrpcAnswer::Status(8),
        "gRPC RESOURCE_EXHAUSTED",
        "the export is larger than the backend accepts (lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE, \
         now 512), or the backend asks to slow down",
    );
}

#[test]
fn grpc_unavailable_back_pressure() {
    grpc_status(GrpcAnswer::Status(14), "gRPC UNAVAILABLE", BACKPRESSURE);
}

#[test]
fn grpc_internal_backend_error() {
    grpc_status(GrpcAnswer::Status(13), "gRPC INTERNAL", SERVER_ERROR);
}

/// A proxy answering a bare HTTP 401 or 404: tonic maps them to gRPC codes.
#[test]
fn grpc_behind_a_proxy_answering_http_statuses() {
    grpc_status(GrpcAnswer::Http(401), "gRPC UNAUTHENTICATED", CREDENTIALS);
    grpc_status(GrpcAnswer::Http(404), "gRPC UNIMPLEMENTED", GRPC_NO_TRACES);
}

// ---------------------------------------------------------------------------
// Connection-level failures
// ---------------------------------------------------------------------------

fn refused(settings: Vec<(&'static str, String)>, shown: &str) {
    let run = run(&settings);
    assert_eq!(
        run.warnings(),
        [warning(
            "traces",
            shown,
            "connection refused",
            SPANS_DROPPED,
            "is the collector running?"
        )],
        "{}",
        run.text()
    );
    assert_eq!(
        run.summary(),
        Some(
            format!(
                "otel-agent: {} spans could not be delivered to {} (connection refused)",
                run.produced(),
                shown.trim_end_matches("/v1/traces")
            )
            .as_str()
        ),
        "{}",
        run.text()
    );
    run.assert_plain(true);
}

#[test]
fn connection_refused_http() {
    let port = refused_port();
    refused(http_at(port), &format!("http://127.0.0.1:{port}/v1/traces"));
}

#[test]
fn connection_refused_grpc() {
    let port = refused_port();
    refused(grpc_at(port), &format!("http://127.0.0.1:{port}"));
}

/// The server accepts and never answers: each export gives up after the export
/// timeout, and the spans are "not confirmed", never "could not be delivered".
fn silent(settings: Vec<(&'static str, String)>, shown: &str) {
    let run = run(&settings);
    assert_eq!(
        run.warnings(),
        [warning(
            "traces",
            shown,
            "no answer within 500 ms",
            "spans are not confirmed (the backend may have stored them)",
            "the backend is slow or does not answer; OTEL_EXPORTER_OTLP_TIMEOUT sets how long \
             to wait"
        )],
        "{}",
        run.text()
    );
    assert_eq!(
        run.summary(),
        Some(
            format!(
                "otel-agent: {} spans not confirmed by {} within 500 ms (the backend may have \
                 stored them)",
                run.produced(),
                shown.trim_end_matches("/v1/traces")
            )
            .as_str()
        ),
        "{}",
        run.text()
    );
    run.assert_plain(false);
}

#[test]
fn timeout_is_not_confirmed_http() {
    let port = black_hole();
    silent(http_at(port), &format!("http://127.0.0.1:{port}/v1/traces"));
}

#[test]
fn timeout_is_not_confirmed_grpc() {
    let port = black_hole();
    silent(grpc_at(port), &format!("http://127.0.0.1:{port}"));
}

/// A slow backend that stores every request and answers after our timeout:
/// what it stored is reported as not confirmed, not as lost.
#[test]
fn a_slow_backend_that_stored_the_spans_is_not_called_lossy() {
    let (port, requests) = http_server(200, Duration::from_millis(1500));
    let run = run(&http_at(port));
    assert!(requests.load(Ordering::Relaxed) > 0, "{}", run.text());
    assert_eq!(
        run.summary(),
        Some(
            format!(
                "otel-agent: {} spans not confirmed by http://127.0.0.1:{port} within 500 ms \
                 (the backend may have stored them)",
                run.produced()
            )
            .as_str()
        ),
        "{}",
        run.text()
    );
    assert!(
        !run.stderr
            .iter()
            .any(|l| l.contains("could not be delivered")),
        "{}",
        run.text()
    );
    run.assert_plain(false);
}

/// An export still waiting for its answer when the shutdown timeout runs out
/// went out: not confirmed, and said so.
#[test]
fn in_flight_at_the_shutdown_deadline_is_not_confirmed() {
    let port = black_hole();
    let mut settings = http_at(port);
    settings.push(("OTEL_EXPORTER_OTLP_TIMEOUT", "10000".to_owned()));
    settings.push(("CHILD_SHUTDOWN_MS", "700".to_owned()));
    let run = run(&settings);
    assert_eq!(
        run.reports(),
        [format!(
            "otel-agent: {} spans not confirmed by http://127.0.0.1:{port} before the 700 ms \
             shutdown timeout ran out (the backend may have stored them)",
            run.produced()
        )],
        "{}",
        run.text()
    );
    run.assert_plain(false);
}

#[test]
fn connection_closed_http() {
    let port = closing_server();
    rejected(
        http_at(port),
        &format!("http://127.0.0.1:{port}/v1/traces"),
        "the connection was closed without an answer",
        "is this an OTLP/HTTP port? OTLP/HTTP listens on 4318 by default and gRPC on 4317; \
         OTEL_EXPORTER_OTLP_PROTOCOL chooses",
    );
}

/// OTLP/HTTP sent to a gRPC port.
#[test]
fn http_to_a_grpc_port() {
    let port = grpc_server(GrpcAnswer::Status(0));
    rejected(
        http_at(port),
        &format!("http://127.0.0.1:{port}/v1/traces"),
        "the connection was closed without an answer",
        "is this an OTLP/HTTP port? OTLP/HTTP listens on 4318 by default and gRPC on 4317; \
         OTEL_EXPORTER_OTLP_PROTOCOL chooses",
    );
}

/// gRPC sent to an OTLP/HTTP port.
#[test]
fn grpc_to_an_http_port() {
    let (port, _) = http_server(200, Duration::ZERO);
    rejected(
        grpc_at(port),
        &format!("http://127.0.0.1:{port}"),
        "the connection was closed without an answer",
        "is this an OTLP gRPC port? gRPC listens on 4317 by default and OTLP/HTTP on 4318; \
         OTEL_EXPORTER_OTLP_PROTOCOL chooses",
    );
}

/// `https://` to a port that does not speak TLS.
#[test]
fn tls_failure_http() {
    let (port, _) = http_server(200, Duration::ZERO);
    let mut settings = otlp("http/protobuf", format!("https://127.0.0.1:{port}"));
    // A failed handshake is retried within the export's time; told apart from
    // a timeout by failing before that time ends, which a loaded machine must
    // not blur.
    settings.push(("OTEL_EXPORTER_OTLP_TIMEOUT", "5000".to_owned()));
    rejected(
        settings,
        &format!("https://127.0.0.1:{port}/v1/traces"),
        "the TLS handshake failed",
        "check that the port serves TLS (or use http://), and that its certificate is valid for \
         this host and trusted",
    );
}

/// Credentials put in the endpoint URL never reach the messages.
#[test]
fn credentials_in_the_endpoint_are_not_shown() {
    let port = refused_port();
    let run = run(&otlp(
        "http/protobuf",
        format!("http://user:secret@127.0.0.1:{port}"),
    ));
    assert!(!run.warnings().is_empty(), "{}", run.text());
    for line in run.reports() {
        assert!(!line.contains("secret"), "{line}");
    }
    assert_eq!(
        run.warnings(),
        [warning(
            "traces",
            &format!("http://127.0.0.1:{port}/v1/traces"),
            "connection refused",
            SPANS_DROPPED,
            "is the collector running?"
        )]
    );
}
