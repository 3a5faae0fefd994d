//! One code generator for both attributes.
//!
//! The user's signature is re-emitted untouched and the body is kept as raw tokens,
//! so a body that does not parse or type-check is reported by rustc on the user's
//! own code. Generated names use `Span::mixed_site()`, invisible to the body, and
//! every path is absolute (`::otel_agent_runtime::...`, `::core::...`), so the
//! expansion compiles under `#![no_implicit_prelude]`.

use proc_macro2::{Delimiter, Group, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, ReturnType, Signature, Token, Type, Visibility};

use crate::args::{Errors, LlmArgs, Model, StepArgs, StepKind};

/// A function as written, with its body left unparsed.
pub(crate) struct Function {
    attrs: Vec<Attribute>,
    vis: Visibility,
    defaultness: Option<Token![default]>,
    sig: Signature,
    body: Option<Group>,
}

impl Parse for Function {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let defaultness = input.parse()?;
        let sig: Signature = input.parse()?;
        let body = if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
            None
        } else {
            let group: Group = input.parse()?;
            if group.delimiter() != Delimiter::Brace {
                return Err(syn::Error::new(group.span(), "expected the function body in braces"));
            }
            Some(group)
        };
        Ok(Self {
            attrs,
            vis,
            defaultness,
            sig,
            body,
        })
    }
}

/// Rejects what the attributes cannot instrument, all errors at once.
fn check_function(function: &Function, macro_name: &str) -> syn::Result<()> {
    let mut errors = Errors::default();
    let sig = &function.sig;
    if let Some(constness) = &sig.constness {
        errors.at(
            constness,
            format!("#[{macro_name}] cannot instrument a `const fn`: telemetry runs at run time; remove `const` or the attribute"),
        );
    }
    if function.body.is_none() {
        errors.at(
            sig,
            format!(
                "#[{macro_name}] needs a function body to instrument; put it on the implementation, not on a \
                 declaration or an `extern` block item"
            ),
        );
    }
    errors.finish()
}

/// The function's return type, when it can be written in a `let` (not `impl Trait`).
fn nameable_return_type(sig: &Signature) -> Option<&Type> {
    match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => None,
        ReturnType::Type(_, ty) => Some(ty),
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|t| match t {
            proc_macro2::TokenTree::Ident(i) => i == "impl",
            proc_macro2::TokenTree::Group(g) => scan(g.stream()),
            _ => false,
        })
    }
    scan(ty.to_token_stream())
}

/// What differs between the two attributes: the prologue that creates the span
/// and the guard, and how the guard is finished.
struct Instrumentation {
    /// Statements that create `guard` (and anything it needs).
    prologue: TokenStream,
    /// The call that finishes `guard` with `result`.
    finish: TokenStream,
}

