use otel_agent_runtime::llm_call;

#[llm_call(model = "gpt-4o", operation = invoke_agent)]
fn complete() {}

fn main() {}
