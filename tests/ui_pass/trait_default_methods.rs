//! Provided (default) trait methods, sync and async, and their overrides.
#![deny(warnings)]

use otel_agent_runtime::agent_step;

trait Tool {
    fn name(&self) -> &str;

    #[agent_step(kind = tool, name = "describe")]
    fn describe(&self) -> String {
        format!("tool {}", self.name())
    }

    #[agent_step(kind = tool, name = "run")]
    async fn run(&self, input: u32) -> Result<u32, String> {
        if input == 0 {
            return Err(format!("{} needs input", self.name()));
        }
        Ok(input * 2)
    }
}

struct Search;

impl Tool for Search {
    fn name(&self) -> &str {
        "search"
    }
}

struct Calc;

impl Tool for Calc {
    fn name(&self) -> &str {
        "calc"
    }

    #[agent_step(kind = tool, name = "calc")]
    async fn run(&self, input: u32) -> Result<u32, String> {
        Ok(input + 1)
    }
}

pub fn main() {
    assert_eq!(Search.describe(), "tool search");
    futures::executor::block_on(async {
        assert_eq!(Search.run(2).await, Ok(4));
        assert!(Search.run(0).await.is_err());
        assert_eq!(Calc.run(2).await, Ok(3));
    });
}
