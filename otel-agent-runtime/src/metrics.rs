//! The metrics: their names, and (privately) the instruments and everything
//! that records into them, so that what any call records is found here.
//!
//! The GenAI conventions' metrics (`gen_ai.client.operation.duration`,
//! `gen_ai.client.token.usage`, `gen_ai.client.operation.time_to_first_chunk`)
//! have their names in [`semconv`](crate::semconv); the step, cost and
//! evaluation metrics, which the conventions do not define, are named here.

mod bound;
mod instruments;
mod record;

#[doc(hidden)]
pub use bound::SiteMetrics;
pub(crate) use bound::{LlmKey, LlmRecord, StepRecord};
#[cfg(feature = "rmcp")]
pub(crate) use instruments::Bounded;
pub(crate) use instruments::Instruments;
pub(crate) use record::{
    call_ended, library_call_ended, library_step_ended, library_step_started, step_ended,
    step_started, Call, CallEnd, Step,
};

/// Our own step metrics. The names live under `otel_agent.` because the GenAI
/// conventions define client metrics only; `docs` and `deploy/` use exactly these.
pub const STEP_DURATION: &str = "otel_agent.step.duration";
/// Count of finished steps, by outcome.
pub const STEP_CALLS: &str = "otel_agent.step.calls";
/// Steps currently running.
pub const STEP_ACTIVE: &str = "otel_agent.step.active";
/// Cost of model calls in US dollars (`otel_agent_llm_cost_usd_total` in Prometheus).
pub const LLM_COST: &str = "otel_agent.llm.cost.usd";
/// Model calls whose model the price table does not price.
pub const LLM_UNPRICED_CALLS: &str = "otel_agent.llm.unpriced_calls";
/// Evaluation scores.
pub const EVALUATION_SCORE: &str = "otel_agent.evaluation.score";

/// Bucket boundaries the GenAI conventions advise for `gen_ai.client.operation.duration`.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Bucket boundaries the GenAI conventions advise for `gen_ai.client.token.usage`.
pub const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Agent steps run from milliseconds (a tool) to many minutes (a whole crew).
pub const STEP_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The longest metric attribute value, in bytes. Values from outside (a model
/// name a provider returned, a tool or tenant name chosen at run time) are cut
/// to this: a cumulative series keeps its attributes for the life of the
/// process, and one absurd value would otherwise make every later export too
/// large for the collector to accept.
pub const MAX_METRIC_VALUE_BYTES: usize = 256;
