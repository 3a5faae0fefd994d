//! `#[llm_call]` on functions that return a stream of chunks: the call lasts until
//! the stream ends, usage comes from the final chunk, and an abandoned stream is
//! cancelled.

use crate::common;

use std::pin::Pin;
use std::time::Duration;

use common::{attr, harness, span_named};
use futures::{Stream, StreamExt as _};
use opentelemetry::trace::Status;
use otel_agent_runtime::{llm_call, LlmResponse, Usage};

#[derive(Debug, Clone)]
struct Chunk {
    text: &'static str,
    last: bool,
}

impl LlmResponse for Chunk {
    fn usage(&self) -> Option<Usage> {
        // Providers send usage once, in the final chunk.
        self.last.then(|| Usage::new(42, 3))
    }
    fn response_model(&self) -> Option<&str> {
        Some("gpt-4o-2024-08-06")
    }
    fn response_id(&self) -> Option<&str> {
        Some("chatcmpl-stream")
    }
    fn finish_reasons(&self) -> Vec<&str> {
        if self.last {
            vec!["stop"]
        } else {
            Vec::new()
        }
    }
}

fn chunks(fail_after: Option<usize>) -> impl Stream<Item = Result<Chunk, std::io::Error>> {
    let texts = ["Hel", "lo", "!"];
    futures::stream::iter(0..texts.len()).then(move |i| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if fail_after == Some(i) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "stream cut",
            ));
        }
        Ok(Chunk {
            text: texts[i],
            last: i == texts.len() - 1,
        })
    })
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn stream_chat(fail_after: Option<usize>) -> impl Stream<Item = Result<Chunk, std::io::Error>> {
    chunks(fail_after)
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn stream_chat_async() -> impl Stream<Item = Result<Chunk, std::io::Error>> {
    tokio::task::yield_now().await;
    chunks(None)
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, std::io::Error>> + Send>>;

// Behind an alias the macro cannot see the stream: `stream` says so.
#[llm_call(model = "gpt-4o", provider = "openai", stream)]
fn stream_chat_boxed() -> ChunkStream {
    Box::pin(chunks(None))
}

#[llm_call(model = "gpt-4o", provider = "openai")]
fn stream_chat_boxed_spelled_out(
) -> Pin<Box<dyn Stream<Item = Result<Chunk, std::io::Error>> + Send>> {
    Box::pin(chunks(None))
}

async fn collect<S: Stream<Item = Result<Chunk, std::io::Error>>>(stream: S) -> String {
    stream
        .filter_map(|c| async move { c.ok() })
        .map(|c| c.text)
        .collect::<Vec<_>>()
        .await
        .concat()
}

#[llm_call(
    model = "gpt-4o",
    provider = "openai",
    metric_attributes(region = "eu")
)]
fn stream_chat_in_region() -> impl Stream<Item = Result<Chunk, std::io::Error>> {
    chunks(None)
}

#[test]
fn time_to_first_chunk_is_sliced_like_the_calls_duration() {
    let h = common::harness_with(|b| b.tenant_on_metrics(true).legacy_semconv_names(true));
    h.block_on(
        otel_agent_runtime::context::scope()
            .tenant("acme")
            .instrument(async { collect(stream_chat_in_region()).await }),
    );
    let metrics = h.metrics();
    let attrs_of = |name| {
        let points = common::f64_histogram_points(metrics.expect(name));
        assert_eq!(points.len(), 1, "one series of {name}");
        common::point_attrs(points[0].attributes())
    };
    let ttfc = attrs_of("gen_ai.client.operation.time_to_first_chunk");
    let mut duration = attrs_of("gen_ai.client.operation.duration");
    // Known only once the stream has ended.
    duration.remove("gen_ai.response.model");
    assert_eq!(ttfc, duration);
    for (key, value) in [
        ("region", "eu"),
        ("otel_agent.tenant", "acme"),
        ("gen_ai.system", "openai"),
    ] {
        assert_eq!(ttfc.get(key).map(String::as_str), Some(value), "{key}");
    }
}

