//! What the attributes generate for a handful of representative functions,
//! formatted and pinned with `insta` (the `.snap` files under `snapshots/`), so
//! that a reviewer sees exactly what changes in the expansion.
//!
//! Update after an intended change with `INSTA_UPDATE=always cargo test -p
//! otel-agent-macros` (or `cargo insta review`), then read the diff.

use proc_macro2::TokenStream;
use quote::quote;

use crate::expand;

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens.clone())
        .unwrap_or_else(|e| panic!("the expansion does not parse: {e}\n{tokens}"));
    prettyplease::unparse(&file)
}

#[test]
fn async_agent_with_fields_and_metric_attributes() {
    let out = expand::agent_step(
        quote!(
            agent = "researcher",
            description = "Finds sources",
            fields(topic, app.depth = depth),
            metric_attributes(app.team = "search")
        ),
        quote! {
            /// Researches a topic.
            pub async fn research(topic: &str, depth: u8) -> Result<Notes, Error> {
                let hits = search(topic).await?;
                Ok(Notes::from(hits))
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

#[test]
fn sync_tool() {
    let out = expand::agent_step(
        quote!(kind = tool, name = "web_search"),
        quote! {
            fn search(query: &str) -> Vec<String> {
                if query.is_empty() {
                    return Vec::new();
                }
                vec![query.to_owned()]
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

#[test]
fn async_llm_call_with_a_literal_model() {
    let out = expand::llm_call(
        quote!(model = "gpt-4o", provider = "openai"),
        quote! {
            async fn complete(prompt: &str) -> Result<ChatResponse, Error> {
                client().chat(prompt).await
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

#[test]
fn llm_call_method_with_a_model_chosen_at_run_time() {
    let out = expand::llm_call(
        quote!(
            model = self.model,
            operation = embeddings,
            fields(gen_ai.request.encoding_formats = "float")
        ),
        quote! {
            fn embed(&self, text: &str) -> Vec<f32> {
                self.client.embed(&self.model, text)
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

/// What `#[async_trait]` hands to the attribute: the span goes inside the boxed
/// future, around the awaited body.
#[test]
fn method_rewritten_by_async_trait() {
    let out = expand::agent_step(
        quote!(kind = workflow, name = "crew"),
        quote! {
            fn run<'life0, 'async_trait>(
                &'life0 self,
            ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<String, Error>>
                    + ::core::marker::Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async move {
                    let __self = self;
                    let __ret: Result<String, Error> = { __self.steps().await };
                    #[allow(unreachable_code)]
                    __ret
                })
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

/// With a mistake in the attribute, the function is left as written, beside the
/// errors: the rest of the crate keeps compiling and rust-analyzer keeps working.
#[test]
fn mistakes_leave_the_function_as_written() {
    let out = expand::llm_call(
        quote!(modle = "gpt-4o", operation = chta),
        quote! {
            fn complete(prompt: &str) -> String {
                prompt.to_owned()
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

#[test]
fn llm_call_returning_a_stream() {
    let out = expand::llm_call(
        quote!(model = "gpt-4o", capture_content),
        quote! {
            fn chat_stream(prompt: &str) -> impl Stream<Item = Result<Chunk, Error>> + Send {
                client().stream(prompt)
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

/// A boxed stream is one type whether it is wrapped or not: with nothing
/// listening, the function returns the stream its body made.
#[test]
fn llm_call_returning_a_boxed_stream() {
    let out = expand::llm_call(
        quote!(model = "gpt-4o"),
        quote! {
            fn chat_stream(prompt: &str) -> BoxStream<'static, Result<Chunk, Error>> {
                client().stream(prompt).boxed()
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}

/// async-openai's shape: the stream inside a `Result`, behind an alias the
/// user declares with `stream`. `Err` ends the call at once; `Ok` hands the
/// guard to the stream, retyped to the declared boxed stream.
#[test]
fn llm_call_returning_a_stream_in_a_result() {
    let out = expand::llm_call(
        quote!(model = "gpt-4o", stream),
        quote! {
            async fn ask(request: Request) -> Result<ChatCompletionResponseStream, OpenAIError> {
                client().chat().create_stream(request).await
            }
        },
    );
    insta::assert_snapshot!(pretty(out));
}
