use otel_agent_runtime::agent_step;

#[agent_step(colour = "blue")]
fn research() {}

fn main() {}
