//! The code under measurement, shared by `benches/overhead.rs` (criterion) and
//! `examples/overhead.rs` (the one-table report), so that both time exactly the
//! same functions.
//!
//! Every instrumented function has the same body ([`answer`]) and returns the same
//! value; the hand-written versions do, by hand, the work the attributes generate:
//! the same span name and fields, the same usage recorded on the span, the same
//! histograms and counters with the same attributes, built as a user builds them
//! (a fresh `Vec<KeyValue>` per call).
#![allow(dead_code)] // each including target uses a different subset

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram, UpDownCounter};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanData, SpanExporter};
use otel_agent_runtime::{agent_step, llm_call, ExporterKind, LlmResponse, Telemetry, Usage};
use tracing::field::Empty;

/// The prompt every case is called with.
pub const PROMPT: &str = "summarise the state of Rust agent frameworks";

/// A model's reply: usage only, as in "span + duration + token metrics".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input_tokens, self.output_tokens))
    }
}

/// A reply that also names the responding model, its id and a finish reason, as
/// real chat-completion responses do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullReply {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub model: &'static str,
    pub id: &'static str,
}

impl LlmResponse for FullReply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.input_tokens, self.output_tokens))
    }
    fn response_model(&self) -> Option<&str> {
        Some(self.model)
    }
    fn response_id(&self) -> Option<&str> {
        Some(self.id)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        vec!["stop"]
    }
}

/// The error type of every case (never returned with [`PROMPT`]).
#[derive(Debug)]
pub struct BenchError;

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("empty prompt")
    }
}

impl std::error::Error for BenchError {}

/// The body every case runs: a few nanoseconds of real work.
#[inline(always)]
fn answer(prompt: &str) -> Result<Reply, BenchError> {
    if prompt.is_empty() {
        return Err(BenchError);
    }
    Ok(Reply {
        input_tokens: prompt.len() as u64 / 4 + 1,
        output_tokens: 42,
    })
}

/// What an async body awaits: a client's future, which the compiler cannot see
/// into, so the caller's future must be ready to be suspended (as with any real
/// network call), although this one is ready at once with [`answer`]'s value.
pub struct Answer<'a>(&'a str);

impl std::future::Future for Answer<'_> {
    type Output = Result<Reply, BenchError>;

    #[inline(never)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(answer(self.0))
    }
}

// ---------------------------------------------------------------- baselines

/// The baseline: the body as a plain function.
#[inline(never)]
pub fn plain_call(prompt: &str) -> Result<Reply, BenchError> {
    answer(prompt)
}

/// The baseline of the full-reply cases.
#[inline(never)]
pub fn plain_call_full(prompt: &str) -> Result<FullReply, BenchError> {
    answer(prompt).map(full_reply)
}

/// The baseline of the step cases.
#[inline(never)]
pub fn plain_step(query: &str) -> Result<usize, BenchError> {
    answer(query).map(|r| r.input_tokens as usize)
}

/// The baseline of the async cases.
#[inline(never)]
pub async fn plain_call_async(prompt: &str) -> Result<Reply, BenchError> {
    Answer(prompt).await
}

// ------------------------------------------------------------ the attributes

/// `#[llm_call]` on the body.
#[inline(never)]
#[llm_call(model = "gpt-4o", provider = "openai")]
pub fn macro_llm_call(prompt: &str) -> Result<Reply, BenchError> {
    answer(prompt)
}

/// `#[llm_call]` on a function whose reply also carries model, id and finish reason.
#[inline(never)]
#[llm_call(model = "gpt-4o", provider = "openai")]
pub fn macro_llm_call_full(prompt: &str) -> Result<FullReply, BenchError> {
    answer(prompt).map(full_reply)
}

/// `#[llm_call]` with the model chosen at run time, as a client configured with
/// a model name does: the name comes from a `String`, not a literal.
#[inline(never)]
#[llm_call(model = model, provider = "openai")]
pub fn macro_llm_call_runtime_model(model: &str, prompt: &str) -> Result<Reply, BenchError> {
    answer(prompt)
}

/// The configured model of [`macro_llm_call_runtime_model`]'s calls.
pub static CONFIGURED_MODEL: LazyLock<String> = LazyLock::new(|| "gpt-4o".to_owned());

#[inline(always)]
fn full_reply(r: Reply) -> FullReply {
    FullReply {
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        model: "gpt-4o-2024-08-06",
        id: "chatcmpl-0123456789",
    }
}

/// `#[agent_step]` (a tool) on the body.
#[inline(never)]
#[agent_step(kind = tool, name = "web_search")]
pub fn macro_step(query: &str) -> Result<usize, BenchError> {
    answer(query).map(|r| r.input_tokens as usize)
}

