use otel_agent_runtime::llm_call;

#[llm_call(
    modle = "gpt-4o",
    provider = 5,
    operation = chta,
    fields(gen_ai.usage.input_token = 12, promt),
    skip(clinet),
    metric_attributes(user.id = "u-1")
)]
fn complete(client: &str, prompt: &str) {
    let _ = (client, prompt);
}

fn main() {}
