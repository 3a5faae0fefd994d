use otel_agent_runtime::agent_step;

extern "C" {
    #[agent_step(kind = tool)]
    fn abs(input: i32) -> i32;
}

fn main() {}
