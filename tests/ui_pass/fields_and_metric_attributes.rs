//! Every accepted form of `fields(...)`, `skip(...)` and `metric_attributes(...)`.
#![deny(warnings)]

use otel_agent_runtime::{agent_step, llm_call};

#[derive(Debug)]
struct Config {
    depth: u8,
}

#[agent_step(
    kind = tool,
    name = "web_search",
    fields(
        query,
        ?config,
        app.query_len = query.len(),
        "app.query-upper" = %query.to_uppercase(),
        app.depth = ?config.depth,
        gen_ai.tool.call.id = "call-1",
        gen_ai.conversation.id = %conversation,
    ),
    skip(client),
    metric_attributes(app.team = "search", "deployment.environment" = "test")
)]
fn search(client: &str, query: &str, config: &Config, conversation: u64) -> usize {
    client.len()
        + query.len()
        + usize::from(config.depth)
        + usize::try_from(conversation).unwrap_or(0)
}

#[llm_call(
    model = "gpt-4o",
    provider = "openai",
    operation = "text_completion",
    fields(gen_ai.request.temperature = temperature, gen_ai.request.max_tokens = 256_i64),
    skip_all,
    metric_attributes(app.tier = "free")
)]
async fn complete(prompt: &str, temperature: f64) -> String {
    format!("{prompt} at {temperature}")
}

struct Named {
    name: String,
}

impl Named {
    #[agent_step(skip(self), fields(app.name = %self.name))]
    fn name_len(&self) -> usize {
        self.name.len()
    }
}

pub fn main() {
    assert_eq!(search("c", "rust", &Config { depth: 2 }, 7), 1 + 4 + 2 + 7);
    assert_eq!(futures::executor::block_on(complete("p", 0.5)), "p at 0.5");
    let named = Named {
        name: "n".to_owned(),
    };
    assert_eq!(named.name_len(), 1);
}
