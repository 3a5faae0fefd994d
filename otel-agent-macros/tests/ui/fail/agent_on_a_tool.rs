use otel_agent_runtime::agent_step;

#[agent_step(kind = tool, agent = "web_search")]
fn search() {}

fn main() {}
