//! A researcher/writer crew against an offline stand-in model, instrumented with
//! two attributes and one `init()`.
//!
//! ```sh
//! cargo run --example crew                                   # trace tree + run summary
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example crew   # to a collector
//! DEMO_RUN_ITERATIONS=10 cargo run --example crew
//! DEMO_RUN_ITERATIONS=0 cargo run --example crew            # until standard input closes (Ctrl-D)
//! ```
//!
//! The stand-in model answers with realistic latency and token counts, and is
//! rate-limited now and then (deterministically, so every run tells the same story):
//! the researcher retries, and each attempt is its own span. The writer's answer
//! is streamed (time to first chunk), the search tool times out on every third
//! call (the researcher carries on without sources), and with content capture on
//! (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`) the messages, the
//! crew's request and its answer are recorded too.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use otel_agent_runtime::content::{self, Message};
use otel_agent_runtime::context;
use otel_agent_runtime::cost::{Price, PriceTable};
use otel_agent_runtime::evaluation::{self, Evaluation};
use otel_agent_runtime::{agent_step, llm_call, ErrorType, LlmResponse, Usage};

/// What the stand-in model returns: the shape of a chat-completion response.
struct ChatResponse {
    id: String,
    model: String,
    text: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    finish_reason: &'static str,
}

impl LlmResponse for ChatResponse {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.prompt_tokens, self.completion_tokens))
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        vec![self.finish_reason]
    }
}

/// One piece of a streamed answer. The final piece carries what a provider sends
/// last: usage, response model and id, finish reason.
struct Chunk {
    text: String,
    last: Option<ChatResponse>,
}

impl LlmResponse for Chunk {
    fn usage(&self) -> Option<Usage> {
        self.last.as_ref().and_then(LlmResponse::usage)
    }
    fn response_model(&self) -> Option<&str> {
        self.last.as_ref().and_then(LlmResponse::response_model)
    }
    fn response_id(&self) -> Option<&str> {
        self.last.as_ref().and_then(LlmResponse::response_id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.last
            .as_ref()
            .map(LlmResponse::finish_reasons)
            .unwrap_or_default()
    }
}

#[derive(Debug)]
enum ModelError {
    RateLimited { retry_after: Duration },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::RateLimited { retry_after } => {
                write!(
                    f,
                    "429 rate limited, retry after {} ms",
                    retry_after.as_millis()
                )
            }
        }
    }
}

impl std::error::Error for ModelError {}

impl ErrorType for ModelError {
    fn error_type(&self) -> Cow<'static, str> {
        match self {
            ModelError::RateLimited { .. } => "rate_limited".into(),
        }
    }
}

/// A deterministic stand-in for a hosted model: latency and token counts vary
/// with the prompt, and the second of every five calls is rate-limited.
struct StandInModel {
    model: String,
    calls: AtomicU64,
}

