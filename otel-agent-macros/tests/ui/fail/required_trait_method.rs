use otel_agent_runtime::agent_step;

trait Agent {
    #[agent_step]
    fn step(&self);
}

fn main() {}
