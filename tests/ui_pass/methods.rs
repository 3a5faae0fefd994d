//! Methods with every receiver, sync and async.
#![deny(warnings)]

use otel_agent_runtime::{agent_step, llm_call};

struct Agent {
    name: String,
    model: String,
    notes: Vec<String>,
}

impl Agent {
    #[agent_step(agent = "by_value")]
    fn into_name(self) -> String {
        self.name
    }

    #[agent_step]
    fn name(&self) -> &str {
        &self.name
    }

    #[agent_step]
    fn notes_mut(&mut self) -> &mut Vec<String> {
        &mut self.notes
    }

    #[agent_step]
    fn boxed(self: Box<Self>) -> usize {
        self.notes.len()
    }

    #[agent_step]
    fn associated(n: u32) -> u32 {
        n
    }

    #[llm_call(model = self.model)]
    fn ask(&self, prompt: &str) -> String {
        format!("{}: {prompt}", self.model)
    }

    #[agent_step]
    async fn async_into_name(self) -> String {
        self.name
    }

    #[agent_step]
    async fn async_name(&self) -> &str {
        &self.name
    }

    #[agent_step]
    async fn async_notes_mut(&mut self) -> &mut Vec<String> {
        &mut self.notes
    }

    #[agent_step]
    async fn async_boxed(self: Box<Self>) -> usize {
        self.notes.len()
    }

    #[llm_call(model = self.model, provider = "anthropic", operation = chat)]
    async fn async_ask(&self, prompt: &str) -> Result<String, std::fmt::Error> {
        if prompt.is_empty() {
            return Err(std::fmt::Error);
        }
        Ok(format!("{}: {prompt}", self.model))
    }
}

fn agent() -> Agent {
    Agent {
        name: "a".to_owned(),
        model: "claude-sonnet-4-5".to_owned(),
        notes: Vec::new(),
    }
}

pub fn main() {
    let mut a = agent();
    assert_eq!(a.name(), "a");
    a.notes_mut().push("n".to_owned());
    assert_eq!(Agent::associated(3), 3);
    assert_eq!(a.ask("hi"), "claude-sonnet-4-5: hi");
    assert_eq!(Box::new(agent()).boxed(), 0);
    assert_eq!(a.into_name(), "a");
    futures::executor::block_on(async {
        let mut a = agent();
        assert_eq!(a.async_name().await, "a");
        a.async_notes_mut().await.push("n".to_owned());
        assert!(a.async_ask("").await.is_err());
        assert_eq!(a.async_ask("hi").await.unwrap(), "claude-sonnet-4-5: hi");
        assert_eq!(Box::new(agent()).async_boxed().await, 0);
        assert_eq!(a.async_into_name().await, "a");
    });
}