impl StandInModel {
    fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            calls: AtomicU64::new(0),
        }
    }

    /// What the model will answer to this call, and after how long.
    fn reply(&self, prompt: &str, call: u64) -> (Duration, Result<ChatResponse, ModelError>) {
        let seed = mix(prompt.len() as u64 ^ call);
        let latency = Duration::from_millis(120 + seed % 380);
        if call % 5 == 1 {
            let limited = ModelError::RateLimited {
                retry_after: Duration::from_millis(50),
            };
            return (latency, Err(limited));
        }
        let prompt_tokens = (prompt.len() as u64 / 4).max(1) + 180 + seed % 400;
        let completion_tokens = 60 + mix(seed) % 340;
        let reply = ChatResponse {
            id: format!("chatcmpl-{:x}", mix(seed ^ call)),
            model: format!("{}-2025-08-01", self.model),
            text: format!("a {completion_tokens}-token answer"),
            prompt_tokens,
            completion_tokens,
            finish_reason: if completion_tokens > 380 {
                "length"
            } else {
                "stop"
            },
        };
        (latency, Ok(reply))
    }

    async fn answer(&self, prompt: &str) -> Result<ChatResponse, ModelError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let (latency, reply) = self.reply(prompt, call);
        tokio::time::sleep(latency).await;
        reply
    }

    /// Stands for a client method that streams the answer of the model named by a
    /// field. The span lasts until the stream ends; the first chunk arrives after
    /// a third of the latency, usage with the last one. A rate limit is the
    /// stream's only item.
    #[llm_call(model = self.model, provider = "anthropic")]
    fn chat_stream(&self, prompt: &str) -> impl Stream<Item = Result<Chunk, ModelError>> {
        content::record_input(&[Message::user(prompt)]);
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let (latency, reply) = self.reply(prompt, call);
        let chunks = match reply {
            Err(e) => vec![Err(e)],
            Ok(reply) => {
                let words: Vec<String> = reply.text.split(' ').map(str::to_owned).collect();
                let n = words.len();
                let mut last = Some(reply);
                words
                    .into_iter()
                    .enumerate()
                    .map(|(i, word)| {
                        let text = if i + 1 < n { format!("{word} ") } else { word };
                        let last = if i + 1 == n { last.take() } else { None };
                        Ok(Chunk { text, last })
                    })
                    .collect()
            }
        };
        let first = latency / 3;
        let between = (latency - first) / chunks.len() as u32;
        futures::stream::iter(chunks.into_iter().enumerate()).then(move |(i, chunk)| async move {
            tokio::time::sleep(if i == 0 { first } else { between }).await;
            if let Ok(Chunk {
                last: Some(reply), ..
            }) = &chunk
            {
                // The stream is polled inside its call's span: the answer is
                // recorded there, once it is whole.
                content::record_output(&[
                    Message::assistant(&reply.text).finish_reason(reply.finish_reason)
                ]);
            }
            chunk
        })
    }
}

/// A small mixing function, so that the stand-in is varied but repeatable.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn summarize(model: &StandInModel, findings: &str) -> Result<ChatResponse, ModelError> {
    content::record_input(&[
        Message::system("Summarise the findings in one paragraph."),
        Message::user(findings),
    ]);
    let reply = model.answer(findings).await?;
    content::record_output(&[Message::assistant(&reply.text).finish_reason(reply.finish_reason)]);
    Ok(reply)
}

/// Every third search times out, as real ones do now and then.
#[agent_step(kind = tool, name = "web_search", description = "Searches the web for a query")]
async fn web_search(query: &str) -> Result<Vec<String>, std::io::Error> {
    static SEARCHES: AtomicU64 = AtomicU64::new(0);
    let search = SEARCHES.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(30 + mix(query.len() as u64) % 90)).await;
    if search % 3 == 2 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "search timed out",
        ));
    }
    Ok((1..=3).map(|i| format!("result {i} for {query}")).collect())
}

