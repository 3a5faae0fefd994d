//! Metrics served for Prometheus to scrape (`OTEL_METRICS_EXPORTER=prometheus`):
//! the names `deploy/` dashboards and alert rules use, the address settings, a
//! taken port, and `promtool check metrics` on the real output when promtool is
//! installed (CI installs it: `.ci/prometheus_e2e.sh`).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use otel_agent_runtime::metrics::{DURATION_BUCKETS, STEP_BUCKETS};
use otel_agent_runtime::{
    agent_step, llm_call, ExporterKind, InitError, LlmResponse, Telemetry, Usage,
};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(120, 30))
    }
    fn response_model(&self) -> Option<&str> {
        Some("gpt-4o-2024-08-06")
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn chat(fail: bool) -> Result<Reply, std::io::Error> {
    if fail {
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"))
    } else {
        Ok(Reply)
    }
}

#[agent_step(kind = tool, name = "web_search")]
fn search() -> Result<u8, std::io::Error> {
    Ok(3)
}

#[agent_step(agent = "researcher")]
fn research(i: u32) -> Result<u8, std::io::Error> {
    search()?;
    chat(i % 3 == 2)?;
    Ok(1)
}

#[agent_step(kind = workflow, name = "crew")]
fn crew(i: u32) -> u8 {
    research(i).unwrap_or(0)
}

fn prometheus_telemetry(port: u16) -> Result<Telemetry, InitError> {
    otel_agent_runtime::builder()
        .env(Vec::<(String, String)>::new())
        .default_service_name("prometheus-test")
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::Prometheus)
        .prometheus_address("127.0.0.1", port)
        .build()
}

/// One HTTP/1.1 request over a real socket: `(status line, headers, body)`.
fn http(addr: SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect(addr).expect("the endpoint accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

fn scrape(telemetry: &Telemetry) -> String {
    let addr = telemetry.prometheus_addrs()[0];
    let (status, headers, body) = http(addr, "GET", "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    body
}

/// Samples (not comments) of the exposition, as `(name, labels, value)`.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            (name.to_owned(), labels.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

fn bucket_bounds(samples: &[(String, String, f64)], name: &str) -> Vec<f64> {
    let first_series = samples
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, l, _)| l.split(",le=").next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("no {name}"));
    samples
        .iter()
        .filter(|(n, l, _)| n == name && l.starts_with(&first_series))
        .filter_map(|(_, l, _)| label(l, "le"))
        .filter(|le| *le != "+Inf")
        .map(|le| le.parse().unwrap())
        .collect()
}

#[test]
fn scraped_names_are_the_ones_the_dashboards_query() {
    let telemetry = prometheus_telemetry(0).expect("builds");
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..6 {
            crew(i);
        }
    });
    let text = scrape(&telemetry);
    let samples = samples(&text);
    let names: std::collections::BTreeSet<&str> =
        samples.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in [
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_operation_duration_seconds_sum",
        "gen_ai_client_operation_duration_seconds_count",
        "gen_ai_client_token_usage_bucket",
        "gen_ai_client_token_usage_sum",
        "gen_ai_client_token_usage_count",
        "otel_agent_step_duration_seconds_bucket",
        "otel_agent_step_duration_seconds_count",
        "otel_agent_step_calls_total",
        "otel_agent_step_active",
        "target_info",
    ] {
        assert!(names.contains(expected), "{expected} missing in:\n{text}");
    }
    // Units in braces are annotations: no `_tokens`, `_step` or `_ratio` suffix.
    for name in &names {
        assert!(
            !name.contains("_token_usage_tokens")
                && !name.contains("_step_total")
                && !name.contains("calls_step")
                && !name.contains("active_step"),
            "unexpected suffix: {name}"
        );
    }
    assert!(text.contains("# TYPE otel_agent_step_calls_total counter"));
    assert!(text.contains("# TYPE otel_agent_step_active gauge"));
    assert!(text.contains("# TYPE gen_ai_client_token_usage histogram"));
    assert!(text.contains("# TYPE gen_ai_client_operation_duration_seconds histogram"));

    assert_eq!(
        bucket_bounds(&samples, "gen_ai_client_operation_duration_seconds_bucket"),
        DURATION_BUCKETS.to_vec()
    );
    assert_eq!(
        bucket_bounds(&samples, "otel_agent_step_duration_seconds_bucket"),
        STEP_BUCKETS.to_vec()
    );

    // The labels the dashboards filter and group by.
    let sum = |name: &str, pred: &dyn Fn(&str) -> bool| -> f64 {
        samples
            .iter()
            .filter(|(n, l, _)| n == name && pred(l))
            .map(|(_, _, v)| v)
            .sum()
    };
    assert_eq!(sum("otel_agent_step_calls_total", &|_| true), 18.0);
    assert_eq!(
        sum("otel_agent_step_calls_total", &|l| {
            label(l, "gen_ai_operation_name") == Some("invoke_agent")
                && label(l, "otel_agent_step_name") == Some("researcher")
                && label(l, "otel_agent_step_outcome") == Some("failure")
        }),
        2.0
    );
    assert_eq!(sum("otel_agent_step_active", &|_| true), 0.0);
    let chats = |l: &str| {
        label(l, "gen_ai_operation_name") == Some("chat")
            && label(l, "gen_ai_provider_name") == Some("openai")
            && label(l, "gen_ai_request_model") == Some("gpt-4o")
    };
    assert_eq!(
        sum("gen_ai_client_operation_duration_seconds_count", &chats),
        6.0
    );
    assert_eq!(
        sum("gen_ai_client_operation_duration_seconds_count", &|l| {
            chats(l) && label(l, "error_type").is_some_and(|e| !e.is_empty())
        }),
        2.0
    );
    assert_eq!(
        sum("gen_ai_client_token_usage_sum", &|l| {
            label(l, "gen_ai_token_type") == Some("input")
        }),
        4.0 * 120.0
    );
    promtool_check(&text);
    telemetry.shutdown().unwrap();
}

