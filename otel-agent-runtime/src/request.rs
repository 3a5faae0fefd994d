//! What a model call asked for: temperature, max tokens, top_p and the other
//! request settings the conventions name, read from the request value with
//! `#[llm_call(request = req)]`.
//!
//! ```
//! use otel_agent_runtime::{llm_call, LlmRequest, RequestParams};
//!
//! struct MyRequest { prompt: String, temperature: f32, max_tokens: u32 }
//!
//! impl LlmRequest for MyRequest {
//!     fn request_params(&self) -> RequestParams {
//!         RequestParams::default().temperature(self.temperature.into()).max_tokens(self.max_tokens.into())
//!     }
//! }
//!
//! #[llm_call(model = "gpt-4o", request = req)]
//! fn complete(req: MyRequest) -> String {
//!     req.prompt
//! }
//! ```

use std::sync::Arc;

use crate::message::{Message, Part};

use crate::SpanExt as _;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use tracing::Span;

use crate::semconv;

/// The request settings the conventions name, read from a request.
///
/// `gen_ai.request.model` is not among them: `#[llm_call(model = ...)]` sets it
/// when the span starts, as sampling needs.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RequestParams {
    /// `gen_ai.request.temperature`.
    pub temperature: Option<f64>,
    /// `gen_ai.request.top_p`.
    pub top_p: Option<f64>,
    /// `gen_ai.request.max_tokens`: `max_completion_tokens`, else the older `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `gen_ai.request.frequency_penalty`.
    pub frequency_penalty: Option<f64>,
    /// `gen_ai.request.presence_penalty`.
    pub presence_penalty: Option<f64>,
    /// `gen_ai.request.seed`.
    pub seed: Option<i64>,
    /// `gen_ai.request.stop_sequences`.
    pub stop_sequences: Vec<String>,
    /// `gen_ai.request.choice.count`, only when it is not 1 (as the conventions ask).
    pub choice_count: Option<u64>,
}

impl RequestParams {
    /// Sets the temperature.
    pub fn temperature(mut self, value: f64) -> Self {
        self.temperature = Some(value);
        self
    }

    /// Sets top_p.
    pub fn top_p(mut self, value: f64) -> Self {
        self.top_p = Some(value);
        self
    }

    /// Sets the largest number of tokens to generate.
    pub fn max_tokens(mut self, value: u64) -> Self {
        self.max_tokens = Some(value);
        self
    }

    /// The settings as attributes, leaving out those not set.
    pub fn attributes(&self) -> Vec<KeyValue> {
        let mut attrs = Vec::new();
        let mut float = |key: &'static str, v: Option<f64>| {
            if let Some(v) = v {
                attrs.push(KeyValue::new(key, v));
            }
        };
        float(semconv::GEN_AI_REQUEST_TEMPERATURE, self.temperature);
        float(semconv::GEN_AI_REQUEST_TOP_P, self.top_p);
        float(
            semconv::GEN_AI_REQUEST_FREQUENCY_PENALTY,
            self.frequency_penalty,
        );
        float(
            semconv::GEN_AI_REQUEST_PRESENCE_PENALTY,
            self.presence_penalty,
        );
        // Integers as i64: the exporters' integer type.
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(v) = self.max_tokens {
            attrs.push(KeyValue::new(semconv::GEN_AI_REQUEST_MAX_TOKENS, int(v)));
        }
        if let Some(v) = self.seed {
            attrs.push(KeyValue::new(semconv::GEN_AI_REQUEST_SEED, v));
        }
        if let Some(v) = self.choice_count {
            attrs.push(KeyValue::new(semconv::GEN_AI_REQUEST_CHOICE_COUNT, int(v)));
        }
        if !self.stop_sequences.is_empty() {
            let stops: Vec<StringValue> = self
                .stop_sequences
                .iter()
                .cloned()
                .map(StringValue::from)
                .collect();
            attrs.push(KeyValue::new(
                semconv::GEN_AI_REQUEST_STOP_SEQUENCES,
                Value::Array(Array::String(stops)),
            ));
        }
        attrs
    }

    /// Sets the attributes on `span`.
    pub fn record(&self, span: &Span) {
        for kv in self.attributes() {
            span.set_otel_attribute(kv.key, kv.value);
        }
    }
}

/// A request whose settings telemetry can read (`#[llm_call(request = req)]`).
///
/// The two content methods are read only when content is captured (see
/// [`content`](crate::content)): their messages go through the same redaction
/// and size limit as any content.
pub trait LlmRequest {
    /// The settings of this request.
    fn request_params(&self) -> RequestParams;

    /// The messages sent to the model, system instructions apart
    /// (`gen_ai.input.messages`). None by default.
    fn input_messages(&self) -> Vec<Message> {
        Vec::new()
    }

    /// The system (or developer) instructions (`gen_ai.system_instructions`).
    /// None by default.
    fn system_instructions(&self) -> Vec<Part> {
        Vec::new()
    }
}

macro_rules! forward_request {
    ($($ty:ty),*) => {$(
        impl<T: LlmRequest + ?Sized> LlmRequest for $ty {
            fn request_params(&self) -> RequestParams { (**self).request_params() }
            fn input_messages(&self) -> Vec<Message> { (**self).input_messages() }
            fn system_instructions(&self) -> Vec<Part> { (**self).system_instructions() }
        }
    )*};
}
forward_request!(&T, Box<T>, Arc<T>);

impl LlmRequest for RequestParams {
    fn request_params(&self) -> RequestParams {
        self.clone()
    }
}

/// A client whose server telemetry can name (`#[llm_call(client = c)]`):
/// `server.address` and `server.port` go on the call's span when it starts and
/// on its duration and time-to-first-chunk metrics.
pub trait LlmClient {
    /// The host and port the client sends its requests to, if known.
    fn server(&self) -> Option<(String, u16)>;
}

macro_rules! forward_client {
    ($($ty:ty),*) => {$(
        impl<T: LlmClient + ?Sized> LlmClient for $ty {
            fn server(&self) -> Option<(String, u16)> { (**self).server() }
        }
    )*};
}
forward_client!(&T, Box<T>, Arc<T>);
