//! The embedded default: with no collector configured, finished spans are kept in
//! memory and printed at exit as a trace tree and a run summary.
//!
//! Memory is bounded: the tree keeps at most [`MAX_TREE_SPANS`] spans, while the
//! summary aggregates every span (one duration sample per step call).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::semconv;
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry::Value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Spans kept for the printed tree; later spans only count in the summary.
pub const MAX_TREE_SPANS: usize = 2_000;
/// Traces printed in full.
pub const MAX_TREE_TRACES: usize = 10;

#[derive(Debug, Default)]
struct StepStats {
    durations: Vec<f64>,
    failures: u64,
}

#[derive(Debug, Default)]
struct ModelStats {
    calls: u64,
    failures: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: Option<f64>,
    durations: Vec<f64>,
}

#[derive(Debug, Default)]
struct State {
    tree: Vec<SpanData>,
    total_spans: u64,
    steps: BTreeMap<String, StepStats>,
    models: BTreeMap<(String, String), ModelStats>,
}

/// Collects spans for the console; cloned into the exporter and kept by `Telemetry`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsoleSink {
    state: Arc<Mutex<State>>,
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

fn attr_u64(span: &SpanData, key: &str) -> Option<u64> {
    match attr(span, key)? {
        Value::I64(v) => u64::try_from(*v).ok(),
        Value::String(s) => s.as_str().parse().ok(),
        _ => None,
    }
}

fn duration_of(span: &SpanData) -> f64 {
    span.end_time
        .duration_since(span.start_time)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

fn is_error(span: &SpanData) -> bool {
    matches!(span.status, Status::Error { .. })
}

impl ConsoleSink {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind;
        // the console keeps printing what it has.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ingest(&self, batch: Vec<SpanData>) {
        let mut state = self.lock();
        for span in batch {
            state.total_spans += 1;
            let operation = attr_str(&span, semconv::GEN_AI_OPERATION_NAME);
            let failed = is_error(&span);
            let secs = duration_of(&span);
            match operation.as_deref() {
                // Any call to a model, the attributes' or a library's.
                // A call another call nested in it counted (its usage left
                // under the roll-up keys) is that call, not another one.
                Some(op)
                    if crate::export_guard::is_inference_operation(op)
                        && attr(&span, crate::export_guard::ROLLUP_INPUT_TOKENS).is_none() =>
                {
                    let provider =
                        attr_str(&span, semconv::GEN_AI_PROVIDER_NAME).unwrap_or_default();
                    let model = attr_str(&span, semconv::GEN_AI_REQUEST_MODEL).unwrap_or_default();
                    let stats = state.models.entry((provider, model)).or_default();
                    stats.calls += 1;
                    stats.failures += u64::from(failed);
                    stats.input_tokens +=
                        attr_u64(&span, semconv::GEN_AI_USAGE_INPUT_TOKENS).unwrap_or(0);
                    stats.output_tokens +=
                        attr_u64(&span, semconv::GEN_AI_USAGE_OUTPUT_TOKENS).unwrap_or(0);
                    stats.durations.push(secs);
                    if let Some(Value::F64(cost)) = attr(&span, crate::export_guard::COST_ATTRIBUTE)
                    {
                        *stats.cost_usd.get_or_insert(0.0) += cost;
                    }
                }
                Some("invoke_agent" | "execute_tool" | "invoke_workflow") => {
                    let stats = state.steps.entry(span.name.to_string()).or_default();
                    stats.durations.push(secs);
                    stats.failures += u64::from(failed);
                }
                _ => {}
            }
            if state.tree.len() < MAX_TREE_SPANS {
                state.tree.push(span);
            }
        }
    }

    /// The trace tree and the run summary, as printed at exit.
    pub(crate) fn render(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        render_tree(&state, &mut out);
        render_summary(&state, &mut out);
        out
    }
}

impl SpanExporter for ConsoleSink {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.ingest(batch);
        std::future::ready(Ok(()))
    }
}

/// `1.23 s`, `456 ms`, `0.8 ms`.
pub(crate) fn format_secs(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 0.01 {
        format!("{:.0} ms", secs * 1e3)
    } else {
        format!("{:.1} ms", secs * 1e3)
    }
}

fn details(span: &SpanData) -> String {
    let mut parts: Vec<String> = Vec::new();
    let inference = attr_str(span, semconv::GEN_AI_OPERATION_NAME)
        .is_some_and(|op| crate::export_guard::is_inference_operation(&op));
    if inference {
        if let Some(provider) = attr_str(span, semconv::GEN_AI_PROVIDER_NAME) {
            parts.push(provider);
        }
        if let Some(model) = attr_str(span, semconv::GEN_AI_RESPONSE_MODEL) {
            if attr_str(span, semconv::GEN_AI_REQUEST_MODEL).as_deref() != Some(model.as_str()) {
                parts.push(format!("answered by {model}"));
            }
        }
        let input = attr_u64(span, semconv::GEN_AI_USAGE_INPUT_TOKENS);
        let output = attr_u64(span, semconv::GEN_AI_USAGE_OUTPUT_TOKENS);
        if input.is_some() || output.is_some() {
            let show = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
            parts.push(format!("tokens {} in / {} out", show(input), show(output)));
        }
        if let Some(Value::Array(reasons)) = attr(span, semconv::GEN_AI_RESPONSE_FINISH_REASONS) {
            parts.push(format!("finish {reasons}"));
        }
    }
    if let Status::Error { description } = &span.status {
        let class = attr_str(span, semconv::ERROR_TYPE).unwrap_or_else(|| "error".to_owned());
        if description.is_empty() || *description == class {
            parts.push(format!("ERROR {class}"));
        } else {
            parts.push(format!("ERROR {class}: {description}"));
        }
    }
    parts.join(" | ")
}