#[agent_step(agent = "researcher", description = "Finds and summarises sources")]
async fn research(model: &StandInModel, topic: &str) -> Result<String, ModelError> {
    // A failed search does not end the run: the researcher works from the topic.
    let findings = match web_search(topic).await {
        Ok(hits) => hits.join("; "),
        Err(_) => format!("no sources found for {topic}"),
    };
    // Each attempt is its own `chat gpt-4o` span; the step shows the final outcome.
    let mut attempt = 0;
    loop {
        match summarize(model, &findings).await {
            Ok(reply) => return Ok(reply.text),
            Err(ModelError::RateLimited { retry_after }) if attempt < 2 => {
                attempt += 1;
                tokio::time::sleep(retry_after).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[agent_step(agent = "writer", description = "Turns notes into an article")]
async fn write(model: &StandInModel, notes: &str) -> Result<String, ModelError> {
    // The article is streamed: the call's span covers the whole stream.
    let mut stream =
        std::pin::pin!(model.chat_stream(&format!("Write an article from these notes: {notes}")));
    let mut text = String::new();
    let mut completion_tokens = 0;
    let mut failure = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                text.push_str(&chunk.text);
                if let Some(last) = &chunk.last {
                    completion_tokens = last.completion_tokens;
                }
            }
            // Read on to the end, so that the call ends failed rather than abandoned.
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    // A stand-in quality check: longer drafts within budget score higher.
    let score = (completion_tokens as f64 / 400.0).min(1.0);
    let label = if score >= 0.5 { "pass" } else { "fail" };
    evaluation::record(Evaluation::new("draft_quality").score(score).label(label));
    Ok(text)
}

#[agent_step(kind = workflow, name = "crew")]
async fn run_crew(
    gpt: &StandInModel,
    claude: &StandInModel,
    topic: &str,
) -> Result<String, ModelError> {
    // The crew's request and answer, on its root span (with content capture on).
    content::record_input(&[Message::user(topic)]);
    let notes = research(gpt, topic).await?;
    let article = write(claude, &notes).await?;
    content::record_output(&[Message::assistant(&article).finish_reason("stop")]);
    Ok(article)
}

/// `DEMO_RUN_ITERATIONS` (default 3); 0 means until standard input closes.
fn iterations() -> Result<u32, String> {
    match std::env::var("DEMO_RUN_ITERATIONS") {
        Err(_) => Ok(3),
        Ok(v) => v.trim().parse::<u32>().map_err(|_| {
            format!(
                "DEMO_RUN_ITERATIONS={v:?} is not valid: expected a whole number, e.g. 3 \
                 (0: until standard input closes)"
            )
        }),
    }
}

/// Set once standard input is closed (Ctrl-D, or the end of a pipe).
fn stdin_closed() -> Arc<AtomicBool> {
    let closed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&closed);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        flag.store(true, Ordering::Relaxed);
    });
    closed
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = iterations()?;
    // Illustrative prices in USD per million tokens. A program that sets none in
    // code can take them from the TOML file named by OTEL_AGENT_PRICES_FILE.
    let prices = PriceTable::new()
        .with_model("gpt-4o", Price::new(2.50, 10.00).with_cached_input(1.25))
        .with_model("claude-sonnet-4-5", Price::new(3.00, 15.00));
    let telemetry = otel_agent_runtime::builder()
        .default_service_name("crew-demo")
        .prices(prices)
        // Two tenants here, so a per-tenant cost series is cheap; ids never are.
        .tenant_on_metrics(true)
        .init()?;

    let gpt = StandInModel::new("gpt-4o");
    let claude = StandInModel::new("claude-sonnet-4-5");
    let topics = [
        "rust agents",
        "observability",
        "token budgets",
        "vector search",
        "tool use",
    ];
    // 0: keep going (to watch dashboards live) until standard input closes.
    let stop = (iterations == 0).then(stdin_closed);
    let of = match iterations {
        0 => "∞".to_owned(),
        n => n.to_string(),
    };
    for i in 0u32.. {
        let done = match &stop {
            Some(closed) => closed.load(Ordering::Relaxed),
            None => i == iterations,
        };
        if done {
            break;
        }
        let topic = topics[i as usize % topics.len()];
        // Every span of the run carries the session, user and tenant (W3C baggage).
        let scope = context::scope()
            .session_id(format!("session-{}", i + 1))
            .user_id("demo-user")
            .tenant(["acme", "globex"][i as usize % 2]);
        match scope.instrument(run_crew(&gpt, &claude, topic)).await {
            Ok(article) => println!("[{}/{of}] {topic}: {article}", i + 1),
            Err(e) => println!("[{}/{of}] {topic}: failed: {e}", i + 1),
        }
    }

    let produced = telemetry.spans_ended();
    if let Err(e) = telemetry.shutdown() {
        eprintln!("otel-agent: {e}");
    }
    println!("otel-agent: produced {produced} spans");
    Ok(())
}
