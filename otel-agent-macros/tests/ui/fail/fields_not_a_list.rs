use otel_agent_runtime::agent_step;

#[agent_step(fields = "query")]
fn research(query: &str) {
    let _ = query;
}

fn main() {}
