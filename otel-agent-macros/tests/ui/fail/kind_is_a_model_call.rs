use otel_agent_runtime::agent_step;

#[agent_step(kind = llm)]
fn complete() {}

fn main() {}
