//! With nothing listening (no subscriber, or `OTEL_SDK_DISABLED=true`, which
//! installs none), an annotated function runs its body as written and returns
//! exactly what the plain function returns, before anything the attribute would
//! record is evaluated: the model, the request and `fields(...)` are not read.
//! With a subscriber, the same shapes make their span and read each once.
//!
//! `tracing` caches whether a call site is enabled, per call site: the functions
//! called with a subscriber (`listened`) are other call sites than those called
//! without one (`quiet`). Both, and the plain twins the results are compared
//! with, come from one macro, so the bodies cannot drift apart.

use crate::common;

use common::suspend;
use std::num::ParseIntError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _};
use otel_agent_runtime::{LlmRequest, RequestParams};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// What an `#[llm_call]` reads besides the body, counted: the test can tell
/// whether the instrumentation evaluated it.
#[derive(Default)]
pub struct Client {
    name: String,
    model_reads: AtomicUsize,
    request_reads: AtomicUsize,
    field_reads: AtomicUsize,
}

impl Client {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    fn model(&self) -> &str {
        self.model_reads.fetch_add(1, Ordering::SeqCst);
        &self.name
    }

    fn request(&self) -> Request {
        self.request_reads.fetch_add(1, Ordering::SeqCst);
        Request
    }

    fn field(&self) -> usize {
        self.field_reads.fetch_add(1, Ordering::SeqCst);
        7
    }

    /// `(model, request, field)` reads so far.
    fn reads(&self) -> (usize, usize, usize) {
        (
            self.model_reads.load(Ordering::SeqCst),
            self.request_reads.load(Ordering::SeqCst),
            self.field_reads.load(Ordering::SeqCst),
        )
    }
}

pub struct Request;

impl LlmRequest for Request {
    fn request_params(&self) -> RequestParams {
        RequestParams::default().max_tokens(16)
    }
}

#[async_trait::async_trait]
pub trait Ask {
    async fn ask(&self, prompt: &str) -> Result<String, std::io::Error>;
}

/// The shapes, annotated when `$on` is `all()`, plain when it is `any()`.
macro_rules! shapes {
    ($($on:tt)*) => {
        use super::*;

        #[cfg_attr($($on)*, otel_agent_runtime::agent_step(kind = tool, name = "parse"))]
        pub fn parse(input: &str) -> Result<u32, ParseIntError> {
            if input.is_empty() {
                return Ok(0);
            }
            let n: u32 = input.trim().parse()?;
            Ok(n * 2)
        }

        #[cfg_attr($($on)*, otel_agent_runtime::agent_step(agent = "summer"))]
        pub async fn sum(inputs: Vec<&str>) -> Result<u32, ParseIntError> {
            let mut total = 0;
            for input in inputs {
                if input == "stop" {
                    return Ok(total);
                }
                suspend().await;
                total += input.parse::<u32>()?;
            }
            Ok(total)
        }

        #[cfg_attr($($on)*, otel_agent_runtime::llm_call(
            model = client.model(),
            provider = "openai",
            request = client.request(),
            fields(app.field = client.field())
        ))]
        pub fn ask(client: &Client, prompt: &str) -> Option<String> {
            if prompt.is_empty() {
                return None;
            }
            let first = prompt.chars().next()?;
            Some(format!("{}: {first}", client.name))
        }

        #[cfg_attr($($on)*, otel_agent_runtime::llm_call(
            model = client.model(),
            request = client.request(),
            fields(app.field = client.field())
        ))]
        pub async fn ask_async(client: &Client, prompt: &str) -> Result<String, std::io::Error> {
            suspend().await;
            if prompt.is_empty() {
                return Err(std::io::Error::other("empty prompt"));
            }
            Ok(format!("{}: {prompt}", client.name))
        }

        pub struct Stub(pub Client);

        #[async_trait::async_trait]
        impl Ask for Stub {
            #[cfg_attr($($on)*, otel_agent_runtime::llm_call(model = self.0.model()))]
            async fn ask(&self, prompt: &str) -> Result<String, std::io::Error> {
                suspend().await;
                if prompt.is_empty() {
                    return Err(std::io::Error::other("empty prompt"));
                }
                Ok(prompt.to_uppercase())
            }
        }

        #[derive(Default)]
        pub struct Notes(pub Vec<String>);

        impl Notes {
            /// Returns a borrow of what the body captured.
            #[cfg_attr($($on)*, otel_agent_runtime::agent_step(agent = "noter"))]
            pub fn notes_mut(&mut self) -> &mut Vec<String> {
                &mut self.0
            }
        }

        #[cfg_attr($($on)*, otel_agent_runtime::llm_call(model = client.model()))]
        pub fn stream_boxed(client: &Client, n: u32) -> BoxStream<'static, u32> {
            let _ = client;
            futures::stream::iter(0..n).boxed()
        }

        #[cfg_attr($($on)*, otel_agent_runtime::llm_call(model = client.model()))]
        pub async fn stream_boxed_async(client: &Client, n: u32) -> BoxStream<'static, u32> {
            let _ = client;
            suspend().await;
            futures::stream::iter(0..n).boxed()
        }

        #[cfg_attr($($on)*, otel_agent_runtime::llm_call(model = client.model()))]
        pub fn stream_impl(client: &Client, n: u32) -> impl Stream<Item = u32> {
            let _ = client;
            futures::stream::iter(0..n)
        }

        #[cfg_attr($($on)*, otel_agent_runtime::agent_step(agent = "quitter"))]
        pub fn give_up(message: &str) -> ! {
            std::panic::panic_any(message.to_owned())
        }
    };
}

