//! The embedded default: with no collector configured, finished spans are
//! summarised in memory and printed at exit as a trace tree and a run summary.
//!
//! # Memory bound
//!
//! What the console keeps does not grow with the run's length or with the number
//! of distinct names it sees, so a program can run for weeks on it:
//! - the summary has at most [`MAX_ROWS`] step rows and [`MAX_ROWS`] model rows,
//!   plus one "other" row each that sums every later name; a row's label is at
//!   most [`MAX_LABEL_CHARS`] characters;
//! - each row's durations sit in a [`LogHistogram`] of [`HISTOGRAM_BUCKETS`]
//!   counters (5.5 KB) whatever the call count, read back as percentiles within
//!   [`RELATIVE_ERROR`] (2 %) of the exact nearest-rank value;
//! - the tree keeps at most [`MAX_TREE_SPANS`] spans, each reduced to its ids,
//!   times, a name of at most [`MAX_NAME_CHARS`] characters and a detail line of
//!   at most [`MAX_DETAIL_CHARS`]; later spans count in the summary only, and the
//!   report says how many the tree left out.
//!
//! That is at most 130 histograms (about 720 KB), 130 labels of at most 256 bytes
//! and 2,000 tree spans of at most 1.6 KB each (360 characters of up to 4 bytes,
//! plus ids and times): under 4 MB in the worst case, a few hundred KB in
//! practice, whatever the run's length.
//!
//! # Any input prints
//!
//! Every string the console prints (span, agent, tool and model names, attribute
//! values, error messages) passes [`shown`]: control characters and the Unicode
//! bidirectional and line-separator controls are escaped (`\n`, `\x1b`,
//! `\u{202e}`), so no name can move the cursor, recolour or retitle the terminal,
//! and long values are cut with `…`, so every column width stays small. Counts
//! saturate instead of overflowing, and a panic while reading one span (there
//! should be none) loses that span only, never the console.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::semconv;
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry::Value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Spans kept for the printed tree; later spans only count in the summary.
pub const MAX_TREE_SPANS: usize = 2_000;
/// Traces printed in full.
pub const MAX_TREE_TRACES: usize = 10;
/// Nesting levels printed in the tree; deeper spans are counted in one line.
pub const MAX_TREE_DEPTH: usize = 32;
/// Rows of each summary table (steps, models); later names share an "other" row.
pub const MAX_ROWS: usize = 64;
/// Characters of a summary row's label (step name, or provider and model).
pub const MAX_LABEL_CHARS: usize = 64;
/// Characters of a span name in the tree, and of one attribute value or error
/// message in its detail.
pub const MAX_NAME_CHARS: usize = 120;
/// Characters of a tree line's detail (provider, tokens, finish reasons, error).
pub const MAX_DETAIL_CHARS: usize = 240;

/// The label of the steps' "other" row.
const OTHER_STEPS: &str = "(other steps)";
/// The label of the models' "other" row.
const OTHER_MODELS: &str = "(other models)";

/// Relative error of the percentiles: an estimate is within 2 % of the exact
/// nearest-rank value, for durations from [`HISTOGRAM_MIN_SECS`] to
/// [`HISTOGRAM_MAX_SECS`].
pub const RELATIVE_ERROR: f64 = 0.02;
/// Smallest duration told apart from zero (1 µs); shorter ones share a bucket.
pub const HISTOGRAM_MIN_SECS: f64 = 1e-6;
/// Largest duration with the stated error (10⁶ s, 11.6 days); longer ones share
/// the last bucket.
pub const HISTOGRAM_MAX_SECS: f64 = 1e6;
/// Counters in every [`LogHistogram`]: one for `[0, 1 µs]`, then one per factor
/// `GAMMA` up to [`HISTOGRAM_MAX_SECS`] (`ln(10¹²) / ln(GAMMA)` = 690.7).
pub const HISTOGRAM_BUCKETS: usize = 692;
/// Ratio of a bucket's upper to lower bound: `(1 + α) / (1 − α)`, α = 2 %.
const GAMMA: f64 = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR);

