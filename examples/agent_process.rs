//! Two processes, one trace. The orchestrator starts a writer agent as a child
//! process and sends it tasks as JSON lines over a pipe; each task carries the
//! sender's trace context (`TraceCarrier`: W3C `traceparent` and `baggage`).
//! The writer's spans are children of the orchestrator's `ask_writer` span, in
//! the same trace, with the same session, though each process exports its own.
//!
//! ```sh
//! cargo run --example agent_process
//! # both processes to one collector, one trace in the backend:
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example agent_process
//! ```
//!
//! With no collector each process prints its own tree at exit (the writer's
//! on standard error, as its standard output is the pipe); both show the same
//! trace id.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use otel_agent_runtime::propagation::TraceCarrier;
use otel_agent_runtime::{agent_step, context, llm_call, LlmResponse, Usage};
use serde::{Deserialize, Serialize};

/// A task for the writer, one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub task: String,
    pub trace: TraceCarrier,
}

/// The writer's answer, one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    pub text: String,
}

/// The two ends of the conversation with the other process.
pub struct Link {
    reader: Box<dyn BufRead + Send>,
    writer: Box<dyn Write + Send>,
}

impl Link {
    pub fn new(reader: impl BufRead + Send + 'static, writer: impl Write + Send + 'static) -> Self {
        Self {
            reader: Box::new(reader),
            writer: Box::new(writer),
        }
    }

    fn send<T: Serialize>(&mut self, message: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.writer, message)?;
        self.writer.write_all(b"\n")?;
        self.writer.flush()
    }

    fn receive<T: for<'de> Deserialize<'de>>(&mut self) -> std::io::Result<Option<T>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&line)?))
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the other process hung up",
    )
}

pub struct Reply {
    text: String,
    input_tokens: u64,
    output_tokens: u64,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input_tokens, self.output_tokens))
    }
}

/// A deterministic stand-in for a hosted model.
fn stand_in(prompt: &str, answer: String) -> Reply {
    std::thread::sleep(std::time::Duration::from_millis(
        15 + (prompt.len() as u64 * 13) % 40,
    ));
    Reply {
        input_tokens: 30 + prompt.len() as u64 / 4,
        output_tokens: 10 + answer.len() as u64 / 4,
        text: answer,
    }
}

// ---------------------------------------------------------------------------
// The orchestrator's process
// ---------------------------------------------------------------------------

#[llm_call(model = "gpt-4o", provider = "openai")]
fn outline(topic: &str) -> Result<Reply, std::io::Error> {
    Ok(stand_in(
        topic,
        format!("intro, {topic} in practice, summary"),
    ))
}

#[agent_step(
    kind = tool,
    name = "ask_writer",
    description = "Sends a task to the writer agent in another process"
)]
fn ask_writer(link: &mut Link, id: u64, task: String) -> std::io::Result<String> {
    link.send(&Request {
        id,
        task,
        trace: TraceCarrier::current(),
    })?;
    let response: Response = link.receive()?.ok_or_else(closed)?;
    Ok(response.text)
}

#[agent_step(kind = workflow, name = "two_process_crew")]
fn crew(link: &mut Link, topics: &[&str]) -> std::io::Result<Vec<String>> {
    let mut articles = Vec::new();
    for (id, topic) in (1..).zip(topics) {
        let plan = outline(topic)?.text;
        articles.push(ask_writer(link, id, format!("{topic}: {plan}"))?);
    }
    Ok(articles)
}

/// The orchestrator's side: runs the workflow in a session, talking to the
/// writer over `link`, then hangs up.
pub fn run_orchestrator(
    link: Link,
    session: &str,
    topics: &[&str],
) -> std::io::Result<Vec<String>> {
    let mut link = link;
    context::scope()
        .session_id(session)
        .user_id("user-42")
        .tenant("acme")
        .in_scope(|| crew(&mut link, topics))
}

// ---------------------------------------------------------------------------
// The writer's process
// ---------------------------------------------------------------------------

#[llm_call(model = "claude-sonnet-4-5", provider = "anthropic")]
fn draft(task: &str) -> Result<Reply, std::io::Error> {
    let (topic, _) = task.split_once(':').unwrap_or((task, ""));
    Ok(stand_in(task, format!("A short article on {topic}.")))
}

#[agent_step(agent = "writer", description = "Writes articles from outlines")]
fn write(task: &str) -> std::io::Result<String> {
    Ok(draft(task)?.text)
}

/// The writer's side: answers each task in the trace and session it carries,
/// until the orchestrator hangs up. Returns how many tasks it handled.
pub fn run_writer(link: Link) -> std::io::Result<u64> {
    let mut link = link;
    let mut handled = 0;
    while let Some(request) = link.receive::<Request>()? {
        let text = request.trace.in_scope(|| write(&request.task))?;
        link.send(&Response {
            id: request.id,
            text,
        })?;
        handled += 1;
    }
    Ok(handled)
}

const CHILD_FLAG: &str = "--writer";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some(CHILD_FLAG) {
        // Standard output is the pipe: the console report goes to standard error.
        let telemetry = otel_agent_runtime::builder()
            .default_service_name("writer-agent")
            .init()?;
        let stdin = BufReader::new(std::io::stdin());
        run_writer(Link::new(stdin, std::io::stdout()))?;
        eprintln!("--- writer-agent (process {}) ---", std::process::id());
        telemetry.shutdown()?;
        return Ok(());
    }

    let telemetry = otel_agent_runtime::builder()
        .default_service_name("orchestrator")
        .init()?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg(CHILD_FLAG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let (Some(to_child), Some(from_child)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the writer's pipes were not set up".into());
    };
    let link = Link::new(BufReader::new(from_child), to_child);
    let articles = run_orchestrator(link, "session-7f3a", &["tracing", "sampling"])?;
    // The link is dropped: the writer sees the end of its input and exits,
    // printing its report first.
    let status = child.wait()?;
    for article in &articles {
        println!("{article}");
    }
    println!("writer process exited: {status}");
    eprintln!("--- orchestrator (process {}) ---", std::process::id());
    telemetry.shutdown()?;
    Ok(())
}
