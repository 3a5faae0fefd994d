//! [async-openai](https://docs.rs/async-openai/0.43) support, behind the `async-openai`
//! feature: `#[llm_call]` reads its chat-completion responses with no glue code.
//!
//! - [`LlmResponse`] for `CreateChatCompletionResponse` (usage, response model, id,
//!   finish reasons), for one stream chunk (`CreateChatCompletionStreamResponse`),
//!   for a `Vec` or slice of chunks, and for [`ChatStreamSummary`], which reads a
//!   stream to its end as it arrives and keeps what the telemetry needs.
//! - [`ErrorType`] for `OpenAIError`: `error.type` is the HTTP status (`429`, `500`)
//!   for an API error, a short class otherwise (see its impl).
//! - [`record_request`] (temperature, max tokens, top_p, penalties, seed, stop
//!   sequences, choice count) and [`record_client`] / [`record_server`]
//!   (`server.address`, `server.port`), for the current `#[llm_call]` span.
//!
//! It works with any OpenAI-compatible endpoint the client points at (OpenAI, Azure,
//! vLLM, Ollama, LiteLLM, ...).
//!
//! ```no_run
//! use async_openai::config::OpenAIConfig;
//! use async_openai::error::OpenAIError;
//! use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
//! use async_openai::Client;
//! use otel_agent_runtime::{llm_call, openai};
//!
//! #[llm_call(model = request.model, provider = "openai")]
//! async fn chat(
//!     client: &Client<OpenAIConfig>,
//!     request: CreateChatCompletionRequest,
//! ) -> Result<CreateChatCompletionResponse, OpenAIError> {
//!     openai::record_client(client); // server.address, server.port
//!     openai::record_request(&request); // gen_ai.request.temperature, ...
//!     client.chat().create(request).await
//! }
//! ```
//!
//! Streaming: read the stream inside the `#[llm_call]` function and return a
//! [`ChatStreamSummary`] (it implements [`LlmResponse`]; usage comes from the final
//! chunk, which the server sends when `stream_options.include_usage` is set):
//!
//! ```no_run
//! # use async_openai::{config::OpenAIConfig, error::OpenAIError, Client};
//! # use async_openai::types::chat::CreateChatCompletionRequest;
//! use otel_agent_runtime::openai::ChatStreamSummary;
//! use otel_agent_runtime::{llm_call, openai};
//!
//! #[llm_call(model = request.model, provider = "openai")]
//! async fn chat_stream(
//!     client: &Client<OpenAIConfig>,
//!     request: CreateChatCompletionRequest,
//! ) -> Result<ChatStreamSummary, OpenAIError> {
//!     openai::record_client(client);
//!     openai::record_request(&request);
//!     ChatStreamSummary::collect_with(client.chat().create_stream(request), |chunk| {
//!         for choice in &chunk.choices {
//!             print!("{}", choice.delta.content.as_deref().unwrap_or(""));
//!         }
//!     })
//!     .await
//! }
//! ```
//!
//! **Versions.** The impls are for async-openai 0.43. Your own dependency must be
//! the same minor version (`async-openai = "0.43"`), or the types are different
//! types to the compiler and `#[llm_call]` silently records no usage for them
//! (`cargo tree -d -i async-openai` shows a duplicate). Enable a TLS backend in
//! your dependency (its default, `rustls`, needs no system OpenSSL); this crate
//! enables none.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::SpanExt as _;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatChoiceStream, ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestAssistantMessageContentPart, ChatCompletionRequestDeveloperMessageContent,
    ChatCompletionRequestDeveloperMessageContentPart, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestSystemMessageContentPart,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestToolMessageContentPart,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart,
    CompletionUsage, CreateChatCompletionRequest, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FinishReason, StopConfiguration,
};
use async_openai::Client;
use futures_core::Stream;
use tracing::Span;

use crate::message::{Message, Part};
pub use crate::request::{LlmRequest, RequestParams};
use crate::response::{ErrorType, LlmResponse, Usage};
use crate::semconv;

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// The conventions' `gen_ai.response.finish_reasons` value of a finish reason.
pub fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
}