/// `#[llm_call]` on an `async fn`.
#[inline(never)]
#[llm_call(model = "gpt-4o", provider = "openai")]
pub async fn macro_llm_call_async(prompt: &str) -> Result<Reply, BenchError> {
    Answer(prompt).await
}

// ------------------------------------------------ the hand-written equivalent

/// The instruments a user creates once, from the global meter provider, with the
/// semantic conventions' names, units and buckets.
pub struct HandInstruments {
    pub duration: Histogram<f64>,
    pub tokens: Histogram<u64>,
    pub step_duration: Histogram<f64>,
    pub step_calls: Counter<u64>,
    pub step_active: UpDownCounter<i64>,
}

impl HandInstruments {
    /// Creates them from the global meter provider installed now (a no-op one when
    /// telemetry is disabled), as a user's client does when it is constructed.
    pub fn from_global() -> Self {
        let meter = opentelemetry::global::meter("hand-written");
        Self {
            duration: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_boundaries(otel_agent_runtime::metrics::DURATION_BUCKETS.to_vec())
                .build(),
            tokens: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_boundaries(otel_agent_runtime::metrics::TOKEN_BUCKETS.to_vec())
                .build(),
            step_duration: meter
                .f64_histogram("otel_agent.step.duration")
                .with_unit("s")
                .with_boundaries(otel_agent_runtime::metrics::STEP_BUCKETS.to_vec())
                .build(),
            step_calls: meter.u64_counter("otel_agent.step.calls").build(),
            step_active: meter.i64_up_down_counter("otel_agent.step.active").build(),
        }
    }
}

/// What a user writes today for one model call: `#[instrument]` with the same span
/// name and fields as `#[llm_call]`, usage recorded on the span, and the two GenAI
/// histograms recorded with freshly built attributes.
#[inline(never)]
#[tracing::instrument(
    name = "chat gpt-4o",
    skip_all,
    fields(
        otel.name = Empty,
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "gpt-4o",
        gen_ai.response.model = Empty,
        gen_ai.response.id = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.cache_creation.input_tokens = Empty,
        gen_ai.usage.reasoning.output_tokens = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
)]
pub fn hand_llm_call(hand: &HandInstruments, prompt: &str) -> Result<Reply, BenchError> {
    let start = Instant::now();
    let result = answer(prompt);
    let elapsed = start.elapsed().as_secs_f64();
    let span = tracing::Span::current();
    let mut attrs = vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o"),
    ];
    match &result {
        Ok(reply) => {
            span.record("gen_ai.usage.input_tokens", reply.input_tokens as i64);
            span.record("gen_ai.usage.output_tokens", reply.output_tokens as i64);
            hand.duration.record(elapsed, &attrs);
            attrs.push(KeyValue::new("gen_ai.token.type", "input"));
            hand.tokens.record(reply.input_tokens, &attrs);
            attrs.pop();
            attrs.push(KeyValue::new("gen_ai.token.type", "output"));
            hand.tokens.record(reply.output_tokens, &attrs);
        }
        Err(e) => {
            span.record("error.type", "BenchError");
            span.record("otel.status_code", "error");
            span.record("otel.status_description", e.to_string());
            attrs.push(KeyValue::new("error.type", "BenchError"));
            hand.duration.record(elapsed, &attrs);
        }
    }
    result
}

/// What a user writes today for one tool step: `#[instrument]` with the fields of
/// `#[agent_step(kind = tool)]`, and the step duration, calls and in-flight
/// instruments with freshly built attributes.
#[inline(never)]
#[tracing::instrument(
    name = "execute_tool web_search",
    skip_all,
    fields(
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = "web_search",
        gen_ai.tool.type = "function",
        gen_ai.tool.description = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
)]
pub fn hand_step(hand: &HandInstruments, query: &str) -> Result<usize, BenchError> {
    let base = || {
        vec![
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("otel_agent.step.name", "web_search"),
        ]
    };
    hand.step_active.add(1, &base());
    let start = Instant::now();
    let result = answer(query).map(|r| r.input_tokens as usize);
    let elapsed = start.elapsed().as_secs_f64();
    let mut attrs = base();
    hand.step_active.add(-1, &attrs);
    match &result {
        Ok(_) => attrs.push(KeyValue::new("otel_agent.step.outcome", "success")),
        Err(e) => {
            let span = tracing::Span::current();
            span.record("error.type", "BenchError");
            span.record("otel.status_code", "error");
            span.record("otel.status_description", e.to_string());
            attrs.push(KeyValue::new("otel_agent.step.outcome", "failure"));
            attrs.push(KeyValue::new("error.type", "BenchError"));
        }
    }
    hand.step_duration.record(elapsed, &attrs);
    hand.step_calls.add(1, &attrs);
    result
}

