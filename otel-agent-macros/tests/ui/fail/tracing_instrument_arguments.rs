use otel_agent_runtime::agent_step;

#[agent_step(err, ret, level = "debug", target = "app")]
fn research() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
