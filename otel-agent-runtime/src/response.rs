//! How a model call's return value tells telemetry what happened: token usage,
//! the model that answered, the response id and why generation stopped.

use std::borrow::Cow;
use std::sync::Arc;

use crate::message::Message;

/// Token counts of one model call, as the provider reported them.
///
/// Every field is optional: a count the provider did not report stays `None`, and
/// no metric is recorded for it (counts are never invented).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens (`gen_ai.usage.input_tokens`), cached ones included.
    pub input_tokens: Option<u64>,
    /// Generated tokens (`gen_ai.usage.output_tokens`), reasoning ones included.
    pub output_tokens: Option<u64>,
    /// Input tokens served from the provider's cache.
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the provider's cache.
    pub cache_creation_input_tokens: Option<u64>,
    /// Output tokens spent on reasoning.
    pub reasoning_output_tokens: Option<u64>,
}

/// The most tokens one call is taken to have reported, per count: 2^40
/// (about 1.1 × 10^12, a million times today's largest context windows).
/// Larger counts (a provider's bug, `u64::MAX`) are clamped where usage enters
/// the runtime, so that the token histogram's sum over millions of calls, the
/// roll-ups and the console's totals stay far from overflowing and a span's
/// `i64` attribute never wraps.
pub(crate) const MAX_TOKENS_PER_CALL: u64 = 1 << 40;

/// `n` tokens, clamped to [`MAX_TOKENS_PER_CALL`].
pub(crate) fn bounded_tokens(n: u64) -> u64 {
    n.min(MAX_TOKENS_PER_CALL)
}

impl Usage {
    /// Every count clamped to [`MAX_TOKENS_PER_CALL`].
    pub(crate) fn bounded(self) -> Self {
        let b = |n: Option<u64>| n.map(bounded_tokens);
        Self {
            input_tokens: b(self.input_tokens),
            output_tokens: b(self.output_tokens),
            cache_read_input_tokens: b(self.cache_read_input_tokens),
            cache_creation_input_tokens: b(self.cache_creation_input_tokens),
            reasoning_output_tokens: b(self.reasoning_output_tokens),
        }
    }

    /// Input and output token counts.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens: Some(input_tokens),
            output_tokens: Some(output_tokens),
            ..Self::default()
        }
    }

    /// Adds the count of input tokens read from the provider's cache.
    pub fn with_cache_read(mut self, tokens: u64) -> Self {
        self.cache_read_input_tokens = Some(tokens);
        self
    }

    /// Adds the count of input tokens written to the provider's cache.
    pub fn with_cache_creation(mut self, tokens: u64) -> Self {
        self.cache_creation_input_tokens = Some(tokens);
        self
    }

    /// Adds the count of output tokens spent on reasoning.
    pub fn with_reasoning(mut self, tokens: u64) -> Self {
        self.reasoning_output_tokens = Some(tokens);
        self
    }
}

/// What telemetry can read from a model's response.
///
/// `#[llm_call]` reads it from the function's return value. It is implemented for
/// `Result<T, E>`, `Option<T>`, references, `Box` and `Arc` of implementing types,
/// so a function returning `Result<MyResponse, MyError>` only needs the impl for
/// `MyResponse`. A return type that does not implement it still gets its span and
/// duration; only the usage-derived attributes and token metrics are left out.
///
/// ```
/// use otel_agent_runtime::{LlmResponse, Usage};
///
/// struct Reply { text: String, model: String, prompt_tokens: u32, completion_tokens: u32 }
///
/// impl LlmResponse for Reply {
///     fn usage(&self) -> Option<Usage> {
///         Some(Usage::new(self.prompt_tokens.into(), self.completion_tokens.into()))
///     }
///     fn response_model(&self) -> Option<&str> {
///         Some(&self.model)
///     }
///     fn finish_reasons(&self) -> Vec<&str> {
///         vec!["stop"]
///     }
/// }
/// ```
pub trait LlmResponse {
    /// Token usage, when the provider reported it.
    fn usage(&self) -> Option<Usage> {
        None
    }
    /// The model that produced the response (`gen_ai.response.model`).
    fn response_model(&self) -> Option<&str> {
        None
    }
    /// The provider's id of the response (`gen_ai.response.id`).
    fn response_id(&self) -> Option<&str> {
        None
    }
    /// One reason per choice, e.g. `stop`, `length`, `tool_calls`.
    fn finish_reasons(&self) -> Vec<&str> {
        Vec::new()
    }
    /// The model's answer, one message per choice (`gen_ai.output.messages`),
    /// read only when content is captured. None by default.
    ///
    /// For one chunk of a stream: the chunk's deltas, message `k` continuing
    /// choice `k` (an empty message for a choice the chunk does not touch).
    /// Text parts are appended to the choice's text; a tool call part with an
    /// empty id continues the choice's last tool call (its name and its
    /// arguments, as a JSON string of the fragment).
    fn output_messages(&self) -> Vec<Message> {
        Vec::new()
    }
}

