//! The arguments as given, in source order, each taken once by the attribute
//! that knows it; what is left over is reported as unknown.

use proc_macro2::TokenStream;

use crate::diagnostics::Errors;
use crate::suggest::{closest, one_of};

use super::raw::{example, parse_entries, RawArg};
use super::{Context, COMMON_KEYS};

/// The arguments in source order, each with the errors found in it, so that
/// errors are reported in the order they were written.
pub(super) struct Given {
    pub(super) slots: Vec<Slot>,
    /// Keys whose value did not parse, or that were misspelt (already reported).
    pub(super) broken: Vec<String>,
}

pub(super) struct Slot {
    pub(super) arg: Option<RawArg>,
    pub(super) errors: Errors,
}

impl Given {
    pub(super) fn collect(tokens: TokenStream, own_keys: &[&str], cx: &Context<'_>) -> Self {
        let known: Vec<&str> = own_keys.iter().chain(COMMON_KEYS).copied().collect();
        let mut given = Self {
            slots: Vec::new(),
            broken: Vec::new(),
        };
        for entry in parse_entries(tokens, RawArg::parse) {
            let mut errors = Errors::default();
            let arg = match entry {
                Err((error, word)) => {
                    errors.push(error);
                    given.broken.extend(word);
                    None
                }
                Ok(arg) => {
                    let key = arg.key.to_string();
                    if !known.contains(&key.as_str()) {
                        errors.at(&arg.key, unknown_argument(&key, &known, cx.macro_name));
                        // `modle = ...` was meant as `model`: do not also report it missing.
                        given
                            .broken
                            .extend(closest(&key, &known).map(str::to_owned));
                        None
                    } else if given
                        .slots
                        .iter()
                        .any(|s| s.arg.as_ref().is_some_and(|a| a.key == arg.key))
                    {
                        errors.at(
                            &arg.key,
                            format!("duplicate argument `{key}`: give it once"),
                        );
                        None
                    } else {
                        Some(arg)
                    }
                }
            };
            given.slots.push(Slot { arg, errors });
        }
        given
    }

    /// The argument `key`, if given, and where to report its errors.
    pub(super) fn take(&mut self, key: &str) -> Option<(RawArg, usize)> {
        let index = self
            .slots
            .iter()
            .position(|s| s.arg.as_ref().is_some_and(|a| a.key == key))?;
        Some((self.slots[index].arg.take()?, index))
    }

    /// As [`take`](Self::take), only when `wanted` says so of the argument.
    pub(super) fn take_if(
        &mut self,
        key: &str,
        wanted: impl Fn(&RawArg) -> bool,
    ) -> Option<(RawArg, usize)> {
        let index = self
            .slots
            .iter()
            .position(|s| s.arg.as_ref().is_some_and(|a| a.key == key && wanted(a)))?;
        Some((self.slots[index].arg.take()?, index))
    }

    pub(super) fn errors(&mut self, index: usize) -> &mut Errors {
        &mut self.slots[index].errors
    }

    pub(super) fn attempted(&self, key: &str) -> bool {
        self.broken.iter().any(|k| k == key)
    }

    /// Moves every error, in source order, into `errors`.
    pub(super) fn report(self, errors: &mut Errors) {
        for slot in self.slots {
            errors.extend(slot.errors);
        }
    }
}

pub(super) fn unknown_argument(key: &str, known: &[&str], macro_name: &str) -> String {
    let hint = match (key, macro_name) {
        ("err", _) => Some(
            "errors are always recorded (an `Err` return sets the span status to ERROR and `error.type`): \
             remove `err`"
                .to_owned(),
        ),
        ("ret", _) => Some(
            "return values are never recorded as span fields, since they may hold message content: remove `ret`"
                .to_owned(),
        ),
        ("level", _) => Some(
            "the spans are always at level INFO, with target `otel_agent` to filter on: remove `level`".to_owned(),
        ),
        ("target", _) => Some("the spans always have the target `otel_agent`: remove `target`".to_owned()),
        ("parent" | "follows_from", _) => Some(format!(
            "the span's parent is the span that is current when the call starts: remove `{key}`, and enter the \
             parent span around the call"
        )),
        ("model" | "provider" | "operation", "agent_step") => Some(format!(
            "`{key}` belongs to #[llm_call]. To instrument a call to a model, write `#[llm_call({})]`",
            example(key)
        )),
        ("kind" | "agent" | "description" | "arguments", "llm_call") => Some(format!(
            "`{key}` belongs to #[agent_step]. To instrument an agent, a tool or a workflow, write \
             `#[agent_step({})]`",
            example(key)
        )),
        ("name", "llm_call") => Some(
            "its span is named `{operation} {model}`, as the GenAI conventions prescribe: remove `name`".to_owned(),
        ),
        _ => None,
    };
    match (hint, closest(key, known)) {
        (Some(hint), _) => format!("#[{macro_name}] has no argument `{key}`: {hint}"),
        (None, Some(guess)) => {
            format!("#[{macro_name}] has no argument `{key}`: did you mean `{guess}`?")
        }
        (None, None) => format!(
            "#[{macro_name}] has no argument `{key}`; it takes {}",
            one_of(known)
        ),
    }
}
