//! The argument grammar of both attributes: parsed into typed structs and
//! validated with every error collected, each spanned on the offending tokens,
//! before any code is generated.
//!
//! Parsing recovers after a malformed argument (it skips to the next comma), so
//! one build reports every mistake in the attribute.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
// `Speculative` lets a malformed argument be skipped and parsing go on.
use syn::parse::discouraged::Speculative;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

use crate::diagnostics::Errors;
use crate::keys::{self, Reserved};
use crate::suggest::{closest, one_of};

// ---------------------------------------------------------------------------
// Raw syntax
// ---------------------------------------------------------------------------

/// One argument as written: `key`, `key = value` or `key(...)`.
struct RawArg {
    key: Ident,
    value: RawValue,
}

enum RawValue {
    Flag,
    Assign(Expr),
    List(TokenStream),
}

impl RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected an argument name, such as `name = \"...\"`",
            )
        })?;
        let value = if input.peek(Token![=]) {
            let eq: Token![=] = input.parse()?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new_spanned(
                    eq,
                    format!(
                        "`{key} =` needs a value, e.g. `{}`",
                        example(&key.to_string())
                    ),
                ));
            }
            RawValue::Assign(input.parse()?)
        } else if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            RawValue::List(content.parse()?)
        } else {
            RawValue::Flag
        };
        Ok(Self { key, value })
    }
}

/// How each argument is written, for messages.
fn example(key: &str) -> &'static str {
    match key {
        "agent" => "agent = \"researcher\"",
        "name" => "name = \"web_search\"",
        "description" => "description = \"Searches the web\"",
        "kind" => "kind = tool",
        "model" => "model = \"gpt-4o\"",
        "provider" => "provider = \"openai\"",
        "operation" => "operation = chat",
        "capture_content" => "capture_content = true",
        "stream" => "stream",
        "request" => "request = req",
        "client" => "client = self.client",
        "arguments" => "arguments = query",
        "call_id" => "call_id = call.id",
        "fields" => "fields(app.query_len = query.len())",
        "skip" => "skip(client)",
        "skip_all" => "skip_all",
        "metric_attributes" => "metric_attributes(app.team = \"search\")",
        _ => "key = value",
    }
}

/// Parses comma-separated entries in order, recovering after a malformed one:
/// its error (and its first word, when there is one) takes its place.
fn parse_entries<T>(
    tokens: TokenStream,
    entry: fn(ParseStream<'_>) -> syn::Result<T>,
) -> Vec<Result<T, (syn::Error, Option<String>)>> {
    let parser = |input: ParseStream<'_>| {
        let mut entries = Vec::new();
        while !input.is_empty() {
            let fork = input.fork();
            match entry(&fork) {
                Ok(value) if fork.is_empty() || fork.peek(Token![,]) => {
                    input.advance_to(&fork);
                    entries.push(Ok(value));
                }
                outcome => {
                    let error = match outcome {
                        Err(e) => e,
                        Ok(_) => fork.error("expected `,` here: arguments are separated by commas"),
                    };
                    let word = input
                        .fork()
                        .call(Ident::parse_any)
                        .ok()
                        .map(|w| w.to_string());
                    entries.push(Err((error, word)));
                    skip_to_comma(input)?;
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(entries)
    };
    parser
        .parse2(tokens)
        .unwrap_or_else(|e| vec![Err((e, None))])
}

fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

/// An attribute key: `app.query_len` (dotted words, keywords allowed) or `"app.query-len"`.
#[derive(Clone)]
pub(crate) struct Key {
    pub name: String,
    /// The key as written, for error spans.
    tokens: TokenStream,
    dotted: bool,
}

impl Key {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            return Ok(Self {
                name: lit.value(),
                tokens: lit.to_token_stream(),
                dotted: true,
            });
        }
        let first = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(e.span(), "expected a key: `app.name` or `\"app.name\"`")
        })?;
        let mut name = first.unraw().to_string();
        let mut tokens = first.to_token_stream();
        let mut dotted = false;
        while input.peek(Token![.]) {
            let dot: Token![.] = input.parse()?;
            let segment = input.call(Ident::parse_any)?;
            name.push('.');
            name.push_str(&segment.unraw().to_string());
            dot.to_tokens(&mut tokens);
            segment.to_tokens(&mut tokens);
            dotted = true;
        }
        Ok(Self {
            name,
            tokens,
            dotted,
        })
    }

    /// The key as a string literal spanned on the key as written.
    pub(crate) fn literal(&self) -> LitStr {
        let span = self
            .tokens
            .clone()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span());
        LitStr::new(&self.name, span)
    }
}

impl ToTokens for Key {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.tokens.to_tokens(tokens);
    }
}

/// `%` (record with `Display`) or `?` (with `Debug`), as in `tracing`.
#[derive(Clone)]
pub(crate) enum Sigil {
    Display(Token![%]),
    Debug(Token![?]),
}