fn render_tree(state: &State, out: &mut String) {
    let mut by_trace: Vec<(TraceId, Vec<&SpanData>)> = Vec::new();
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    for span in &state.tree {
        let id = span.span_context.trace_id();
        let slot = *index.entry(id).or_insert_with(|| {
            by_trace.push((id, Vec::new()));
            by_trace.len() - 1
        });
        by_trace[slot].1.push(span);
    }
    by_trace.sort_by_key(|(_, spans)| spans.iter().map(|s| s.start_time).min());
    let shown = by_trace.len().min(MAX_TREE_TRACES);
    for (trace_id, spans) in by_trace.iter().take(shown) {
        let ids: HashMap<SpanId, &SpanData> = spans
            .iter()
            .map(|s| (s.span_context.span_id(), *s))
            .collect();
        let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
        let mut roots: Vec<&SpanData> = Vec::new();
        for span in spans {
            if ids.contains_key(&span.parent_span_id) {
                children.entry(span.parent_span_id).or_default().push(span);
            } else {
                roots.push(span);
            }
        }
        for list in children.values_mut() {
            list.sort_by_key(|s| s.start_time);
        }
        roots.sort_by_key(|s| s.start_time);
        let _ = writeln!(out, "trace {trace_id}");
        let last = roots.len().saturating_sub(1);
        for (i, root) in roots.iter().enumerate() {
            render_span(root, &children, "", i == last, out);
        }
        out.push('\n');
    }
    if by_trace.len() > shown {
        let _ = writeln!(
            out,
            "... {} more traces not shown\n",
            by_trace.len() - shown
        );
    }
    if state.total_spans > state.tree.len() as u64 {
        let _ = writeln!(
            out,
            "... the tree shows the first {} of {} spans; the summary counts them all\n",
            state.tree.len(),
            state.total_spans
        );
    }
}

fn render_span(
    span: &SpanData,
    children: &HashMap<SpanId, Vec<&SpanData>>,
    prefix: &str,
    last: bool,
    out: &mut String,
) {
    let branch = if last { "└─ " } else { "├─ " };
    let detail = details(span);
    let _ = write!(
        out,
        "{prefix}{branch}{}  {}",
        span.name,
        format_secs(duration_of(span))
    );
    if !detail.is_empty() {
        let _ = write!(out, "  [{detail}]");
    }
    out.push('\n');
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    if let Some(kids) = children.get(&span.span_context.span_id()) {
        let end = kids.len().saturating_sub(1);
        for (i, kid) in kids.iter().enumerate() {
            render_span(kid, children, &child_prefix, i == end, out);
        }
    }
}

/// The nearest-rank percentile of unsorted samples.
pub(crate) fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn render_summary(state: &State, out: &mut String) {
    let _ = writeln!(out, "run summary: {} spans", state.total_spans);
    if !state.steps.is_empty() {
        let width = state
            .steps
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(4);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>6}  {:>9}  {:>9}  {:>8}",
            "step", "count", "p50", "p90", "failures"
        );
        for (name, stats) in &state.steps {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>6}  {:>9}  {:>9}  {:>8}",
                name,
                stats.durations.len(),
                format_secs(percentile(&stats.durations, 50.0)),
                format_secs(percentile(&stats.durations, 90.0)),
                stats.failures
            );
        }
    }
    if !state.models.is_empty() {
        let label = |(provider, model): &(String, String)| format!("{provider} {model}");
        let width = state
            .models
            .keys()
            .map(|k| label(k).len())
            .max()
            .unwrap_or(0)
            .max(5);
        // The cost column appears only when a price table priced something.
        let priced = state.models.values().any(|m| m.cost_usd.is_some());
        let _ = write!(
            out,
            "  {:<width$}  {:>6}  {:>9}  {:>10}  {:>11}  {:>8}",
            "model", "calls", "p50", "input tok", "output tok", "failures"
        );
        out.push_str(if priced { "  cost (USD)\n" } else { "\n" });
        for (key, stats) in &state.models {
            let _ = write!(
                out,
                "  {:<width$}  {:>6}  {:>9}  {:>10}  {:>11}  {:>8}",
                label(key),
                stats.calls,
                format_secs(percentile(&stats.durations, 50.0)),
                stats.input_tokens,
                stats.output_tokens,
                stats.failures
            );
            match (priced, stats.cost_usd) {
                (false, _) => out.push('\n'),
                (true, Some(cost)) => {
                    let _ = writeln!(out, "  {cost:>10.4}");
                }
                (true, None) => out.push_str("    unpriced\n"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 5.0);
        assert_eq!(percentile(&samples, 90.0), 9.0);
        assert_eq!(percentile(&[3.0], 90.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_secs(1.234), "1.23 s");
        assert_eq!(format_secs(0.4561), "456 ms");
        assert_eq!(format_secs(0.0008), "0.8 ms");
    }
}
