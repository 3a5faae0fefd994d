//! The embedded default survives hostile values and long runs: any string prints
//! (width capped, control characters escaped), any number sums (saturating), and
//! the summary's memory is bounded (rows capped with an "other" row). The
//! quantile structure's size and accuracy are tested beside it, in the runtime's
//! `console` unit tests.

use otel_agent_runtime::{agent_step, llm_call, ExporterKind, LlmResponse, Telemetry, Usage};
use tracing_subscriber::layer::SubscriberExt as _;

/// What the console caps a summary label at (`console::MAX_LABEL_CHARS`).
const LABEL_CHARS: usize = 64;
/// No line of the report is longer than this, whatever the names: a tree line is
/// a prefix, a name of at most 120 characters and a detail of at most 240.
const LINE_CHARS: usize = 500;

/// A reply whose every field the test chooses.
#[derive(Debug)]
struct Reply {
    input: u64,
    output: u64,
    response_model: Option<String>,
    finish: Option<String>,
}

impl Reply {
    fn tokens(input: u64, output: u64) -> Self {
        Self {
            input,
            output,
            response_model: None,
            finish: None,
        }
    }
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input, self.output))
    }
    fn response_model(&self) -> Option<&str> {
        self.response_model.as_deref()
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.finish.as_deref().into_iter().collect()
    }
}

#[llm_call(model = model, provider = "openai")]
fn ask(model: &str, reply: Reply) -> Result<Reply, std::io::Error> {
    Ok(reply)
}

#[llm_call(model = model, provider = "openai")]
fn fail(model: &str, message: &str) -> Result<Reply, std::io::Error> {
    Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        message.to_owned(),
    ))
}

fn console() -> Telemetry {
    otel_agent_runtime::builder()
        .env([("OTEL_SERVICE_NAME", "console-limits")])
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap()
}

/// Runs `work` under the telemetry's layer and returns the console report.
fn report_of(telemetry: &Telemetry, work: impl FnOnce()) -> String {
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, work);
    telemetry.force_flush().unwrap();
    telemetry
        .console_report()
        .expect("the console is the default exporter")
}

/// The model table's rows (after its header), as whitespace-split columns.
fn model_rows(report: &str) -> Vec<Vec<&str>> {
    report
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("model "))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// calls, input tokens, output tokens, failures of a model row (read from the
/// right: the label may hold spaces and p50 is two columns).
fn counts(row: &[&str]) -> [u64; 4] {
    let n = row.len();
    let at = |i: usize| {
        row[n - i]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{row:?}"))
    };
    [at(6), at(3), at(2), at(1)]
}

fn assert_lines_bounded(report: &str) {
    for line in report.lines() {
        let chars = line.chars().count();
        assert!(
            chars <= LINE_CHARS,
            "a line of {chars} characters: {}…",
            line.chars().take(200).collect::<String>()
        );
    }
}

#[test]
fn a_model_name_of_70_000_bytes_prints_cut_and_the_guard_drops() {
    let huge = "m".repeat(70_000);
    let telemetry = console();
    let report = report_of(&telemetry, || {
        ask(&huge, Reply::tokens(7, 3)).unwrap();
        fail(&huge, &"e".repeat(100_000)).unwrap_err();
    });
    assert!(report.contains("run summary: 2 spans"), "{report}");
    let rows = model_rows(&report);
    assert_eq!(rows.len(), 1, "{report}");
    let label = rows[0][..rows[0].len() - 6].join(" ");
    assert_eq!(label.chars().count(), LABEL_CHARS, "{label}");
    assert!(
        label.starts_with("openai mmm") && label.ends_with('…'),
        "{label}"
    );
    assert_eq!(counts(&rows[0]), [2, 7, 3, 1]);
    assert!(report.contains("ERROR ConnectionRefused: eee"), "{report}");
    assert_lines_bounded(&report);
    // Dropping the guard prints the same report: it must not panic.
    drop(telemetry);
}

#[test]
fn u64_max_tokens_saturate_and_the_console_keeps_counting() {
    let telemetry = console();
    let report = report_of(&telemetry, || {
        for _ in 0..3 {
            ask("huge-usage", Reply::tokens(u64::MAX, u64::MAX)).unwrap();
        }
        ask("gpt-4o", Reply::tokens(120, 30)).unwrap();
    });
    assert!(report.contains("run summary: 4 spans"), "{report}");
    let rows = model_rows(&report);
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.get(1) == Some(&name))
            .unwrap_or_else(|| panic!("no row for {name}: {report}"))
            .clone()
    };
    // Each call's count is bounded at 2^40 where it enters (no provider
    // reports more), and the console adds the bounded counts.
    assert_eq!(counts(&row("huge-usage")), [3, 3 << 40, 3 << 40, 0]);
    assert_eq!(counts(&row("gpt-4o")), [1, 120, 30, 0]);

    // The export thread is alive: later spans still arrive and count.
    let report = report_of(&telemetry, || {
        ask("huge-usage", Reply::tokens(u64::MAX, 1)).unwrap();
        ask("gpt-4o", Reply::tokens(1, 1)).unwrap();
    });
    assert!(report.contains("run summary: 6 spans"), "{report}");
    let rows = model_rows(&report);
    let gpt = rows.iter().find(|r| r.get(1) == Some(&"gpt-4o")).unwrap();
    assert_eq!(counts(gpt), [2, 121, 31, 0]);
}

