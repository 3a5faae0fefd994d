use otel_agent_runtime::agent_step;

#[agent_step]
extern "C" {
    fn abs(input: i32) -> i32;
}

fn main() {}
