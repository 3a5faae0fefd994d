use otel_agent_runtime::llm_call;

#[llm_call(modle = "gpt-4o")]
fn complete(prompt: &str) -> String {
    prompt.to_owned()
}

fn main() {}
