//! One code generator for both attributes.
//!
//! The user's signature is re-emitted untouched and the body is kept as raw
//! tokens, so a body that does not parse or type-check is reported by rustc on
//! the user's own code. Generated names use `Span::mixed_site()`, invisible to the
//! body, and every path is absolute (`::otel_agent_runtime::...`, `::core::...`),
//! so the expansion compiles under `#![no_implicit_prelude]` and beside user types
//! named `Option`, `Result`, `Box` or `Span`.
//!
//! Three shapes, by what the function is:
//! - an `async fn`: the body runs in an inner `async move` block instrumented
//!   with the span, and the outcome is read from what it returns;
//! - a non-`async` function whose whole body is a future (`async move { .. }` or
//!   `Box::pin(async move { .. })`, which is what `#[async_trait]` produces): the
//!   same, inside that future, so the span covers the awaited work;
//! - any other function: the body runs in a closure inside the entered span.
//!
//! In each shape `__enabled!()` first asks whether anything listens to the
//! attributes' spans. The guard (model, provider, fields, request, span) is made
//! only when something does, and before the body is bound (once, as a closure or
//! a future), since the body may move what they read (`model = self.model`,
//! `request = req`). When nothing listens there is no guard, and the body runs
//! as written and its value is returned; in the two future shapes the
//! instrumented path is a boxed future of its own, so that the future the caller
//! polls is hardly larger than the body's. Exceptions, which always take the
//! instrumented path: a function returning `!` (no value to return), and an
//! `#[llm_call]` returning an unboxed `impl Stream` (the plain stream and the
//! wrapped one are two types behind one `impl`).

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::Type;

use crate::args::{Common, Context, Field, LlmArgs, Model, Sigil, StepArgs, StepKind};
use crate::diagnostics::Errors;
use crate::item::{self, Function, StreamShape};

/// Names of generated locals, hidden from the user's code by their span.
struct Locals {
    guard: Ident,
    result: Ident,
    never: Ident,
    /// The body, as a closure (sync) or a future (`async`).
    body: Ident,
}

impl Locals {
    fn new() -> Self {
        let hidden = Span::mixed_site();
        Self {
            guard: format_ident!("__otel_agent_guard", span = hidden),
            result: format_ident!("__otel_agent_result", span = hidden),
            never: format_ident!("__otel_agent_never", span = hidden),
            body: format_ident!("__otel_agent_body", span = hidden),
        }
    }
}

/// Expands `#[agent_step(args)] item`.
pub(crate) fn agent_step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand("agent_step", args, item, |args, cx, errors, function| {
        let args = StepArgs::parse(args, cx, errors)?;
        Some(step_instrumentation(&args, function))
    })
}

/// Expands `#[llm_call(args)] item`.
pub(crate) fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    expand("llm_call", args, item, |args, cx, errors, function| {
        let args = LlmArgs::parse(args, cx, errors)?;
        let stream = match function.map(|f| f.stream_shape(args.stream)) {
            Some(Ok(shape)) => shape,
            Some(Err(error)) => {
                errors.push(error);
                return None;
            }
            None => None,
        };
        Some(llm_instrumentation(&args, stream))
    })
}

/// What differs between the two attributes: the call site (an item), the
/// statements that create the guard (and its span), and the statement that
/// finishes it with the result.
struct Instrumentation {
    /// The `static` call site. Items come first in the generated block, before
    /// any statement (`clippy::items_after_statements`).
    site: TokenStream,
    /// The runtime macro that starts the call's work (`__agent_step_start`
    /// or `__llm_call_start`), and its arguments after the mode.
    start: (TokenStream, TokenStream),
    /// Statements run with the guard (`#guard`) before the body: the tool's
    /// arguments, the client's server, the request.
    after: TokenStream,
    /// The runtime macro that ends the call with its result, and what its
    /// arguments start with (`tool` for a tool step).
    finish: (TokenStream, TokenStream),
    /// For an `#[llm_call]` returning a stream: how. The call lasts until the
    /// stream ends.
    stream: Option<StreamShape>,
}

