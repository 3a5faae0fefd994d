//! Setting up from the environment and from code: errors that name the fix,
//! disabled mode, sampling, and collectors that are not there.

use crate::common;

use std::time::{Duration, Instant};

use otel_agent_runtime::{agent_step, InitError};
use tracing_subscriber::layer::SubscriberExt as _;

fn build_error(vars: &[(&str, &str)]) -> String {
    otel_agent_runtime::builder()
        .env(vars.iter().copied())
        .build()
        .expect_err("expected an error")
        .to_string()
}

#[test]
fn invalid_environment_values_are_errors_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grcp")], "OTEL_EXPORTER_OTLP_PROTOCOL=\"grcp\" is not valid: expected `grpc` or `http/protobuf`"),
        (&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")], "OTEL_EXPORTER_OTLP_ENDPOINT=\"collector:4317\" is not valid: expected a URL such as `http://localhost:4317` (with the http:// or https:// scheme)"),
        // A header list is shown by its keys only: an entry without `=` could be a pasted token.
        (&[("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "api-key")], "OTEL_EXPORTER_OTLP_METRICS_HEADERS=\"***\" is not valid: expected a comma-separated list of headers, e.g. `key1=value1,key2=value2` (entry 1 has no `=`)"),
        (&[("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=abc,authorization")], "OTEL_EXPORTER_OTLP_HEADERS=\"x-api-key=***,***\" is not valid: expected a comma-separated list of headers, e.g. `key1=value1,key2=value2` (entry 2 has no `=`)"),
        (&[("OTEL_BSP_MAX_QUEUE_SIZE", "100000000")], "OTEL_BSP_MAX_QUEUE_SIZE=\"100000000\" is not valid: expected at most 1048576 spans (the upper bound"),
        (&[("OTEL_METRIC_EXPORT_INTERVAL", "86400000")], "OTEL_METRIC_EXPORT_INTERVAL=\"86400000\" is not valid: expected at most 3600000 milliseconds (1 hour, the upper bound for this interval)"),
        (&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "5s")], "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=\"5s\" is not valid: expected a whole number of milliseconds"),
        (&[("OTEL_METRIC_EXPORT_INTERVAL", "-1")], "OTEL_METRIC_EXPORT_INTERVAL=\"-1\" is not valid"),
        (&[("OTEL_METRICS_EXPORTER", "prometheus2")], "OTEL_METRICS_EXPORTER=\"prometheus2\" is not valid"),
        (&[("OTEL_SDK_DISABLED", "1")], "OTEL_SDK_DISABLED=\"1\" is not valid: expected `true` or `false`"),
    ];
    for (vars, expected) in cases {
        let message = build_error(vars);
        assert!(
            message.starts_with(expected),
            "for {vars:?}:\n  got {message}\n  want {expected}"
        );
    }
}

#[test]
fn an_invalid_endpoint_in_code_names_the_builder_setting() {
    let err = otel_agent_runtime::builder()
        .env(Vec::<(String, String)>::new())
        .endpoint("localhost:4317")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            InitError::InvalidSetting {
                setting: "endpoint",
                ..
            }
        ),
        "{err}"
    );
}

#[agent_step(agent = "a")]
fn step() -> u8 {
    1
}

#[test]
fn disabled_telemetry_records_nothing_and_the_layer_is_inert() {
    let telemetry = otel_agent_runtime::builder()
        .env([("OTEL_SDK_DISABLED", "true")])
        .build()
        .unwrap();
    assert!(!telemetry.is_enabled());
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    assert_eq!(tracing::subscriber::with_default(subscriber, step), 1);
    assert_eq!(telemetry.spans_ended(), 0);
    telemetry.shutdown().unwrap();
}

#[test]
fn sampled_out_traces_keep_their_metrics() {
    let h = common::harness_with(|b| b.env([("OTEL_TRACES_SAMPLER", "always_off")]));
    h.run(|| {
        for _ in 0..5 {
            step();
        }
    });
    let exported = h.metrics();
    assert!(h.finished_spans().is_empty(), "always_off keeps no span");
    let calls = exported.expect("otel_agent.step.calls");
    let opentelemetry_sdk::metrics::data::AggregatedMetrics::U64(
        opentelemetry_sdk::metrics::data::MetricData::Sum(sum),
    ) = calls.data()
    else {
        panic!("a u64 sum")
    };
    assert_eq!(sum.data_points().map(|p| p.value()).sum::<u64>(), 5);
}

/// A port with nothing listening: bind, read the port, close.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_collector_is_not_an_init_error_and_shutdown_is_bounded() {
    for protocol in ["grpc", "http/protobuf"] {
        let endpoint = format!("http://127.0.0.1:{}", closed_port());
        let telemetry = otel_agent_runtime::builder()
            .env([
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ])
            .shutdown_timeout(Duration::from_secs(2))
            .build()
            .expect("a collector that is not up yet is not an error");
        let subscriber = tracing_subscriber::registry().with(telemetry.layer());
        let started = Instant::now();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..100 {
                step();
            }
        });
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "the program is not slowed down"
        );
        let started = Instant::now();
        let _ = telemetry.shutdown();
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{protocol}: shutdown took {:?}",
            started.elapsed()
        );
    }
}
