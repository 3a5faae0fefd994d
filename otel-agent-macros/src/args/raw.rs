//! The raw syntax of an attribute: `key`, `key = value` or `key(...)`,
//! parsed with recovery so that one build reports every mistake.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
// `Speculative` lets a malformed argument be skipped and parsing go on.
use syn::parse::discouraged::Speculative;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, LitStr, Token};

/// One argument as written: `key`, `key = value` or `key(...)`.
pub(super) struct RawArg {
    pub(super) key: Ident,
    pub(super) value: RawValue,
}

pub(super) enum RawValue {
    Flag,
    Assign(Expr),
    List(TokenStream),
}

impl RawArg {
    pub(super) fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
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
pub(super) fn example(key: &str) -> &'static str {
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
pub(super) fn parse_entries<T>(
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

pub(super) fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
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
    pub(super) tokens: TokenStream,
    pub(super) dotted: bool,
}

impl Key {
    pub(super) fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
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
    pub(super) fn parse_optional(input: ParseStream<'_>) -> syn::Result<Option<Self>> {
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
pub(super) struct KeyValue {
    /// A sigil written before the key (`%query`).
    pub(super) lead: Option<Sigil>,
    pub(super) key: Key,
    /// `= [sigil] value`, when given.
    pub(super) value: Option<(Option<Sigil>, Expr)>,
}

impl KeyValue {
    pub(super) fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
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
