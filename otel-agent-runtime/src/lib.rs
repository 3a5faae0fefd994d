//! OpenTelemetry for AI agents in two attributes and one `init()`.
//!
//! ```no_run
//! use otel_agent_runtime::{agent_step, llm_call, LlmResponse, Usage};
//!
//! struct Reply { text: String, input: u64, output: u64 }
//! impl LlmResponse for Reply {
//!     fn usage(&self) -> Option<Usage> { Some(Usage::new(self.input, self.output)) }
//! }
//!
//! #[llm_call(model = "gpt-4o", provider = "openai")]      // span `chat gpt-4o` (CLIENT)
//! async fn complete(prompt: &str) -> Result<Reply, std::io::Error> {
//!     Ok(Reply { text: format!("echo {prompt}"), input: 12, output: 3 })
//! }
//!
//! #[agent_step(agent = "researcher")]                     // span `invoke_agent researcher`
//! async fn research(topic: &str) -> Result<String, std::io::Error> {
//!     Ok(complete(topic).await?.text)
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let _telemetry = otel_agent_runtime::init()?; // reads OTEL_*; flushes on drop
//!     research("rust agents").await?;
//!     Ok(())
//! }
//! ```
//!
//! With no `OTEL_EXPORTER_OTLP_ENDPOINT`, the program prints a trace tree and a run
//! summary at exit; with one, spans and metrics go over OTLP (gRPC or HTTP).
//!
//! # What is recorded
//! - `#[agent_step]`: a span `invoke_agent {agent}`, `execute_tool {name}` or
//!   `invoke_workflow {name}` with the GenAI attributes, and the metrics
//!   `otel_agent.step.duration` (s), `otel_agent.step.calls` (by outcome) and
//!   `otel_agent.step.active` (in flight).
//! - `#[llm_call]`: a CLIENT span `{operation} {model}` with operation, provider and
//!   request model set at start and response model, id, finish reasons and token
//!   usage read from the return value ([`LlmResponse`]); the metrics
//!   `gen_ai.client.operation.duration` and `gen_ai.client.token.usage` with the
//!   conventions' units and buckets.
//! - An `Err` return sets status ERROR and `error.type` (see [`ErrorType`]); a
//!   panic or a dropped future ends the span as `panic` or `cancelled`.
#![deny(missing_docs)]

pub mod attributes;
mod bridge;
mod cardinality;
mod config;
mod console;
pub mod content;
pub mod context;
pub mod cost;
mod error;
mod error_type;
pub mod evaluation;
mod event_filter;
mod export_guard;
mod export_health;
mod guard;
mod layer;
mod library_spans;
mod message;
pub mod metrics;
// Documented by their own inner docs: an outer doc here would make rustdoc
// resolve their intra-doc links from the crate root.
#[cfg(feature = "rmcp")]
pub mod mcp;
#[cfg(feature = "async-openai")]
pub mod openai;
mod outcome;
mod printable;
mod probe;
#[cfg(feature = "prometheus")]
mod prometheus;
pub mod propagation;
mod provider;
mod recording;
mod request;
mod response;
pub mod semconv;
#[cfg(feature = "tokio")]
mod signal;
mod site;
mod span_ext;
mod span_queue;
mod span_start;
mod span_state;
mod stream;
mod task;
mod telemetry;
mod text;
mod tool_content;

pub use config::{ExporterKind, Protocol, SamplerKind};
pub use error::{InitError, ShutdownError};
pub use otel_agent_macros::{agent_step, llm_call};
pub use recording::CaptureMode;
pub use request::{LlmClient, LlmRequest, RequestParams};
pub use response::{ErrorType, LlmResponse, Usage};
#[cfg(feature = "tokio")]
pub use signal::shutdown_signal;
pub use span_ext::SpanExt;
#[cfg(feature = "tokio")]
pub use task::spawn;
pub use task::{InCurrentContext, InCurrentContextExt};
pub use telemetry::{Telemetry, TelemetryBuilder};

/// Sets up traces and metrics from the standard `OTEL_*` environment and installs
/// them for the whole process. Keep the returned guard alive until exit.
///
/// Equivalent to `builder().init()`; see [`TelemetryBuilder`] for settings in code.
pub fn init() -> Result<Telemetry, InitError> {
    builder().init()
}

/// Starts configuring telemetry in code.
pub fn builder() -> TelemetryBuilder {
    TelemetryBuilder::default()
}

/// What generated code calls. Not a public API: it changes without notice.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
