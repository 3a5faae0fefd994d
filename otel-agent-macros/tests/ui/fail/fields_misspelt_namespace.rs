use otel_agent_runtime::llm_call;

#[llm_call(model = "gpt-4o", fields(genai.request.temperature = 0.2))]
fn complete() {}

fn main() {}
