use otel_agent_runtime::agent_step;

#[agent_step]
struct Researcher;

fn main() {}