// Not every shape is called from each module.

/// Called with no subscriber.
#[allow(dead_code)]
mod quiet {
    shapes!(all());
}

/// Called with a subscriber.
#[allow(dead_code)]
mod listened {
    shapes!(all());
}

/// Called with subscribers whose filters decide per call site or per call.
#[allow(dead_code)]
mod filtered {
    shapes!(all());
}

/// Called on a thread with no subscriber while another thread has one.
#[allow(dead_code)]
mod elsewhere {
    shapes!(all());
}

/// As written, without the attributes.
#[allow(dead_code)]
mod plain {
    shapes!(any());
}

/// Records the name of every span made.
#[derive(Clone, Default)]
struct NewSpans(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for NewSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        self.0
            .lock()
            .unwrap()
            .push(attrs.metadata().name().to_owned());
    }
}

/// Runs `f` with a subscriber on this thread; returns the spans it made.
fn listening<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let spans = NewSpans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let value = tracing::subscriber::with_default(subscriber, f);
    let names = spans.0.lock().unwrap().clone();
    (value, names)
}

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(f).expect_err("it diverges");
    *payload.downcast::<String>().expect("a String payload")
}

#[test]
fn sync_functions_return_what_the_plain_function_returns() {
    for input in ["", "21", " 4 ", "x", "99999999999"] {
        assert_eq!(quiet::parse(input), plain::parse(input), "{input:?}");
    }
    let mut notes = quiet::Notes::default();
    notes.notes_mut().push("a".to_owned());
    quiet::Notes::notes_mut(&mut notes).push("b".to_owned());
    assert_eq!(notes.0, ["a", "b"]);
    assert_eq!(
        panic_message(|| quiet::give_up("enough")),
        panic_message(|| plain::give_up("enough"))
    );
}

#[test]
fn async_functions_return_what_the_plain_function_returns() {
    for inputs in [
        vec![],
        vec!["1", "2"],
        vec!["1", "stop", "x"],
        vec!["1", "x", "2"],
    ] {
        assert_eq!(
            block_on(quiet::sum(inputs.clone())),
            block_on(plain::sum(inputs.clone())),
            "{inputs:?}"
        );
    }
}

#[test]
fn llm_call_arguments_are_not_evaluated_when_nothing_listens() {
    let client = Client::new("gpt-4o");
    let twin = Client::new("gpt-4o");
    for prompt in ["", "hello"] {
        assert_eq!(quiet::ask(&client, prompt), plain::ask(&twin, prompt));
        assert_eq!(
            block_on(quiet::ask_async(&client, prompt)).map_err(|e| e.to_string()),
            block_on(plain::ask_async(&twin, prompt)).map_err(|e| e.to_string())
        );
    }
    assert_eq!(client.reads(), (0, 0, 0), "model, request, field");

    let stub = quiet::Stub(Client::new("claude"));
    let twin = plain::Stub(Client::new("claude"));
    for prompt in ["", "hi"] {
        assert_eq!(
            block_on(stub.ask(prompt)).map_err(|e| e.to_string()),
            block_on(twin.ask(prompt)).map_err(|e| e.to_string())
        );
    }
    assert_eq!(stub.0.reads(), (0, 0, 0), "async_trait: model");
}