/// Durations in a fixed array of logarithmic buckets (the DDSketch mapping):
/// bucket `i ≥ 1` holds `(MIN·γ^(i−1), MIN·γ^i]` and reads back as
/// `2·MIN·γ^i / (γ + 1)`, within [`RELATIVE_ERROR`] of every value it holds.
/// Its size is [`HISTOGRAM_BUCKETS`] `u64`s whatever is recorded.
#[derive(Debug, Clone)]
pub(crate) struct LogHistogram {
    buckets: Box<[u64]>,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; HISTOGRAM_BUCKETS].into_boxed_slice(),
            count: 0,
            min: f64::INFINITY,
            max: 0.0,
        }
    }
}

impl LogHistogram {
    fn bucket_of(secs: f64) -> usize {
        if secs.is_nan() || secs <= HISTOGRAM_MIN_SECS {
            return 0;
        }
        // Longer durations (and infinity) share the last bucket.
        let secs = secs.min(HISTOGRAM_MAX_SECS);
        let index = ((secs / HISTOGRAM_MIN_SECS).ln() / GAMMA.ln()).ceil();
        (index as usize).clamp(1, HISTOGRAM_BUCKETS - 1)
    }

    fn value_of(bucket: usize) -> f64 {
        if bucket == 0 {
            return HISTOGRAM_MIN_SECS;
        }
        let exponent = i32::try_from(bucket).unwrap_or(i32::MAX);
        2.0 * HISTOGRAM_MIN_SECS * GAMMA.powi(exponent) / (GAMMA + 1.0)
    }

    /// Counts one duration (any `f64`: negative and NaN count as zero).
    pub(crate) fn record(&mut self, secs: f64) {
        let secs = if secs.is_nan() { 0.0 } else { secs.max(0.0) };
        let bucket = &mut self.buckets[Self::bucket_of(secs)];
        *bucket = bucket.saturating_add(1);
        self.count = self.count.saturating_add(1);
        self.min = self.min.min(secs);
        self.max = self.max.max(secs);
    }

