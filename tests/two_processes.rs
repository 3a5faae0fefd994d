//! Two processes, one trace: the `agent_process` example's orchestrator and
//! writer, run as two operating-system processes talking over a local socket.
//!
//! The test binary starts itself a second time as the writer (running only the
//! `writer_process` test, which does nothing unless started this way). Each
//! process records its spans in memory with its own pipeline, as it would
//! export them with its own exporter; the writer writes its spans to a file when
//! done. The test then checks both sets as a backend would see them: one trace
//! id, the writer's step a child of the orchestrator's sending span, and the
//! session on every span of both processes.

mod common;

#[allow(dead_code)]
#[path = "../examples/agent_process.rs"]
mod agent_process;

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_process::Link;
use opentelemetry_sdk::trace::SpanData;
use serde_json::{json, Value};

/// Set in the writer process: `{socket address}|{file for its spans}`.
const WRITER_ENV: &str = "OTEL_AGENT_TEST_WRITER_PROCESS";

fn span_record(span: &SpanData) -> Value {
    let attributes: serde_json::Map<String, Value> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), json!(kv.value.to_string())))
        .collect();
    json!({
        "name": span.name.to_string(),
        "trace_id": span.span_context.trace_id().to_string(),
        "span_id": span.span_context.span_id().to_string(),
        "parent_span_id": span.parent_span_id.to_string(),
        "parent_is_remote": span.parent_span_is_remote,
        "attributes": attributes,
    })
}

/// The writer's process. A no-op when the test suite runs normally.
#[test]
fn writer_process() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let (address, spans_file) = spec.split_once('|').expect("address|file");
    let h = common::harness();
    let stream = TcpStream::connect(address).expect("the orchestrator listens");
    let reader = BufReader::new(stream.try_clone().expect("socket clone"));
    let handled = h
        .run(|| agent_process::run_writer(Link::new(reader, stream)))
        .expect("the writer runs");
    assert_eq!(handled, 2);
    h.telemetry.force_flush().expect("flush");
    let lines: Vec<String> = h
        .finished_spans()
        .iter()
        .map(|s| span_record(s).to_string())
        .collect();
    std::fs::write(spans_file, lines.join("\n")).expect("spans written");
}

/// Accepts the writer's connection, giving up if its process ends first.
fn accept(listener: &TcpListener, child: &mut std::process::Child) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the writer process exited before connecting: {status}");
                }
                assert!(Instant::now() < deadline, "the writer never connected");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn one_trace_across_two_processes_with_the_session_on_every_span() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let spans_file = std::env::temp_dir().join(format!(
        "otel-agent-writer-spans-{}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&spans_file);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, format!("{address}|{}", spans_file.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("the writer process starts");
    let stream = accept(&listener, &mut child);
    assert_ne!(child.id(), std::process::id());

    let h = common::harness();
    let reader = BufReader::new(stream.try_clone().unwrap());
    let articles = h
        .run(|| {
            agent_process::run_orchestrator(
                Link::new(reader, stream),
                "session-2p",
                &["tracing", "sampling"],
            )
        })
        .expect("the orchestrator runs");
    assert_eq!(
        articles,
        [
            "A short article on tracing.",
            "A short article on sampling."
        ]
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "the writer process failed: {status}");

    let ours: Vec<Value> = h.finished_spans().iter().map(span_record).collect();
    let theirs: Vec<Value> = std::fs::read_to_string(&spans_file)
        .expect("the writer's spans")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_file(&spans_file);

    let names = |spans: &[Value]| -> Vec<String> {
        let mut v: Vec<String> = spans
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&ours),
        [
            "chat gpt-4o",
            "chat gpt-4o",
            "execute_tool ask_writer",
            "execute_tool ask_writer",
            "invoke_workflow two_process_crew"
        ]
    );
    assert_eq!(
        names(&theirs),
        [
            "chat claude-sonnet-4-5",
            "chat claude-sonnet-4-5",
            "invoke_agent writer",
            "invoke_agent writer"
        ]
    );

    // One trace.
    let trace_id = ours[0]["trace_id"].clone();
    for span in ours.iter().chain(&theirs) {
        assert_eq!(span["trace_id"], trace_id, "{}", span["name"]);
    }

    // Each writer step is the child of one sending span, across the boundary.
    let senders: Vec<&Value> = ours
        .iter()
        .filter(|s| s["name"] == "execute_tool ask_writer")
        .collect();
    let steps: Vec<&Value> = theirs
        .iter()
        .filter(|s| s["name"] == "invoke_agent writer")
        .collect();
    let mut parents: Vec<&Value> = steps.iter().map(|s| &s["parent_span_id"]).collect();
    let mut sender_ids: Vec<&Value> = senders.iter().map(|s| &s["span_id"]).collect();
    parents.sort_by_key(|v| v.to_string());
    sender_ids.sort_by_key(|v| v.to_string());
    assert_eq!(parents, sender_ids);
    assert!(steps.iter().all(|s| s["parent_is_remote"] == true));
    // Inside the writer, the model call is the step's (local) child.
    for chat in theirs
        .iter()
        .filter(|s| s["name"] == "chat claude-sonnet-4-5")
    {
        assert!(steps.iter().any(|s| s["span_id"] == chat["parent_span_id"]));
        assert_eq!(chat["parent_is_remote"], false);
    }

    // The session, user and tenant on every span of both processes.
    for span in ours.iter().chain(&theirs) {
        let attrs = &span["attributes"];
        assert_eq!(attrs["session.id"], "session-2p", "{}", span["name"]);
        assert_eq!(attrs["user.id"], "user-42", "{}", span["name"]);
        assert_eq!(attrs["otel_agent.tenant"], "acme", "{}", span["name"]);
    }
}
