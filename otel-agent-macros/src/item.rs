//! The annotated item: a function whose signature is parsed and whose body is
//! kept as raw tokens, so that a body that does not parse (or that uses syntax
//! newer than `syn`) still expands and rustc reports the real error on it.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Pat, PathArguments, ReturnType, Signature, Stmt,
    Token, Type, TypeParamBound, Visibility,
};

use crate::diagnostics::Errors;

/// A function or method as written.
pub(crate) struct Function {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub defaultness: Option<Token![default]>,
    pub sig: Signature,
    /// `None` for a declaration without a body (`fn f();`).
    pub body: Option<Body>,
}

/// A function body, unparsed.
pub(crate) struct Body {
    /// The braces, for spans.
    pub span: Span,
    /// Leading inner attributes (`#![allow(...)]`), which must stay at the top of
    /// the function's own block.
    pub inner_attrs: TokenStream,
    /// Everything else.
    pub stmts: TokenStream,
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
                return Err(syn::Error::new(
                    group.span(),
                    "expected the function body in braces",
                ));
            }
            Some(Body::new(&group))
        };
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the function"));
        }
        Ok(Self {
            attrs,
            vis,
            defaultness,
            sig,
            body,
        })
    }
}

impl Body {
    fn new(group: &Group) -> Self {
        let tokens: Vec<TokenTree> = group.stream().into_iter().collect();
        let mut split = 0;
        while let [TokenTree::Punct(hash), TokenTree::Punct(bang), TokenTree::Group(attr), ..] =
            &tokens[split..]
        {
            if hash.as_char() != '#'
                || bang.as_char() != '!'
                || attr.delimiter() != Delimiter::Bracket
            {
                break;
            }
            split += 3;
        }
        Self {
            span: group.span(),
            inner_attrs: tokens[..split].iter().cloned().collect(),
            stmts: tokens[split..].iter().cloned().collect(),
        }
    }
}

/// Parses the annotated item, or explains why it cannot be instrumented.
pub(crate) fn parse(item: TokenStream, macro_name: &str) -> Result<Function, syn::Error> {
    match syn::parse2::<Function>(item.clone()) {
        Ok(function) => Ok(function),
        Err(error) => Err(not_a_function(item, macro_name).unwrap_or(error)),
    }
}

/// The error for an item that is not a function, spanned on its keyword.
fn not_a_function(item: TokenStream, macro_name: &str) -> Option<syn::Error> {
    use syn::Item;
    let parsed = syn::parse2::<Item>(item).ok()?;
    let put_it = "put it on the `fn` or `async fn` to instrument";
    let (tokens, what, hint): (TokenStream, &str, String) = match &parsed {
        Item::Fn(_) => return None,
        Item::Struct(i) => (i.struct_token.to_token_stream(), "a struct", put_it.to_owned()),
        Item::Enum(i) => (i.enum_token.to_token_stream(), "an enum", put_it.to_owned()),
        Item::Union(i) => (i.union_token.to_token_stream(), "a union", put_it.to_owned()),
        Item::Type(i) => (i.type_token.to_token_stream(), "a type alias", put_it.to_owned()),
        Item::Const(i) => (i.const_token.to_token_stream(), "a constant", put_it.to_owned()),
        Item::Static(i) => (i.static_token.to_token_stream(), "a static", put_it.to_owned()),
        Item::Mod(i) => (i.mod_token.to_token_stream(), "a module", put_it.to_owned()),
        Item::Use(i) => (i.use_token.to_token_stream(), "a `use` declaration", put_it.to_owned()),
        Item::Impl(i) => (
            i.impl_token.to_token_stream(),
            "an `impl` block",
            "put it on each method to instrument, inside the block".to_owned(),
        ),
        Item::Trait(i) => (
            i.trait_token.to_token_stream(),
            "a trait",
            "put it on a provided method of the trait, or on the methods of its implementations".to_owned(),
        ),
        Item::ForeignMod(i) => (
            i.abi.to_token_stream(),
            "an `extern` block",
            "the functions it declares are implemented elsewhere; instrument the Rust function that calls them".to_owned(),
        ),
        Item::Macro(i) => (i.mac.path.to_token_stream(), "a macro invocation", put_it.to_owned()),
        _ => (first_token(&parsed), "this item", put_it.to_owned()),
    };
    Some(syn::Error::new_spanned(
        tokens,
        format!("#[{macro_name}] goes on a function, not on {what}: {hint}"),
    ))
}

fn first_token(tokens: impl ToTokens) -> TokenStream {
    tokens.into_token_stream().into_iter().take(1).collect()
}