    /// Durations recorded (saturating at `u64::MAX`).
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Counters held: always [`HISTOGRAM_BUCKETS`].
    #[cfg(test)]
    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The `p`-th percentile (0 to 100, nearest rank), within [`RELATIVE_ERROR`]
    /// of the exact one; 0 when nothing was recorded.
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let p = if p.is_nan() {
            50.0
        } else {
            p.clamp(0.0, 100.0)
        };
        // `as` saturates; the clamp keeps the rank in 1..=count.
        let rank = ((p / 100.0) * self.count as f64).ceil() as u64;
        let rank = rank.clamp(1, self.count);
        // The extremes are kept exactly.
        if rank == 1 {
            return self.min;
        }
        if rank == self.count {
            return self.max;
        }
        let mut seen = 0_u64;
        for (bucket, n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                // Never outside what was seen.
                return Self::value_of(bucket).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[derive(Debug, Default)]
struct StepStats {
    durations: LogHistogram,
    failures: u64,
}

#[derive(Debug, Default)]
struct ModelStats {
    failures: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: Option<f64>,
    durations: LogHistogram,
}

/// At most [`MAX_ROWS`] named rows; every later name adds to `other`.
#[derive(Debug)]
struct Rows<S> {
    named: BTreeMap<String, S>,
    other: Option<S>,
}

impl<S> Default for Rows<S> {
    fn default() -> Self {
        Self {
            named: BTreeMap::new(),
            other: None,
        }
    }
}

impl<S: Default> Rows<S> {
    fn row(&mut self, mut label: String) -> &mut S {
        if self.named.contains_key(&label) || self.named.len() < MAX_ROWS {
            label.shrink_to_fit();
            return self.named.entry(label).or_default();
        }
        self.other.get_or_insert_with(S::default)
    }

    fn is_empty(&self) -> bool {
        self.named.is_empty() && self.other.is_none()
    }

    /// Named rows in label order, then the "other" row.
    fn iter<'a>(&'a self, other: &'a str) -> impl Iterator<Item = (&'a str, &'a S)> {
        self.named
            .iter()
            .map(|(label, stats)| (label.as_str(), stats))
            .chain(self.other.as_ref().map(|stats| (other, stats)))
    }
}

/// What the tree keeps of a span: ids, times and the text already made safe.
#[derive(Debug)]
struct TreeSpan {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: SpanId,
    start: SystemTime,
    secs: f64,
    name: String,
    detail: String,
}

#[derive(Debug, Default)]
struct State {
    tree: Vec<TreeSpan>,
    total_spans: u64,
    /// Spans the console could not read (an internal error; there should be none).
    unreadable: u64,
    /// Spans the queue in front of the console dropped (it was full).
    dropped: u64,
    steps: Rows<StepStats>,
    models: Rows<ModelStats>,
}

#[cfg(test)]
impl State {
    /// The heap the state holds, counted from capacities.
    fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let histogram = HISTOGRAM_BUCKETS * size_of::<u64>();
        let rows = |labels: &mut dyn Iterator<Item = &String>, row: usize| {
            labels
                .map(|label| label.capacity() + row + histogram)
                .sum::<usize>()
                + row
                + histogram
        };
        self.tree.capacity() * size_of::<TreeSpan>()
            + self
                .tree
                .iter()
                .map(|s| s.name.capacity() + s.detail.capacity())
                .sum::<usize>()
            + rows(&mut self.steps.named.keys(), size_of::<StepStats>())
            + rows(&mut self.models.named.keys(), size_of::<ModelStats>())
    }
}

/// Collects spans for the console; cloned into the exporter and kept by `Telemetry`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsoleSink {
    state: Arc<Mutex<State>>,
}

/// `s` made safe to print and cut to `max_chars` characters: control characters
/// (C0, DEL, C1), the bidirectional controls and the line and paragraph
/// separators are escaped as `\n`, `\r`, `\t`, `\x1b` or `\u{202e}`; a longer
/// result ends with `…`. Only the characters shown are read.
pub(crate) fn shown(s: &str, max_chars: usize) -> String {
    shown_chars(s.chars(), max_chars)
}

fn shown_chars(chars: impl Iterator<Item = char>, max_chars: usize) -> String {
    let mut out = String::new();
    let mut used = 0_usize;
    let mut chars = chars.peekable();
    let mut piece = String::new();
    while let Some(c) = chars.next() {
        piece.clear();
        escape_into(c, &mut piece);
        let width = piece.chars().count();
        // Room for the `…` unless this is the last character.
        let room = if chars.peek().is_some() {
            max_chars.saturating_sub(1)
        } else {
            max_chars
        };
        if used.saturating_add(width) > room {
            if max_chars > 0 {
                out.push('…');
            }
            return out;
        }
        out.push_str(&piece);
        used += width;
    }
    out
}

