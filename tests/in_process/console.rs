//! The embedded default: a trace tree and a run summary, with no collector.

use otel_agent_runtime::{agent_step, llm_call, ExporterKind, LlmResponse, Usage};
use tracing_subscriber::layer::SubscriberExt as _;

struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(120, 30))
    }
}

#[llm_call(model = "gpt-4o")]
fn ask(fail: bool) -> Result<Reply, std::io::Error> {
    if fail {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "no route",
        ))
    } else {
        Ok(Reply)
    }
}

#[agent_step(agent = "researcher")]
fn research(fail: bool) -> Result<(), std::io::Error> {
    ask(fail)?;
    Ok(())
}

#[test]
fn the_console_prints_a_tree_and_a_summary() {
    let telemetry = otel_agent_runtime::builder()
        .env([("OTEL_SERVICE_NAME", "console-test")])
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        research(false).unwrap();
        research(true).unwrap_err();
    });
    telemetry.force_flush().unwrap();
    let report = telemetry
        .console_report()
        .expect("the console is the default exporter");

    assert!(report.contains("└─ invoke_agent researcher"), "{report}");
    assert!(report.contains("   └─ chat gpt-4o"), "{report}");
    assert!(
        report.contains("openai | tokens 120 in / 30 out"),
        "{report}"
    );
    assert!(
        report.contains("ERROR ConnectionRefused: no route"),
        "{report}"
    );
    assert!(report.contains("run summary: 4 spans"), "{report}");
    let step_row = report
        .lines()
        .find(|l| l.trim_start().starts_with("invoke_agent researcher"))
        .unwrap();
    let cols: Vec<&str> = step_row.split_whitespace().collect();
    assert_eq!(cols[2], "2", "count: {step_row}");
    assert_eq!(cols.last(), Some(&"1"), "failures: {step_row}");
    let model_row = report
        .lines()
        .find(|l| l.trim_start().starts_with("openai gpt-4o"))
        .unwrap();
    let cols: Vec<&str> = model_row.split_whitespace().collect();
    // calls, p50 (two columns), input tokens, output tokens, failures
    assert_eq!(&cols[2..3], &["2"], "{model_row}");
    assert_eq!(&cols[5..], &["120", "30", "1"], "{model_row}");
}
