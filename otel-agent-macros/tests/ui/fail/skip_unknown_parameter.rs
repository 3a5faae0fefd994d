use otel_agent_runtime::agent_step;

struct Client;

#[agent_step(skip(clinet))]
fn research(client: &Client, topic: &str) {
    let _ = (client, topic);
}

fn main() {}
