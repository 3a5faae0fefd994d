//! `#[agent_step]`'s arguments.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Expr;

use crate::diagnostics::Errors;
use crate::keys;
use crate::suggest::one_of;

use super::common::{parse_common, Reservations};
use super::given::Given;
use super::raw::RawValue;
use super::value::{choice, expr_value, string_value};
use super::{Context, StepArgs, StepKind, STEP_KEYS, STEP_KINDS};

impl StepArgs {
    /// Parses and validates; `None` when anything was reported in `errors`.
    pub(crate) fn parse(
        tokens: TokenStream,
        cx: &Context<'_>,
        errors: &mut Errors,
    ) -> Option<Self> {
        let mut given = Given::collect(tokens, STEP_KEYS, cx);
        let kind = given.take("kind").and_then(|(arg, at)| {
            choice(arg, STEP_KINDS, step_kind_hint, given.errors(at)).map(|k| match k {
                "tool" => StepKind::Tool,
                "workflow" => StepKind::Workflow,
                _ => StepKind::Agent,
            })
        });
        let kind_known = kind.is_some() || !given.attempted("kind");
        let kind = kind.unwrap_or(StepKind::Agent);
        // A tool's name may be known only at run time: any expression but a
        // string literal or a bare word that is not a parameter (`name =
        // web_search` most likely meant the literal).
        let runtime_name = |value: &RawValue| match value {
            RawValue::Assign(Expr::Lit(_)) => false,
            RawValue::Assign(Expr::Path(p)) if p.path.get_ident().is_some() => {
                let word = p.to_token_stream().to_string();
                cx.params.is_some_and(|params| params.contains(&word))
            }
            RawValue::Assign(_) => true,
            RawValue::Flag | RawValue::List(_) => false,
        };
        let name_expr = given
            .take_if("name", |arg| {
                kind == StepKind::Tool && runtime_name(&arg.value)
            })
            .map(|(arg, at)| (arg.key.clone(), expr_value(arg, given.errors(at)), at));
        if let Some((arg, at)) = given.take_if("name", |arg| {
            kind_known && kind != StepKind::Tool && runtime_name(&arg.value)
        }) {
            given.errors(at).at(
                &arg.key,
                format!(
                    "a name known only at run time is a tool's (a dispatcher routing by name), but this step \
                     is `kind = {}`: add `kind = tool`, or write the name as a string literal, e.g. `name = \
                     \"planner\"`",
                    kind.word()
                ),
            );
        }
        let mut string = |key: &str| {
            given.take(key).map(|(arg, at)| {
                let key = arg.key.clone();
                let value = string_value(arg, given.errors(at));
                (key, value, at)
            })
        };
        let agent = string("agent");
        let name = if name_expr.is_none() {
            string("name")
        } else {
            None
        };
        let description = string("description");
        let arguments = given
            .take("arguments")
            .map(|(arg, at)| (arg.key.clone(), expr_value(arg, given.errors(at)), at));
        let call_id = given
            .take("call_id")
            .map(|(arg, at)| (arg.key.clone(), expr_value(arg, given.errors(at)), at));
        let common = parse_common(
            &mut given,
            cx,
            &Reservations {
                span: kind.span_keys(),
                metric: keys::STEP_METRIC_KEYS,
            },
        );

        if let (true, StepKind::Tool | StepKind::Workflow, Some((key, _, at))) =
            (kind_known, kind, &agent)
        {
            let k = kind.word();
            given.errors(*at).at(
                key,
                format!(
                    "`agent` names an agent, but this step is `kind = {k}`: write `name = \"...\"` for the {k}'s \
                     name, or remove `kind = {k}`"
                ),
            );
        }
        if let (true, StepKind::Agent | StepKind::Workflow, Some((key, _, at))) =
            (kind_known, kind, &arguments)
        {
            given.errors(*at).at(
                key,
                format!(
                    "`arguments` are a tool's input, but this step is `kind = {}`: add `kind = tool`, or remove \
                     `arguments` (record a run's input with `content::record_input`)",
                    kind.word()
                ),
            );
        }
        if let (true, StepKind::Agent | StepKind::Workflow, Some((key, _, at))) =
            (kind_known, kind, &call_id)
        {
            given.errors(*at).at(
                key,
                format!(
                    "`call_id` is the id of a tool call, but this step is `kind = {}`: add `kind = tool`, or \
                     remove `call_id`",
                    kind.word()
                ),
            );
        }
        if let (true, StepKind::Workflow, Some((key, _, at))) = (kind_known, kind, &description) {
            given.errors(*at).at(
                key,
                "`description` describes agents and tools; the GenAI conventions give a workflow none: remove it",
            );
        }
        if let (StepKind::Agent, Some(_), Some((key, _, at))) = (kind, &agent, &name) {
            given.errors(*at).at(
                key,
                "`agent` and `name` both name the agent: keep one (`agent = \"...\"` is the usual form)",
            );
        }
        given.report(errors);
        if !errors.is_empty() {
            return None;
        }
        Some(Self {
            kind,
            name: name
                .and_then(|(_, n, _)| n)
                .or_else(|| agent.and_then(|(_, a, _)| a)),
            description: description.and_then(|(_, d, _)| d),
            arguments: arguments.and_then(|(_, a, _)| a),
            name_expr: name_expr.and_then(|(_, n, _)| n),
            call_id: call_id.and_then(|(_, c, _)| c),
            common,
        })
    }
}

pub(super) fn step_kind_hint(word: &str) -> Option<String> {
    matches!(word, "llm" | "llm_call" | "model" | "chat" | "completion" | "embeddings").then(|| {
        format!("`{word}` is not a step kind: a call to a model is instrumented with #[llm_call(model = \"...\")]; `kind` is one of {}", one_of(STEP_KINDS))
    })
}
