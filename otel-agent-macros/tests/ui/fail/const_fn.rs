use otel_agent_runtime::agent_step;

#[agent_step]
const fn answer() -> u32 {
    42
}

fn main() {}
