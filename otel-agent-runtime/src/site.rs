//! Call sites: what an annotated function is, fixed at compile time in a
//! `static` the generated code makes (its operation, name, provider, fixed
//! metric attributes), and the names known only at run time (a model chosen by
//! an expression, a tool named by its dispatcher).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use opentelemetry::StringValue;

use crate::metrics::SiteMetrics;

use crate::provider::infer_provider;

/// What a step call site is, fixed at compile time.
#[derive(Debug)]
pub struct StepSite {
    /// `invoke_agent`, `execute_tool` or `invoke_workflow`.
    pub operation: &'static str,
    /// The agent, tool or workflow name.
    pub name: &'static str,
    /// What the agent or tool does, when the attribute says.
    pub description: Option<&'static str>,
    /// Extra low-cardinality metric attributes fixed at the call site.
    pub attributes: &'static [(&'static str, &'static str)],
    /// The site's instruments, bound to its attribute sets once per pipeline.
    pub metrics: SiteMetrics,
}

/// `gen_ai.tool.type` of a tool step: one `static`, whose address
/// `tests/in_process/bridge.rs` finds on the exported span (stored, not copied).
pub static TOOL_TYPE: &str = "function";

/// What an LLM call site is, fixed at compile time.
#[derive(Debug)]
pub struct LlmSite {
    /// `gen_ai.operation.name`, e.g. `chat`.
    pub operation: &'static str,
    /// `gen_ai.provider.name` when the attribute names it.
    pub provider: Option<&'static str>,
    /// Extra low-cardinality metric attributes fixed at the call site.
    pub attributes: &'static [(&'static str, &'static str)],
    /// The site's instruments, bound to its attribute sets once per pipeline.
    pub metrics: SiteMetrics,
    /// The models chosen at run time this site has seen, with their span names.
    pub models: ModelNames,
}

impl LlmSite {
    /// The model an expression names, evaluated when the call starts. A model
    /// this site has seen before comes with its string and span name already
    /// made, so a call that names it allocates nothing for either.
    pub fn model_of<M: AsRef<str> + ?Sized>(&self, model: &M) -> ModelName {
        self.models.get(self.operation, model.as_ref())
    }

    /// The provider: the one the attribute names, else the one the model's name
    /// belongs to (`gpt-4o` is OpenAI's), else `unknown`.
    pub fn provider_for(&self, model: &ModelName) -> &'static str {
        self.provider
            .unwrap_or_else(|| infer_provider(model.as_str()))
    }
}

/// A tool's name known only at run time (`#[agent_step(kind = tool, name = expr)]`),
/// for a dispatcher that routes calls by name: its span is named for the tool
/// and its metrics carry the tool's name, not the dispatcher's.
#[derive(Debug, Clone)]
pub struct ToolName {
    pub(crate) name: StringValue,
    span_name: String,
}

impl ToolName {
    /// The tool `name`, run through the step `site`.
    pub fn new(site: &'static StepSite, name: &str) -> Self {
        Self {
            // Shared, not owned: the bridge's span takes it without a copy.
            name: StringValue::from(Arc::<str>::from(name)),
            span_name: format!("{} {name}", site.operation),
        }
    }

    /// The tool's name, for `gen_ai.tool.name`.
    pub fn as_str(&self) -> &str {
        self.name.as_str()
    }

    /// `execute_tool {name}`, for the span's name.
    pub fn span_name(&self) -> &str {
        &self.span_name
    }
}

/// The request model of an LLM call: a literal, or the value of an expression.
#[derive(Debug, Clone)]
pub struct ModelName {
    pub(crate) value: StringValue,
    /// `{operation} {model}`, when the site keeps it (see [`ModelNames`]).
    span_name: Option<&'static str>,
}

impl ModelName {
    /// A model named by a literal in the attribute.
    pub fn literal(name: &'static str) -> Self {
        Self {
            value: StringValue::from(name),
            span_name: None,
        }
    }

    /// A model named by an expression, evaluated when the call starts.
    pub fn of<M: AsRef<str> + ?Sized>(model: &M) -> Self {
        Self {
            value: StringValue::from(Arc::<str>::from(model.as_ref())),
            span_name: None,
        }
    }

    /// The model name.
    pub fn as_str(&self) -> &str {
        self.value.as_str()
    }

    /// `{operation} {model}` when the site keeps it, made once.
    pub(crate) fn kept_span_name(&self) -> Option<&'static str> {
        self.span_name
    }

    /// `{operation} {model}`, the span name the conventions prescribe.
    pub fn span_name(&self, site: &LlmSite) -> Cow<'static, str> {
        match self.span_name {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!("{} {}", site.operation, self.as_str())),
        }
    }
}

/// How many models chosen at run time a site keeps, and how long each may be.
const MAX_MODELS: usize = 8;
const MAX_KEPT_MODEL_BYTES: usize = 128;

/// The models an `#[llm_call]` site with `model = <expression>` has seen, each
/// with its shared string and its span name, made once.
///
/// Without it every call copied the model into a new `Arc<str>` and formatted
/// `{operation} {model}` into a new `String`, and both were freed on the batch
/// processor's thread, a slow free with glibc (see `docs/performance.md`). The
/// span name must be a `&'static str` for the SDK to borrow it, so a kept name
/// is leaked: at most `MAX_MODELS` (8) names of at most `MAX_KEPT_MODEL_BYTES` (128 bytes)
/// per site, never freed and never evicted (eviction would leak without bound).
/// A site that sees more models, or longer ones, copies them per call as before.
///
/// The slots are filled once each and never change, so finding a kept model is
/// a few atomic loads: no lock for calls from many threads to contend on.
#[derive(Debug)]
pub struct ModelNames([OnceLock<(StringValue, &'static str)>; MAX_MODELS]);

impl ModelNames {
    /// An empty list, for the site's `static`.
    #[allow(clippy::declare_interior_mutable_const)] // each site's static gets its own copy
    pub const NEW: ModelNames = ModelNames([const { OnceLock::new() }; MAX_MODELS]);

    fn get(&self, operation: &str, model: &str) -> ModelName {
        let kept = |(value, name): &(StringValue, &'static str)| ModelName {
            value: value.clone(),
            span_name: Some(*name),
        };
        for slot in &self.0 {
            let entry = match slot.get() {
                Some(entry) => entry,
                None if model.len() > MAX_KEPT_MODEL_BYTES => break,
                // A thread that fills this slot first, with this model or
                // another, wins it; the others wait for it, then read it.
                None => slot.get_or_init(|| {
                    let name: &'static str =
                        Box::leak(format!("{operation} {model}").into_boxed_str());
                    (StringValue::from(Arc::<str>::from(model)), name)
                }),
            };
            if entry.0.as_str() == model {
                return kept(entry);
            }
        }
        ModelName::of(model)
    }
}
