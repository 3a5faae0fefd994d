//! The arguments both attributes take: `fields`, `skip`, `skip_all` and
//! `metric_attributes`, checked against what the span and metrics carry.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Expr, ExprLit, Ident, Lit, Token};

use crate::diagnostics::Errors;
use crate::keys::{self, Reserved};
use crate::suggest::{closest, one_of};

use super::given::Given;
use super::raw::{parse_entries, Key, KeyValue, RawValue, Sigil};
use super::value::list_of;
use super::{Common, Context, Field, MetricAttribute};

/// What the span or the metrics already carry, for collision checks.
pub(super) struct Reservations {
    pub(super) span: &'static [Reserved],
    pub(super) metric: &'static [Reserved],
}

pub(super) fn parse_common(given: &mut Given, cx: &Context<'_>, reserved: &Reservations) -> Common {
    let skip_all = given.take("skip_all").and_then(|(arg, at)| {
        let errors = given.errors(at);
        match arg.value {
            RawValue::Flag => Some(arg.key),
            RawValue::Assign(e) => {
                errors.at(e, "`skip_all` takes no value: write `skip_all`");
                None
            }
            RawValue::List(_) => {
                errors.at(
                    &arg.key,
                    "`skip_all` takes no list: write `skip_all`, or `skip(a, b)` for some parameters",
                );
                None
            }
        }
    });
    let skipped = match given.take("skip") {
        Some((arg, at)) => {
            let errors = given.errors(at);
            if let Some(all) = &skip_all {
                errors.at(
                    &arg.key,
                    format!("`{all}` already skips every parameter; remove `skip(...)`"),
                );
            }
            list_of(arg, errors)
                .map(|list| skip_list(list, cx, errors))
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let fields = match given.take("fields") {
        Some((arg, at)) => {
            let errors = given.errors(at);
            list_of(arg, errors)
                .map(|list| {
                    field_list(list, cx, reserved.span, &skipped, skip_all.as_ref(), errors)
                })
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let metric_attributes = match given.take("metric_attributes") {
        Some((arg, at)) => {
            let errors = given.errors(at);
            list_of(arg, errors)
                .map(|list| metric_list(list, cx, reserved.metric, errors))
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    Common {
        fields,
        metric_attributes,
        skipped,
        skip_all: skip_all.is_some(),
    }
}

/// "`{written}` names no parameter of this function: did you mean `x`?"
pub(super) fn not_a_parameter(written: &str, name: &str, params: &[String]) -> String {
    match closest(name, params) {
        Some(guess) => {
            format!("`{written}` names no parameter of this function: did you mean `{guess}`?")
        }
        None if params.is_empty() => {
            format!("`{written}` names no parameter: this function has none")
        }
        None => format!(
            "`{written}` names no parameter of this function; its parameters are {}",
            one_of(params)
        ),
    }
}

/// The parameters named in `skip(...)`.
pub(super) fn skip_list(list: TokenStream, cx: &Context<'_>, errors: &mut Errors) -> Vec<Ident> {
    let mut kept: Vec<Ident> = Vec::new();
    for entry in parse_entries(list, |input| {
        input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                "`skip(...)` lists parameter names, e.g. `skip(client, config)`",
            )
        })
    }) {
        let name = match entry {
            Ok(name) => name,
            Err((error, _)) => {
                errors.push(error);
                continue;
            }
        };
        let text = name.to_string();
        if kept.contains(&name) {
            errors.at(&name, format!("`{text}` is listed twice in `skip(...)`"));
            continue;
        }
        if let Some(params) = cx.params {
            if !params.contains(&text) {
                errors.at(
                    &name,
                    not_a_parameter(&format!("skip({text})"), &text, params),
                );
                continue;
            }
        }
        kept.push(name);
    }
    kept
}

/// Checks a key shared by spans and metrics: `otel.*`, the `gen_ai.*` namespace,
/// near-misses of it, and keys the macro records itself.
pub(super) fn check_key(
    key: &Key,
    reserved: &[Reserved],
    list: &str,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> bool {
    let name = key.name.as_str();
    if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
        errors.at(
            key,
            format!(
                "`{name}` is not a valid attribute key: use dotted words, e.g. `app.query_len`"
            ),
        );
        return false;
    }
    if keys::is_otel_instruction(name) {
        errors.at(
            key,
            format!(
                "`{name}` is an instruction to tracing-opentelemetry, not an attribute; #[{}] sets the span's \
                 name, kind and status itself. Remove it from `{list}(...)`",
                cx.macro_name
            ),
        );
        return false;
    }
    if let Some(taken) = reserved.iter().find(|r| r.key == name) {
        errors.at(
            key,
            format!(
                "`{name}` is set by #[{}] itself, from {}; remove it from `{list}(...)`",
                cx.macro_name, taken.set_by
            ),
        );
        return false;
    }
    if let Err(message) = keys::check_gen_ai(name) {
        errors.at(key, message);
        return false;
    }
    if let Some(meant) = keys::misspelt_gen_ai(name) {
        errors.at(
            key,
            format!("`{name}` looks like a GenAI attribute with a typo: did you mean `{meant}`?"),
        );
        return false;
    }
    true
}

pub(super) fn field_list(
    list: TokenStream,
    cx: &Context<'_>,
    reserved: &[Reserved],
    skipped: &[Ident],
    skip_all: Option<&Ident>,
    errors: &mut Errors,
) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for entry in parse_entries(list, KeyValue::parse) {
        let KeyValue { lead, key, value } = match entry {
            Ok(entry) => entry,
            Err((error, _)) => {
                errors.push(error);
                continue;
            }
        };
        let field = match value {
            Some((sigil, expr)) => {
                if let Some(lead) = lead {
                    let sigil = sigil_text(&lead);
                    let shown = match &expr {
                        Expr::Path(p) if p.path.get_ident().is_some() => {
                            p.to_token_stream().to_string()
                        }
                        _ => "<expression>".to_owned(),
                    };
                    errors.at(
                        &lead,
                        format!(
                            "`{sigil}` goes after `=`: write `{} = {sigil}{shown}`",
                            key.name
                        ),
                    );
                    continue;
                }
                Field {
                    key,
                    sigil,
                    value: expr.into_token_stream(),
                }
            }
            None => match parameter_field(lead, key, cx, skipped, skip_all) {
                Ok(field) => field,
                Err(error) => {
                    errors.push(error);
                    continue;
                }
            },
        };
        if !check_key(&field.key, reserved, "fields", cx, errors) {
            continue;
        }
        if fields.iter().any(|f| f.key.name == field.key.name) {
            errors.at(
                &field.key,
                format!(
                    "`{}` appears twice in `fields(...)`; keep one",
                    field.key.name
                ),
            );
            continue;
        }
        fields.push(field);
    }
    fields
}

/// `fields(query)` (or `%query`, `?query`): records the parameter `query`.
pub(super) fn parameter_field(
    lead: Option<Sigil>,
    key: Key,
    cx: &Context<'_>,
    skipped: &[Ident],
    skip_all: Option<&Ident>,
) -> syn::Result<Field> {
    let name = key.name.clone();
    let fail = |message: String| Err(syn::Error::new_spanned(&key, message));
    if key.dotted {
        return fail(format!(
            "`{name}` needs a value: write `{name} = <expression>` (a field without a value records the \
             parameter of that name)"
        ));
    }
    if name == "self" {
        return fail("`self` is not a field name: write `fields(app.name = %self)`, or record one of its fields".to_owned());
    }
    if let Some(params) = cx.params {
        if !params.contains(&name) {
            let mut message = not_a_parameter(&format!("fields({name})"), &name, params);
            message.push_str(&format!(
                " To record another value, write `fields({name} = <expression>)`."
            ));
            return fail(message);
        }
    }
    if skipped.iter().any(|s| *s == name) {
        return fail(format!(
            "`{name}` is both skipped by `skip(...)` and recorded by `fields(...)`; remove it from one"
        ));
    }
    if let Some(all) = skip_all {
        return fail(format!(
            "`{all}` says no parameter is recorded, but `fields({name})` records one; remove one of them"
        ));
    }
    let value = key.tokens.clone();
    Ok(Field {
        key,
        sigil: Some(lead.unwrap_or_else(|| Sigil::Display(Token![%](Span::call_site())))),
        value,
    })
}

pub(super) fn sigil_text(sigil: &Sigil) -> &'static str {
    match sigil {
        Sigil::Display(_) => "%",
        Sigil::Debug(_) => "?",
    }
}

pub(super) fn metric_list(
    list: TokenStream,
    cx: &Context<'_>,
    reserved: &[Reserved],
    errors: &mut Errors,
) -> Vec<MetricAttribute> {
    let mut attributes: Vec<MetricAttribute> = Vec::new();
    for entry in parse_entries(list, KeyValue::parse) {
        let KeyValue { lead, key, value } = match entry {
            Ok(entry) => entry,
            Err((error, _)) => {
                errors.push(error);
                continue;
            }
        };
        let name = &key.name;
        let literal_only = format!(
            "metric attribute values are string literals (`{name} = \"...\"`), fixed at compile time so that \
             each metric keeps a bounded set of series; to record a value known only at run time, put it on the \
             span: `fields({name} = ...)`"
        );
        if let Some(lead) = lead {
            errors.at(lead, literal_only);
            continue;
        }
        let value = match value {
            None => {
                errors.at(
                    &key,
                    format!("`{name}` needs a value: `{name} = \"...\"`, a string literal"),
                );
                continue;
            }
            Some((Some(sigil), _)) => {
                errors.at(sigil, literal_only);
                continue;
            }
            Some((
                None,
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }),
            )) => s,
            Some((None, other)) => {
                errors.at(other, literal_only);
                continue;
            }
        };
        if let Some(why) = keys::high_cardinality(name) {
            errors.at(
                &key,
                format!(
                    "`{name}` cannot be a metric attribute: {why}. Ids and per-user values belong on the span, \
                     never on metrics: record it with `fields({name} = ...)` instead"
                ),
            );
            continue;
        }
        if !check_key(&key, reserved, "metric_attributes", cx, errors) {
            continue;
        }
        if attributes.iter().any(|a| a.key.name == key.name) {
            errors.at(
                &key,
                format!("`{name}` appears twice in `metric_attributes(...)`; keep one"),
            );
            continue;
        }
        attributes.push(MetricAttribute { key, value });
    }
    attributes
}