fn wrap(function: Function, instrumentation: Instrumentation) -> TokenStream {
    let Function {
        attrs,
        vis,
        defaultness,
        sig,
        body,
    } = function;
    let body = body.map(|g| g.stream()).unwrap_or_default();
    let body_span = sig.ident.span();
    let guard = quote::format_ident!("__otel_agent_guard", span = Span::mixed_site());
    let result = quote::format_ident!("__otel_agent_result", span = Span::mixed_site());
    let entered = quote::format_ident!("__otel_agent_entered", span = Span::mixed_site());
    let annotation = nameable_return_type(&sig).map(|ty| quote!(: #ty));
    let Instrumentation { prologue, finish } = instrumentation;
    let call = if sig.asyncness.is_some() {
        quote_spanned! {body_span=>
            ::otel_agent_runtime::__private::instrument(async move { #body }, #guard.span()).await
        }
    } else {
        quote_spanned! {body_span=>
            {
                let #entered = #guard.span().enter();
                #[allow(clippy::redundant_closure_call)]
                (move || { #body })()
            }
        }
    };
    quote! {
        #(#attrs)*
        #vis #defaultness #sig {
            #prologue
            let #result #annotation = #call;
            {
                #[allow(unused_imports)]
                use ::otel_agent_runtime::__private::{
                    OutcomeAlwaysOk as _, OutcomeClassified as _, OutcomeClassifiedSilent as _,
                    OutcomeDisplay as _, OutcomeOpaque as _, ReadNoResponse as _, ReadResponse as _,
                };
                #finish
            }
            #result
        }
    }
}

pub(crate) fn agent_step(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = StepArgs::parse(args);
    let function = syn::parse2::<Function>(item.clone());
    let (args, function) = match (args, function) {
        (Ok(a), Ok(f)) => (a, f),
        (a, f) => return with_errors(item, [a.err(), f.err().map(not_a_function("agent_step"))]),
    };
    if let Err(e) = check_function(&function, "agent_step") {
        return with_errors(item, [Some(e)]);
    }
    let fn_name = function.sig.ident.to_string();
    let name_lit = args.name.as_ref().map_or(fn_name, syn::LitStr::value);
    let operation = args.kind.operation();
    let span_name = format!("{operation} {name_lit}");
    let guard = quote::format_ident!("__otel_agent_guard", span = Span::mixed_site());
    let result = quote::format_ident!("__otel_agent_result", span = Span::mixed_site());
    let description = match &args.description {
        Some(d) => quote!(::core::option::Option::Some(#d)),
        None => quote!(::core::option::Option::None::<&str>),
    };
    let span = match args.kind {
        StepKind::Agent => {
            quote!(::otel_agent_runtime::__agent_step_span!(agent, #span_name, #name_lit, #description))
        }
        StepKind::Tool => quote!(::otel_agent_runtime::__agent_step_span!(tool, #span_name, #name_lit, #description)),
        StepKind::Workflow => quote!(::otel_agent_runtime::__agent_step_span!(workflow, #span_name, #name_lit)),
    };
    let prologue = quote! {
        static __OTEL_AGENT_SITE: ::otel_agent_runtime::__private::StepSite = ::otel_agent_runtime::__private::StepSite {
            operation: #operation,
            name: #name_lit,
            attributes: &[],
        };
        let #guard = ::otel_agent_runtime::__private::StepGuard::start(&__OTEL_AGENT_SITE, #span);
    };
    let finish = quote! {
        #guard.finish((&&&&&::otel_agent_runtime::__private::Probe(&#result)).__otel_outcome());
    };
    wrap(function, Instrumentation { prologue, finish })
}

pub(crate) fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = LlmArgs::parse(args);
    let function = syn::parse2::<Function>(item.clone());
    let (args, function) = match (args, function) {
        (Ok(a), Ok(f)) => (a, f),
        (a, f) => return with_errors(item, [a.err(), f.err().map(not_a_function("llm_call"))]),
    };
    if let Err(e) = check_function(&function, "llm_call") {
        return with_errors(item, [Some(e)]);
    }
    let guard = quote::format_ident!("__otel_agent_guard", span = Span::mixed_site());
    let result = quote::format_ident!("__otel_agent_result", span = Span::mixed_site());
    let model = quote::format_ident!("__otel_agent_model", span = Span::mixed_site());
    let provider_var = quote::format_ident!("__otel_agent_provider", span = Span::mixed_site());
    let otel_name = quote::format_ident!("__otel_agent_name", span = Span::mixed_site());
    let operation = args.operation;
    let provider = match &args.provider {
        Some(p) => quote!(::core::option::Option::Some(#p)),
        None => quote!(::core::option::Option::None),
    };
    let (model_init, span_name, name_init, name_value) = match &args.model {
        Model::Literal(lit) => (
            quote!(::otel_agent_runtime::__private::ModelName::literal(#lit)),
            format!("{operation} {}", lit.value()),
            quote!(),
            quote!(::core::option::Option::None::<&str>),
        ),
        Model::Expr(expr) => (
            quote_spanned!(expr_span(expr)=> ::otel_agent_runtime::__private::ModelName::of(&(#expr))),
            operation.to_owned(),
            quote!(let #otel_name = #model.span_name(&__OTEL_AGENT_SITE);),
            quote!(::core::option::Option::Some(#otel_name.as_str())),
        ),
    };
    let prologue = quote! {
        static __OTEL_AGENT_SITE: ::otel_agent_runtime::__private::LlmSite = ::otel_agent_runtime::__private::LlmSite {
            operation: #operation,
            provider: #provider,
            attributes: &[],
        };
        let #model = #model_init;
        let #provider_var = __OTEL_AGENT_SITE.provider_for(&#model);
        #name_init
        let #guard = ::otel_agent_runtime::__private::LlmGuard::start(
            &__OTEL_AGENT_SITE,
            ::core::clone::Clone::clone(&#model),
            #provider_var,
            ::otel_agent_runtime::__llm_call_span!(#span_name, #name_value, #operation, #provider_var, #model.as_str()),
        );
    };
    let finish = quote! {
        #guard.finish(
            (&&&&&::otel_agent_runtime::__private::Probe(&#result)).__otel_outcome(),
            (&&::otel_agent_runtime::__private::Probe(&#result)).__otel_response(),
        );
    };
    wrap(function, Instrumentation { prologue, finish })
}

fn expr_span(expr: &syn::Expr) -> Span {
    expr.to_token_stream().into_iter().next().map_or_else(Span::call_site, |t| t.span())
}

fn not_a_function(macro_name: &'static str) -> impl Fn(syn::Error) -> syn::Error {
    move |e| {
        let mut error = syn::Error::new(
            e.span(),
            format!("#[{macro_name}] goes on a function or method (`fn` or `async fn`) with a body"),
        );
        error.combine(e);
        error
    }
}

/// The original item, untouched, plus the errors: the user's code keeps compiling
/// (and rust-analyzer keeps working) while the attribute's mistakes are reported.
fn with_errors<const N: usize>(item: TokenStream, errors: [Option<syn::Error>; N]) -> TokenStream {
    let mut all: Option<syn::Error> = None;
    for e in errors.into_iter().flatten() {
        match &mut all {
            Some(a) => a.combine(e),
            None => all = Some(e),
        }
    }
    let errors = all.map(|e| e.to_compile_error());
    quote!(#errors #item)
}