impl Sigil {
    fn parse_optional(input: ParseStream<'_>) -> syn::Result<Option<Self>> {
        Ok(if input.peek(Token![%]) {
            Some(Sigil::Display(input.parse()?))
        } else if input.peek(Token![?]) {
            Some(Sigil::Debug(input.parse()?))
        } else {
            None
        })
    }
}

impl ToTokens for Sigil {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Sigil::Display(t) => t.to_tokens(tokens),
            Sigil::Debug(t) => t.to_tokens(tokens),
        }
    }
}

/// One entry of `fields(...)` or `metric_attributes(...)` as written.
struct KeyValue {
    /// A sigil written before the key (`%query`).
    lead: Option<Sigil>,
    key: Key,
    /// `= [sigil] value`, when given.
    value: Option<(Option<Sigil>, Expr)>,
}

impl KeyValue {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lead = Sigil::parse_optional(input)?;
        let key = Key::parse(input)?;
        let value = if input.peek(Token![=]) {
            let eq: Token![=] = input.parse()?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new_spanned(
                    eq,
                    format!("`{} =` needs a value", key.name),
                ));
            }
            Some((Sigil::parse_optional(input)?, input.parse()?))
        } else {
            None
        };
        Ok(Self { lead, key, value })
    }
}

// ---------------------------------------------------------------------------
// Typed arguments
// ---------------------------------------------------------------------------

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

/// The arguments in source order, each with the errors found in it, so that
/// errors are reported in the order they were written.
struct Given {
    slots: Vec<Slot>,
    /// Keys whose value did not parse, or that were misspelt (already reported).
    broken: Vec<String>,
}

struct Slot {
    arg: Option<RawArg>,
    errors: Errors,
}

impl Given {
    fn collect(tokens: TokenStream, own_keys: &[&str], cx: &Context<'_>) -> Self {
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
    fn take(&mut self, key: &str) -> Option<(RawArg, usize)> {
        let index = self
            .slots
            .iter()
            .position(|s| s.arg.as_ref().is_some_and(|a| a.key == key))?;
        Some((self.slots[index].arg.take()?, index))
    }

    /// As [`take`](Self::take), only when `wanted` says so of the argument.
    fn take_if(&mut self, key: &str, wanted: impl Fn(&RawArg) -> bool) -> Option<(RawArg, usize)> {
        let index = self
            .slots
            .iter()
            .position(|s| s.arg.as_ref().is_some_and(|a| a.key == key && wanted(a)))?;
        Some((self.slots[index].arg.take()?, index))
    }

    fn errors(&mut self, index: usize) -> &mut Errors {
        &mut self.slots[index].errors
    }

    fn attempted(&self, key: &str) -> bool {
        self.broken.iter().any(|k| k == key)
    }

    /// Moves every error, in source order, into `errors`.
    fn report(self, errors: &mut Errors) {
        for slot in self.slots {
            errors.extend(slot.errors);
        }
    }
}

fn unknown_argument(key: &str, known: &[&str], macro_name: &str) -> String {
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

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// `key = <any expression>`.
fn expr_value(arg: RawArg, errors: &mut Errors) -> Option<Expr> {
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
fn bool_value(arg: RawArg, errors: &mut Errors) -> Option<bool> {
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
fn string_value(arg: RawArg, errors: &mut Errors) -> Option<LitStr> {
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
fn choice(
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

fn model_value(arg: RawArg, errors: &mut Errors) -> Option<Model> {
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
fn list_of(arg: RawArg, errors: &mut Errors) -> Option<TokenStream> {
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

// ---------------------------------------------------------------------------
// fields, skip, metric_attributes
// ---------------------------------------------------------------------------

/// What the span or the metrics already carry, for collision checks.
struct Reservations {
    span: &'static [Reserved],
    metric: &'static [Reserved],
}

fn parse_common(given: &mut Given, cx: &Context<'_>, reserved: &Reservations) -> Common {
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
fn not_a_parameter(written: &str, name: &str, params: &[String]) -> String {
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
fn skip_list(list: TokenStream, cx: &Context<'_>, errors: &mut Errors) -> Vec<Ident> {
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
fn check_key(
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

fn field_list(
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
fn parameter_field(
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

fn sigil_text(sigil: &Sigil) -> &'static str {
    match sigil {
        Sigil::Display(_) => "%",
        Sigil::Debug(_) => "?",
    }
}

fn metric_list(
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

// ---------------------------------------------------------------------------
// The two attributes
// ---------------------------------------------------------------------------

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

fn step_kind_hint(word: &str) -> Option<String> {
    matches!(word, "llm" | "llm_call" | "model" | "chat" | "completion" | "embeddings").then(|| {
        format!("`{word}` is not a step kind: a call to a model is instrumented with #[llm_call(model = \"...\")]; `kind` is one of {}", one_of(STEP_KINDS))
    })
}

fn llm_operation_hint(word: &str) -> Option<String> {
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
