use otel_agent_runtime::agent_step;

#[agent_step(agent = "researcher", name = "writer")]
fn research() {}

fn main() {}
