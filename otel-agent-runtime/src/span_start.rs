//! What an attribute's span is, handed to the bridge as a typed value while the
//! generated code creates the span.
//!
//! `tracing` passes a span's string fields to the subscriber as `&str` of
//! unknown lifetime, so a layer must copy each one. The call site already holds
//! them as `&'static str` (operation, names, provider) or as a shared
//! [`StringValue`] (a model chosen at run time); copying three or four per call
//! into `String`s that the export thread frees costs a quarter of an enabled
//! call's time (see `docs/performance.md`). So the generated code makes a
//! [`CallStart`] or [`StepStart`] first: it puts the site and model in a
//! thread-local slot that the bridge takes from when it builds the span (on
//! this thread, inside `span!`), and the span's fields are read from the same
//! value. The start is handed back to the guard, which clears the slot.
//!
//! The fields stay on the `tracing` span for every other layer. The bridge uses
//! a typed value only for the field it stands for and only when the field holds
//! the same text, so a start that does not belong to the span changes nothing.

use std::borrow::Cow;
use std::cell::Cell;

use opentelemetry::{StringValue, Value};

use crate::semconv;
use crate::site::{LlmSite, ModelName, StepSite, ToolName, TOOL_TYPE};

thread_local! {
    /// The start of the attribute span being created on this thread.
    static STARTING: Cell<Option<SpanStart>> = const { Cell::new(None) };
}

/// What the bridge is told about the attribute span being created.
pub(crate) enum SpanStart {
    Step {
        site: &'static StepSite,
        /// The tool's name when a dispatcher gives it at run time.
        tool: Option<StringValue>,
    },
    Call {
        site: &'static LlmSite,
        provider: &'static str,
        model: ModelName,
    },
}

impl SpanStart {
    /// The start of the attribute span now being created on this thread.
    /// Which kind it is needs no check against the span: a value is used
    /// only for a field that holds the same text.
    pub(crate) fn take() -> Option<Self> {
        // Gone only while the thread exits; the fields are then copied.
        STARTING.try_with(Cell::take).ok().flatten()
    }

    /// The typed value of the span's string field `field`, when this start
    /// gives that field and `text` is its text.
    pub(crate) fn value_of(&self, field: &str, text: &str) -> Option<Value> {
        let fixed = |value: &'static str| same_text(value, text).then(|| Value::from(value));
        match self {
            SpanStart::Step { site, tool } => match field {
                semconv::GEN_AI_OPERATION_NAME => fixed(site.operation),
                semconv::GEN_AI_TOOL_NAME => match tool {
                    Some(tool) => {
                        same_text(tool.as_str(), text).then(|| Value::String(tool.clone()))
                    }
                    None => fixed(site.name),
                },
                semconv::GEN_AI_AGENT_NAME | semconv::GEN_AI_WORKFLOW_NAME => fixed(site.name),
                semconv::GEN_AI_TOOL_TYPE => fixed(TOOL_TYPE),
                semconv::GEN_AI_AGENT_DESCRIPTION | semconv::GEN_AI_TOOL_DESCRIPTION => {
                    fixed(site.description?)
                }
                _ => None,
            },
            SpanStart::Call {
                site,
                provider,
                model,
            } => match field {
                semconv::GEN_AI_OPERATION_NAME => fixed(site.operation),
                semconv::GEN_AI_PROVIDER_NAME => fixed(provider),
                semconv::GEN_AI_REQUEST_MODEL => {
                    same_text(model.as_str(), text).then(|| Value::String(model.value.clone()))
                }
                _ => None,
            },
        }
    }

    /// The span's name (its `otel.name` field) as a static string, when this
    /// start holds it and `text` is it.
    pub(crate) fn static_name(&self, text: &str) -> Option<&'static str> {
        match self {
            SpanStart::Call { model, .. } => model.kept_span_name().filter(|n| same_text(n, text)),
            SpanStart::Step { .. } => None,
        }
    }
}