fn expand(
    macro_name: &'static str,
    args: TokenStream,
    item: TokenStream,
    instrument: impl FnOnce(
        TokenStream,
        &Context<'_>,
        &mut Errors,
        Option<&Function>,
    ) -> Option<Instrumentation>,
) -> TokenStream {
    let mut errors = Errors::default();
    let function = match item::parse(item.clone(), macro_name) {
        Ok(function) => Some(function),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let params = function.as_ref().map(Function::parameter_names);
    let cx = Context {
        macro_name,
        params: params.as_deref(),
    };
    let instrumentation = instrument(args, &cx, &mut errors, function.as_ref());
    if let Some(function) = &function {
        function.check(macro_name, &mut errors);
        if function.sig.asyncness.is_some() && function.diverges() {
            errors.at(
                &function.sig.output,
                format!("#[{macro_name}] cannot instrument an `async fn` that returns `!`; remove the attribute"),
            );
        }
    }
    match (function, instrumentation, errors.to_compile_errors()) {
        (Some(function), Some(instrumentation), None) => wrap(function, &instrumentation),
        // The item as written, beside the errors: the code keeps compiling (and
        // rust-analyzer keeps working) while the attribute's mistakes are shown.
        (_, _, errors) => quote!(#errors #item),
    }
}

fn wrap(function: Function, instrumentation: &Instrumentation) -> TokenStream {
    let locals = Locals::new();
    let Function {
        attrs,
        vis,
        defaultness,
        sig,
        body,
    } = &function;
    let Some(body) = body else {
        // Reported by `Function::check`; never reached.
        return quote!(#(#attrs)* #vis #defaultness #sig;);
    };
    let inner_attrs = &body.inner_attrs;
    let block = if function.diverges() {
        diverging(&function, instrumentation, &locals)
    } else if sig.asyncness.is_some() {
        async_body(&function, instrumentation, &locals)
    } else if let Some(disguised) = function.future_in_disguise() {
        disguised_body(disguised, instrumentation, &locals)
    } else {
        sync_body(&function, instrumentation, &locals)
    };
    let brace = body.span;
    let block = quote_spanned!(brace=> { #inner_attrs #block });
    quote! {
        #(#attrs)*
        #vis #defaultness #sig #block
    }
}

impl Instrumentation {
    /// Ends the call `guard` with `result` (an expression: the result, or
    /// `*r` for a reference to it).
    fn finish(&self, guard: &Ident, result: &TokenStream) -> TokenStream {
        let (finish, prefix) = &self.finish;
        quote!(#finish!(#prefix #guard, #result))
    }

    /// `let guard = ...;` and what runs with it: the guard itself when
    /// `always`, else `Some(guard)` when something listens to the attributes'
    /// spans and `None` when nothing does; `boxed`, that guard on the heap, so
    /// that an `async fn`'s state grows by one pointer, not by the guard.
    fn start(&self, always: bool, boxed: bool, guard: &Ident) -> TokenStream {
        let (start, args) = &self.start;
        let after = &self.after;
        if always {
            return quote!(let #guard = #start!(always, #args); #after);
        }
        if after.is_empty() {
            let mode = if boxed {
                quote!(boxed_if_enabled)
            } else {
                quote!(if_enabled)
            };
            return quote!(let #guard = #start!(#mode, #args););
        }
        // Matched by value: a borrow of the `Option` would keep it in an
        // `async fn`'s state across every `.await`.
        let held = if boxed {
            quote!(::std::boxed::Box::new(#guard))
        } else {
            quote!(#guard)
        };
        quote! {
            let #guard = match #start!(if_enabled, #args) {
                ::core::option::Option::Some(#guard) => {
                    #after
                    ::core::option::Option::Some(#held)
                }
                ::core::option::Option::None => ::core::option::Option::None,
            };
        }
    }

    /// Whether the disabled path may return the body's value as it is: always,
    /// except for a stream the guard must wrap, unless the stream is boxed into a
    /// return type written out, which both values convert to.
    fn returns_early(&self, nameable: bool) -> bool {
        match &self.stream {
            None => true,
            Some(shape) => shape.boxed && nameable,
        }
    }
}

/// The statements of a function with a disabled path: `items` first, then
/// the guard when something listens, then `bind` (which binds the body), then
/// `return plain` when there is no guard, then `rest` (which uses the guard).
/// The guard is matched by value (`identity` moves it into a temporary that
/// `let .. else` drops before its `else`): matched in place, the empty
/// `Option` would still be dropped at the end of the function, so an `async`
/// function would keep it in its state across `plain`'s `.await`.
fn gated(
    instrumentation: &Instrumentation,
    locals: &Locals,
    items: &TokenStream,
    bind: &TokenStream,
    plain: &TokenStream,
    rest: &TokenStream,
) -> TokenStream {
    let site = &instrumentation.site;
    let guard = &locals.guard;
    let made = instrumentation.start(false, false, guard);
    quote! {
        #site
        #items
        #made
        #bind
        let ::core::option::Option::Some(#guard) = ::core::convert::identity(#guard) else {
            return #plain;
        };
        #rest
    }
}

/// `let result: T = <call>; finish; result`, as statements.
fn tail(
    call: TokenStream,
    annotation: Option<&Type>,
    instrumentation: &Instrumentation,
    locals: &Locals,
) -> TokenStream {
    let Locals {
        result,
        guard,
        never,
        ..
    } = locals;
    let annotation = annotation.map(|ty| quote!(: #ty));
    if let Some(StreamShape {
        item,
        boxed,
        in_result,
    }) = &instrumentation.stream
    {
        let stream = if in_result.is_some() {
            format_ident!("__otel_agent_stream", span = Span::mixed_site())
        } else {
            result.clone()
        };
        let chunk = match item {
            Some(item) => quote!(chunk: &#item),
            None => quote!(chunk),
        };
        // The guard goes with the stream: the call ends when the stream does.
        let wrapped = quote! {
            {
                #[allow(unused_imports)]
                use ::otel_agent_runtime::__private::{
                    OutcomeAlwaysOk as _, OutcomeClassified as _, OutcomeClassifiedSilent as _,
                    OutcomeDisplay as _, OutcomeOpaque as _, ReadNoResponse as _, ReadResponse as _,
                };
                ::otel_agent_runtime::__private::LlmStream::new(#guard, #stream, |#chunk, content| {
                    (
                        (&&&&&::otel_agent_runtime::__private::Probe(chunk)).__otel_outcome(),
                        (&&::otel_agent_runtime::__private::Probe(chunk)).__otel_response(content),
                    )
                })
            }
        };
        // Boxed, it becomes the declared boxed stream; a type that is none (a
        // stream struct of the user's, behind `stream`) is a compile error
        // naming what to declare instead.
        let wrapped = if *boxed {
            quote!(::otel_agent_runtime::__private::declared_stream(::std::boxed::Box::pin(#wrapped)))
        } else {
            wrapped
        };
        let Some(ok_type) = in_result else {
            return quote! {
                let #result #annotation = #call;
                #wrapped
            };
        };
        // Inside `Ok(..)` in a boxed future nothing names the declared type:
        // a typed `let` does.
        let wrapped = if *boxed {
            quote!({ let #stream: #ok_type = #wrapped; #stream })
        } else {
            wrapped
        };
        // `Ok(stream)`: the call goes on with the stream. `Err(e)`: it failed
        // before the first chunk, read like any call's error (as a
        // `Result<Infallible, E>`, so no response is looked for).
        let finish = instrumentation.finish(guard, &quote!(#result));
        let error = format_ident!("__otel_agent_error", span = Span::mixed_site());
        return quote! {
            let #result #annotation = #call;
            match #result {
                ::core::result::Result::Ok(#stream) => ::core::result::Result::Ok(#wrapped),
                ::core::result::Result::Err(#error) => {
                    let #result = ::core::result::Result::<::core::convert::Infallible, _>::Err(#error);
                    #finish;
                    match #result {
                        ::core::result::Result::Err(#error) => ::core::result::Result::Err(#error),
                        ::core::result::Result::Ok(#never) => match #never {},
                    }
                }
            }
        };
    }
    let finish = instrumentation.finish(guard, &quote!(#result));
    quote! {
        let #result #annotation = #call;
        #finish;
        #result
    }
}

/// A statement that makes the block it starts (an `async` block or a closure)
/// return `T`, so that a body returning the wrong type is reported on the
/// body's own `return` or tail expression, with a note pointing at the
/// function's return type.
fn output_hint(ty: Option<&Type>, locals: &Locals) -> TokenStream {
    let Some(ty) = ty else {
        return TokenStream::new();
    };
    // Hidden from the body like every generated local, but located on the
    // return type, which rustc then names as where `T` comes from.
    let mut never = locals.never.clone();
    never.set_span(Span::mixed_site().located_at(first_span(ty)));
    let ret = quote_spanned!(first_span(ty)=> return);
    quote! {
        if let ::core::option::Option::Some(#never) = ::core::option::Option::<#ty>::None {
            #ret #never;
        }
    }
}

fn async_body(
    function: &Function,
    instrumentation: &Instrumentation,
    locals: &Locals,
) -> TokenStream {
    let stmts = function.body.as_ref().map(|b| &b.stmts);
    let ty = function
        .nameable_return_type()
        .cloned()
        .or_else(|| unit_for_default(function));
    let hint = output_hint(ty.as_ref(), locals);
    let future = quote!(async move { #hint #stmts });
    future_statements(instrumentation, locals, &future, ty.as_ref())
}

/// The statements of an annotated future whose body is `future`: without a
/// stream, body and guard awaited as one `InstrumentedCall`; with a stream the disabled
/// path may return as it is (`output` names the type both convert to), the
/// body awaited plain, or instrumented in a box of its own; with any other
/// stream, always instrumented.
fn future_statements(
    instrumentation: &Instrumentation,
    locals: &Locals,
    future: &TokenStream,
    output: Option<&Type>,
) -> TokenStream {
    if instrumentation.stream.is_none() {
        return gated_future(instrumentation, locals, future);
    }
    let Locals { guard, body, .. } = locals;
    if !instrumentation.returns_early(output.is_some()) {
        let site = &instrumentation.site;
        let start = instrumentation.start(true, false, guard);
        let call =
            quote!(::otel_agent_runtime::__private::instrument(#future, #guard.span()).await);
        let tail = tail(call, output, instrumentation, locals);
        return quote!(#site #start #tail);
    }
    let call = quote!(::otel_agent_runtime::__private::instrument(#body, #guard.span()).await);
    let tail = tail(call, output, instrumentation, locals);
    gated(
        instrumentation,
        locals,
        &TokenStream::new(),
        &quote!(let #body = #future;),
        &quote!(#body.await),
        &boxed(&tail),
    )
}

/// The statements of an annotated future that returns what its body returns:
/// the guard (boxed) when something listens, then the body, then both awaited
/// as one [`InstrumentedCall`](otel_agent_runtime::__private::InstrumentedCall) future, whose poll,
/// with no guard, is the body's.
fn gated_future(
    instrumentation: &Instrumentation,
    locals: &Locals,
    future: &TokenStream,
) -> TokenStream {
    let site = &instrumentation.site;
    let Locals { guard, result, .. } = locals;
    let made = instrumentation.start(false, true, guard);
    let finish = instrumentation.finish(guard, &quote!(*#result));
    quote! {
        #site
        #made
        ::otel_agent_runtime::__private::InstrumentedCall::new(#future, #guard, |#guard, #result| #finish)
        .await
    }
}

/// The enabled path of a future with a disabled path, `tail`, in a future of its
/// own on the heap, which takes the guard and the body: the future the caller
/// polls then holds only the body or that box, so with nothing listening it is
/// as small (and as quick to poll) as the body alone, not as large as the guard
/// and the instrumented body besides. The box holds a concrete future, which
/// keeps the body's borrows and is `Send` exactly when the body and guard are.
/// (A boxed stream made in it becomes the `dyn` stream of the return type when
/// the awaited value is returned.)
fn boxed(tail: &TokenStream) -> TokenStream {
    quote! {
        ::std::boxed::Box::pin(async move { #tail }).await
    }
}

fn disguised_body(
    disguised: item::Disguised,
    instrumentation: &Instrumentation,
    locals: &Locals,
) -> TokenStream {
    let item::Disguised {
        wrapper,
        output,
        inner,
        moves,
    } = disguised;
    let statements = future_statements(
        instrumentation,
        locals,
        &inner.to_token_stream(),
        output.as_ref(),
    );
    let capture = moves.then(|| quote!(move));
    let future = quote!(async #capture { #statements });
    match wrapper {
        Some(wrapper) => quote!(#wrapper(#future)),
        None => future,
    }
}

fn sync_body(
    function: &Function,
    instrumentation: &Instrumentation,
    locals: &Locals,
) -> TokenStream {
    let stmts = function.body.as_ref().map(|b| &b.stmts);
    let Locals { guard, body, .. } = locals;
    // `in_call` enters the span and takes an `FnOnce`, so the body may return
    // borrows of its captures (`&mut self.field`); it notes a panic's message
    // on the span before letting the panic continue.
    let ty = function
        .nameable_return_type()
        .cloned()
        .or_else(|| unit_for_default(function));
    let hint = output_hint(ty.as_ref(), locals);
    let closure = quote!(move || { #hint #stmts });
    if !instrumentation.returns_early(ty.is_some()) {
        let site = &instrumentation.site;
        let start = instrumentation.start(true, false, guard);
        let call = quote!(::otel_agent_runtime::__private::in_call(#guard.span(), #closure));
        let tail = tail(call, ty.as_ref(), instrumentation, locals);
        return quote!(#site #start #tail);
    }
    // A closure bound to a `let` is `FnMut` when its body allows, and an `FnMut`
    // closure cannot return borrows of its captures: passing it through a
    // function that expects an `FnOnce` makes it one, as `in_call` did when the
    // closure was written in its argument.
    let once = format_ident!("__otel_agent_once");
    let call = quote!(::otel_agent_runtime::__private::in_call(#guard.span(), #body));
    let tail = tail(call, ty.as_ref(), instrumentation, locals);
    gated(
        instrumentation,
        locals,
        &quote! {
            fn #once<R, F: ::core::ops::FnOnce() -> R>(body: F) -> F {
                body
            }
        },
        &quote!(let #body = #once(#closure);),
        &quote!(#body()),
        &tail,
    )
}

/// A function that returns `!` never gives a result to finish with: its guard
/// ends the span when it unwinds (or never, when the process exits).
fn diverging(
    function: &Function,
    instrumentation: &Instrumentation,
    locals: &Locals,
) -> TokenStream {
    let stmts = function.body.as_ref().map(|b| &b.stmts);
    let guard = &locals.guard;
    let entered = format_ident!("__otel_agent_entered", span = Span::mixed_site());
    let site = &instrumentation.site;
    let start = instrumentation.start(true, false, guard);
    quote! {
        #site
        #start
        let #entered = #guard.span().enter();
        #stmts
    }
}

fn unit_for_default(function: &Function) -> Option<Type> {
    matches!(function.sig.output, syn::ReturnType::Default).then(|| syn::parse_quote!(()))
}

// ---------------------------------------------------------------------------
// What each attribute records
// ---------------------------------------------------------------------------

/// `; "key" = value, ...` for the runtime's span macros. Each value is made a
/// `tracing` value here, spanned on the user's expression, so that a value that
/// cannot be recorded is reported on that expression.
fn extra_fields(common: &Common) -> TokenStream {
    if common.fields.is_empty() {
        return TokenStream::new();
    }
    let fields = common.fields.iter().map(|Field { key, sigil, value }| {
        let key = key.literal();
        let value = match sigil {
            None => quote_spanned!(first_span(value)=>
                (&(#value) as &dyn ::otel_agent_runtime::__private::tracing::field::Value)
            ),
            Some(Sigil::Display(_)) => quote_spanned!(first_span(value)=>
                ::otel_agent_runtime::__private::tracing::field::display(&(#value))
            ),
            Some(Sigil::Debug(_)) => quote_spanned!(first_span(value)=>
                ::otel_agent_runtime::__private::tracing::field::debug(&(#value))
            ),
        };
        quote!(#key = #value)
    });
    quote!(; #(#fields),*)
}

/// `; &[(key, value), ..]` for the site's macro, nothing when there are none.
fn metric_attributes(common: &Common) -> TokenStream {
    if common.metric_attributes.is_empty() {
        return quote!();
    }
    let pairs = common.metric_attributes.iter().map(|a| {
        let key = a.key.literal();
        let value = &a.value;
        quote!((#key, #value))
    });
    quote!(; &[#(#pairs),*])
}

fn step_instrumentation(args: &StepArgs, function: Option<&Function>) -> Instrumentation {
    let Locals { guard, .. } = Locals::new();
    let fn_name = function
        .map(|f| f.sig.ident.unraw().to_string())
        .unwrap_or_default();
    let name = args.name.as_ref().map_or(fn_name, syn::LitStr::value);
    let operation = args.kind.operation();
    let span_name = format!("{operation} {name}");
    let description = args.description.as_ref().map(|d| quote!(, #d));
    let mut fields = extra_fields(&args.common);
    if let Some(id) = &args.call_id {
        let id = quote_spanned!(first_span(id)=>
            { ::otel_agent_runtime::__private::semconv::GEN_AI_TOOL_CALL_ID } =
                ::otel_agent_runtime::__private::tracing::field::display(&(#id))
        );
        fields = if fields.is_empty() {
            quote!(; #id)
        } else {
            quote!(#fields, #id)
        };
    }
    let start_args = match (&args.name_expr, args.kind) {
        (Some(name), _) => {
            let name =
                quote_spanned!(first_span(name)=> ::core::convert::AsRef::<str>::as_ref(&(#name)));
            quote!(__OTEL_AGENT_SITE, tool_named(#name), #span_name #fields)
        }
        (None, StepKind::Agent) => quote!(__OTEL_AGENT_SITE, agent, #span_name #fields),
        (None, StepKind::Tool) => quote!(__OTEL_AGENT_SITE, tool, #span_name #fields),
        (None, StepKind::Workflow) => quote!(__OTEL_AGENT_SITE, workflow, #span_name #fields),
    };
    let attributes = metric_attributes(&args.common);
    let site = quote! {
        ::otel_agent_runtime::__agent_step_site!(__OTEL_AGENT_SITE, #operation, #name #description #attributes);
    };
    let (arguments, tool) = match args.kind {
        StepKind::Tool => (tool_arguments(args, function, &guard), quote!(tool)),
        StepKind::Agent | StepKind::Workflow => (quote!(), quote!()),
    };
    Instrumentation {
        site,
        start: (quote!(::otel_agent_runtime::__agent_step_start), start_args),
        after: arguments,
        finish: (quote!(::otel_agent_runtime::__agent_step_finish), tool),
        stream: None,
    }
}

/// A tool step's arguments, recorded (under content capture) before its body
/// runs: `arguments = ...` when given, else an object of the parameters that
/// are plain names and not skipped.
fn tool_arguments(args: &StepArgs, function: Option<&Function>, guard: &Ident) -> TokenStream {
    let value = match (&args.arguments, function) {
        (Some(expr), _) => quote! {
            ::otel_agent_runtime::__private::tool_text(
                (&&&::otel_agent_runtime::__private::ToolValue(&(#expr))).__otel_tool_value(),
            )
        },
        (None, Some(function)) if !args.common.skip_all => {
            let skipped: Vec<String> = args
                .common
                .skipped
                .iter()
                .map(|i| i.unraw().to_string())
                .collect();
            let params: Vec<&Ident> = function
                .sig
                .inputs
                .iter()
                .filter_map(|input| match input {
                    syn::FnArg::Typed(typed) => match &*typed.pat {
                        syn::Pat::Ident(p) => Some(&p.ident),
                        _ => None,
                    },
                    syn::FnArg::Receiver(_) => None,
                })
                .filter(|ident| !skipped.contains(&ident.unraw().to_string()))
                .collect();
            if params.is_empty() {
                return quote!();
            }
            let names = params.iter().map(|p| p.unraw().to_string());
            quote! {
                ::otel_agent_runtime::__private::tool_arguments_object(&[#(
                    (#names, (&&&::otel_agent_runtime::__private::ToolValue(&#params)).__otel_tool_value())
                ),*])
            }
        }
        _ => return quote!(),
    };
    quote! {
        #guard.tool_arguments(|| {
            #[allow(unused_imports)]
            use ::otel_agent_runtime::__private::{
                ToolValueDebug as _, ToolValueJson as _, ToolValueNone as _,
            };
            #value
        });
    }
}

fn llm_instrumentation(args: &LlmArgs, stream: Option<StreamShape>) -> Instrumentation {
    let Locals { guard, .. } = Locals::new();
    let operation = args.operation;
    let provider = args.provider.as_ref().map(|p| quote!(, #p));
    let (model_init, span_name, naming) = match &args.model {
        Model::Literal(lit) => (
            quote!(#lit),
            format!("{operation} {}", lit.value()),
            quote!(literal),
        ),
        Model::Expr(expr) => (
            quote_spanned!(first_span(expr)=> __OTEL_AGENT_SITE.model_of(&(#expr))),
            operation.to_owned(),
            quote!(named),
        ),
    };
    let fields = extra_fields(&args.common);
    let attributes = metric_attributes(&args.common);
    let capture = args.capture_content.then(|| quote!(, capture_content));
    // Read before the body runs: the body usually moves the request into the client.
    let request = args.request.as_ref().map(|expr| {
        quote_spanned!(first_span(expr)=>
            ::otel_agent_runtime::__private::record_request(#guard.span(), &(#expr));
        )
    });
    let client = args.client.as_ref().map(|expr| {
        quote_spanned!(first_span(expr)=>
            ::otel_agent_runtime::__private::record_client(#guard.span(), &(#expr));
        )
    });
    let site = quote! {
        ::otel_agent_runtime::__llm_call_site!(__OTEL_AGENT_SITE, #operation #provider #attributes);
    };
    Instrumentation {
        site,
        start: (
            quote!(::otel_agent_runtime::__llm_call_start),
            quote!(__OTEL_AGENT_SITE, #model_init, #span_name, #naming #capture #fields),
        ),
        after: quote!(#client #request),
        finish: (quote!(::otel_agent_runtime::__llm_call_finish), quote!()),
        stream,
    }
}

fn first_span(tokens: &impl ToTokens) -> Span {
    tokens
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}
