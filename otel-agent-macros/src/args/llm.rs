//! `#[llm_call]`'s arguments.

use proc_macro2::{Span, TokenStream};

use crate::diagnostics::Errors;
use crate::keys;
use crate::suggest::one_of;

use super::common::{parse_common, Reservations};
use super::given::Given;
use super::value::{bool_value, choice, expr_value, model_value, string_value};
use super::{Context, LlmArgs, LLM_KEYS, LLM_OPERATIONS};

pub(super) fn llm_operation_hint(word: &str) -> Option<String> {
    match word {
        "invoke_agent" | "execute_tool" | "invoke_workflow" | "create_agent" => Some(format!(
            "`{word}` is not a call to a model: instrument agents, tools and workflows with \
             #[agent_step(kind = ...)]; `operation` is one of {}",
            one_of(LLM_OPERATIONS)
        )),
        "completion" | "completions" => Some(format!(
            "unknown operation `{word}`: did you mean `text_completion`? (`operation` is one of {})",
            one_of(LLM_OPERATIONS)
        )),
        "embedding" | "embed" => Some(format!(
            "unknown operation `{word}`: did you mean `embeddings`? (`operation` is one of {})",
            one_of(LLM_OPERATIONS)
        )),
        _ => None,
    }
}

impl LlmArgs {
    /// Parses and validates; `None` when anything was reported in `errors`.
    pub(crate) fn parse(
        tokens: TokenStream,
        cx: &Context<'_>,
        errors: &mut Errors,
    ) -> Option<Self> {
        let mut given = Given::collect(tokens, LLM_KEYS, cx);
        let model_arg = given.take("model");
        let model_missing = model_arg.is_none() && !given.attempted("model");
        let model = model_arg.and_then(|(arg, at)| model_value(arg, given.errors(at)));
        let provider = given
            .take("provider")
            .and_then(|(arg, at)| string_value(arg, given.errors(at)));
        let operation = given.take("operation").and_then(|(arg, at)| {
            choice(arg, LLM_OPERATIONS, llm_operation_hint, given.errors(at))
        });
        let capture_content = given
            .take("capture_content")
            .and_then(|(arg, at)| bool_value(arg, given.errors(at)));
        let stream = given
            .take("stream")
            .and_then(|(arg, at)| bool_value(arg, given.errors(at)));
        let request = given
            .take("request")
            .and_then(|(arg, at)| expr_value(arg, given.errors(at)));
        let client = given
            .take("client")
            .and_then(|(arg, at)| expr_value(arg, given.errors(at)));
        let common = parse_common(
            &mut given,
            cx,
            &Reservations {
                span: keys::LLM_SPAN_KEYS,
                metric: keys::LLM_METRIC_KEYS,
            },
        );
        given.report(errors);
        if model_missing {
            errors.at_span(
                Span::call_site(),
                "#[llm_call] needs the model it calls: write `#[llm_call(model = \"gpt-4o\")]`, or \
                 `#[llm_call(model = self.model)]` when it is chosen at run time",
            );
        }
        if !errors.is_empty() {
            return None;
        }
        Some(Self {
            model: model?,
            provider,
            operation: operation.unwrap_or("chat"),
            capture_content: capture_content.unwrap_or(false),
            stream,
            request,
            client,
            common,
        })
    }
}
