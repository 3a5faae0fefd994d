use otel_agent_runtime::agent_step;

#[agent_step(agnet = "researcher")]
fn research() {}

fn main() {}
