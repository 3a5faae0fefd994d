use otel_agent_runtime::agent_step;

#[agent_step(fields(%app.topic = topic))]
fn research(topic: &str) {
    let _ = topic;
}

fn main() {}
