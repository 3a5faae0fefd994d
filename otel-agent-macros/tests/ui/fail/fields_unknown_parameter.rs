use otel_agent_runtime::agent_step;

#[agent_step(kind = tool, name = "web_search", fields(qurey))]
fn search(query: &str) -> usize {
    query.len()
}

fn main() {}
