//! A researcher/writer crew against an offline stand-in model, instrumented with
//! two attributes and one `init()`.
//!
//! ```sh
//! cargo run --example crew                                   # trace tree + run summary
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example crew   # to a collector
//! DEMO_RUN_ITERATIONS=10 cargo run --example crew
//! ```
//!
//! The stand-in model answers with realistic latency and token counts, and is
//! rate-limited now and then (deterministically, so every run tells the same story):
//! the researcher retries, and each attempt is its own span.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

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
    calls: std::sync::atomic::AtomicU64,
}

impl StandInModel {
    fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            calls: std::sync::atomic::AtomicU64::new(0),
        }
    }

    async fn answer(&self, prompt: &str, call: u64) -> Result<ChatResponse, ModelError> {
        let seed = mix(prompt.len() as u64 ^ call);
        tokio::time::sleep(Duration::from_millis(120 + seed % 380)).await;
        if call % 5 == 1 {
            return Err(ModelError::RateLimited {
                retry_after: Duration::from_millis(50),
            });
        }
        let prompt_tokens = (prompt.len() as u64 / 4).max(1) + 180 + seed % 400;
        let completion_tokens = 60 + mix(seed) % 340;
        Ok(ChatResponse {
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
        })
    }

    /// Stands for a client method that calls the model named by a field.
    #[llm_call(model = self.model, provider = "anthropic")]
    async fn chat(&self, prompt: &str) -> Result<ChatResponse, ModelError> {
        let call = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.answer(prompt, call).await
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
    let call = model
        .calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    model.answer(findings, call).await
}

#[agent_step(kind = tool, name = "web_search", description = "Searches the web for a query")]
async fn web_search(query: &str) -> Result<Vec<String>, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(30 + mix(query.len() as u64) % 90)).await;
    Ok((1..=3).map(|i| format!("result {i} for {query}")).collect())
}

#[agent_step(agent = "researcher", description = "Finds and summarises sources")]
async fn research(model: &StandInModel, topic: &str) -> Result<String, ModelError> {
    let hits = web_search(topic).await.unwrap_or_default();
    let findings = hits.join("; ");
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
    let draft = model
        .chat(&format!("Write an article from these notes: {notes}"))
        .await?;
    // A stand-in quality check: longer drafts within budget score higher.
    let score = (draft.completion_tokens as f64 / 400.0).min(1.0);
    let label = if score >= 0.5 { "pass" } else { "fail" };
    evaluation::record(Evaluation::new("draft_quality").score(score).label(label));
    Ok(draft.text)
}

#[agent_step(kind = workflow, name = "crew")]
async fn run_crew(
    gpt: &StandInModel,
    claude: &StandInModel,
    topic: &str,
) -> Result<String, ModelError> {
    let notes = research(gpt, topic).await?;
    write(claude, &notes).await
}

fn iterations() -> Result<u32, String> {
    match std::env::var("DEMO_RUN_ITERATIONS") {
        Err(_) => Ok(3),
        Ok(v) => v.trim().parse::<u32>().map_err(|_| {
            format!("DEMO_RUN_ITERATIONS={v:?} is not valid: expected a whole number, e.g. 3")
        }),
    }
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
    for i in 0..iterations {
        let topic = topics[i as usize % topics.len()];
        // Every span of the run carries the session, user and tenant (W3C baggage).
        let scope = context::scope()
            .session_id(format!("session-{}", i + 1))
            .user_id("demo-user")
            .tenant(["acme", "globex"][i as usize % 2]);
        match scope.instrument(run_crew(&gpt, &claude, topic)).await {
            Ok(article) => println!("[{}/{iterations}] {topic}: {article}", i + 1),
            Err(e) => println!("[{}/{iterations}] {topic}: failed: {e}", i + 1),
        }
    }

    let produced = telemetry.spans_ended();
    if let Err(e) = telemetry.shutdown() {
        eprintln!("otel-agent: {e}");
    }
    println!("otel-agent: produced {produced} spans");
    Ok(())
}