impl Function {
    /// Rejects functions the attributes cannot instrument, every reason at once.
    pub(crate) fn check(&self, macro_name: &str, errors: &mut Errors) {
        let sig = &self.sig;
        if let Some(constness) = &sig.constness {
            errors.at(
                constness,
                format!(
                    "#[{macro_name}] cannot instrument a `const fn`: spans and metrics are recorded \
                     at run time, which a `const fn` must not depend on; remove `const` or the attribute"
                ),
            );
        }
        if self.body.is_none() {
            let head = quote::quote!(#sig);
            errors.at(
                head,
                format!(
                    "#[{macro_name}] needs a function body to instrument, and this declaration has none \
                     (a required trait method, or a function in an `extern` block); put the attribute on \
                     the implementation instead"
                ),
            );
        }
    }

    /// The names a body can use for the arguments: `self` and every binding in
    /// the parameters' patterns.
    pub(crate) fn parameter_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for input in &self.sig.inputs {
            match input {
                FnArg::Receiver(_) => names.push("self".to_owned()),
                FnArg::Typed(typed) => bindings(&typed.pat, &mut names),
            }
        }
        names
    }

    /// The return type, when it can be written as the type of a `let` (it has no `impl Trait`).
    pub(crate) fn nameable_return_type(&self) -> Option<&Type> {
        match &self.sig.output {
            ReturnType::Type(_, ty) if !mentions_impl(ty.to_token_stream()) => Some(ty),
            _ => None,
        }
    }

    /// Whether the function returns `!`.
    /// When the function returns a stream of chunks: the chunk type, and whether
    /// the stream is boxed (`Pin<Box<dyn Stream<Item = T>>>`, `BoxStream<'_, T>`)
    /// rather than `impl Stream<Item = T>`.
    /// How the function returns a stream of chunks, if it does: written out
    /// (`impl Stream<Item = ..>`, `BoxStream`, `Pin<Box<dyn Stream>>`), declared
    /// (`declared`, the `stream` argument, for a name the macro cannot see
    /// through), either of them inside a `Result`. A return type whose name
    /// says stream (`ChatCompletionResponseStream`) that is not declared is an
    /// error: its span would end before the first chunk.
    pub(crate) fn stream_shape(
        &self,
        declared: Option<bool>,
    ) -> Result<Option<StreamShape>, syn::Error> {
        let ReturnType::Type(_, ty) = &self.sig.output else {
            return Ok(None);
        };
        if declared == Some(false) {
            return Ok(None);
        }
        let ok = result_ok_type(ty);
        let inner = ok.unwrap_or(ty);
        let in_result = ok.cloned();
        if let Some((item, boxed)) = stream_item_of(inner) {
            return Ok(Some(StreamShape {
                item: Some(item),
                boxed,
                in_result: in_result.clone(),
            }));
        }
        if declared == Some(true) {
            // Behind a name: only a boxed stream can be (a type alias of
            // `Pin<Box<dyn Stream<..>>>`, like async-openai's).
            return Ok(Some(StreamShape {
                item: None,
                boxed: true,
                in_result,
            }));
        }
        match stream_like_name(inner) {
            Some(name) => Err(syn::Error::new_spanned(
                inner,
                format!(
                    "`{name}` looks like a stream of chunks: without `stream`, the call's span ends \
                     when the stream is returned, before the first chunk (no tokens, no finish \
                     reasons). Write `#[llm_call(.., stream)]` to keep the call open until the \
                     stream ends, or `stream = false` if it is not a stream"
                ),
            )),
            None => Ok(None),
        }
    }

    pub(crate) fn diverges(&self) -> bool {
        matches!(&self.sig.output, ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)))
    }

    /// A non-`async` function whose whole body is a future: `async move { ... }`
    /// or `Box::pin(async move { ... })`, which is what `#[async_trait]` makes of
    /// an `async fn` before this attribute sees it.
    pub(crate) fn future_in_disguise(&self) -> Option<Disguised> {
        if self.sig.asyncness.is_some() {
            return None;
        }
        let body = self.body.as_ref()?;
        let braced = Group::new(Delimiter::Brace, body.stmts.clone());
        let block: syn::Block = syn::parse2(braced.into_token_stream()).ok()?;
        let [Stmt::Expr(expr, None)] = block.stmts.as_slice() else {
            return None;
        };
        let (wrapper, inner) = match expr {
            Expr::Async(inner) => (None, inner),
            Expr::Call(call) if call.args.len() == 1 && is_box_pin(&call.func) => {
                match &call.args[0] {
                    Expr::Async(inner) => (Some(call.func.to_token_stream()), inner),
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(Disguised {
            wrapper,
            output: future_output(&self.sig.output)
                .filter(|ty| !mentions_impl(ty.to_token_stream())),
            inner: inner.to_token_stream(),
            moves: inner.capture.is_some(),
        })
    }
}

/// A future returned by a non-`async` function (see [`Function::future_in_disguise`]).
pub(crate) struct Disguised {
    /// `Box::pin`, as written, when the future is boxed.
    pub wrapper: Option<TokenStream>,
    /// The future's `Output`, when the return type names it.
    pub output: Option<Type>,
    /// The `async` block, as written.
    pub inner: TokenStream,
    /// Whether it is an `async move` block.
    pub moves: bool,
}

/// `Box::pin`, however qualified.
fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else {
        return false;
    };
    let mut segments = path.path.segments.iter().rev();
    matches!(
        (segments.next(), segments.next()),
        (Some(pin), Some(boxed)) if pin.ident == "pin" && boxed.ident == "Box"
    )
}

fn bindings(pat: &Pat, names: &mut Vec<String>) {
    match pat {
        Pat::Ident(p) => {
            names.push(p.ident.to_string());
            if let Some((_, sub)) = &p.subpat {
                bindings(sub, names);
            }
        }
        Pat::Reference(p) => bindings(&p.pat, names),
        Pat::Tuple(p) => p.elems.iter().for_each(|e| bindings(e, names)),
        Pat::TupleStruct(p) => p.elems.iter().for_each(|e| bindings(e, names)),
        Pat::Struct(p) => p.fields.iter().for_each(|f| bindings(&f.pat, names)),
        Pat::Slice(p) => p.elems.iter().for_each(|e| bindings(e, names)),
        Pat::Type(p) => bindings(&p.pat, names),
        Pat::Paren(p) => bindings(&p.pat, names),
        _ => {}
    }
}

fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == "impl",
        TokenTree::Group(g) => mentions_impl(g.stream()),
        _ => false,
    })
}

