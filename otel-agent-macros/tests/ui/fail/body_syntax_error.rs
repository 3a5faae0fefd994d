use otel_agent_runtime::agent_step;

#[agent_step]
fn research(topic: &str) -> usize {
    let n = topic.len() +;
    n
}

fn main() {}
