use otel_agent_runtime::agent_step;

#[agent_step(agent = "researcher", agent = "writer")]
fn research() {}

fn main() {}