/// `promtool check metrics` on the exposition: no error and no lint finding.
fn promtool_check(text: &str) {
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) => {
            eprintln!(
                "promtool not installed: `promtool check metrics` skipped here \
                 (.ci/prometheus_e2e.sh installs it and checks the demo's output)"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}\non:\n{text}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_environment_selects_prometheus_and_its_address() {
    let port = free_port();
    let port_text = port.to_string();
    let telemetry = otel_agent_runtime::builder()
        .env([
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", port_text.as_str()),
        ])
        .build()
        .expect("builds");
    assert_eq!(
        telemetry.prometheus_addrs(),
        [SocketAddr::from(([127, 0, 0, 1], port))]
    );
    let text = scrape(&telemetry);
    assert!(text.contains("target_info{"), "{text}");
    telemetry.shutdown().unwrap();
}

#[test]
fn a_taken_port_is_a_clear_init_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = prometheus_telemetry(port).expect_err("the port is taken");
    let message = err.to_string();
    assert!(matches!(err, InitError::PrometheusBind { .. }), "{message}");
    assert!(
        message.starts_with(&format!(
            "cannot serve Prometheus metrics on 127.0.0.1:{port}: "
        )) && message.contains("OTEL_EXPORTER_PROMETHEUS_HOST / OTEL_EXPORTER_PROMETHEUS_PORT"),
        "{message}"
    );
    let err = otel_agent_runtime::builder()
        .env([("OTEL_EXPORTER_PROMETHEUS_PORT", "http")])
        .build()
        .expect_err("not a port");
    assert!(
        err.to_string()
            .starts_with("OTEL_EXPORTER_PROMETHEUS_PORT=\"http\" is not valid"),
        "{err}"
    );
}

#[test]
fn only_get_metrics_is_served_and_the_port_is_released_at_shutdown() {
    let telemetry = prometheus_telemetry(0).expect("builds");
    let addr = telemetry.prometheus_addrs()[0];
    assert!(http(addr, "GET", "/").0.starts_with("HTTP/1.1 404"));
    let (status, headers, _) = http(addr, "POST", "/metrics");
    assert!(status.starts_with("HTTP/1.1 405"), "{status}");
    assert!(headers.contains("allow: get, head"), "{headers}");
    assert!(http(addr, "HEAD", "/metrics").0.starts_with("HTTP/1.1 200"));
    telemetry.shutdown().unwrap();
    // The listener closes with the telemetry: the same port can be bound again.
    let mut rebound = None;
    for _ in 0..50 {
        match TcpListener::bind(addr) {
            Ok(listener) => {
                rebound = Some(listener);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    assert!(rebound.is_some(), "{addr} still bound after shutdown");
}

#[test]
fn traces_cannot_go_to_prometheus() {
    let err = otel_agent_runtime::builder()
        .env(Vec::<(String, String)>::new())
        .traces_exporter(ExporterKind::Prometheus)
        .build()
        .expect_err("metrics only");
    assert!(
        err.to_string().contains("Prometheus takes metrics only"),
        "{err}"
    );
}
