use otel_agent_runtime::llm_call;

#[llm_call(model = "gpt-4o", metric_attributes(gen_ai.request.model = "gpt-4o-mini"))]
fn complete() {}

fn main() {}
