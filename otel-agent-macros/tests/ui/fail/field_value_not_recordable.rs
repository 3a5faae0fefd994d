use otel_agent_runtime::agent_step;

struct Topic;

#[agent_step(fields(app.topic = topic))]
fn research(topic: Topic) {
    let _ = topic;
}

fn main() {}
