use std::pin::Pin;

use futures::Stream;
use otel_agent_runtime::llm_call;

// What async-openai calls its stream of chat chunks: a name the macro cannot
// see through.
type ChatCompletionResponseStream = Pin<Box<dyn Stream<Item = Result<String, std::io::Error>> + Send>>;

#[llm_call(model = "gpt-4o")]
async fn ask(prompt: &str) -> Result<ChatCompletionResponseStream, std::io::Error> {
    let prompt = prompt.to_owned();
    Ok(Box::pin(futures::stream::iter([Ok(prompt)])))
}

#[llm_call(model = "gpt-4o")]
fn ask_plain() -> ChatCompletionResponseStream {
    Box::pin(futures::stream::iter([]))
}

// Not a stream of chunks, whatever its name says: `stream = false`.
struct UpStream;

#[llm_call(model = "gpt-4o", stream = false)]
fn ask_named() -> UpStream {
    UpStream
}

fn main() {}
