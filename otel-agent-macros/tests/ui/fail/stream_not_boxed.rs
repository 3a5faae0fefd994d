use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use otel_agent_runtime::llm_call;

// A stream type of the user's own, not boxed: `stream` cannot wrap it in place.
struct Tokens;

impl Stream for Tokens {
    type Item = String;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<String>> {
        Poll::Ready(None)
    }
}

#[llm_call(model = "gpt-4o", stream)]
fn ask() -> Tokens {
    Tokens
}

fn main() {}
