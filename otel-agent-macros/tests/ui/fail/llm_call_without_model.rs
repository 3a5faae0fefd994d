use otel_agent_runtime::llm_call;

#[llm_call(provider = "openai")]
fn complete() {}

fn main() {}
