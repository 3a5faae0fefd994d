//! `#[async_trait]` rewrites each `async fn` into a function returning
//! `Pin<Box<dyn Future + Send>>` before our attribute runs; the span must
//! still cover the awaited work, and the future must stay `Send`.
#![deny(warnings)]

use async_trait::async_trait;
use otel_agent_runtime::{agent_step, llm_call};

#[async_trait]
trait Model: Sync {
    fn model(&self) -> &str;

    async fn complete(&self, prompt: &str) -> Result<String, std::io::Error>;

    #[agent_step(agent = "default")]
    async fn provided(&self, topic: &str) -> usize {
        topic.len()
    }
}

struct Stub {
    model: String,
}

#[async_trait]
impl Model for Stub {
    fn model(&self) -> &str {
        &self.model
    }

    #[llm_call(model = self.model, provider = "openai")]
    async fn complete(&self, prompt: &str) -> Result<String, std::io::Error> {
        if prompt.is_empty() {
            return Err(std::io::Error::other("empty prompt"));
        }
        Ok(format!("{}: {prompt}", self.model()))
    }
}

struct Other;

#[async_trait]
impl Model for Other {
    fn model(&self) -> &str {
        "gpt-4o"
    }

    // Our attribute listed first, then another attribute: same expansion order
    // (#[async_trait] on the impl always runs first).
    #[agent_step(agent = "other")]
    #[allow(clippy::needless_lifetimes)]
    async fn complete(&self, prompt: &str) -> Result<String, std::io::Error> {
        Ok(prompt.to_owned())
    }

    #[allow(clippy::needless_lifetimes)]
    #[agent_step(agent = "override")]
    async fn provided(&self, topic: &str) -> usize {
        topic.len() + 1
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

// Ours first, as an ordinary `async fn`: its future is `Send` when the body's is.
#[agent_step]
async fn ordinary(model: &(dyn Model + Sync)) -> Result<String, std::io::Error> {
    model.complete("hi").await
}

pub fn main() {
    let stub = Stub {
        model: "gpt-4o".to_owned(),
    };
    futures::executor::block_on(async {
        assert_eq!(
            assert_send(stub.complete("hi")).await.unwrap(),
            "gpt-4o: hi"
        );
        assert!(stub.complete("").await.is_err());
        assert_eq!(stub.provided("abc").await, 3);
        assert_eq!(Other.complete("x").await.unwrap(), "x");
        assert_eq!(Other.provided("abc").await, 4);
        assert_eq!(assert_send(ordinary(&stub)).await.unwrap(), "gpt-4o: hi");
    });
}
