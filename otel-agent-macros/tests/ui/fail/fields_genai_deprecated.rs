use otel_agent_runtime::agent_step;

#[agent_step(fields(gen_ai.system = "openai", gen_ai.usage.prompt_tokens = 3))]
fn research() {}

fn main() {}
