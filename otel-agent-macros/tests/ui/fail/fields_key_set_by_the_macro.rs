use otel_agent_runtime::{agent_step, llm_call};

#[agent_step(agent = "researcher", fields(gen_ai.agent.name = "other"))]
fn research() {}

#[llm_call(model = "gpt-4o", fields(gen_ai.usage.input_tokens = 12))]
fn complete() {}

fn main() {}
