//! The values an argument can take: an expression, a boolean, a string, one
//! word of a fixed set, a model, a list.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit, LitStr};

use crate::diagnostics::Errors;
use crate::suggest::{closest, one_of};

use super::raw::{example, RawArg, RawValue};
use super::Model;

/// `key = <any expression>`.
pub(super) fn expr_value(arg: RawArg, errors: &mut Errors) -> Option<Expr> {
    let key = arg.key.to_string();
    match arg.value {
        RawValue::Assign(expr) => Some(expr),
        RawValue::Flag | RawValue::List(_) => {
            errors.at(
                &arg.key,
                format!("`{key}` needs a value, e.g. `{}`", example(&key)),
            );
            None
        }
    }
}

/// `key` alone (true) or `key = true | false`.
pub(super) fn bool_value(arg: RawArg, errors: &mut Errors) -> Option<bool> {
    let key = arg.key.to_string();
    match arg.value {
        RawValue::Flag => Some(true),
        RawValue::Assign(Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        })) => Some(b.value),
        RawValue::Assign(other) => {
            errors.at(
                &other,
                format!("`{key}` takes `true` or `false`, e.g. `{}`", example(&key)),
            );
            None
        }
        RawValue::List(_) => {
            errors.at(
                &arg.key,
                format!("`{key}` takes `true` or `false`, e.g. `{}`", example(&key)),
            );
            None
        }
    }
}

/// A non-empty string literal, or an error saying what to write.
pub(super) fn string_value(arg: RawArg, errors: &mut Errors) -> Option<LitStr> {
    let key = arg.key.to_string();
    match arg.value {
        RawValue::Assign(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => {
            if s.value().trim().is_empty() {
                errors.at(
                    &s,
                    format!("`{key}` must not be empty, e.g. `{}`", example(&key)),
                );
                None
            } else {
                Some(s)
            }
        }
        RawValue::Assign(Expr::Path(p)) if p.path.get_ident().is_some() => {
            let word = p.to_token_stream().to_string();
            let message = if word.chars().any(|c| c.is_ascii_lowercase()) {
                format!("`{key}` takes a string literal: write `{key} = \"{word}\"`")
            } else {
                format!(
                    "`{key}` takes a string literal, not a constant: the name is fixed where the attribute \
                     is written, e.g. `{}`",
                    example(&key)
                )
            };
            errors.at(&p, message);
            None
        }
        RawValue::Assign(other) => {
            errors.at(
                &other,
                format!("`{key}` takes a string literal, e.g. `{}`", example(&key)),
            );
            None
        }
        RawValue::Flag | RawValue::List(_) => {
            errors.at(
                &arg.key,
                format!("`{key}` needs a value: `{}`", example(&key)),
            );
            None
        }
    }
}

/// A word from a fixed set, written as an identifier or a string.
pub(super) fn choice(
    arg: RawArg,
    allowed: &[&'static str],
    special: impl Fn(&str) -> Option<String>,
    errors: &mut Errors,
) -> Option<&'static str> {
    let key = arg.key.to_string();
    let (word, tokens) = match &arg.value {
        RawValue::Assign(Expr::Path(p)) if p.path.get_ident().is_some() => {
            (p.to_token_stream().to_string(), p.to_token_stream())
        }
        RawValue::Assign(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => (s.value(), s.to_token_stream()),
        RawValue::Assign(other) => {
            errors.at(
                other,
                format!(
                    "`{key}` takes one of {}, e.g. `{}`",
                    one_of(allowed),
                    example(&key)
                ),
            );
            return None;
        }
        RawValue::Flag | RawValue::List(_) => {
            errors.at(
                &arg.key,
                format!(
                    "`{key}` needs a value: one of {}, e.g. `{}`",
                    one_of(allowed),
                    example(&key)
                ),
            );
            return None;
        }
    };
    if let Some(found) = allowed.iter().find(|a| **a == word) {
        return Some(found);
    }
    let message = match (special(&word), closest(&word, allowed)) {
        (Some(message), _) => message,
        (None, Some(guess)) => format!(
            "unknown {key} `{word}`: did you mean `{guess}`? (`{key}` is one of {})",
            one_of(allowed)
        ),
        (None, None) => format!(
            "unknown {key} `{word}`: `{key}` is one of {}",
            one_of(allowed)
        ),
    };
    errors.at(tokens, message);
    None
}

pub(super) fn model_value(arg: RawArg, errors: &mut Errors) -> Option<Model> {
    let what = "write the model's name as a string literal (`model = \"gpt-4o\"`), or an expression that gives \
                a `&str` or a `String` (`model = self.model`)";
    match arg.value {
        RawValue::Assign(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) if s.value().trim().is_empty() => {
            errors.at(&s, "`model` must not be empty, e.g. `model = \"gpt-4o\"`");
            None
        }
        RawValue::Assign(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => Some(Model::Literal(s)),
        RawValue::Assign(Expr::Lit(other)) => {
            let shown = other.to_token_stream().to_string();
            errors.at(
                &other,
                format!("`model = {shown}` is not a model name: {what}"),
            );
            None
        }
        RawValue::Assign(expr) => Some(Model::Expr(Box::new(expr))),
        RawValue::Flag | RawValue::List(_) => {
            errors.at(&arg.key, format!("`model` needs a value: {what}"));
            None
        }
    }
}

/// The entries of `key(...)`, or an error if the argument was not written as a list.
pub(super) fn list_of(arg: RawArg, errors: &mut Errors) -> Option<TokenStream> {
    let key = arg.key.to_string();
    match arg.value {
        RawValue::List(tokens) => Some(tokens),
        RawValue::Assign(expr) => {
            errors.at(
                &expr,
                format!(
                    "`{key}` takes a list in parentheses, not `= ...`: write `{}`",
                    example(&key)
                ),
            );
            None
        }
        RawValue::Flag => {
            errors.at(
                &arg.key,
                format!("`{key}` takes a list in parentheses: `{}`", example(&key)),
            );
            None
        }
    }
}
