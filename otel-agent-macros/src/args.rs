//! The argument grammar of both attributes: parsed into typed structs, validated
//! with every error collected (each spanned on the offending tokens) before any
//! code is generated.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

/// One `key = value` (or bare `key`) argument as written.
struct RawArg {
    key: Ident,
    value: Option<Expr>,
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any).map_err(|e| {
            syn::Error::new(e.span(), "expected an argument such as `name = \"...\"`")
        })?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        Ok(Self { key, value })
    }
}

/// Collects errors so that one build reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest known word, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn list(words: &[&str]) -> String {
    words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
}

fn unknown_key(errors: &mut Errors, key: &Ident, known: &[&str], macro_name: &str) {
    let name = key.to_string();
    let message = match did_you_mean(&name, known) {
        Some(guess) => format!("unknown argument `{name}` for #[{macro_name}]: did you mean `{guess}`?"),
        None => format!("unknown argument `{name}` for #[{macro_name}]; expected one of {}", list(known)),
    };
    errors.at(key, message);
}

/// A string literal argument, or an error saying what to write.
fn string_value(errors: &mut Errors, key: &Ident, value: Option<Expr>) -> Option<LitStr> {
    match value {
        Some(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })) => {
            if s.value().trim().is_empty() {
                errors.at(&s, format!("`{key}` must not be empty"));
                None
            } else {
                Some(s)
            }
        }
        Some(other) => {
            errors.at(&other, format!("`{key}` takes a string literal, e.g. `{key} = \"researcher\"`"));
            None
        }
        None => {
            errors.at(key, format!("`{key}` needs a value, e.g. `{key} = \"...\"`"));
            None
        }
    }
}

/// A word chosen from a fixed set, written as an identifier or a string.
fn choice(errors: &mut Errors, key: &Ident, value: Option<Expr>, allowed: &[&'static str]) -> Option<(&'static str, Span)> {
    let (word, span, tokens) = match &value {
        Some(Expr::Path(p)) if p.path.get_ident().is_some() => {
            let ident = p.path.get_ident().map(ToString::to_string).unwrap_or_default();
            (ident, p.path.segments[0].ident.span(), p.to_token_stream())
        }
        Some(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })) => (s.value(), s.span(), s.to_token_stream()),
        Some(other) => {
            errors.at(other, format!("`{key}` takes one of {}", list(allowed)));
            return None;
        }
        None => {
            errors.at(key, format!("`{key}` needs a value: one of {}", list(allowed)));
            return None;
        }
    };
    match allowed.iter().find(|a| **a == word) {
        Some(found) => Some((*found, span)),
        None => {
            let hint = did_you_mean(&word, allowed).map(|g| format!(": did you mean `{g}`?")).unwrap_or_default();
            errors.at(tokens, format!("unknown {key} `{word}`; expected one of {}{hint}", list(allowed)));
            None
        }
    }
}

fn parse_raw(tokens: TokenStream) -> syn::Result<Vec<RawArg>> {
    let parser = Punctuated::<RawArg, Token![,]>::parse_terminated;
    Ok(syn::parse::Parser::parse2(parser, tokens)?.into_iter().collect())
}

/// Rejects a second occurrence of a key, pointing at it.
fn first_time(seen: &mut Vec<String>, errors: &mut Errors, key: &Ident) -> bool {
    let name = key.to_string();
    if seen.contains(&name) {
        errors.at(key, format!("duplicate argument `{name}`; give it once"));
        false
    } else {
        seen.push(name);
        true
    }
}

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
}

/// Validated arguments of `#[agent_step]`.
pub(crate) struct StepArgs {
    pub kind: StepKind,
    /// The agent, tool or workflow name, if given (else the function's name).
    pub name: Option<LitStr>,
    pub description: Option<LitStr>,
}

const STEP_KEYS: &[&str] = &["name", "agent", "kind", "description"];
const STEP_KINDS: &[&str] = &["agent", "tool", "workflow"];

