use otel_agent_runtime::agent_step;

#[agent_step(fields(gen_ai.request.query = "rust"))]
fn research() {}

fn main() {}
