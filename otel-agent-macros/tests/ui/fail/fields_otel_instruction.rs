use otel_agent_runtime::agent_step;

#[agent_step(fields(otel.name = "custom"))]
fn research() {}

fn main() {}