/// `T` in a return type such as `Pin<Box<dyn Future<Output = T> + Send + 'a>>`
/// or `impl Future<Output = T>`.
fn future_output(output: &ReturnType) -> Option<Type> {
    fn in_bounds<'a>(bounds: impl Iterator<Item = &'a TypeParamBound>) -> Option<Type> {
        bounds
            .filter_map(|b| match b {
                TypeParamBound::Trait(t) => t.path.segments.last(),
                _ => None,
            })
            .filter(|segment| segment.ident == "Future")
            .find_map(|segment| match &segment.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                    GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                        Some(assoc.ty.clone())
                    }
                    _ => None,
                }),
                _ => None,
            })
    }
    fn in_type(ty: &Type) -> Option<Type> {
        match ty {
            Type::ImplTrait(t) => in_bounds(t.bounds.iter()),
            Type::TraitObject(t) => in_bounds(t.bounds.iter()),
            Type::Paren(t) => in_type(&t.elem),
            Type::Group(t) => in_type(&t.elem),
            Type::Path(p) => p
                .path
                .segments
                .last()
                .and_then(|segment| match &segment.arguments {
                    PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                        GenericArgument::Type(inner) => in_type(inner),
                        _ => None,
                    }),
                    _ => None,
                }),
            _ => None,
        }
    }
    match output {
        ReturnType::Type(_, ty) => in_type(ty),
        ReturnType::Default => None,
    }
}

/// `Item = T` of a `Stream` bound among `bounds`.
fn stream_bound_item<'a>(
    bounds: impl IntoIterator<Item = &'a syn::TypeParamBound>,
) -> Option<Type> {
    bounds.into_iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Stream" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            syn::GenericArgument::AssocType(assoc) if assoc.ident == "Item" => {
                Some(assoc.ty.clone())
            }
            _ => None,
        })
    })
}

/// How an `#[llm_call]` function returns a stream (see [`Function::stream_shape`]).
pub(crate) struct StreamShape {
    /// The chunk type, when the signature writes it out.
    pub item: Option<Type>,
    /// Whether the stream is boxed (`Pin<Box<dyn Stream>>` and its aliases), so
    /// the instrumented stream converts to the declared type.
    pub boxed: bool,
    /// `S` when it comes inside a `Result<S, E>`: the call fails at once on
    /// `Err`, and lasts until the stream ends on `Ok`.
    pub in_result: Option<Type>,
}

/// `T` in `Result<T, ..>` (`std`'s, `io::Result<T>`, `anyhow::Result<T>`: any
/// path ending in `Result`).
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// The name of a type that says it is a stream (`ChatCompletionResponseStream`,
/// `EventStream`), when it is not one the macro reads.
fn stream_like_name(ty: &Type) -> Option<String> {
    let Type::Path(p) = ty else {
        return None;
    };
    let name = p.path.segments.last()?.ident.to_string();
    name.ends_with("Stream").then_some(name)
}

fn stream_item_of(ty: &Type) -> Option<(Type, bool)> {
    match ty {
        Type::ImplTrait(t) => stream_bound_item(&t.bounds).map(|item| (item, false)),
        Type::Paren(p) => stream_item_of(&p.elem),
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let types = args.args.iter().filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            });
            match last.ident.to_string().as_str() {
                // futures' aliases: `BoxStream<'a, T>`, `LocalBoxStream<'a, T>`.
                "BoxStream" | "LocalBoxStream" => types.last().map(|t| (t.clone(), true)),
                "Pin" => {
                    let inner = types.into_iter().next()?;
                    let Type::Path(boxed) = inner else {
                        return None;
                    };
                    let last = boxed.path.segments.last()?;
                    if last.ident != "Box" {
                        return None;
                    }
                    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                        return None;
                    };
                    args.args.iter().find_map(|a| match a {
                        syn::GenericArgument::Type(Type::TraitObject(o)) => {
                            stream_bound_item(&o.bounds).map(|item| (item, true))
                        }
                        _ => None,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}