#[test]
fn a_boxed_stream_is_returned_as_it_is_when_nothing_listens() {
    let client = Client::new("gpt-4o");
    let twin = Client::new("gpt-4o");
    assert_eq!(
        block_on(quiet::stream_boxed(&client, 3).collect::<Vec<_>>()),
        block_on(plain::stream_boxed(&twin, 3).collect::<Vec<_>>())
    );
    assert_eq!(
        block_on(async {
            quiet::stream_boxed_async(&client, 3)
                .await
                .collect::<Vec<_>>()
                .await
        }),
        block_on(async {
            plain::stream_boxed_async(&twin, 3)
                .await
                .collect::<Vec<_>>()
                .await
        })
    );
    assert_eq!(client.reads(), (0, 0, 0));
    // An `impl Stream` keeps the wrapped path (one type behind the `impl`),
    // which passes the chunks through unchanged.
    assert_eq!(
        block_on(quiet::stream_impl(&client, 4).collect::<Vec<_>>()),
        block_on(plain::stream_impl(&twin, 4).collect::<Vec<_>>())
    );
}

#[test]
fn otel_sdk_disabled_installs_nothing_and_reads_nothing() {
    let telemetry = otel_agent_runtime::builder()
        .env([("OTEL_SDK_DISABLED", "true")])
        .init()
        .expect("a disabled SDK initialises");
    assert!(!telemetry.is_enabled());
    let client = Client::new("gpt-4o");
    assert_eq!(
        quiet::ask(&client, "hello"),
        plain::ask(&Client::new("gpt-4o"), "hello")
    );
    assert_eq!(client.reads(), (0, 0, 0));
}

#[test]
fn with_a_subscriber_each_call_makes_its_span_and_reads_its_arguments_once() {
    let client = Client::new("gpt-4o");
    let twin = Client::new("gpt-4o");

    let (value, spans) = listening(|| listened::parse("21"));
    assert_eq!(value, plain::parse("21"));
    assert_eq!(spans, ["execute_tool parse"]);

    let (value, spans) = listening(|| listened::parse("x"));
    assert_eq!(value, plain::parse("x"));
    assert_eq!(spans, ["execute_tool parse"]);

    let (value, spans) = listening(|| block_on(listened::sum(vec!["1", "stop"])));
    assert_eq!(value, block_on(plain::sum(vec!["1", "stop"])));
    assert_eq!(spans, ["invoke_agent summer"]);

    let (value, spans) = listening(|| listened::ask(&client, "hello"));
    assert_eq!(value, plain::ask(&twin, "hello"));
    assert_eq!(spans, ["chat"]);
    assert_eq!(client.reads(), (1, 1, 1), "model, request, field");

    let (value, spans) = listening(|| block_on(listened::ask_async(&client, "")));
    assert_eq!(
        value.map_err(|e| e.to_string()),
        block_on(plain::ask_async(&twin, "")).map_err(|e| e.to_string())
    );
    assert_eq!(spans, ["chat"]);
    assert_eq!(client.reads(), (2, 2, 2));

    let stub = listened::Stub(Client::new("claude"));
    let (value, spans) = listening(|| block_on(stub.ask("hi")));
    assert_eq!(value.unwrap(), "HI");
    assert_eq!(spans, ["chat"]);
    assert_eq!(stub.0.reads(), (1, 0, 0));

    let (chunks, spans) =
        listening(|| block_on(listened::stream_boxed(&client, 3).collect::<Vec<_>>()));
    assert_eq!(chunks, [0, 1, 2]);
    assert_eq!(spans, ["chat"]);
    assert_eq!(client.reads().0, 3);

    let (chunks, spans) = listening(|| {
        block_on(async {
            let stream = listened::stream_boxed_async(&client, 2).await;
            stream.collect::<Vec<_>>().await
        })
    });
    assert_eq!(chunks, [0, 1]);
    assert_eq!(spans, ["chat"]);
    assert_eq!(client.reads().0, 4);

    let mut notes = listened::Notes::default();
    let ((), spans) = listening(|| notes.notes_mut().push("a".to_owned()));
    assert_eq!(notes.0, ["a"]);
    assert_eq!(spans, ["invoke_agent noter"]);
}

