//! Criterion benchmarks of the per-call overhead of `#[agent_step]` and
//! `#[llm_call]` (issue 6). The one-table report with ratios and targets is
//! `cargo run --release --example overhead`; this is the same code under
//! criterion's statistics.
//!
//! ```sh
//! cargo bench --bench overhead                       # ~1.5 min on 2 cores
//! cargo bench --bench overhead -- enabled/           # one group
//! ```
//!
//! The `disabled` group runs first, while no `tracing` subscriber has ever existed
//! in the process (`OTEL_SDK_DISABLED=true` makes `init()` install nothing). The
//! `enabled` and `metrics` groups then install the pipeline once, for good:
//! `init()` with spans through the SDK's `BatchSpanProcessor` into an exporter that
//! drops them, and metrics aggregated by a periodic reader whose exporter drops
//! them. The hand-written equivalent runs through that same pipeline.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use support::*;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .noise_threshold(0.03)
}

fn disabled(c: &mut Criterion) {
    let _telemetry = install_disabled();
    let hand = HandInstruments::from_global();
    let mut g = c.benchmark_group("disabled");
    g.bench_function("plain_call", |b| b.iter(|| plain_call(black_box(PROMPT))));
    g.bench_function("llm_call", |b| b.iter(|| macro_llm_call(black_box(PROMPT))));
    g.bench_function("plain_call_full_reply", |b| {
        b.iter(|| plain_call_full(black_box(PROMPT)))
    });
    g.bench_function("llm_call_full_reply", |b| {
        b.iter(|| macro_llm_call_full(black_box(PROMPT)))
    });
    g.bench_function("hand_written_llm", |b| {
        b.iter(|| hand_llm_call(&hand, black_box(PROMPT)))
    });
    g.bench_function("plain_step", |b| b.iter(|| plain_step(black_box(PROMPT))));
    g.bench_function("agent_step", |b| b.iter(|| macro_step(black_box(PROMPT))));
    g.bench_function("hand_written_step", |b| {
        b.iter(|| hand_step(&hand, black_box(PROMPT)))
    });
    g.bench_function("plain_call_async", |b| {
        b.iter(|| run(plain_call_async(black_box(PROMPT))))
    });
    g.bench_function("llm_call_async", |b| {
        b.iter(|| run(macro_llm_call_async(black_box(PROMPT))))
    });
    g.finish();
}

/// The enabled pipeline and the hand-written instruments made from it, installed
/// on first use and kept for the rest of the process.
fn pipeline() -> &'static (Enabled, HandInstruments) {
    static PIPELINE: OnceLock<(Enabled, HandInstruments)> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let enabled = install_enabled();
        (enabled, HandInstruments::from_global())
    })
}

fn enabled(c: &mut Criterion) {
    let (_, hand) = pipeline();
    let mut g = c.benchmark_group("enabled");
    g.bench_function("llm_call", |b| b.iter(|| macro_llm_call(black_box(PROMPT))));
    g.bench_function("llm_call_full_reply", |b| {
        b.iter(|| macro_llm_call_full(black_box(PROMPT)))
    });
    g.bench_function("hand_written_llm", |b| {
        b.iter(|| hand_llm_call(hand, black_box(PROMPT)))
    });
    g.bench_function("agent_step", |b| b.iter(|| macro_step(black_box(PROMPT))));
    g.bench_function("hand_written_step", |b| {
        b.iter(|| hand_step(hand, black_box(PROMPT)))
    });
    g.bench_function("llm_call_async", |b| {
        b.iter(|| run(macro_llm_call_async(black_box(PROMPT))))
    });
    g.finish();
}

fn metrics(c: &mut Criterion) {
    let (_, hand) = pipeline();
    let mut g = c.benchmark_group("metrics");
    g.bench_function("record_bound_site", |b| {
        b.iter(|| record_bound_site(hand, black_box(0.25)))
    });
    g.bench_function("add_bound_counter", |b| {
        b.iter(|| add_bound_counter(hand, black_box(1)))
    });
    g.bench_function("record_static_attributes", |b| {
        b.iter(|| record_static_site(hand, black_box(0.25)))
    });
    g.bench_function("record_fresh_vec", |b| {
        b.iter(|| record_fresh_vec(hand, black_box(0.25)))
    });
    g.finish();
}

criterion_group! {
    name = overhead;
    config = config();
    targets = disabled, enabled, metrics
}
criterion_main!(overhead);