#[test]
fn a_consumed_stream_ends_the_span_with_usage_from_the_final_chunk() {
    let h = harness();
    let text = h.block_on(async { collect(stream_chat(None)).await });
    assert_eq!(text, "Hello!");
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o");
    let lasted = span.end_time.duration_since(span.start_time).unwrap();
    assert!(
        lasted >= Duration::from_millis(60),
        "the span covers the whole stream: {lasted:?}"
    );
    assert_eq!(attr(span, "gen_ai.request.stream"), Some(true.into()));
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), Some(42_i64.into()));
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), Some(3_i64.into()));
    assert_eq!(
        attr(span, "gen_ai.response.id"),
        Some("chatcmpl-stream".into())
    );
    match attr(span, "gen_ai.response.time_to_first_chunk") {
        Some(opentelemetry::Value::F64(ttfc)) => {
            assert!((0.015..lasted.as_secs_f64()).contains(&ttfc), "{ttfc}")
        }
        other => panic!("time to first chunk: {other:?}"),
    }
    assert_eq!(span.status, Status::Unset);

    let metrics = h.metrics();
    let ttfc =
        common::f64_histogram_points(metrics.expect("gen_ai.client.operation.time_to_first_chunk"));
    assert_eq!(ttfc.iter().map(|p| p.count()).sum::<u64>(), 1);
    let duration = common::f64_histogram_points(metrics.expect("gen_ai.client.operation.duration"));
    assert_eq!(duration.iter().map(|p| p.count()).sum::<u64>(), 1);
    assert!(duration[0].sum() >= 0.06);
    let tokens = common::u64_histogram_points(metrics.expect("gen_ai.client.token.usage"));
    assert_eq!(tokens.iter().map(|p| p.sum()).sum::<u64>(), 45);
}

#[test]
fn an_abandoned_stream_is_cancelled() {
    let h = harness();
    h.block_on(async {
        let mut stream = Box::pin(stream_chat(None));
        assert_eq!(stream.next().await.unwrap().unwrap().text, "Hel");
        drop(stream);
    });
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o");
    assert_eq!(attr(span, "error.type"), Some("cancelled".into()));
    assert!(attr(span, "gen_ai.response.time_to_first_chunk").is_some());
    assert!(
        attr(span, "gen_ai.usage.input_tokens").is_none(),
        "no usage was sent"
    );
}

#[test]
fn an_error_chunk_fails_the_call() {
    let h = harness();
    let text = h.block_on(async { collect(stream_chat(Some(1))).await });
    assert_eq!(text, "Hel!");
    let spans = h.finished_spans();
    let span = span_named(&spans, "chat gpt-4o");
    assert_eq!(attr(span, "error.type"), Some("ConnectionReset".into()));
    assert_eq!(
        span.status,
        Status::Error {
            description: "stream cut".into()
        }
    );
}

#[test]
fn async_and_boxed_stream_functions_are_instrumented_too() {
    let h = harness();
    h.block_on(async {
        assert_eq!(collect(stream_chat_async().await).await, "Hello!");
        assert_eq!(collect(stream_chat_boxed()).await, "Hello!");
        assert_eq!(collect(stream_chat_boxed_spelled_out()).await, "Hello!");
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 3);
    for span in &spans {
        assert_eq!(attr(span, "gen_ai.request.stream"), Some(true.into()));
        assert_eq!(attr(span, "gen_ai.usage.output_tokens"), Some(3_i64.into()));
    }
}

// The stream inside a `Result`, in each shape a client returns it: the call
// fails at once on `Err`, and lasts until the stream ends on `Ok`.

#[derive(Debug)]
struct OpenError;

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not open the stream")
    }
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn open_impl(
    fail: bool,
) -> Result<impl Stream<Item = Result<Chunk, std::io::Error>>, OpenError> {
    tokio::task::yield_now().await;
    if fail {
        return Err(OpenError);
    }
    Ok(chunks(None))
}

