//! The argument grammar of both attributes: parsed into typed structs and
//! validated with every error collected, each spanned on the offending tokens,
//! before any code is generated.
//!
//! Parsing recovers after a malformed argument (it skips to the next comma), so
//! one build reports every mistake in the attribute.
//!
//! The path an argument takes: `raw` (the syntax) → `given` (in source order,
//! each taken once) → `value` (what each key holds) → `common` (fields, skip,
//! metric attributes) → `step` or `llm` (one attribute's arguments, checked
//! together), into the types below.

mod common;
mod given;
mod llm;
mod raw;
mod step;
mod value;

use proc_macro2::TokenStream;
use syn::{Expr, Ident, LitStr};

use crate::keys::{self, Reserved};

pub(crate) use raw::{Key, Sigil};

/// The kind of an `#[agent_step]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepKind {
    Agent,
    Tool,
    Workflow,
}

impl StepKind {
    pub(crate) fn operation(self) -> &'static str {
        match self {
            StepKind::Agent => "invoke_agent",
            StepKind::Tool => "execute_tool",
            StepKind::Workflow => "invoke_workflow",
        }
    }

    fn word(self) -> &'static str {
        match self {
            StepKind::Agent => "agent",
            StepKind::Tool => "tool",
            StepKind::Workflow => "workflow",
        }
    }

    fn span_keys(self) -> &'static [Reserved] {
        match self {
            StepKind::Agent => keys::AGENT_SPAN_KEYS,
            StepKind::Tool => keys::TOOL_SPAN_KEYS,
            StepKind::Workflow => keys::WORKFLOW_SPAN_KEYS,
        }
    }
}

/// An extra span field from `fields(...)`, ready for `tracing::span!`.
pub(crate) struct Field {
    pub key: Key,
    pub sigil: Option<Sigil>,
    pub value: TokenStream,
}

/// An extra metric attribute from `metric_attributes(...)`.
pub(crate) struct MetricAttribute {
    pub key: Key,
    pub value: LitStr,
}

/// What both attributes accept besides their own arguments.
#[derive(Default)]
pub(crate) struct Common {
    pub fields: Vec<Field>,
    pub metric_attributes: Vec<MetricAttribute>,
    /// Parameters named in `skip(...)`: never recorded, not even as a tool's
    /// arguments.
    pub skipped: Vec<Ident>,
    pub skip_all: bool,
}

/// Validated arguments of `#[agent_step]`.
pub(crate) struct StepArgs {
    pub kind: StepKind,
    /// The agent, tool or workflow name, if given (else the function's).
    pub name: Option<LitStr>,
    pub description: Option<LitStr>,
    /// A tool's arguments as recorded under content capture (`arguments = ...`);
    /// without it, a tool's parameters.
    pub arguments: Option<Expr>,
    /// A tool's name known at run time (`name = call.function.name`), for a
    /// dispatcher that routes by name; `name` is then the function's.
    pub name_expr: Option<Expr>,
    /// The id of the tool call the model made (`call_id = call.id`).
    pub call_id: Option<Expr>,
    pub common: Common,
}

/// The model argument of `#[llm_call]`.
pub(crate) enum Model {
    Literal(LitStr),
    Expr(Box<Expr>),
}

/// Validated arguments of `#[llm_call]`.
pub(crate) struct LlmArgs {
    pub model: Model,
    pub provider: Option<LitStr>,
    pub operation: &'static str,
    /// Capture this call's messages even when capture is off for the process.
    pub capture_content: bool,
    /// `stream`: the function returns a stream, under a name the macro cannot
    /// see through (a type alias of `Pin<Box<dyn Stream<..>>>`); `stream =
    /// false`: what looks like one is not. `None` when not written.
    pub stream: Option<bool>,
    /// The request whose settings (temperature, max tokens, ...) are recorded.
    pub request: Option<Expr>,
    /// The client whose server (`server.address`, `server.port`) is recorded.
    pub client: Option<Expr>,
    pub common: Common,
}

const COMMON_KEYS: &[&str] = &["fields", "skip", "skip_all", "metric_attributes"];
const STEP_KEYS: &[&str] = &[
    "kind",
    "agent",
    "name",
    "description",
    "arguments",
    "call_id",
];
const STEP_KINDS: &[&str] = &["agent", "tool", "workflow"];
const LLM_KEYS: &[&str] = &[
    "model",
    "provider",
    "operation",
    "request",
    "capture_content",
    "stream",
    "client",
];
/// The `gen_ai.operation.name` values that describe a call to a model.
const LLM_OPERATIONS: &[&str] = &["chat", "text_completion", "generate_content", "embeddings"];

/// Which attribute is being expanded, and what the function offers.
pub(crate) struct Context<'a> {
    pub macro_name: &'static str,
    /// The function's parameter names; `None` when the item is not a function.
    pub params: Option<&'a [String]>,
}
