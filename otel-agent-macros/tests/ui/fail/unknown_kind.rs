use otel_agent_runtime::agent_step;

#[agent_step(kind = tol)]
fn search() {}

fn main() {}