// ------------------------------------------------- metric recording alone

/// Attributes of a call site, built once.
static SITE_ATTRS: LazyLock<[KeyValue; 3]> = LazyLock::new(|| {
    [
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o"),
    ]
});

/// One histogram record at a call site whose attributes are static and built once.
#[inline(never)]
pub fn record_static_site(hand: &HandInstruments, seconds: f64) {
    hand.duration.record(seconds, &*SITE_ATTRS);
}

/// The histogram of `SITE_ATTRS`, bound once: what the runtime records into at
/// a call site whose attributes do not change (the site keeps its bound series).
static BOUND_SITE: OnceLock<BoundHistogram<f64>> = OnceLock::new();

/// One record into a series bound once, as `#[llm_call]` records each of its
/// measurements on success (the runtime also takes one uncontended read lock per
/// call to find the site's series, shared by the call's three records).
#[inline(never)]
pub fn record_bound_site(hand: &HandInstruments, seconds: f64) {
    BOUND_SITE
        .get_or_init(|| hand.duration.bind(&*SITE_ATTRS))
        .record(seconds);
}

/// The step-calls counter of `SITE_ATTRS`, bound once.
static BOUND_COUNTER: OnceLock<BoundCounter<u64>> = OnceLock::new();

/// One add to a counter series bound once, as `#[agent_step]` counts a
/// successful step (the SDK keeps a counter's sum in an atomic, with no lock).
#[inline(never)]
pub fn add_bound_counter(hand: &HandInstruments, n: u64) {
    BOUND_COUNTER
        .get_or_init(|| hand.step_calls.bind(&*SITE_ATTRS))
        .add(n);
}

/// The same record with the attributes built afresh, as most users do.
#[inline(never)]
pub fn record_fresh_vec(hand: &HandInstruments, seconds: f64) {
    let attrs = vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o"),
    ];
    hand.duration.record(seconds, &attrs);
}

// ------------------------------------------------------------- the pipeline

/// A span exporter that drops every batch, counting the spans it was handed.
#[derive(Debug, Clone, Default)]
pub struct NoopSpanExporter {
    pub exported: Arc<AtomicU64>,
}

impl SpanExporter for NoopSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.exported
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// A metric exporter that drops everything it is handed.
#[derive(Debug, Clone, Default)]
pub struct NoopMetricExporter;

impl PushMetricExporter for NoopMetricExporter {
    async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// The installed pipeline and what its exporter saw.
pub struct Enabled {
    pub telemetry: Telemetry,
    pub exported: Arc<AtomicU64>,
}

/// "Telemetry disabled" as a user gets it: `OTEL_SDK_DISABLED=true` makes `init()`
/// install nothing, so there is no subscriber at all.
pub fn install_disabled() -> Telemetry {
    let telemetry = otel_agent_runtime::builder()
        .env([("OTEL_SDK_DISABLED", "true")])
        .init()
        .expect("disabled telemetry");
    assert!(!telemetry.is_enabled());
    telemetry
}

/// "Telemetry enabled": `init()` with the standard pipeline (global subscriber with
/// the runtime's layer, global meter provider), spans through the SDK's default
/// `BatchSpanProcessor` into an exporter that drops them, metrics aggregated by a
/// periodic reader whose exporter drops them. The process environment is not read
/// (`.env([])`), so that no `OTEL_*` variable changes what is measured.
///
/// The hand-written cases record their own GenAI metrics, as code without the
/// attributes does; completing their spans too (`complete_library_spans`,
/// on by default) would record those metrics twice and bill the baseline for
/// it. It changes nothing for the attributes' own calls: their spans are
/// never library spans, and the same checks run on them either way.
pub fn install_enabled() -> Enabled {
    let exporter = NoopSpanExporter::default();
    let exported = exporter.exported.clone();
    let telemetry = otel_agent_runtime::builder()
        .env(std::iter::empty::<(String, String)>())
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::None)
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_metric_exporter(NoopMetricExporter)
        .complete_library_spans(false)
        .init()
        .expect("telemetry");
    assert!(telemetry.is_enabled());
    Enabled {
        telemetry,
        exported,
    }
}

/// Polls `future` to completion on this thread with a waker that does nothing.
/// The cases measure the future itself: `futures::executor::block_on` would add
/// its thread-local bookkeeping, and how much of that the compiler inlines into
/// the poll loop depends on the future's size rather than on its cost.
#[inline(always)]
pub fn run<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
