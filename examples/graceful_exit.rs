//! A long-running program stopped the way orchestrators stop programs: with
//! SIGTERM. `flush_on_signal()` exports the last spans and the metrics (whose
//! 60 s interval has not come yet) before the process ends with status 143.
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --example graceful_exit &
//! # ... wait for "serving", then:
//! kill -TERM %1     # exit status 143, and every span and metric arrived
//! ```

use otel_agent_runtime::{agent_step, llm_call, InitError, LlmResponse, Usage};

const CALLS: u64 = 25;

struct Reply {
    text: String,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(12, self.text.len() as u64))
    }
}

#[llm_call(model = "gpt-4o-mini", provider = "openai")]
fn answer(question: u64) -> Result<Reply, std::io::Error> {
    Ok(Reply {
        text: format!("answer {question}"),
    })
}

#[agent_step(agent = "responder")]
fn handle(question: u64) -> Result<usize, std::io::Error> {
    Ok(answer(question)?.text.len())
}

fn main() -> Result<(), InitError> {
    // Without `.flush_on_signal()?`, SIGTERM would end the process here and
    // now, with the last batch of spans and every metric still in memory.
    let _telemetry = otel_agent_runtime::init()?.flush_on_signal()?;
    for question in 0..CALLS {
        if let Err(e) = handle(question) {
            eprintln!("request {question} failed: {e}");
        }
    }
    println!("serving: {CALLS} requests handled, waiting for SIGTERM");
    loop {
        std::thread::park();
    }
}
