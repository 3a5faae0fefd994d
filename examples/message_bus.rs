//! Agents that talk over a message bus: an orchestrator and two agents, a writer
//! and a critic, each on its own task, exchanging JSON messages by topic. Every
//! message carries its trace context (`TraceCarrier`: W3C `traceparent` and
//! `baggage`), so each piece of work is one trace: the agents' spans are
//! children of the orchestrator's, and the session is on every span.
//!
//! ```sh
//! cargo run --example message_bus      # two sessions, two traces, printed at exit
//! ```
//!
//! The bus here is a handful of Tokio channels carrying bytes; with Kafka, NATS
//! or Redis the code that matters is the same: put `TraceCarrier::current()`
//! in the message when sending, and run the handling in `message.trace` when
//! receiving.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otel_agent_runtime::propagation::TraceCarrier;
use otel_agent_runtime::{agent_step, context, llm_call, LlmResponse, Usage};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What travels on the bus, as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct Message {
    /// The topic to answer on, if an answer is expected.
    pub reply_to: Option<String>,
    /// The request or the answer.
    pub body: String,
    /// The trace context of the sender: its span and its session.
    pub trace: TraceCarrier,
}

/// Topics to subscribers; publishing sends the encoded message to the topic.
#[derive(Clone, Default)]
pub struct Bus {
    topics: Arc<Mutex<HashMap<String, mpsc::Sender<Vec<u8>>>>>,
}

impl Bus {
    pub fn subscribe(&self, topic: &str) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(16);
        self.topics
            .lock()
            .expect("bus lock")
            .insert(topic.to_owned(), tx);
        rx
    }

    pub async fn publish(&self, topic: &str, message: &Message) {
        let sender = self.topics.lock().expect("bus lock").get(topic).cloned();
        let bytes = serde_json::to_vec(message).expect("messages encode");
        if let Some(sender) = sender {
            // A closed topic drops the message, as a real bus would.
            let _ = sender.send(bytes).await;
        }
    }

    /// Stops every subscriber loop: their channels close.
    pub fn close(&self) {
        self.topics.lock().expect("bus lock").clear();
    }
}

struct Draft {
    text: String,
    input_tokens: u64,
    output_tokens: u64,
}

impl LlmResponse for Draft {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input_tokens, self.output_tokens))
    }
}

/// A deterministic stand-in for a hosted model.
#[llm_call(model = "claude-sonnet-4-5", provider = "anthropic")]
async fn complete(prompt: &str) -> Result<Draft, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(20 + (prompt.len() as u64 * 7) % 30)).await;
    let text = if let Some(rest) = prompt.strip_prefix("Review: ") {
        if rest.contains("for example") {
            "approve".to_owned()
        } else {
            "revise: add a concrete example".to_owned()
        }
    } else if let Some((draft, _feedback)) = prompt.split_once(" | feedback: ") {
        format!(
            "{}, for example a support bot.",
            draft.trim_end_matches('.')
        )
    } else {
        format!("An article about {prompt}.")
    };
    Ok(Draft {
        input_tokens: 40 + prompt.len() as u64 / 4,
        output_tokens: 20 + text.len() as u64 / 4,
        text,
    })
}

#[agent_step(agent = "writer", description = "Writes and revises drafts")]
async fn write(brief: String) -> Result<String, std::io::Error> {
    let session = context::current();
    println!(
        "  writer  <- session {}: {brief}",
        session.session_id().unwrap_or("-")
    );
    Ok(complete(&brief).await?.text)
}

#[agent_step(agent = "critic", description = "Approves drafts or asks for changes")]
async fn review(draft: String) -> Result<String, std::io::Error> {
    let session = context::current();
    println!(
        "  critic  <- session {}: {draft}",
        session.session_id().unwrap_or("-")
    );
    Ok(complete(&format!("Review: {draft}")).await?.text)
}

/// An agent's loop: each message is handled in the context it carries.
async fn serve<F, Fut>(bus: Bus, mut inbox: mpsc::Receiver<Vec<u8>>, handle: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, std::io::Error>>,
{
    while let Some(bytes) = inbox.recv().await {
        let Ok(message) = serde_json::from_slice::<Message>(&bytes) else {
            continue;
        };
        let answer = message
            .trace
            .instrument(async {
                let body = handle(message.body).await.unwrap_or_else(|e| e.to_string());
                // The answer carries the same trace and session back.
                Message {
                    reply_to: None,
                    body,
                    trace: TraceCarrier::current(),
                }
            })
            .await;
        if let Some(topic) = message.reply_to {
            bus.publish(&topic, &answer).await;
        }
    }
}

/// Sends a request and waits for the answer on the orchestrator's own topic.
async fn ask(
    bus: &Bus,
    inbox: &mut mpsc::Receiver<Vec<u8>>,
    me: &str,
    to: &str,
    body: String,
) -> String {
    let request = Message {
        reply_to: Some(me.to_owned()),
        body,
        trace: TraceCarrier::current(),
    };
    bus.publish(to, &request).await;
    let bytes = inbox.recv().await.expect("an answer");
    serde_json::from_slice::<Message>(&bytes)
        .expect("answers decode")
        .body
}

#[agent_step(kind = workflow, name = "publish")]
async fn publish(bus: Bus, topic: String) -> String {
    let me = format!("orchestrator/{topic}");
    let mut inbox = bus.subscribe(&me);
    let mut draft = ask(&bus, &mut inbox, &me, "writer", topic.clone()).await;
    for _ in 0..3 {
        let verdict = ask(&bus, &mut inbox, &me, "critic", draft.clone()).await;
        match verdict.strip_prefix("revise: ") {
            Some(feedback) => {
                let brief = format!("{draft} | feedback: {feedback}");
                draft = ask(&bus, &mut inbox, &me, "writer", brief).await;
            }
            None => break,
        }
    }
    draft
}

/// Starts the two agents and runs one workflow per session, concurrently.
pub async fn run_sessions(sessions: &[(&str, &str, &str)]) -> Vec<String> {
    let bus = Bus::default();
    let writer = tokio::spawn(serve(bus.clone(), bus.subscribe("writer"), write));
    let critic = tokio::spawn(serve(bus.clone(), bus.subscribe("critic"), review));
    let workflows = sessions.iter().map(|&(session, user, topic)| {
        context::scope()
            .session_id(session)
            .user_id(user)
            .tag("channel", "bus")
            .instrument(publish(bus.clone(), topic.to_owned()))
    });
    let articles = futures::future::join_all(workflows).await;
    bus.close();
    let _ = tokio::join!(writer, critic);
    articles
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = otel_agent_runtime::builder()
        .default_service_name("message-bus")
        .init()?;
    let sessions = [
        ("session-a1", "user-17", "observability for agents"),
        ("session-b2", "user-42", "token budgets"),
    ];
    let articles = run_sessions(&sessions).await;
    for ((session, _, _), article) in sessions.iter().zip(&articles) {
        println!("{session}: {article}");
    }
    if let Err(e) = telemetry.shutdown() {
        eprintln!("otel-agent: {e}");
    }
    Ok(())
}