fn escape_into(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_ascii_control() => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        // C1 controls (CSI, OSC, ...), bidirectional controls, line separators.
        c if c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
            )
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c) =>
        {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `s` cut to `max_chars` characters with `…`; `s` is already escaped.
fn cut(mut s: String, max_chars: usize) -> String {
    if let Some((end, _)) = s.char_indices().nth(max_chars.saturating_sub(1)) {
        if s[end..].chars().nth(1).is_some() {
            s.truncate(end);
            s.push('…');
        }
    }
    s
}

/// `s` without spare capacity, for what the console keeps.
fn kept(mut s: String) -> String {
    s.shrink_to_fit();
    s
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

/// A count attribute: a non-negative integer, a numeric string, or a finite
/// non-negative float (truncated; `as` saturates).
fn attr_u64(span: &SpanData, key: &str) -> Option<u64> {
    match attr(span, key)? {
        Value::I64(v) => u64::try_from(*v).ok(),
        Value::String(s) => s.as_str().trim().parse().ok(),
        Value::F64(v) if v.is_finite() && *v >= 0.0 => Some(*v as u64),
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

    /// Counts spans that never reached the console: the queue in front of it
    /// was full.
    pub(crate) fn count_dropped(&self, spans: u64) {
        let mut state = self.lock();
        state.dropped = state.dropped.saturating_add(spans);
    }

    fn ingest(&self, batch: Vec<SpanData>) {
        let mut state = self.lock();
        for span in batch {
            state.total_spans = state.total_spans.saturating_add(1);
            // Nothing here should panic; if something does, that span is lost
            // and counted, and the console (and its thread) carries on.
            let read = catch_unwind(AssertUnwindSafe(|| ingest_span(&mut state, &span)));
            if read.is_err() {
                state.unreadable = state.unreadable.saturating_add(1);
            }
        }
    }

    /// The trace tree and the run summary, as printed at exit.
    pub(crate) fn render(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        // Each part on its own: a failure in the tree never costs the summary.
        let mut tree = String::new();
        match catch_unwind(AssertUnwindSafe(|| render_tree(&state, &mut tree))) {
            Ok(()) => out.push_str(&tree),
            Err(_) => out.push_str("(the trace tree could not be printed)\n\n"),
        }
        let mut summary = String::new();
        match catch_unwind(AssertUnwindSafe(|| render_summary(&state, &mut summary))) {
            Ok(()) => out.push_str(&summary),
            Err(_) => {
                let _ = writeln!(
                    out,
                    "run summary: {} spans (the tables could not be printed)",
                    state.total_spans
                );
            }
        }
        out
    }
}

fn ingest_span(state: &mut State, span: &SpanData) {
    let operation = attr(span, semconv::GEN_AI_OPERATION_NAME).map(Value::as_str);
    let failed = is_error(span);
    let secs = duration_of(span);
    match operation.as_deref() {
        // Any call to a model, the attributes' or a library's.
        // A call another call nested in it counted (its usage left
        // under the roll-up keys) is that call, not another one.
        Some(op)
            if crate::export_guard::is_inference_operation(op)
                && attr(span, crate::attributes::ROLLUP_INPUT_TOKENS).is_none() =>
        {
            let provider = attr(span, semconv::GEN_AI_PROVIDER_NAME).map(Value::as_str);
            let model = attr(span, semconv::GEN_AI_REQUEST_MODEL).map(Value::as_str);
            let label = shown_chars(
                provider
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .chain(std::iter::once(' '))
                    .chain(model.as_deref().unwrap_or("").chars()),
                MAX_LABEL_CHARS,
            );
            let stats = state.models.row(label);
            stats.durations.record(secs);
            stats.failures = stats.failures.saturating_add(u64::from(failed));
            let input = attr_u64(span, semconv::GEN_AI_USAGE_INPUT_TOKENS).unwrap_or(0);
            let output = attr_u64(span, semconv::GEN_AI_USAGE_OUTPUT_TOKENS).unwrap_or(0);
            stats.input_tokens = stats.input_tokens.saturating_add(input);
            stats.output_tokens = stats.output_tokens.saturating_add(output);
            if let Some(Value::F64(cost)) = attr(span, crate::attributes::COST_USD) {
                if cost.is_finite() {
                    *stats.cost_usd.get_or_insert(0.0) += cost;
                }
            }
        }
        Some("invoke_agent" | "execute_tool" | "invoke_workflow") => {
            let stats = state.steps.row(shown(&span.name, MAX_LABEL_CHARS));
            stats.durations.record(secs);
            stats.failures = stats.failures.saturating_add(u64::from(failed));
        }
        _ => {}
    }
    if state.tree.len() < MAX_TREE_SPANS {
        state.tree.push(TreeSpan {
            trace_id: span.span_context.trace_id(),
            span_id: span.span_context.span_id(),
            parent_span_id: span.parent_span_id,
            start: span.start_time,
            secs,
            name: kept(shown(&span.name, MAX_NAME_CHARS)),
            detail: kept(details(span)),
        });
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

/// The tree line's detail, escaped and cut to [`MAX_DETAIL_CHARS`].
fn details(span: &SpanData) -> String {
    let value = |v: &str| shown(v, MAX_NAME_CHARS);
    let mut parts: Vec<String> = Vec::new();
    let inference = attr(span, semconv::GEN_AI_OPERATION_NAME)
        .is_some_and(|op| crate::export_guard::is_inference_operation(&op.as_str()));
    if inference {
        if let Some(provider) = attr_str(span, semconv::GEN_AI_PROVIDER_NAME) {
            parts.push(value(&provider));
        }
        if let Some(model) = attr_str(span, semconv::GEN_AI_RESPONSE_MODEL) {
            if attr_str(span, semconv::GEN_AI_REQUEST_MODEL).as_deref() != Some(model.as_str()) {
                parts.push(format!("answered by {}", value(&model)));
            }
        }
        let input = attr_u64(span, semconv::GEN_AI_USAGE_INPUT_TOKENS);
        let output = attr_u64(span, semconv::GEN_AI_USAGE_OUTPUT_TOKENS);
        if input.is_some() || output.is_some() {
            let show = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
            parts.push(format!("tokens {} in / {} out", show(input), show(output)));
        }
        if let Some(Value::Array(reasons)) = attr(span, semconv::GEN_AI_RESPONSE_FINISH_REASONS) {
            parts.push(format!("finish {}", value(&reasons.to_string())));
        }
    }
    if let Status::Error { description } = &span.status {
        let class = attr_str(span, semconv::ERROR_TYPE).unwrap_or_else(|| "error".to_owned());
        if description.is_empty() || *description == class {
            parts.push(format!("ERROR {}", value(&class)));
        } else {
            parts.push(format!("ERROR {}: {}", value(&class), value(description)));
        }
    }
    cut(parts.join(" | "), MAX_DETAIL_CHARS)
}

fn render_tree(state: &State, out: &mut String) {
    let mut by_trace: Vec<(TraceId, Vec<&TreeSpan>)> = Vec::new();
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    for span in &state.tree {
        let slot = *index.entry(span.trace_id).or_insert_with(|| {
            by_trace.push((span.trace_id, Vec::new()));
            by_trace.len() - 1
        });
        by_trace[slot].1.push(span);
    }
    by_trace.sort_by_key(|(_, spans)| spans.iter().map(|s| s.start).min());
    let shown_traces = by_trace.len().min(MAX_TREE_TRACES);
    for (trace_id, spans) in by_trace.iter().take(shown_traces) {
        let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
        let mut children: HashMap<SpanId, Vec<&TreeSpan>> = HashMap::new();
        let mut roots: Vec<&TreeSpan> = Vec::new();
        for span in spans {
            // A span naming itself as parent is a root, not a loop.
            if span.parent_span_id != span.span_id && ids.contains(&span.parent_span_id) {
                children.entry(span.parent_span_id).or_default().push(span);
            } else {
                roots.push(span);
            }
        }
        for list in children.values_mut() {
            list.sort_by_key(|s| s.start);
        }
        roots.sort_by_key(|s| s.start);
        let _ = writeln!(out, "trace {trace_id}");
        let last = roots.len().saturating_sub(1);
        for (i, root) in roots.iter().enumerate() {
            render_span(root, &children, "", i == last, 0, out);
        }
        out.push('\n');
    }
    if by_trace.len() > shown_traces {
        let _ = writeln!(
            out,
            "... {} more traces not shown\n",
            by_trace.len() - shown_traces
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
    span: &TreeSpan,
    children: &HashMap<SpanId, Vec<&TreeSpan>>,
    prefix: &str,
    last: bool,
    depth: usize,
    out: &mut String,
) {
    let branch = if last { "└─ " } else { "├─ " };
    let _ = write!(
        out,
        "{prefix}{branch}{}  {}",
        span.name,
        format_secs(span.secs)
    );
    if !span.detail.is_empty() {
        let _ = write!(out, "  [{}]", span.detail);
    }
    out.push('\n');
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    let Some(kids) = children.get(&span.span_id) else {
        return;
    };
    if depth + 1 >= MAX_TREE_DEPTH {
        let _ = writeln!(
            out,
            "{child_prefix}└─ ... {} nested spans deeper than {MAX_TREE_DEPTH} levels not shown",
            descendants(span.span_id, children)
        );
        return;
    }
    let end = kids.len().saturating_sub(1);
    for (i, kid) in kids.iter().enumerate() {
        render_span(kid, children, &child_prefix, i == end, depth + 1, out);
    }
}

/// Spans under `id`, counted without recursion (and at most the tree's size).
fn descendants(id: SpanId, children: &HashMap<SpanId, Vec<&TreeSpan>>) -> usize {
    let mut count = 0_usize;
    let mut stack = vec![id];
    while let Some(id) = stack.pop() {
        for kid in children.get(&id).into_iter().flatten() {
            count += 1;
            if count >= MAX_TREE_SPANS {
                return count;
            }
            stack.push(kid.span_id);
        }
    }
    count
}

/// The label column's width: labels are at most [`MAX_LABEL_CHARS`] characters,
/// so it stays small whatever the names.
fn label_width<'a>(labels: impl Iterator<Item = &'a str>, least: usize) -> usize {
    labels
        .map(|label| label.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(least, MAX_LABEL_CHARS)
}

fn render_summary(state: &State, out: &mut String) {
    let _ = writeln!(out, "run summary: {} spans", state.total_spans);
    if state.unreadable > 0 {
        let _ = writeln!(
            out,
            "  ({} spans could not be read by the console)",
            state.unreadable
        );
    }
    if state.dropped > 0 {
        let _ = writeln!(
            out,
            "  ({} spans dropped before the console: its queue was full)",
            state.dropped
        );
    }
    if !state.steps.is_empty() {
        let width = label_width(state.steps.iter(OTHER_STEPS).map(|(l, _)| l), 4);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>6}  {:>9}  {:>9}  {:>8}",
            "step", "count", "p50", "p90", "failures"
        );
        for (label, stats) in state.steps.iter(OTHER_STEPS) {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>6}  {:>9}  {:>9}  {:>8}",
                label,
                stats.durations.count(),
                format_secs(stats.durations.percentile(50.0)),
                format_secs(stats.durations.percentile(90.0)),
                stats.failures
            );
        }
    }
    if !state.models.is_empty() {
        let width = label_width(state.models.iter(OTHER_MODELS).map(|(l, _)| l), 5);
        // The cost column appears only when a price table priced something.
        let priced = state
            .models
            .iter(OTHER_MODELS)
            .any(|(_, m)| m.cost_usd.is_some());
        let _ = write!(
            out,
            "  {:<width$}  {:>6}  {:>9}  {:>10}  {:>11}  {:>8}",
            "model", "calls", "p50", "input tok", "output tok", "failures"
        );
        out.push_str(if priced { "  cost (USD)\n" } else { "\n" });
        for (label, stats) in state.models.iter(OTHER_MODELS) {
            let _ = write!(
                out,
                "  {:<width$}  {:>6}  {:>9}  {:>10}  {:>11}  {:>8}",
                label,
                stats.durations.count(),
                format_secs(stats.durations.percentile(50.0)),
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

    /// The exact nearest-rank percentile, to check the histogram against.
    fn exact(samples: &[f64], p: f64) -> f64 {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn within_error(estimate: f64, exact: f64) -> bool {
        (estimate - exact).abs() <= exact * RELATIVE_ERROR * (1.0 + 1e-9)
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut h = LogHistogram::default();
        for v in 1..=10 {
            h.record(f64::from(v));
        }
        assert!(
            within_error(h.percentile(50.0), 5.0),
            "{}",
            h.percentile(50.0)
        );
        assert!(
            within_error(h.percentile(90.0), 9.0),
            "{}",
            h.percentile(90.0)
        );
        assert_eq!(h.percentile(100.0), 10.0, "the maximum is exact");
        assert_eq!(h.percentile(0.0), 1.0, "the minimum is exact");
        let mut one = LogHistogram::default();
        one.record(3.0);
        assert_eq!(one.percentile(90.0), 3.0);
        assert_eq!(LogHistogram::default().percentile(50.0), 0.0);
    }

    #[test]
    fn the_bucket_count_covers_the_stated_range() {
        assert_eq!(LogHistogram::bucket_of(HISTOGRAM_MIN_SECS), 0);
        let top = LogHistogram::bucket_of(HISTOGRAM_MAX_SECS);
        assert!(top < HISTOGRAM_BUCKETS, "{top}");
        assert!(top >= HISTOGRAM_BUCKETS - 2, "no bucket wasted: {top}");
        assert_eq!(
            LogHistogram::bucket_of(f64::INFINITY),
            HISTOGRAM_BUCKETS - 1
        );
        assert_eq!(LogHistogram::bucket_of(f64::NAN), 0);
        assert_eq!(LogHistogram::bucket_of(-1.0), 0);
    }

    #[test]
    fn percentiles_stay_within_the_stated_error() {
        // Log-uniform from 1 µs to 10⁵ s, from a fixed linear congruential stream.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut samples = Vec::new();
        let mut h = LogHistogram::default();
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = 10f64.powf(-6.0 + 11.0 * unit);
            samples.push(v);
            h.record(v);
        }
        for p in [1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9] {
            let (est, want) = (h.percentile(p), exact(&samples, p));
            assert!(within_error(est, want), "p{p}: {est} vs {want}");
        }
    }

    #[test]
    fn the_histogram_does_not_grow_with_the_call_count() {
        let mut h = LogHistogram::default();
        let before = (h.bucket_count(), std::mem::size_of_val(&h));
        for i in 0..1_000_000_u32 {
            h.record(f64::from(i % 10_000) * 1e-3);
        }
        assert_eq!(before, (h.bucket_count(), std::mem::size_of_val(&h)));
        assert_eq!(h.bucket_count(), HISTOGRAM_BUCKETS);
        assert_eq!(h.count(), 1_000_000);
    }

    #[test]
    fn counts_saturate() {
        let mut h = LogHistogram::default();
        h.buckets[5] = u64::MAX;
        h.count = u64::MAX;
        h.record(1.0);
        assert_eq!(h.count(), u64::MAX);
        let _ = h.percentile(99.0);
    }

    #[test]
    fn rows_are_capped_and_the_rest_is_other() {
        let mut rows: Rows<StepStats> = Rows::default();
        for i in 0..100_000 {
            let row = rows.row(format!("step {i}"));
            row.durations.record(0.5);
            row.failures += 1;
        }
        assert_eq!(rows.named.len(), MAX_ROWS);
        let other = rows.other.as_ref().unwrap();
        assert_eq!(other.durations.count(), 100_000 - MAX_ROWS as u64);
        assert_eq!(other.failures, 100_000 - MAX_ROWS as u64);
        // A name that has a row keeps it.
        rows.row("step 3".to_owned()).failures += 1;
        assert_eq!(rows.named["step 3"].failures, 2);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown("a\nb\r\tc", 64), "a\\nb\\r\\tc");
        assert_eq!(shown("\x1b]0;t\x07", 64), "\\x1b]0;t\\x07");
        assert_eq!(shown("\u{9b}31m\u{202e}", 64), "\\u{9b}31m\\u{202e}");
        assert_eq!(shown("\x7f", 64), "\\x7f");
        assert_eq!(shown("gpt-4o é 模型", 64), "gpt-4o é 模型");
    }

    #[test]
    fn long_strings_are_cut_with_an_ellipsis() {
        assert_eq!(shown("abcde", 5), "abcde");
        assert_eq!(shown("abcdef", 5), "abcd…");
        assert_eq!(shown("abc\x1b", 5), "abc…");
        assert_eq!(shown("abcdef", 0), "");
        let huge = "x".repeat(1 << 20);
        assert_eq!(
            shown(&huge, MAX_LABEL_CHARS).chars().count(),
            MAX_LABEL_CHARS
        );
        assert_eq!(cut("abcdef".to_owned(), 5), "abcd…");
        assert_eq!(cut("abcde".to_owned(), 5), "abcde");
    }

    /// A finished span of `secs` named `name` with these attributes.
    fn span(name: String, secs: f64, attributes: Vec<opentelemetry::KeyValue>) -> SpanData {
        use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceState};
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1_u128),
                SpanId::from(2_u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: name.into(),
            start_time: start,
            end_time: start + Duration::from_secs_f64(secs),
            attributes,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::error("boom \x1b[2J".repeat(1_000)),
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn memory_is_bounded_whatever_the_names_and_the_call_count() {
        use opentelemetry::KeyValue;
        let sink = ConsoleSink::default();
        // Distinct names of 4,000 to 12,000 bytes (multi-byte characters,
        // characters that escape), on model calls and on steps alike.
        let feed = |from: u32, to: u32| {
            let batch = (from..to)
                .map(|i| {
                    let name = format!("{i} {}", "模\n\u{202e}".repeat(1_000));
                    let (operation, name) = if i % 2 == 0 {
                        ("chat", name)
                    } else {
                        ("invoke_agent", format!("invoke_agent {name}"))
                    };
                    span(
                        name.clone(),
                        f64::from(i % 1_000) * 1e-3,
                        vec![
                            KeyValue::new(semconv::GEN_AI_OPERATION_NAME, operation),
                            KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, name.clone()),
                            KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, name.clone()),
                            KeyValue::new(semconv::GEN_AI_RESPONSE_MODEL, format!("r {name}")),
                            KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, i64::MAX),
                            KeyValue::new(semconv::ERROR_TYPE, name),
                        ],
                    )
                })
                .collect();
            sink.ingest(batch);
        };
        feed(0, 4_000);
        let after_caps = sink.lock().heap_bytes();
        assert!(after_caps < 4_000_000, "{after_caps} bytes");
        feed(4_000, 12_000);
        let state = sink.lock();
        assert_eq!(
            state.heap_bytes(),
            after_caps,
            "no growth once the caps are reached"
        );
        assert_eq!(state.total_spans, 12_000);
        assert_eq!(state.unreadable, 0);
        assert_eq!(state.models.named.len(), MAX_ROWS);
        assert_eq!(state.steps.named.len(), MAX_ROWS);
        let other = state.models.other.as_ref().unwrap();
        assert_eq!(other.durations.count(), 6_000 - MAX_ROWS as u64);
        assert_eq!(other.input_tokens, u64::MAX, "saturated, not wrapped");
        drop(state);
        let report = sink.render();
        assert!(report.contains("run summary: 12000 spans"), "{report}");
        assert!(report.lines().all(|l| l.chars().count() < 500));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_secs(1.234), "1.23 s");
        assert_eq!(format_secs(0.4561), "456 ms");
        assert_eq!(format_secs(0.0008), "0.8 ms");
    }
}