/// Whether two strings have the same text. The span's field most often holds
/// the start's string itself, which needs no byte compared.
fn same_text(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// Puts `start` in the slot; what it held before comes back, to be restored.
fn hand(start: SpanStart) -> Option<SpanStart> {
    STARTING.try_with(|s| s.replace(Some(start))).ok().flatten()
}

/// Restores what the slot held before a start was handed (a start made while
/// an outer span's fields were being evaluated ends before the outer span is
/// created), dropping the start if no span took it (nobody listens).
fn restore(previous: Option<SpanStart>) {
    let _ = STARTING.try_with(|s| s.set(previous));
}

/// An `#[llm_call]` about to create its span: the site, the model and its
/// provider, given to the span's fields and to the bridge as one value, then
/// to the call's guard.
pub struct CallStart {
    site: &'static LlmSite,
    provider: &'static str,
    model: ModelName,
    /// `{operation} {model}` for a model chosen at run time.
    span_name: Option<Cow<'static, str>>,
    previous: Option<SpanStart>,
}

impl CallStart {
    /// A call whose attribute names the model (the span's name is the call
    /// site's).
    pub fn literal(site: &'static LlmSite, model: &'static str) -> Self {
        Self::new(site, ModelName::literal(model), None)
    }

    /// A call whose model an expression gives at run time; the span is named
    /// for it.
    pub fn named(site: &'static LlmSite, model: ModelName) -> Self {
        let span_name = model.span_name(site);
        Self::new(site, model, Some(span_name))
    }

    fn new(site: &'static LlmSite, model: ModelName, span_name: Option<Cow<'static, str>>) -> Self {
        let provider = site.provider_for(&model);
        let previous = hand(SpanStart::Call {
            site,
            provider,
            model: model.clone(),
        });
        Self {
            site,
            provider,
            model,
            span_name,
            previous,
        }
    }

    /// The span's `otel.name`: `Some` when the model is chosen at run time.
    pub fn span_name(&self) -> Option<&str> {
        self.span_name.as_deref()
    }

    /// `gen_ai.provider.name`.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// `gen_ai.request.model`.
    pub fn model(&self) -> &str {
        self.model.as_str()
    }

    /// Ends the hand-off once the span exists: the site, provider and model,
    /// for the guard.
    pub(crate) fn end(self) -> (&'static LlmSite, &'static str, ModelName) {
        restore(self.previous);
        (self.site, self.provider, self.model)
    }
}

/// An `#[agent_step]` about to create its span: the site, and the tool's name
/// when a dispatcher gives it at run time.
pub struct StepStart {
    site: &'static StepSite,
    tool: Option<ToolName>,
    previous: Option<SpanStart>,
}

impl StepStart {
    /// A step named by its attribute.
    pub fn new(site: &'static StepSite) -> Self {
        Self::with_tool(site, None)
    }

    /// A tool step named at run time (`#[agent_step(kind = tool, name = expr)]`):
    /// its span is named for the tool and its metrics carry the tool's name.
    pub fn tool_named(site: &'static StepSite, name: &str) -> Self {
        Self::with_tool(site, Some(ToolName::new(site, name)))
    }

    fn with_tool(site: &'static StepSite, tool: Option<ToolName>) -> Self {
        let previous = hand(SpanStart::Step {
            site,
            tool: tool.as_ref().map(|t| t.name.clone()),
        });
        Self {
            site,
            tool,
            previous,
        }
    }

    /// The step's name: the tool's when named at run time, else the site's.
    pub fn name(&self) -> &str {
        self.tool.as_ref().map_or(self.site.name, ToolName::as_str)
    }

    /// The span's `otel.name`: `Some` for a tool named at run time.
    pub fn span_name(&self) -> Option<&str> {
        self.tool.as_ref().map(ToolName::span_name)
    }

    /// Ends the hand-off once the span exists: the site and the run-time tool
    /// name, for the guard.
    pub(crate) fn end(self) -> (&'static StepSite, Option<StringValue>) {
        restore(self.previous);
        (self.site, self.tool.map(|t| t.name))
    }
}
