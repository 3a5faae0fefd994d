use otel_agent_runtime::agent_step;

#[agent_step(fields(app.query_len = query.len(), app.query_len = 0))]
fn research(query: &str) {
    let _ = query;
}

fn main() {}
