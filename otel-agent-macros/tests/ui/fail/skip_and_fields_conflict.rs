use otel_agent_runtime::agent_step;

#[agent_step(skip(topic), fields(topic))]
fn research(topic: &str) {
    let _ = topic;
}

#[agent_step(skip_all, skip(topic))]
fn write(topic: &str) {
    let _ = topic;
}

fn main() {}