/// A filter decides for the attributes as it does for `tracing::span!`: one
/// that turns their target off at the call site, or one that answers per call
/// (here: only inside a span named `traced`), leaves the body alone and reads
/// no argument whenever it says no.
#[test]
fn a_filter_on_the_attributes_target_is_obeyed_per_call_site_and_per_call() {
    use tracing_subscriber::filter::{dynamic_filter_fn, LevelFilter, Targets};

    let client = Client::new("gpt-4o");
    let twin = Client::new("gpt-4o");
    let spans = NewSpans::default();
    let target_off = tracing_subscriber::registry()
        .with(
            Targets::new()
                .with_default(LevelFilter::TRACE)
                .with_target("otel_agent", LevelFilter::OFF),
        )
        .with(spans.clone());
    let value = tracing::subscriber::with_default(target_off, || filtered::ask(&client, "hello"));
    assert_eq!(value, plain::ask(&twin, "hello"));
    assert_eq!(client.reads(), (0, 0, 0));
    assert!(spans.0.lock().unwrap().is_empty());

    let spans = NewSpans::default();
    // A global filter: a per-layer one hides spans from its layer only, and
    // `tracing` creates them all the same.
    let only_when_traced = tracing_subscriber::registry()
        .with(dynamic_filter_fn(|meta, cx| {
            meta.target() != "otel_agent"
                || cx.lookup_current().is_some_and(|s| s.name() == "traced")
        }))
        .with(spans.clone());
    tracing::subscriber::with_default(only_when_traced, || {
        assert_eq!(filtered::ask(&client, "hi"), plain::ask(&twin, "hi"));
        assert_eq!(client.reads(), (0, 0, 0), "outside `traced`: not asked");
        tracing::info_span!("traced").in_scope(|| filtered::ask(&client, "hi"));
        assert_eq!(client.reads(), (1, 1, 1), "inside `traced`: asked");
        filtered::ask(&client, "hi");
        assert_eq!(client.reads(), (1, 1, 1), "outside again: not asked");
    });
    assert_eq!(*spans.0.lock().unwrap(), ["traced", "chat"]);
}

/// `tracing` caches one interest per call site for the whole process: with two
/// or more subscribers alive, from theirs alone, so subscribers on other
/// threads make it "always" for a thread that has none. The attributes still
/// ask that thread's (absent) subscriber, so nothing is read there.
#[test]
fn a_thread_without_a_subscriber_reads_nothing_while_other_threads_listen() {
    let client = Client::new("gpt-4o");
    let twin = Client::new("gpt-4o");
    let spans = NewSpans::default();
    let _listening_here =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let _listening_elsewhere = tracing::Dispatch::new(tracing_subscriber::registry());
    let value = std::thread::scope(|s| {
        s.spawn(|| elsewhere::ask(&client, "hello"))
            .join()
            .expect("no panic")
    });
    assert_eq!(value, plain::ask(&twin, "hello"));
    assert_eq!(client.reads(), (0, 0, 0));
    assert!(spans.0.lock().unwrap().is_empty());
}

/// The state of an annotated `async fn` holds the body's future and one
/// pointer, to the guard (on the heap, and only when something listens): with
/// nothing listening it is barely larger than the plain function's. The 16
/// bytes allow for that pointer, the state's discriminant and alignment. Before
/// the guard was boxed, the state also kept the guard and the instrumented
/// body: `ask_async` was 328 bytes against 72.
///
/// What the bound does not cover: arguments that the body moves out of before
/// its first `.await` (`sum`'s `Vec`) are kept twice, in the function's own
/// state and in the body's, as for any `async fn` awaiting an `async` block;
/// and under `#[async_trait]` the arguments the body captures are kept twice.
#[test]
fn a_disabled_async_fn_holds_no_more_state_than_the_plain_one() {
    let client = Client::new("gpt-4o");
    let annotated = std::mem::size_of_val(&quiet::ask_async(&client, "hi"));
    let twin = std::mem::size_of_val(&plain::ask_async(&client, "hi"));
    assert!(
        annotated <= twin + 16,
        "the annotated future is {annotated} bytes, the plain one {twin}"
    );
}
