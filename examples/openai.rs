//! The real async-openai client against any OpenAI-compatible server (OpenAI,
//! Azure, vLLM, Ollama, LiteLLM, ...), instrumented with `#[llm_call]` and
//! `#[agent_step]`: usage, response model and id, finish reasons, `error.type`,
//! request settings and `server.address`/`server.port` with no glue code.
//!
//! ```sh
//! python3 tests/openai_server/server.py --port 8089 &   # a canned local server
//! cargo run --example openai                             # trace tree + run summary at exit
//!
//! OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... cargo run --example openai
//! OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_MODEL=llama3.2 cargo run --example openai  # Ollama
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example openai             # to a collector
//! ```
//!
//! One agent step runs three model calls: a chat call in a small tool loop (the
//! model asks for `get_weather`, the tool runs, the model answers), a streamed
//! call printed as it arrives (usage from the final chunk), and a call the server
//! refuses with 429 (`please fail` is the canned server's cue), which the agent
//! handles.

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessageArgs,
    ChatCompletionRequestUserMessage, ChatCompletionResponseStream, ChatCompletionStreamOptions,
    ChatCompletionTool, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, CreateChatCompletionResponse, FunctionObjectArgs,
};
use async_openai::Client;
use futures::StreamExt as _;
use otel_agent_runtime::openai::{self, ChatStreamSummary};
use otel_agent_runtime::{agent_step, llm_call, ErrorType, LlmResponse};
use std::borrow::Cow;
use std::io::Write as _;

const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8089/v1";

/// Why the agent failed. Its `error.type` passes the model's on (`429`,
/// `connection`, ...), so the agent's failures group by cause on a dashboard.
#[derive(Debug)]
enum AgentError {
    Model(OpenAIError),
    Tool(serde_json::Error),
    NoAnswer(&'static str),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::Model(e) => write!(f, "model call failed: {e}"),
            AgentError::Tool(e) => write!(f, "tool failed: {e}"),
            AgentError::NoAnswer(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AgentError {}

impl ErrorType for AgentError {
    fn error_type(&self) -> Cow<'static, str> {
        match self {
            AgentError::Model(e) => e.error_type(),
            AgentError::Tool(_) => "tool_error".into(),
            AgentError::NoAnswer(_) => "no_answer".into(),
        }
    }
}

impl From<OpenAIError> for AgentError {
    fn from(e: OpenAIError) -> Self {
        AgentError::Model(e)
    }
}

impl From<serde_json::Error> for AgentError {
    fn from(e: serde_json::Error) -> Self {
        AgentError::Tool(e)
    }
}

/// A thin client wrapper, as most agent code bases have one.
struct Model {
    client: Client<OpenAIConfig>,
    name: String,
}

impl Model {
    fn request(
        &self,
        messages: Vec<ChatCompletionRequestMessage>,
    ) -> CreateChatCompletionRequestArgs {
        let mut args = CreateChatCompletionRequestArgs::default();
        args.model(&self.name)
            .messages(messages)
            .temperature(0.2)
            .max_completion_tokens(200_u32);
        args
    }

    /// One chat completion. The span `chat {model}` gets the usage, response
    /// model, id and finish reasons from the returned response by itself.
    /// `request = request` records its temperature, max_tokens, ... at the start.
    /// `client = self.client` adds server.address and server.port, on the span
    /// and the call's metrics.
    #[llm_call(model = self.name, provider = "openai", request = request, client = self.client)]
    async fn chat(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, OpenAIError> {
        self.client.chat().create(request).await
    }

    /// A streamed chat completion, returned as async-openai returns it. With
    /// `stream` the span stays open until the caller has read the stream: time
    /// to first chunk, then usage, finish reasons and response model from the
    /// chunks (usage in the final one, when the request asks for it).
    #[llm_call(
        model = self.name,
        provider = "openai",
        request = request,
        client = self.client,
        stream
    )]
    async fn chat_stream(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<ChatCompletionResponseStream, OpenAIError> {
        self.client.chat().create_stream(request).await
    }
}

/// Runs a tool call the model asked for. One function for every tool: the
/// span is named for the tool the call names (`execute_tool get_weather`),
/// carries the call's id, and under content capture its arguments and result.
#[agent_step(
    kind = tool,
    name = call.function.name,
    call_id = call.id,
    arguments = call.function.arguments
)]
async fn run_tool(call: &ChatCompletionMessageToolCall) -> Result<String, AgentError> {
    match call.function.name.as_str() {
        "get_weather" => Ok(get_weather(&call.function.arguments).await?),
        _ => Err(AgentError::NoAnswer(
            "the model asked for a tool we do not have",
        )),
    }
}

async fn get_weather(arguments: &str) -> Result<String, serde_json::Error> {
    let args: serde_json::Value = serde_json::from_str(arguments)?;
    let city = args["city"]
        .as_str()
        .or(args["query"].as_str())
        .unwrap_or("somewhere");
    Ok(format!("{city}: 21 °C, clear sky"))
}

