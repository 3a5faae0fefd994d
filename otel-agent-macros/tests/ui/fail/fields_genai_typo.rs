use otel_agent_runtime::llm_call;

#[llm_call(model = "gpt-4o", fields(gen_ai.request.temprature = 0.2))]
fn complete() {}

#[llm_call(model = "gpt-4o", fields(gen_ai.usage.input_token = 12))]
fn complete_again() {}

fn main() {}
