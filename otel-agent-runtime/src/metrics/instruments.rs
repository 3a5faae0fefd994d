//! The metric instruments, created once per telemetry pipeline with the semantic
//! conventions' names, units and bucket boundaries, their attribute values cut
//! to [`MAX_METRIC_VALUE_BYTES`] on the way in.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::semconv;
use opentelemetry::metrics::{
    BoundCounter, BoundHistogram, BoundUpDownCounter, Counter, Histogram, Meter, UpDownCounter,
};
use opentelemetry::{KeyValue, Value};

/// Gives each pipeline's instruments an identity that outlives their address.
fn next_pipeline_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[derive(Debug)]
pub(crate) struct Instruments {
    /// Tells this pipeline's instruments from another's in call sites' caches.
    pub id: u64,
    pub llm_duration: Bounded<Histogram<f64>>,
    pub token_usage: Bounded<Histogram<u64>>,
    pub time_to_first_chunk: Bounded<Histogram<f64>>,
    pub step_duration: Bounded<Histogram<f64>>,
    pub step_calls: Bounded<Counter<u64>>,
    pub step_active: Bounded<UpDownCounter<i64>>,
    pub llm_cost: Bounded<Counter<f64>>,
    pub llm_unpriced_calls: Bounded<Counter<u64>>,
    pub evaluation_score: Bounded<Histogram<f64>>,
    /// Kept so that instruments made later (MCP's, on first use) come from
    /// this pipeline's provider rather than the global one.
    #[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
    pub meter: Meter,
}

impl Instruments {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            id: next_pipeline_id(),
            llm_duration: Bounded(
                meter
                    .f64_histogram(semconv::GEN_AI_CLIENT_OPERATION_DURATION)
                    .with_unit("s")
                    .with_description("GenAI operation duration")
                    .with_boundaries(DURATION_BUCKETS.to_vec())
                    .build(),
            ),
            token_usage: Bounded(
                meter
                    .u64_histogram(semconv::GEN_AI_CLIENT_TOKEN_USAGE)
                    .with_unit("{token}")
                    .with_description("Number of input and output tokens used")
                    .with_boundaries(TOKEN_BUCKETS.to_vec())
                    .build(),
            ),
            time_to_first_chunk: Bounded(
                meter
                    .f64_histogram(semconv::GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
                    .with_unit("s")
                    .with_description("Time to receive the first chunk of a streamed response")
                    .with_boundaries(DURATION_BUCKETS.to_vec())
                    .build(),
            ),
            step_duration: Bounded(
                meter
                    .f64_histogram(STEP_DURATION)
                    .with_unit("s")
                    .with_description("Duration of agent steps (agents, tools, workflows)")
                    .with_boundaries(STEP_BUCKETS.to_vec())
                    .build(),
            ),
            step_calls: Bounded(
                meter
                    .u64_counter(STEP_CALLS)
                    .with_unit("{step}")
                    .with_description("Finished agent steps, by outcome")
                    .build(),
            ),
            step_active: Bounded(
                meter
                    .i64_up_down_counter(STEP_ACTIVE)
                    .with_unit("{step}")
                    .with_description("Agent steps in flight")
                    .build(),
            ),
            // The unit in braces is an annotation: Prometheus names stay
            // `otel_agent_llm_cost_usd_total`, through a Collector or by scrape.
            llm_cost: Bounded(
                meter
                    .f64_counter(LLM_COST)
                    .with_unit("{USD}")
                    .with_description("Cost of model calls, from the configured price table")
                    .build(),
            ),
            llm_unpriced_calls: Bounded(
                meter
                    .u64_counter(LLM_UNPRICED_CALLS)
                    .with_unit("{call}")
                    .with_description("Model calls with usage but no price in the price table")
                    .build(),
            ),
            evaluation_score: Bounded(
                meter
                    .f64_histogram(EVALUATION_SCORE)
                    .with_unit("{score}")
                    .with_description("Evaluation scores of steps and calls")
                    .with_boundaries(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
                    .build(),
            ),
            meter: meter.clone(),
        }
    }
}

/// An instrument whose attribute values are cut to [`MAX_METRIC_VALUE_BYTES`]
/// on the way in, so that every recording path is bounded by construction.
#[derive(Debug, Clone)]
pub(crate) struct Bounded<I>(pub I);

impl<T> Bounded<Histogram<T>> {
    pub(crate) fn record(&self, value: T, attributes: &[KeyValue]) {
        with_bounded_values(attributes, |a| self.0.record(value, a));
    }

    pub(crate) fn bind(&self, attributes: &[KeyValue]) -> BoundHistogram<T> {
        with_bounded_values(attributes, |a| self.0.bind(a))
    }
}

impl<T> Bounded<Counter<T>> {
    pub(crate) fn add(&self, value: T, attributes: &[KeyValue]) {
        with_bounded_values(attributes, |a| self.0.add(value, a));
    }

    pub(crate) fn bind(&self, attributes: &[KeyValue]) -> BoundCounter<T> {
        with_bounded_values(attributes, |a| self.0.bind(a))
    }
}

impl<T> Bounded<UpDownCounter<T>> {
    pub(crate) fn add(&self, value: T, attributes: &[KeyValue]) {
        with_bounded_values(attributes, |a| self.0.add(value, a));
    }

    pub(crate) fn bind(&self, attributes: &[KeyValue]) -> BoundUpDownCounter<T> {
        with_bounded_values(attributes, |a| self.0.bind(a))
    }
}

fn too_long(kv: &KeyValue) -> bool {
    matches!(&kv.value, Value::String(text) if text.as_str().len() > MAX_METRIC_VALUE_BYTES)
}

/// Calls `record` with `attributes`, copied and cut only when a value is too
/// long (never, for the names a program writes itself).
fn with_bounded_values<R>(attributes: &[KeyValue], record: impl FnOnce(&[KeyValue]) -> R) -> R {
    if !attributes.iter().any(too_long) {
        return record(attributes);
    }
    let cut: Vec<KeyValue> = attributes
        .iter()
        .map(|kv| {
            if !too_long(kv) {
                return kv.clone();
            }
            let text = kv.value.as_str();
            let mut end = MAX_METRIC_VALUE_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            KeyValue::new(kv.key.clone(), text[..end].to_owned())
        })
        .collect();
    record(&cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_on_a_character_boundary_and_short_ones_passed_through() {
        let long = "é".repeat(1000);
        let attributes = [
            KeyValue::new("model", long),
            KeyValue::new("provider", "openai"),
            KeyValue::new("count", 3_i64),
        ];
        let mut seen = Vec::new();
        with_bounded_values(&attributes, |a| seen = a.to_vec());
        let model = seen[0].value.as_str();
        assert_eq!(model.len(), MAX_METRIC_VALUE_BYTES);
        assert!(model.chars().all(|c| c == 'é'));
        assert_eq!(seen[1..], attributes[1..]);

        let short = [KeyValue::new("model", "gpt-4o")];
        let mut passed = None;
        with_bounded_values(&short, |a| passed = Some(a.as_ptr()));
        assert_eq!(passed, Some(short.as_ptr()), "short values are not copied");
    }
}
