//! Metric handles bound once per call site.
//!
//! Recording with an attribute slice makes the SDK hash every key and value to
//! find the series, on every record: most of what a metric costs (see
//! `docs/performance.md`). A call site's attributes rarely change: the same
//! operation, provider and model, and on success no `error.type`. Each site's
//! `static` keeps the few attribute sets it has seen, bound to the instruments
//! of the pipeline that recorded them, and records straight into those series.
//! Failures, whose `error.type` varies, take the unbound path.

use std::sync::{OnceLock, RwLock};

use opentelemetry::metrics::{BoundCounter, BoundHistogram, BoundUpDownCounter};
use opentelemetry::{KeyValue, StringValue};

use super::Instruments;

/// Sets a site keeps; past this, the oldest is dropped (a site whose model
/// changes with every call records through the unbound path instead).
const MAX_SETS: usize = 8;

/// The metric handles of one call site, bound to its attribute sets.
#[derive(Debug)]
pub struct SiteMetrics {
    llm: Sets<LlmSet>,
    step: Sets<StepSet>,
}

impl SiteMetrics {
    /// An empty cache, for the site's `static`.
    #[allow(clippy::declare_interior_mutable_const)] // each site's static gets its own copy
    pub const NEW: SiteMetrics = SiteMetrics {
        llm: Sets(RwLock::new(Vec::new())),
        step: Sets(RwLock::new(Vec::new())),
    };
}

/// A site's bound attribute sets of one kind.
#[derive(Debug)]
struct Sets<T>(RwLock<Vec<T>>);

impl<T> Sets<T> {
    /// Runs `put` with the set `matches` finds, or with one `make` binds and
    /// the cache keeps (dropping its oldest set when full).
    fn put(&self, matches: impl Fn(&T) -> bool, make: impl FnOnce() -> T, put: impl Fn(&T)) {
        if let Ok(sets) = self.0.read() {
            if let Some(set) = sets.iter().find(|s| matches(s)) {
                return put(set);
            }
        }
        let set = make();
        put(&set);
        if let Ok(mut sets) = self.0.write() {
            if sets.len() == MAX_SETS {
                sets.remove(0);
            }
            sets.push(set);
        }
    }
}

/// What varies between the attribute sets of one `#[llm_call]` site.
#[derive(Debug, PartialEq)]
pub(crate) struct LlmKey<'a> {
    pub model: &'a str,
    pub response_model: Option<&'a str>,
    pub tenant: Option<&'a StringValue>,
    pub server: Option<&'a crate::span_state::Server>,
}

#[derive(Debug)]
struct LlmSet {
    pipeline: u64,
    model: StringValue,
    response_model: Option<String>,
    tenant: Option<StringValue>,
    server: Option<crate::span_state::Server>,
    /// The duration's attributes, for binding the token series on first use:
    /// a series bound is a series exported, and token counts nobody reported
    /// must not appear as an empty series.
    attrs: Vec<KeyValue>,
    duration: BoundHistogram<f64>,
    input_tokens: OnceLock<BoundHistogram<u64>>,
    output_tokens: OnceLock<BoundHistogram<u64>>,
}

impl LlmSet {
    fn matches(&self, pipeline: u64, key: &LlmKey<'_>) -> bool {
        self.pipeline == pipeline
            && self.model.as_str() == key.model
            && self.response_model.as_deref() == key.response_model
            && self.tenant.as_ref() == key.tenant
            && self.server.as_ref() == key.server
    }
}

/// The successful call's measurements.
pub(crate) struct LlmRecord {
    pub duration: f64,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl SiteMetrics {
    /// Records a successful call's duration and token counts into the series of
    /// `attrs` (the duration's attributes; the token records add
    /// `gen_ai.token.type`), binding them on the site's first call with `key`.
    pub(crate) fn record_llm(
        &self,
        instruments: &Instruments,
        key: &LlmKey<'_>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
        record: &LlmRecord,
    ) {
        let put = |set: &LlmSet| {
            set.duration.record(record.duration);
            let tokens = |cell: &OnceLock<BoundHistogram<u64>>, kind: &'static str, n: u64| {
                cell.get_or_init(|| {
                    let mut attrs = set.attrs.clone();
                    attrs.push(KeyValue::new(crate::semconv::GEN_AI_TOKEN_TYPE, kind));
                    instruments.token_usage.bind(&attrs)
                })
                .record(n);
            };
            if let Some(n) = record.input_tokens {
                tokens(&set.input_tokens, "input", n);
            }
            if let Some(n) = record.output_tokens {
                tokens(&set.output_tokens, "output", n);
            }
        };
        let make = || {
            let attrs = attrs();
            LlmSet {
                pipeline: instruments.id,
                model: StringValue::from(key.model.to_owned()),
                response_model: key.response_model.map(str::to_owned),
                tenant: key.tenant.cloned(),
                server: key.server.cloned(),
                duration: instruments.llm_duration.bind(&attrs),
                attrs,
                input_tokens: OnceLock::new(),
                output_tokens: OnceLock::new(),
            }
        };
        self.llm.put(|s| s.matches(instruments.id, key), make, put);
    }
}

#[derive(Debug)]
struct StepSet {
    pipeline: u64,
    tenant: Option<StringValue>,
    active: BoundUpDownCounter<i64>,
    /// Bound on the first success: a step that never succeeds has no success
    /// series.
    success: OnceLock<(BoundHistogram<f64>, BoundCounter<u64>)>,
    attrs: Vec<KeyValue>,
}

/// A step's measurement: it started, or it ended successfully after `f64` seconds.
pub(crate) enum StepRecord {
    Started,
    Succeeded(f64),
}

impl SiteMetrics {
    /// Records a step starting or succeeding into the series of `attrs` (the
    /// in-flight count's attributes; the success series add the outcome).
    pub(crate) fn record_step(
        &self,
        instruments: &Instruments,
        tenant: Option<&StringValue>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
        record: &StepRecord,
    ) {
        let pipeline = instruments.id;
        let put = |set: &StepSet| match record {
            StepRecord::Started => set.active.add(1),
            StepRecord::Succeeded(duration) => {
                set.active.add(-1);
                let (duration_series, calls) = set.success.get_or_init(|| {
                    let mut attrs = set.attrs.clone();
                    attrs.push(KeyValue::new(crate::attributes::STEP_OUTCOME, "success"));
                    (
                        instruments.step_duration.bind(&attrs),
                        instruments.step_calls.bind(&attrs),
                    )
                });
                duration_series.record(*duration);
                calls.add(1);
            }
        };
        let make = || {
            let attrs = attrs();
            StepSet {
                pipeline,
                tenant: tenant.cloned(),
                active: instruments.step_active.bind(&attrs),
                success: OnceLock::new(),
                attrs,
            }
        };
        self.step.put(
            |s| s.pipeline == pipeline && s.tenant.as_ref() == tenant,
            make,
            put,
        );
    }
}
