//! Streams returned inside a `Result`, as clients return them.

use std::pin::Pin;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use otel_agent_runtime::llm_call;

type ChatCompletionResponseStream =
    Pin<Box<dyn Stream<Item = Result<String, std::io::Error>> + Send>>;

#[llm_call(model = "gpt-4o", stream)]
async fn alias(prompt: &str) -> Result<ChatCompletionResponseStream, std::io::Error> {
    let prompt = prompt.to_owned();
    Ok(Box::pin(futures::stream::iter([Ok(prompt)])))
}

#[llm_call(model = "gpt-4o")]
async fn boxed() -> std::io::Result<BoxStream<'static, Result<String, std::io::Error>>> {
    Ok(futures::stream::iter([Ok("hi".to_owned())]).boxed())
}

#[llm_call(model = "gpt-4o")]
fn unboxed() -> Result<impl Stream<Item = Result<String, std::io::Error>>, std::io::Error> {
    Ok(futures::stream::iter([Ok("hi".to_owned())]))
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let a: Vec<_> = alias("hi").await.unwrap().collect().await;
    let b: Vec<_> = boxed().await.unwrap().collect().await;
    let c: Vec<_> = unboxed().unwrap().collect().await;
    assert_eq!(a.len() + b.len() + c.len(), 3);
}
