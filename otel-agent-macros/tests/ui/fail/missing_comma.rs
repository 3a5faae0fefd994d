use otel_agent_runtime::agent_step;

#[agent_step(agent = "researcher" description = "Finds sources")]
fn research() {}

fn main() {}