macro_rules! forward_response {
    ($($ty:ty),*) => {$(
        impl<T: LlmResponse + ?Sized> LlmResponse for $ty {
            fn usage(&self) -> Option<Usage> { (**self).usage() }
            fn response_model(&self) -> Option<&str> { (**self).response_model() }
            fn response_id(&self) -> Option<&str> { (**self).response_id() }
            fn finish_reasons(&self) -> Vec<&str> { (**self).finish_reasons() }
            fn output_messages(&self) -> Vec<Message> { (**self).output_messages() }
        }
    )*};
}
forward_response!(&T, Box<T>, Arc<T>);

impl<T: LlmResponse, E> LlmResponse for Result<T, E> {
    fn usage(&self) -> Option<Usage> {
        self.as_ref().ok().and_then(T::usage)
    }
    fn response_model(&self) -> Option<&str> {
        self.as_ref().ok().and_then(T::response_model)
    }
    fn response_id(&self) -> Option<&str> {
        self.as_ref().ok().and_then(T::response_id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.as_ref().map(T::finish_reasons).unwrap_or_default()
    }
    fn output_messages(&self) -> Vec<Message> {
        self.as_ref().map(T::output_messages).unwrap_or_default()
    }
}

impl<T: LlmResponse> LlmResponse for Option<T> {
    fn usage(&self) -> Option<Usage> {
        self.as_ref().and_then(T::usage)
    }
    fn response_model(&self) -> Option<&str> {
        self.as_ref().and_then(T::response_model)
    }
    fn response_id(&self) -> Option<&str> {
        self.as_ref().and_then(T::response_id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.as_ref().map(T::finish_reasons).unwrap_or_default()
    }
    fn output_messages(&self) -> Vec<Message> {
        self.as_ref().map(T::output_messages).unwrap_or_default()
    }
}

/// A low-cardinality class for an error, recorded as `error.type`.
///
/// An implementation always wins. Without one, `error.type` is read from the
/// error's type:
///
/// - a named type gives its name without module path or generic arguments
///   (`my_crate::errors::ModelError` and `my_crate::Wrapper<Inner>` give
///   `ModelError` and `Wrapper`), seen through `&`, `Box`, `Arc` and `Rc`; a type
///   named just `Error` keeps its crate (`reqwest::Error`, `serde_json::Error`;
///   `fmt::Error` for the standard library's), so that crates' errors stay apart;
/// - `Box<dyn Error>`, `Arc<dyn Error>` and `&dyn Error` (with or without
///   `+ Send + Sync`) give the class of the error inside when it is a
///   `std::io::Error` (its kind, e.g. `TimedOut`) or another type the runtime
///   classifies (async-openai's `OpenAIError`), and `_OTHER` otherwise;
/// - strings (`String`, `&str`, `Cow<str>`), `anyhow::Error`, `eyre::Report`,
///   `Box<dyn Any>`, other trait objects, primitives and tuples say nothing about
///   the failure and give `_OTHER`, the conventions' value for an error of no
///   known class.
///
/// Implement it to name classes of your own, or to split one error type into a
/// few classes a dashboard can group by; never return ids, messages or other
/// values that vary per call.
///
/// ```
/// use std::borrow::Cow;
/// use otel_agent_runtime::ErrorType;
///
/// #[derive(Debug)]
/// enum ModelError { RateLimited, Timeout, Refused(String) }
///
/// impl ErrorType for ModelError {
///     fn error_type(&self) -> Cow<'static, str> {
///         match self {
///             ModelError::RateLimited => "rate_limited".into(),
///             ModelError::Timeout => "timeout".into(),
///             ModelError::Refused(_) => "refused".into(),
///         }
///     }
/// }
/// ```
pub trait ErrorType {
    /// The class of this error.
    fn error_type(&self) -> Cow<'static, str>;
}

impl ErrorType for std::io::Error {
    fn error_type(&self) -> Cow<'static, str> {
        format!("{:?}", self.kind()).into()
    }
}

macro_rules! forward_error_type {
    ($($ty:ty),*) => {$(
        impl<T: ErrorType + ?Sized> ErrorType for $ty {
            fn error_type(&self) -> Cow<'static, str> {
                (**self).error_type()
            }
        }
    )*};
}
forward_error_type!(&T, Box<T>, Arc<T>, std::rc::Rc<T>);
