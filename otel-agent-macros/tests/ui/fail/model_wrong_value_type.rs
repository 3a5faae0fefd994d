use otel_agent_runtime::llm_call;

#[llm_call(model = 4)]
fn complete() {}

fn main() {}
