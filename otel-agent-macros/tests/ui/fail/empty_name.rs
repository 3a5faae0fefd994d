use otel_agent_runtime::agent_step;

#[agent_step(agent = "  ")]
fn research() {}

fn main() {}
