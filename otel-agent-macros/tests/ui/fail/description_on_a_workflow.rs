use otel_agent_runtime::agent_step;

#[agent_step(kind = workflow, name = "crew", description = "Runs the crew")]
fn run() {}

fn main() {}