/// Prompt and completion tokens, with the cached, cache-write and reasoning
/// details when the server reports them.
impl From<&CompletionUsage> for Usage {
    fn from(u: &CompletionUsage) -> Self {
        let mut usage = Usage::new(u.prompt_tokens.into(), u.completion_tokens.into());
        if let Some(details) = &u.prompt_tokens_details {
            if let Some(cached) = details.cached_tokens {
                usage = usage.with_cache_read(cached.into());
            }
            if let Some(written) = details
                .cache_write_tokens
                .and_then(|t| u64::try_from(t).ok())
            {
                usage = usage.with_cache_creation(written);
            }
        }
        if let Some(reasoning) = u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
        {
            usage = usage.with_reasoning(reasoning.into());
        }
        usage
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// A text part, unless the text is empty.
fn text_part(text: &str) -> Option<Part> {
    (!text.is_empty()).then(|| Part::Text {
        content: text.to_owned(),
    })
}

/// A tool call the model asked for, its arguments as JSON when they parse.
fn tool_call_part(call: &ChatCompletionMessageToolCalls) -> Part {
    let (id, name, arguments) = match call {
        ChatCompletionMessageToolCalls::Function(c) => {
            (&c.id, &c.function.name, &c.function.arguments)
        }
        ChatCompletionMessageToolCalls::Custom(c) => {
            (&c.id, &c.custom_tool.name, &c.custom_tool.input)
        }
    };
    Part::ToolCall {
        id: id.clone(),
        name: name.clone(),
        arguments: crate::message::arguments_json(arguments),
    }
}

/// One choice's answer: its text, refusal and tool calls, and why it stopped.
fn answer(
    text: Option<&str>,
    refusal: Option<&str>,
    tool_calls: impl Iterator<Item = Part>,
    finish_reason: Option<FinishReason>,
) -> Message {
    Message {
        role: "assistant".to_owned(),
        parts: text
            .and_then(text_part)
            .into_iter()
            .chain(refusal.and_then(text_part))
            .chain(tool_calls)
            .collect(),
        finish_reason: finish_reason.map(|r| finish_reason_name(r).to_owned()),
    }
}

/// A chat completion: usage, model, id, one finish reason per choice, and
/// (under content capture) one output message per choice.
impl LlmResponse for CreateChatCompletionResponse {
    fn output_messages(&self) -> Vec<Message> {
        self.choices
            .iter()
            .map(|choice| {
                let m = &choice.message;
                answer(
                    m.content.as_deref(),
                    m.refusal.as_deref(),
                    m.tool_calls.iter().flatten().map(tool_call_part),
                    choice.finish_reason,
                )
            })
            .collect()
    }
    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(Usage::from)
    }
    fn response_model(&self) -> Option<&str> {
        non_empty(&self.model)
    }
    fn response_id(&self) -> Option<&str> {
        non_empty(&self.id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.choices
            .iter()
            .filter_map(|c| c.finish_reason)
            .map(finish_reason_name)
            .collect()
    }
}

/// One stream chunk. Only the final chunk of a stream requested with
/// `stream_options.include_usage` carries usage; only the chunk that ends a choice
/// carries its finish reason. To read a whole stream, see [`ChatStreamSummary`].
/// Its output messages are its deltas, by choice index.
impl LlmResponse for CreateChatCompletionStreamResponse {
    fn output_messages(&self) -> Vec<Message> {
        let mut deltas: Vec<Message> = Vec::new();
        for choice in &self.choices {
            let k = choice.index as usize;
            if deltas.len() <= k {
                deltas.resize_with(k + 1, Message::default);
            }
            let delta = &choice.delta;
            let message = &mut deltas[k];
            if delta.role.is_some() {
                "assistant".clone_into(&mut message.role);
            }
            message
                .parts
                .extend(delta.content.as_deref().and_then(text_part));
            message
                .parts
                .extend(delta.refusal.as_deref().and_then(text_part));
            for call in delta.tool_calls.iter().flatten() {
                let function = call.function.as_ref();
                message.parts.push(Part::ToolCall {
                    id: call.id.clone().unwrap_or_default(),
                    name: function.and_then(|f| f.name.clone()).unwrap_or_default(),
                    arguments: serde_json::Value::String(
                        function
                            .and_then(|f| f.arguments.clone())
                            .unwrap_or_default(),
                    ),
                });
            }
            message.finish_reason = choice
                .finish_reason
                .map(|r| finish_reason_name(r).to_owned());
        }
        deltas
    }
    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(Usage::from)
    }
    fn response_model(&self) -> Option<&str> {
        non_empty(&self.model)
    }
    fn response_id(&self) -> Option<&str> {
        non_empty(&self.id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.choices
            .iter()
            .filter_map(|c| c.finish_reason)
            .map(finish_reason_name)
            .collect()
    }
}

/// All the chunks of a stream, e.g. collected with `TryStreamExt::try_collect`:
/// usage from the last chunk that has it, model and id from the first, one finish
/// reason per choice (in choice order).
impl LlmResponse for [CreateChatCompletionStreamResponse] {
    fn output_messages(&self) -> Vec<Message> {
        let mut answer = Vec::new();
        for chunk in self {
            crate::message::merge_deltas(&mut answer, chunk.output_messages());
        }
        answer
    }
    fn usage(&self) -> Option<Usage> {
        self.iter()
            .rev()
            .find_map(|c| c.usage.as_ref())
            .map(Usage::from)
    }
    fn response_model(&self) -> Option<&str> {
        self.iter().find_map(|c| non_empty(&c.model))
    }
    fn response_id(&self) -> Option<&str> {
        self.iter().find_map(|c| non_empty(&c.id))
    }
    fn finish_reasons(&self) -> Vec<&str> {
        let by_choice: BTreeMap<u32, FinishReason> = self
            .iter()
            .flat_map(|c| &c.choices)
            .filter_map(|c| Some((c.index, c.finish_reason?)))
            .collect();
        by_choice.into_values().map(finish_reason_name).collect()
    }
}

/// The same as for a slice of chunks.
impl LlmResponse for Vec<CreateChatCompletionStreamResponse> {
    fn usage(&self) -> Option<Usage> {
        self.as_slice().usage()
    }
    fn response_model(&self) -> Option<&str> {
        self.as_slice().response_model()
    }
    fn response_id(&self) -> Option<&str> {
        self.as_slice().response_id()
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.as_slice().finish_reasons()
    }
    fn output_messages(&self) -> Vec<Message> {
        self.as_slice().output_messages()
    }
}

/// `error.type` of an async-openai error, low-cardinality by construction:
///
/// | error | `error.type` |
/// |---|---|
/// | the API answered with an error status | the status code: `429`, `400`, `500`, ... |
/// | HTTP failure with a status | the status code |
/// | HTTP timeout / connection failure / other | `timeout` / `connection` / `http` |
/// | a body that does not parse | `invalid_response` |
/// | a broken event stream | `stream` |
/// | a request the client refused to send | `invalid_argument` |
/// | reading or saving a file | `file` |
/// | anything else | `_OTHER` |
///
/// The span's status message is the error's text (the API's own message).
impl ErrorType for OpenAIError {
    fn error_type(&self) -> Cow<'static, str> {
        #[allow(unreachable_patterns)] // variants that exist only with some features
        match self {
            OpenAIError::ApiError(e) => e.status_code.as_u16().to_string().into(),
            OpenAIError::Reqwest(e) => match e.status() {
                Some(status) => status.as_u16().to_string().into(),
                None if e.is_timeout() => "timeout".into(),
                None if e.is_connect() => "connection".into(),
                None => "http".into(),
            },
            OpenAIError::JSONDeserialize(..) => "invalid_response".into(),
            OpenAIError::StreamError(_) => "stream".into(),
            OpenAIError::InvalidArgument(_) => "invalid_argument".into(),
            OpenAIError::FileSaveError(_) | OpenAIError::FileReadError(_) => "file".into(),
            _ => crate::error_type::ERROR_TYPE_OTHER.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

/// One tool call of a streamed choice, put together from its deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamedToolCall {
    /// The position of the call in the choice's list of calls.
    pub index: u32,
    /// The call's id, to answer it with a tool message.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments, as JSON text (the model's, not validated).
    pub arguments: String,
}

/// One choice of a stream, put together from its deltas.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct StreamedChoice {
    /// The choice's index (`0` unless the request asked for `n` > 1).
    pub index: u32,
    /// The text, all deltas appended.
    pub content: String,
    /// The refusal text, if the model refused.
    pub refusal: Option<String>,
    /// The tool calls, in order.
    pub tool_calls: Vec<StreamedToolCall>,
    /// Why generation stopped, from the chunk that ended the choice.
    pub finish_reason: Option<FinishReason>,
}

impl StreamedChoice {
    fn push(&mut self, chunk: &ChatChoiceStream) {
        let delta = &chunk.delta;
        if let Some(text) = &delta.content {
            self.content.push_str(text);
        }
        if let Some(text) = &delta.refusal {
            self.refusal.get_or_insert_with(String::new).push_str(text);
        }
        for call in delta.tool_calls.iter().flatten() {
            let i = match self
                .tool_calls
                .binary_search_by_key(&call.index, |c| c.index)
            {
                Ok(i) => i,
                Err(i) => {
                    let call = StreamedToolCall {
                        index: call.index,
                        ..StreamedToolCall::default()
                    };
                    self.tool_calls.insert(i, call);
                    i
                }
            };
            let slot = &mut self.tool_calls[i];
            if let Some(id) = &call.id {
                slot.id.clone_from(id);
            }
            if let Some(function) = &call.function {
                if let Some(name) = &function.name {
                    slot.name.push_str(name);
                }
                if let Some(arguments) = &function.arguments {
                    slot.arguments.push_str(arguments);
                }
            }
        }
        if chunk.finish_reason.is_some() {
            self.finish_reason = chunk.finish_reason;
        }
    }
}

/// A streamed chat completion read to its end: the text and tool calls of each
/// choice, the finish reasons, the response id and model, and the usage of the
/// final chunk. It implements [`LlmResponse`], so an `#[llm_call]` function that
/// consumes the stream and returns it records the same attributes and token
/// metrics as a non-streamed call.
///
/// On the first chunk it also records, on the current span,
/// `gen_ai.request.stream = true` and the time to first chunk. Inside an
/// `#[llm_call]` that time runs from the call's start and, like every stream's,
/// goes on the span (`gen_ai.response.time_to_first_chunk`, seconds) and into
/// the `gen_ai.client.operation.time_to_first_chunk` histogram when the call
/// ends. On a span of your own only the attribute is set, timed from when the
/// summary was created (create it, or call [`collect`](Self::collect), before
/// the request is sent); on an `#[agent_step]` span nothing is (reading there a
/// stream an `#[llm_call]` returned, the call measures it).
///
/// The server sends usage only when asked, in one extra chunk at the end:
///
/// ```
/// use async_openai::types::chat::{ChatCompletionStreamOptions, CreateChatCompletionRequestArgs};
///
/// let request = CreateChatCompletionRequestArgs::default()
///     .model("gpt-4o-mini")
///     .messages(vec![])
///     .stream_options(ChatCompletionStreamOptions {
///         include_usage: Some(true),
///         include_obfuscation: None,
///     })
///     .build()?;
/// # Ok::<(), async_openai::error::OpenAIError>(())
/// ```
///
/// Without it (or when the stream breaks before the end) the usage is unknown and
/// no token metric is recorded.
#[derive(Debug, Clone)]
pub struct ChatStreamSummary {
    started: Instant,
    time_to_first_chunk: Option<Duration>,
    chunks: usize,
    id: String,
    model: String,
    choices: Vec<StreamedChoice>,
    usage: Option<CompletionUsage>,
}

impl Default for ChatStreamSummary {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatStreamSummary {
    /// An empty summary; its clock for the time to first chunk starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            time_to_first_chunk: None,
            chunks: 0,
            id: String::new(),
            model: String::new(),
            choices: Vec::new(),
            usage: None,
        }
    }

    /// Sends the request (`client.chat().create_stream(request)`) and reads the
    /// stream to its end. The first error, from the request or the stream, is
    /// returned as is.
    pub async fn collect<F, S>(open: F) -> Result<Self, OpenAIError>
    where
        F: Future<Output = Result<S, OpenAIError>>,
        S: Stream<Item = Result<CreateChatCompletionStreamResponse, OpenAIError>> + Unpin,
    {
        Self::collect_with(open, |_| {}).await
    }

    /// As [`collect`](Self::collect), calling `on_chunk` with each chunk as it
    /// arrives (to print the text as it is generated, for example).
    pub async fn collect_with<F, S>(
        open: F,
        mut on_chunk: impl FnMut(&CreateChatCompletionStreamResponse),
    ) -> Result<Self, OpenAIError>
    where
        F: Future<Output = Result<S, OpenAIError>>,
        S: Stream<Item = Result<CreateChatCompletionStreamResponse, OpenAIError>> + Unpin,
    {
        let mut summary = Self::new();
        let mut stream = open.await?;
        while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await
        {
            let chunk = chunk?;
            summary.push(&chunk);
            on_chunk(&chunk);
        }
        Ok(summary)
    }

    /// Adds one chunk, for a loop of your own over the stream.
    pub fn push(&mut self, chunk: &CreateChatCompletionStreamResponse) {
        if self.chunks == 0 {
            let elapsed = self.started.elapsed();
            self.time_to_first_chunk = Some(elapsed);
            let span = Span::current();
            // Inside an `#[llm_call]` the call's end records the time to first
            // chunk, attribute and histogram, from the call's start, as for
            // every stream. On a span of the user's own, the summary's clock is
            // all there is. A step is not a call: a stream read there (one an
            // `#[llm_call]` returned) is measured by its call.
            if crate::span_state::note_first_chunk(&span, Instant::now()) {
                span.set_otel_attribute(semconv::GEN_AI_REQUEST_STREAM, true);
            } else if !crate::span_state::is_ours(&span) {
                span.set_otel_attribute(semconv::GEN_AI_REQUEST_STREAM, true);
                span.set_otel_attribute(
                    semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                    elapsed.as_secs_f64(),
                );
            }
        }
        self.chunks += 1;
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
        }
        if self.model.is_empty() {
            self.model.clone_from(&chunk.model);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        for choice in &chunk.choices {
            let i = match self
                .choices
                .binary_search_by_key(&choice.index, |c| c.index)
            {
                Ok(i) => i,
                Err(i) => {
                    let new = StreamedChoice {
                        index: choice.index,
                        ..StreamedChoice::default()
                    };
                    self.choices.insert(i, new);
                    i
                }
            };
            self.choices[i].push(choice);
        }
    }

    /// The text of the first choice (empty if there was none).
    pub fn content(&self) -> &str {
        self.choices.first().map_or("", |c| c.content.as_str())
    }

    /// Every choice, by index.
    pub fn choices(&self) -> &[StreamedChoice] {
        &self.choices
    }

    /// The usage of the final chunk, when the server sent it.
    pub fn completion_usage(&self) -> Option<&CompletionUsage> {
        self.usage.as_ref()
    }

    /// The response id (the same in every chunk).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The model that answered.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// How many chunks arrived.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// From the summary's creation to the first chunk (the span's value, inside
    /// an `#[llm_call]`, runs from the call's start).
    pub fn time_to_first_chunk(&self) -> Option<Duration> {
        self.time_to_first_chunk
    }
}

impl LlmResponse for ChatStreamSummary {
    fn output_messages(&self) -> Vec<Message> {
        self.choices
            .iter()
            .map(|choice| {
                answer(
                    Some(&choice.content),
                    choice.refusal.as_deref(),
                    choice.tool_calls.iter().map(|call| Part::ToolCall {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        arguments: crate::message::arguments_json(&call.arguments),
                    }),
                    choice.finish_reason,
                )
            })
            .collect()
    }
    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(Usage::from)
    }
    fn response_model(&self) -> Option<&str> {
        non_empty(&self.model)
    }
    fn response_id(&self) -> Option<&str> {
        non_empty(&self.id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.choices
            .iter()
            .filter_map(|c| c.finish_reason)
            .map(finish_reason_name)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// `0.7_f32` as `0.7_f64`, not `0.699999988079071`: the value the user wrote.
fn widen(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

impl LlmRequest for CreateChatCompletionRequest {
    /// Reads the settings of a chat-completion request.
    #[allow(deprecated)] // `max_tokens` and `seed` are deprecated upstream, still sent
    fn request_params(&self) -> RequestParams {
        let request = self;
        RequestParams {
            temperature: request.temperature.map(widen),
            top_p: request.top_p.map(widen),
            max_tokens: request
                .max_completion_tokens
                .or(request.max_tokens)
                .map(u64::from),
            frequency_penalty: request.frequency_penalty.map(widen),
            presence_penalty: request.presence_penalty.map(widen),
            seed: request.seed,
            stop_sequences: match &request.stop {
                Some(StopConfiguration::String(s)) => vec![s.clone()],
                Some(StopConfiguration::StringArray(v)) => v.clone(),
                None => Vec::new(),
            },
            choice_count: request.n.filter(|&n| n != 1).map(u64::from),
        }
    }

    /// The conversation sent, system and developer messages apart: user and
    /// assistant text, the tool calls the assistant asked for and the tools'
    /// answers. Images, audio and files are left out (the conventions' parts
    /// for them would carry the data).
    fn input_messages(&self) -> Vec<Message> {
        self.messages.iter().filter_map(input_message).collect()
    }

    /// The system and developer messages' text, in order.
    fn system_instructions(&self) -> Vec<Part> {
        let mut parts = Vec::new();
        for message in &self.messages {
            match message {
                ChatCompletionRequestMessage::System(m) => match &m.content {
                    ChatCompletionRequestSystemMessageContent::Text(t) => {
                        parts.extend(text_part(t))
                    }
                    ChatCompletionRequestSystemMessageContent::Array(a) => {
                        parts.extend(a.iter().filter_map(|p| match p {
                            ChatCompletionRequestSystemMessageContentPart::Text(t) => {
                                text_part(&t.text)
                            }
                        }));
                    }
                },
                ChatCompletionRequestMessage::Developer(m) => match &m.content {
                    ChatCompletionRequestDeveloperMessageContent::Text(t) => {
                        parts.extend(text_part(t));
                    }
                    ChatCompletionRequestDeveloperMessageContent::Array(a) => {
                        parts.extend(a.iter().filter_map(|p| match p {
                            ChatCompletionRequestDeveloperMessageContentPart::Text(t) => {
                                text_part(&t.text)
                            }
                        }));
                    }
                },
                _ => {}
            }
        }
        parts
    }
}

/// One message of a request in the conventions' shape; `None` for system and
/// developer messages (system instructions) and for a message with nothing
/// the conventions' text parts can hold.
fn input_message(message: &ChatCompletionRequestMessage) -> Option<Message> {
    let (role, parts): (&str, Vec<Part>) = match message {
        ChatCompletionRequestMessage::System(_) | ChatCompletionRequestMessage::Developer(_) => {
            return None
        }
        ChatCompletionRequestMessage::User(m) => (
            "user",
            match &m.content {
                ChatCompletionRequestUserMessageContent::Text(t) => {
                    text_part(t).into_iter().collect()
                }
                ChatCompletionRequestUserMessageContent::Array(a) => a
                    .iter()
                    .filter_map(|p| match p {
                        ChatCompletionRequestUserMessageContentPart::Text(t) => text_part(&t.text),
                        _ => None,
                    })
                    .collect(),
            },
        ),
        ChatCompletionRequestMessage::Assistant(m) => {
            let mut parts: Vec<Part> = match &m.content {
                Some(ChatCompletionRequestAssistantMessageContent::Text(t)) => {
                    text_part(t).into_iter().collect()
                }
                Some(ChatCompletionRequestAssistantMessageContent::Array(a)) => a
                    .iter()
                    .filter_map(|p| match p {
                        ChatCompletionRequestAssistantMessageContentPart::Text(t) => {
                            text_part(&t.text)
                        }
                        ChatCompletionRequestAssistantMessageContentPart::Refusal(r) => {
                            text_part(&r.refusal)
                        }
                    })
                    .collect(),
                None => Vec::new(),
            };
            parts.extend(m.tool_calls.iter().flatten().map(tool_call_part));
            ("assistant", parts)
        }
        ChatCompletionRequestMessage::Tool(m) => {
            let text = match &m.content {
                ChatCompletionRequestToolMessageContent::Text(t) => t.clone(),
                ChatCompletionRequestToolMessageContent::Array(a) => a
                    .iter()
                    .map(|p| match p {
                        ChatCompletionRequestToolMessageContentPart::Text(t) => t.text.as_str(),
                    })
                    .collect(),
            };
            (
                "tool",
                vec![Part::ToolCallResponse {
                    id: m.tool_call_id.clone(),
                    response: serde_json::Value::String(text),
                }],
            )
        }
        #[allow(deprecated)]
        ChatCompletionRequestMessage::Function(m) => (
            "tool",
            vec![Part::ToolCallResponse {
                id: m.name.clone(),
                response: serde_json::Value::String(m.content.clone().unwrap_or_default()),
            }],
        ),
    };
    (!parts.is_empty()).then(|| Message {
        role: role.to_owned(),
        parts,
        finish_reason: None,
    })
}

/// Records the request's settings (temperature, max tokens, top_p, penalties, seed,
/// stop sequences, choice count) on the current span, and under content capture
/// its messages: call it first thing in an `#[llm_call]` function (or write
/// `#[llm_call(request = req)]`). Settings the request leaves out are not recorded.
pub fn record_request(request: &CreateChatCompletionRequest) {
    let span = Span::current();
    request.request_params().record(&span);
    crate::content::record_request(&span, request);
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// The host and port of a base URL, as `server.address` and `server.port` want
/// them: `https://api.openai.com/v1` is `("api.openai.com", 443)`,
/// `http://[::1]:8000/v1` is `("::1", 8000)`. `None` when the URL has no host.
pub fn server_of(base_url: &str) -> Option<(String, u16)> {
    let uri: http::Uri = base_url.trim().parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
        Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
        _ => None,
    })?;
    Some((host.to_owned(), port))
}

/// Records `server.address` and `server.port` of `base_url` (e.g.
/// `http://127.0.0.1:8000/v1`) on the current span. Does nothing if the URL has no
/// host.
pub fn record_server(base_url: &str) {
    if let Some((address, port)) = server_of(base_url) {
        // On an `#[llm_call]` span they also go on the call's metrics.
        crate::span_state::note_server(&Span::current(), &address, port);
    }
}

/// Records `server.address` and `server.port` of the client's base URL (its
/// config's `api_base`, which `OPENAI_BASE_URL` sets) on the current span.
/// `#[llm_call(client = client)]` does it as the call starts.
pub fn record_client<C: Config>(client: &Client<C>) {
    record_server(client.config().api_base());
}

/// The client's base URL's host and port (`#[llm_call(client = client)]`).
impl<C: Config> crate::LlmClient for Client<C> {
    fn server(&self) -> Option<(String, u16)> {
        server_of(self.config().api_base())
    }
}

// ---------------------------------------------------------------------------
// Attempts
// ---------------------------------------------------------------------------

/// The span event of one HTTP attempt (see [`AttemptsLayer`]).
pub const ATTEMPT_EVENT: &str = "otel_agent.request.attempt";

/// A tower layer for async-openai's HTTP stack that records every attempt of
/// a request as an [`ATTEMPT_EVENT`] on the calling span: `http.request.resend_count`
/// (0 for the first try), `http.response.status_code` when the server answered,
/// and `error.type` when the attempt failed. Put it inside async-openai's retry
/// layer so that each retry is seen, a retried 429 included:
///
/// ```
/// use async_openai::middleware::{retry::OpenAIRetryLayer, ReqwestService};
/// use async_openai::{config::OpenAIConfig, Client};
/// use otel_agent_runtime::openai::AttemptsLayer;
/// use tower_layer::Layer as _;
///
/// let http = OpenAIRetryLayer::default()
///     .layer(AttemptsLayer.layer(ReqwestService::new(reqwest::Client::new())));
/// let client = Client::with_config(OpenAIConfig::new()).with_http_service(http);
/// ```
///
/// [`with_attempts`] does exactly this for a client.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttemptsLayer;

impl<S> tower_layer::Layer<S> for AttemptsLayer {
    type Service = Attempts<S>;
    fn layer(&self, inner: S) -> Attempts<S> {
        Attempts { inner }
    }
}

/// The service [`AttemptsLayer`] makes.
#[derive(Debug, Clone)]
pub struct Attempts<S> {
    inner: S,
}

impl<S> tower_service::Service<async_openai::middleware::HttpRequestFactory> for Attempts<S>
where
    S: tower_service::Service<
        async_openai::middleware::HttpRequestFactory,
        Response = reqwest::Response,
        Error = OpenAIError,
    >,
    S::Future: Send + 'static,
{
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), OpenAIError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: async_openai::middleware::HttpRequestFactory) -> Self::Future {
        let span = Span::current();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let resend_count = crate::span_state::next_attempt(&span);
            let mut attrs = vec![opentelemetry::KeyValue::new(
                semconv::HTTP_REQUEST_RESEND_COUNT,
                i64::from(resend_count),
            )];
            match &result {
                Ok(response) => {
                    let status = response.status();
                    attrs.push(opentelemetry::KeyValue::new(
                        semconv::HTTP_RESPONSE_STATUS_CODE,
                        i64::from(status.as_u16()),
                    ));
                    if status.is_client_error() || status.is_server_error() {
                        attrs.push(opentelemetry::KeyValue::new(
                            semconv::ERROR_TYPE,
                            status.as_u16().to_string(),
                        ));
                    }
                }
                Err(e) => attrs.push(opentelemetry::KeyValue::new(
                    semconv::ERROR_TYPE,
                    e.error_type().into_owned(),
                )),
            }
            span.add_otel_event(ATTEMPT_EVENT, attrs);
            result
        })
    }
}