impl StepArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let mut seen = Vec::new();
        let (mut kind, mut name, mut agent, mut description) = (None, None, None, None);
        for arg in parse_raw(tokens)? {
            let key = arg.key.to_string();
            if !STEP_KEYS.contains(&key.as_str()) {
                unknown_key(&mut errors, &arg.key, STEP_KEYS, "agent_step");
                continue;
            }
            if !first_time(&mut seen, &mut errors, &arg.key) {
                continue;
            }
            match key.as_str() {
                "kind" => kind = choice(&mut errors, &arg.key, arg.value, STEP_KINDS),
                "name" => name = string_value(&mut errors, &arg.key, arg.value),
                "agent" => agent = string_value(&mut errors, &arg.key, arg.value).map(|a| (a, arg.key.clone())),
                _ => description = string_value(&mut errors, &arg.key, arg.value),
            }
        }
        let kind_value = match kind {
            Some(("tool", _)) => StepKind::Tool,
            Some(("workflow", _)) => StepKind::Workflow,
            _ => StepKind::Agent,
        };
        let name = match (kind_value, name, agent) {
            (StepKind::Agent, Some(n), Some((a, key))) => {
                if n.value() != a.value() {
                    errors.at(
                        &key,
                        "`agent` and `name` both name the agent; keep one (`agent = \"...\"` is the usual form)",
                    );
                }
                Some(n)
            }
            (StepKind::Agent, n, a) => n.or(a.map(|(a, _)| a)),
            (other, n, Some((_, key))) => {
                let k = if other == StepKind::Tool { "tool" } else { "workflow" };
                errors.at(
                    &key,
                    format!("`agent` names an agent, but this step is `kind = {k}`; use `name = \"...\"` for the {k}"),
                );
                n
            }
            (_, n, None) => n,
        };
        if kind_value == StepKind::Workflow {
            if let Some(d) = &description {
                errors.at(d, "`description` applies to agents and tools, not to `kind = workflow`; remove it");
            }
        }
        errors.finish()?;
        Ok(Self {
            kind: kind_value,
            name,
            description,
        })
    }
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
}

const LLM_KEYS: &[&str] = &["model", "provider", "operation"];
/// The `gen_ai.operation.name` values that describe a call to a model.
const LLM_OPERATIONS: &[&str] = &["chat", "text_completion", "generate_content", "embeddings"];

impl LlmArgs {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let mut seen = Vec::new();
        let (mut model, mut provider, mut operation) = (None, None, None);
        for arg in parse_raw(tokens)? {
            let key = arg.key.to_string();
            if !LLM_KEYS.contains(&key.as_str()) {
                unknown_key(&mut errors, &arg.key, LLM_KEYS, "llm_call");
                continue;
            }
            if !first_time(&mut seen, &mut errors, &arg.key) {
                continue;
            }
            match key.as_str() {
                "model" => model = model_value(&mut errors, &arg.key, arg.value),
                "provider" => provider = string_value(&mut errors, &arg.key, arg.value),
                _ => operation = choice(&mut errors, &arg.key, arg.value, LLM_OPERATIONS).map(|(o, _)| o),
            }
        }
        if model.is_none() && !seen.iter().any(|k| k == "model") {
            errors.push(syn::Error::new(
                Span::call_site(),
                "#[llm_call] needs the model: write `#[llm_call(model = \"gpt-4o\")]` or \
                 `#[llm_call(model = self.model)]`",
            ));
        }
        errors.finish()?;
        let model = model.ok_or_else(|| syn::Error::new(Span::call_site(), "missing model"))?;
        Ok(Self {
            model,
            provider,
            operation: operation.unwrap_or("chat"),
        })
    }
}

fn model_value(errors: &mut Errors, key: &Ident, value: Option<Expr>) -> Option<Model> {
    match value {
        Some(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })) if s.value().trim().is_empty() => {
            errors.at(&s, "`model` must not be empty");
            None
        }
        Some(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })) => Some(Model::Literal(s)),
        Some(Expr::Lit(other)) => {
            errors.at(
                &other,
                "`model` takes a string literal or an expression that gives a string, e.g. \
                 `model = \"gpt-4o\"` or `model = self.model`",
            );
            None
        }
        Some(expr) => Some(Model::Expr(Box::new(expr))),
        None => {
            errors.at(key, "`model` needs a value, e.g. `model = \"gpt-4o\"`");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_words_are_suggested() {
        assert_eq!(did_you_mean("modle", LLM_KEYS), Some("model"));
        assert_eq!(did_you_mean("provder", LLM_KEYS), Some("provider"));
        assert_eq!(did_you_mean("tol", STEP_KINDS), Some("tool"));
        assert_eq!(did_you_mean("zzzzzz", LLM_KEYS), None);
    }
}
