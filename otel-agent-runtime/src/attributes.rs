//! The attribute keys the runtime sets that the GenAI conventions do not
//! define: our own (`otel_agent.*`), and OpenInference's, which MLflow and
//! Arize Phoenix read. The conventions' own keys are in [`semconv`](crate::semconv).

use std::borrow::Cow;

use opentelemetry::{Key, KeyValue, Value};

/// The `tracing` target of an `#[agent_step]` span: the macro says what a
/// span is, so the runtime never guesses it from the span's fields. Both
/// targets are under `otel_agent`, the target the call sites are asked for
/// (`__enabled!`) and the runtime's own events use, so a filter on it (as
/// `otel_agent=off`) covers the spans too.
pub(crate) const STEP_TARGET: &str = "otel_agent::step";
/// The `tracing` target of an `#[llm_call]` span.
pub(crate) const CALL_TARGET: &str = "otel_agent::llm_call";

/// Whether a span is one of the attributes' (a step or a model call).
pub(crate) fn is_attribute_span(metadata: &tracing_core::Metadata<'_>) -> bool {
    let target = metadata.target();
    target == STEP_TARGET || target == CALL_TARGET
}

/// A step's outcome on its metrics: `success`, `failure` or `cancelled`.
pub const STEP_OUTCOME: &str = "otel_agent.step.outcome";
/// The agent's, tool's or workflow's name on a step's metrics.
pub const STEP_NAME: &str = "otel_agent.step.name";

/// The span attribute holding a model call's cost in US dollars.
pub const COST_USD: &str = "otel_agent.cost.usd";

/// The prefix of every roll-up key: a step's sum of what the calls under it
/// used (`otel_agent.rollup.usage.input_tokens`, `otel_agent.rollup.cost.usd`).
/// Of our own naming, so that backends summing `gen_ai.usage.*` over a trace
/// count each call once.
pub(crate) const ROLLUP_PREFIX: &str = "otel_agent.rollup.";

/// A step's summed input tokens.
pub const ROLLUP_INPUT_TOKENS: &str = "otel_agent.rollup.usage.input_tokens";
/// A step's summed output tokens.
pub const ROLLUP_OUTPUT_TOKENS: &str = "otel_agent.rollup.usage.output_tokens";
/// A step's summed cost in US dollars.
pub const ROLLUP_COST: &str = "otel_agent.rollup.cost.usd";

/// Set by [`content`](crate::content) on a span whose call asked for its
/// content to be captured (`capture_content = true`) while capture is off for
/// the process. Read and removed here: it never leaves the process.
pub(crate) const CAPTURE_REQUESTED: &str = "otel_agent.capture_requested";

/// Set by the bridge on a library's model-call span whose call a nested call
/// counted: its usage leaves under the roll-up keys only. Read and removed
/// here: it never leaves the process.
pub(crate) const DELEGATED: &str = "otel_agent.delegated";

/// The name of the conventions' event that carries an inference's content.
pub(crate) const DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";

/// OpenInference's input and output of a span, content like the messages they
/// repeat (the export guard treats them so).
pub(crate) const INPUT_VALUE: &str = "input.value";
/// See [`INPUT_VALUE`].
pub(crate) const OUTPUT_VALUE: &str = "output.value";
pub(crate) const INPUT_MIME_TYPE: &str = "input.mime_type";
pub(crate) const OUTPUT_MIME_TYPE: &str = "output.mime_type";

/// OpenInference's span type, which MLflow and Arize Phoenix read: without
/// it they show a workflow as untyped or `unknown`. Only workflows get it;
/// both backends type chat, agent and tool spans from the GenAI attributes,
/// and MLflow would demote a chat span marked `LLM` from its chat-model type.
pub(crate) const OPENINFERENCE_SPAN_KIND: &str = "openinference.span.kind";

/// A key-value pair from two static strings: no copy, no allocation.
pub(crate) fn static_kv(key: &'static str, value: &'static str) -> KeyValue {
    KeyValue::new(Key::from_static_str(key), Value::from(value))
}

/// An attribute value from a string that is static or owned, without a copy.
pub(crate) fn cow_value(value: Cow<'static, str>) -> Value {
    match value {
        Cow::Borrowed(s) => Value::from(s),
        Cow::Owned(s) => Value::from(s),
    }
}