/// `client` with async-openai's default HTTP stack (its retry policy over a
/// new `reqwest::Client`) plus [`AttemptsLayer`] inside the retries, so each
/// attempt of a call shows on its span. It replaces an HTTP client or service
/// set before; build the stack yourself to keep one.
pub fn with_attempts<C: Config>(client: Client<C>) -> Client<C> {
    use tower_layer::Layer as _;
    let http =
        async_openai::middleware::retry::OpenAIRetryLayer::default().layer(AttemptsLayer.layer(
            async_openai::middleware::ReqwestService::new(reqwest::Client::new()),
        ));
    client.with_http_service(http)
}

// The guides in docs/ are compiled as documentation tests, so their examples
// cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../docs/custom-clients.md")]
pub struct CustomClientsGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/migration.md")]
pub struct MigrationGuide;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_come_from_base_urls() {
        let s = |u: &str| server_of(u);
        assert_eq!(
            s("https://api.openai.com/v1"),
            Some(("api.openai.com".into(), 443))
        );
        assert_eq!(
            s("http://127.0.0.1:8089/v1"),
            Some(("127.0.0.1".into(), 8089))
        );
        assert_eq!(s("http://localhost/v1"), Some(("localhost".into(), 80)));
        assert_eq!(s("http://[::1]:8000/v1"), Some(("::1".into(), 8000)));
        assert_eq!(
            s("HTTPS://my.openai.azure.com"),
            Some(("my.openai.azure.com".into(), 443))
        );
        assert_eq!(s("/v1"), None);
        assert_eq!(s("not a url"), None);
    }

    #[test]
    fn floats_keep_the_value_written() {
        assert_eq!(widen(0.7), 0.7);
        assert_eq!(widen(1.0), 1.0);
        assert_eq!(widen(0.95), 0.95);
    }

    #[test]
    fn usage_details_map_to_the_conventions() {
        let u = CompletionUsage {
            prompt_tokens: 100,
            completion_tokens: 20,
            total_tokens: 120,
            prompt_tokens_details: Some(async_openai::types::chat::PromptTokensDetails {
                cached_tokens: Some(64),
                ..Default::default()
            }),
            completion_tokens_details: Some(async_openai::types::chat::CompletionTokensDetails {
                reasoning_tokens: Some(8),
                ..Default::default()
            }),
        };
        assert_eq!(
            Usage::from(&u),
            Usage::new(100, 20).with_cache_read(64).with_reasoning(8)
        );
    }

    #[test]
    fn request_settings_become_attributes() {
        let request = CreateChatCompletionRequest {
            temperature: Some(0.2),
            top_p: Some(0.9),
            max_completion_tokens: Some(256),
            n: Some(1),
            stop: Some(StopConfiguration::String("END".into())),
            ..Default::default()
        };
        let params = request.request_params();
        assert_eq!(params.temperature, Some(0.2));
        assert_eq!(params.top_p, Some(0.9));
        assert_eq!(params.max_tokens, Some(256));
        assert_eq!(params.choice_count, None);
        assert_eq!(params.stop_sequences, vec!["END".to_owned()]);
        let keys: Vec<String> = params
            .attributes()
            .iter()
            .map(|kv| kv.key.to_string())
            .collect();
        assert_eq!(
            keys,
            [
                "gen_ai.request.temperature",
                "gen_ai.request.top_p",
                "gen_ai.request.max_tokens",
                "gen_ai.request.stop_sequences"
            ]
        );
    }
}