/// Everything a terminal could act on: newline, CR, ESC sequences (colour, clear
/// screen), an OSC title sequence ended by BEL, a C1 CSI and a bidi override.
const HOSTILE: &str = "evil\n\rfake line\x1b[31mred\x1b]0;pwned\x07\u{9b}2J\u{202e}txt";

#[agent_step(agent = "agent\x1b[2Jclear\nline")]
fn hostile_agent() -> Result<(), std::io::Error> {
    hostile_tool()?;
    let _span = tracing::info_span!("user span\r\x1b]0;title\x07").entered();
    ask(
        HOSTILE,
        Reply {
            input: 1,
            output: 1,
            response_model: Some(format!("answer {HOSTILE}")),
            finish: Some(format!("stop {HOSTILE}")),
        },
    )?;
    fail(HOSTILE, &format!("refused {HOSTILE}"))?;
    Ok(())
}

#[agent_step(kind = tool, name = "tool\x1b[1mbold\ttab")]
fn hostile_tool() -> Result<(), std::io::Error> {
    Ok(())
}

#[test]
fn control_characters_are_shown_escaped_never_sent_to_the_terminal() {
    let telemetry = console();
    let report = report_of(&telemetry, || {
        hostile_agent().unwrap_err();
    });
    let raw: Vec<char> = report
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect();
    assert!(raw.is_empty(), "raw control characters {raw:?} in {report}");
    // Every line is one of the report's own: no name started a line of its own.
    for line in report.lines() {
        assert!(
            line.is_empty()
                || line.starts_with("trace ")
                || line.starts_with("run summary")
                || line.starts_with("... ")
                || line.starts_with("  ")
                || line.starts_with("└─")
                || line.starts_with("├─")
                || line.starts_with("│"),
            "a line the report did not write: {line:?}\n{report}"
        );
    }
    let escaped = "evil\\n\\rfake line\\x1b[31mred\\x1b]0;pwned\\x07\\u{9b}2J\\u{202e}txt";
    // The span name, the summary row, the response model, the finish reason and
    // the error message all show it escaped.
    assert!(report.contains(&format!("chat {escaped}")), "{report}");
    assert!(
        report.contains(&format!("answered by answer {escaped}")),
        "{report}"
    );
    assert!(report.contains("stop evil\\n"), "{report}");
    assert!(report.contains(&format!("refused {escaped}")), "{report}");
    assert!(
        report.contains("openai evil\\n\\rfake line\\x1b[31m"),
        "{report}"
    );
    assert!(
        report.contains("invoke_agent agent\\x1b[2Jclear\\nline"),
        "{report}"
    );
    assert!(
        report.contains("execute_tool tool\\x1b[1mbold\\ttab"),
        "{report}"
    );
    assert!(
        report.contains("user span\\r\\x1b]0;title\\x07"),
        "{report}"
    );
}

#[test]
fn many_distinct_models_share_an_other_row_that_sums_them() {
    const MODELS: u64 = 100;
    let telemetry = console();
    let report = report_of(&telemetry, || {
        for i in 0..MODELS {
            let model = format!("model-{i:03}");
            ask(&model, Reply::tokens(10, 5)).unwrap();
            if i % 10 == 9 {
                fail(&model, "down").unwrap_err();
            }
        }
    });
    let rows = model_rows(&report);
    assert_eq!(rows.len(), 64 + 1, "64 named rows and one other: {report}");
    let other = rows.last().unwrap();
    assert_eq!(&other[..2], &["(other", "models)"], "{report}");
    // First come, first shown: models 000..063 have rows; 064..099 share the
    // other row, with the failures of 069, 079, 089 and 099 (no usage on those).
    assert_eq!(counts(other), [36 + 4, 360, 180, 4], "{report}");
    let total = rows.iter().map(|r| counts(r)).fold([0; 4], |mut sum, c| {
        for (s, c) in sum.iter_mut().zip(c) {
            *s += c;
        }
        sum
    });
    assert_eq!(total, [MODELS + 10, MODELS * 10, MODELS * 5, 10]);
    assert!(report.contains("run summary: 110 spans"), "{report}");
}

#[test]
fn many_calls_are_all_counted_while_the_tree_stays_capped() {
    const CALLS: u64 = 5_000;
    let telemetry = console();
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..CALLS {
            ask("gpt-4o", Reply::tokens(2, 1)).unwrap();
            // Flush in steps so the span queue never fills.
            if i % 500 == 499 {
                telemetry.force_flush().unwrap();
            }
        }
    });
    telemetry.force_flush().unwrap();
    let report = telemetry.console_report().unwrap();
    assert!(report.contains("run summary: 5000 spans"), "{report}");
    assert!(
        report.contains("the tree shows the first 2000 of 5000 spans"),
        "{report}"
    );
    let rows = model_rows(&report);
    assert_eq!(counts(&rows[0]), [CALLS, CALLS * 2, CALLS, 0]);
}

#[agent_step(agent = "deep")]
fn deep(levels: u32) -> Result<(), std::io::Error> {
    if levels > 0 {
        deep(levels - 1)?;
    }
    Ok(())
}

#[test]
fn deep_nesting_is_cut_at_a_fixed_depth() {
    let telemetry = console();
    let report = report_of(&telemetry, || deep(49).unwrap());
    assert!(report.contains("run summary: 50 spans"), "{report}");
    assert!(
        report.contains("... 18 nested spans deeper than 32 levels not shown"),
        "{report}"
    );
    assert_lines_bounded(&report);
}