fn weather_tool() -> Result<ChatCompletionTools, OpenAIError> {
    Ok(ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("get_weather")
            .description("Current weather for a city")
            .parameters(serde_json::json!({
                "type": "object",
                "properties": { "city": { "type": "string" } },
                "required": ["city"],
            }))
            .build()?,
    }))
}

fn usage_line(response: &impl LlmResponse) -> String {
    match response.usage() {
        Some(u) => format!(
            "{} in / {} out tokens, model {}, finish {:?}",
            u.input_tokens.unwrap_or_default(),
            u.output_tokens.unwrap_or_default(),
            response.response_model().unwrap_or("?"),
            response.finish_reasons(),
        ),
        None => "usage not reported".to_owned(),
    }
}

/// The chat call in a tool loop: ask, run the tools the model asks for, ask again.
async fn ask_with_tools(model: &Model, question: &str) -> Result<String, AgentError> {
    let mut messages: Vec<ChatCompletionRequestMessage> = vec![
        ChatCompletionRequestSystemMessage::from("You are a concise assistant.").into(),
        ChatCompletionRequestUserMessage::from(question).into(),
    ];
    for _ in 0..4 {
        let request = model
            .request(messages.clone())
            .tools(vec![weather_tool()?])
            .build()?;
        let response = model.chat(request).await?;
        println!("  [chat] {}", usage_line(&response));
        let Some(choice) = response.choices.into_iter().next() else {
            return Err(AgentError::NoAnswer("the model returned no choice"));
        };
        let calls: Vec<ChatCompletionMessageToolCall> = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|call| match call {
                ChatCompletionMessageToolCalls::Function(call) => Some(call),
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect();
        if calls.is_empty() {
            return Ok(choice.message.content.unwrap_or_default());
        }
        messages.push(
            ChatCompletionRequestAssistantMessageArgs::default()
                .tool_calls(
                    calls
                        .iter()
                        .cloned()
                        .map(ChatCompletionMessageToolCalls::Function)
                        .collect::<Vec<_>>(),
                )
                .build()?
                .into(),
        );
        for call in calls {
            let result = run_tool(&call).await?;
            println!(
                "  [tool] {}({}) -> {result}",
                call.function.name, call.function.arguments
            );
            messages.push(
                ChatCompletionRequestToolMessageArgs::default()
                    .content(result)
                    .tool_call_id(call.id)
                    .build()?
                    .into(),
            );
        }
    }
    Err(AgentError::NoAnswer("the model kept calling tools"))
}

#[agent_step(
    agent = "assistant",
    description = "Answers with a tool, streams, survives a 429"
)]
async fn assistant(model: &Model) -> Result<(), AgentError> {
    println!("1. chat with a tool");
    let answer = ask_with_tools(model, "What is the weather in Paris?").await?;
    println!("  answer: {answer}");

    println!("2. streamed chat (usage in the final chunk)");
    print!("  ");
    let request = model
        .request(vec![ChatCompletionRequestUserMessage::from(
            "Write one sentence about observability.",
        )
        .into()])
        .stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        })
        .build()?;
    // Printed as it arrives; the summary only feeds this line, the call's span
    // reads the chunks itself.
    let mut summary = ChatStreamSummary::new();
    let mut stream = model.chat_stream(request).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        for choice in &chunk.choices {
            print!("{}", choice.delta.content.as_deref().unwrap_or(""));
        }
        let _ = std::io::stdout().flush();
        summary.push(&chunk);
    }
    println!();
    println!(
        "  [stream] {} chunks, first after {:?}; {}",
        summary.chunks(),
        summary.time_to_first_chunk().unwrap_or_default(),
        usage_line(&summary)
    );

    println!("3. a call the server refuses");
    let request = model
        .request(vec![ChatCompletionRequestUserMessage::from(
            "please fail: this call is rate limited",
        )
        .into()])
        .build()?;
    match model.chat(request).await {
        Ok(response) => println!("  unexpectedly answered: {}", usage_line(&response)),
        Err(e) => println!(
            "  failed as expected (error.type = {}): {e}",
            e.error_type()
        ),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = otel_agent_runtime::builder()
        .default_service_name("openai-example")
        .init()?;

    let base_url = std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.into());
    let api_key = std::env::var("OPENAI_API_KEY").unwrap_or_else(|_| "sk-local-dummy".into());
    let model = Model {
        // `with_attempts`: each HTTP attempt, async-openai's retries included,
        // is an event on the call's span (the refused call below shows four).
        client: openai::with_attempts(Client::with_config(
            OpenAIConfig::new()
                .with_api_base(&base_url)
                .with_api_key(api_key),
        )),
        name: std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into()),
    };
    println!("model {} at {base_url}", model.name);

    let outcome = assistant(&model).await;
    if let Err(e) = &outcome {
        eprintln!("openai example failed: {e}");
        if base_url == DEFAULT_BASE_URL {
            eprintln!(
                "is the local server running? python3 tests/openai_server/server.py --port 8089"
            );
        }
    }
    // With no OTEL_EXPORTER_OTLP_ENDPOINT this prints the trace tree and run summary.
    if let Err(e) = telemetry.shutdown() {
        eprintln!("otel-agent: {e}");
    }
    Ok(outcome?)
}
