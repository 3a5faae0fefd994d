use otel_agent_runtime::agent_step;

struct Researcher;

#[agent_step]
impl Researcher {
    fn research(&self) {}
}

fn main() {}
