use otel_agent_runtime::{agent_step, llm_call};

#[agent_step(model = "gpt-4o")]
fn complete() {}

#[llm_call(model = "gpt-4o", name = "summarize", agent = "writer")]
fn summarize() {}

fn main() {}
