use otel_agent_runtime::{agent_step, llm_call};

#[agent_step]
async fn research(topic: &str) -> usize {
    if topic.is_empty() {
        return "nothing";
    }
    topic
}

#[llm_call(model = "gpt-4o")]
fn complete(prompt: &str) -> u32 {
    prompt.len()
}

fn main() {}