#[llm_call(model = "gpt-4o", provider = "openai")]
async fn open_boxstream(
) -> Result<futures::stream::BoxStream<'static, Result<Chunk, std::io::Error>>, OpenError> {
    Ok(chunks(None).boxed())
}

// Spelled out on purpose: the macro reads the stream through the `Result`.
#[allow(clippy::type_complexity)]
#[llm_call(model = "gpt-4o", provider = "openai")]
fn open_pinned(
) -> Result<Pin<Box<dyn Stream<Item = Result<Chunk, std::io::Error>> + Send>>, OpenError> {
    Ok(Box::pin(chunks(None)))
}

// Behind an alias, inside a Result: `stream` says so (async-openai's
// `Result<ChatCompletionResponseStream, OpenAIError>`).
#[llm_call(model = "gpt-4o", provider = "openai", stream)]
async fn open_alias(fail: bool) -> Result<ChunkStream, OpenError> {
    if fail {
        return Err(OpenError);
    }
    Ok(Box::pin(chunks(None)))
}

/// The one chat span of `h`, after checking it covered the whole stream.
fn assert_streamed_whole(h: &common::Harness) {
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 1, "one call");
    let span = span_named(&spans, "chat gpt-4o");
    assert_eq!(attr(span, "gen_ai.usage.input_tokens"), Some(42_i64.into()));
    assert_eq!(attr(span, "gen_ai.usage.output_tokens"), Some(3_i64.into()));
    assert_eq!(
        attr(span, "gen_ai.response.id"),
        Some("chatcmpl-stream".into())
    );
    assert!(attr(span, "gen_ai.response.time_to_first_chunk").is_some());
    assert_eq!(span.status, Status::Unset);
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .expect("ends after it starts");
    // Three chunks 20 ms apart: the span covers reading them.
    assert!(duration >= Duration::from_millis(55), "{duration:?}");
    let metrics = h.metrics();
    let ttfc =
        common::f64_histogram_points(metrics.expect("gen_ai.client.operation.time_to_first_chunk"));
    assert_eq!(ttfc.iter().map(|p| p.count()).sum::<u64>(), 1);
}

#[test]
fn a_stream_in_a_result_lasts_until_it_ends_in_every_shape() {
    let h = harness();
    let text = h.block_on(async { collect(open_impl(false).await.ok().unwrap()).await });
    assert_eq!(text, "Hello!");
    assert_streamed_whole(&h);

    let h = harness();
    let text = h.block_on(async { collect(open_boxstream().await.ok().unwrap()).await });
    assert_eq!(text, "Hello!");
    assert_streamed_whole(&h);

    let h = harness();
    let text = h.block_on(async { collect(open_pinned().ok().unwrap()).await });
    assert_eq!(text, "Hello!");
    assert_streamed_whole(&h);

    let h = harness();
    let text = h.block_on(async { collect(open_alias(false).await.ok().unwrap()).await });
    assert_eq!(text, "Hello!");
    assert_streamed_whole(&h);
}

#[test]
fn a_stream_that_does_not_open_fails_the_call_at_once() {
    for alias in [false, true] {
        let h = harness();
        let opened = h.block_on(async {
            if alias {
                open_alias(true).await.map(|_| ())
            } else {
                open_impl(true).await.map(|_| ())
            }
        });
        assert!(opened.is_err());
        let spans = h.finished_spans();
        let span = span_named(&spans, "chat gpt-4o");
        assert_eq!(attr(span, "error.type"), Some("OpenError".into()));
        assert_eq!(
            span.status,
            Status::error("could not open the stream"),
            "alias: {alias}"
        );
        assert_eq!(attr(span, "gen_ai.response.time_to_first_chunk"), None);
    }
}
