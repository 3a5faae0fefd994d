//! Every measurement the runtime records about a call: steps (ours and
//! libraries'), model calls (ours and libraries'), their cost. The guards and
//! the layer say what happened; this module decides which series it goes to.
//!
//! Nothing here looks at a span: the caller passes the tenant it read from the
//! span's context, so the attributes are the same at a call's start and end.

use std::borrow::Cow;

use opentelemetry::{Key, KeyValue, StringValue, Value};

use super::{Instruments, LlmKey, LlmRecord, SiteMetrics, StepRecord};
use crate::attributes::{cow_value, static_kv, STEP_NAME, STEP_OUTCOME};
use crate::context::TENANT;
use crate::error_type::ERROR_TYPE_OTHER;
use crate::library_spans::LibraryCall;
use crate::recording::RecordingOptions;
use crate::response::Usage;
use crate::semconv;
use crate::span_state::Server;

/// An `#[agent_step]` as its metrics see it.
pub(crate) struct Step<'a> {
    /// `invoke_agent`, `execute_tool` or `invoke_workflow`.
    pub operation: &'static str,
    /// The name the attribute gives.
    pub name: &'static str,
    /// The tool's name when it is known only at run time: then its series are
    /// its own, not the site's bound ones (which are the dispatcher's).
    pub run_time_name: Option<&'a StringValue>,
    /// Low-cardinality attributes fixed at the call site.
    pub attributes: &'static [(&'static str, &'static str)],
    /// The site's bound series.
    pub series: &'a SiteMetrics,
}

impl Step<'_> {
    /// The in-flight count's attributes.
    fn attrs(&self, tenant: Option<&StringValue>) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(4 + self.attributes.len());
        attrs.push(static_kv(semconv::GEN_AI_OPERATION_NAME, self.operation));
        match self.run_time_name {
            Some(name) => attrs.push(KeyValue::new(STEP_NAME, name.clone())),
            None => attrs.push(static_kv(STEP_NAME, self.name)),
        }
        attrs.extend(self.attributes.iter().map(|(k, v)| static_kv(k, v)));
        if let Some(tenant) = tenant {
            attrs.push(KeyValue::new(TENANT, tenant.clone()));
        }
        attrs
    }
}

/// A step started: one more in flight.
pub(crate) fn step_started(i: &Instruments, step: &Step<'_>, tenant: Option<&StringValue>) {
    match step.run_time_name {
        // One series per name, recorded as they come.
        Some(_) => i.step_active.add(1, &step.attrs(tenant)),
        None => step
            .series
            .record_step(i, tenant, || step.attrs(tenant), &StepRecord::Started),
    }
}

/// A step ended after `elapsed` seconds with `outcome` (`success`, `failure`,
/// `cancelled`) and, unless it succeeded, its `error.type`.
pub(crate) fn step_ended(
    i: &Instruments,
    step: &Step<'_>,
    tenant: Option<&StringValue>,
    elapsed: f64,
    outcome: &'static str,
    error_type: Option<Cow<'static, str>>,
) {
    if let (None, None) = (&error_type, step.run_time_name) {
        step.series.record_step(
            i,
            tenant,
            || step.attrs(tenant),
            &StepRecord::Succeeded(elapsed),
        );
        return;
    }
    let mut attrs = step.attrs(tenant);
    i.step_active.add(-1, &attrs);
    attrs.push(static_kv(STEP_OUTCOME, outcome));
    if let Some(error_type) = error_type {
        attrs.push(KeyValue::new(semconv::ERROR_TYPE, cow_value(error_type)));
    }
    i.step_duration.record(elapsed, &attrs);
    i.step_calls.add(1, &attrs);
}

/// An `#[llm_call]` as its metrics see it.
pub(crate) struct Call<'a> {
    /// `gen_ai.operation.name`, e.g. `chat`.
    pub operation: &'static str,
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
    /// The model asked for.
    pub model: &'a StringValue,
    /// Low-cardinality attributes fixed at the call site.
    pub attributes: &'static [(&'static str, &'static str)],
    /// The site's bound series.
    pub series: &'a SiteMetrics,
    /// The server the client talks to, when it said.
    pub server: Option<&'a Server>,
}

/// What a model call reported when it ended.
pub(crate) struct CallEnd<'a> {
    /// Seconds from start to end.
    pub elapsed: f64,
    /// Seconds from start to the first chunk, when it streamed.
    pub first_chunk: Option<f64>,
    /// `error.type`, when it failed.
    pub error_type: Option<Cow<'static, str>>,
    /// The model that answered, when the response said.
    pub response_model: Option<&'a str>,
    /// The usage the provider reported; counts it did not report are left
    /// out, never guessed.
    pub usage: Option<Usage>,
    /// Its cost, when the price table prices it.
    pub cost: Option<f64>,
}

impl Call<'_> {
    /// The attributes of the call's duration (and, with the token type, of its
    /// token counts); time to first chunk uses them without the two known only
    /// at the end.
    fn attrs(
        &self,
        options: &RecordingOptions,
        tenant: Option<&StringValue>,
        response_model: Option<&str>,
        error_type: Option<Cow<'static, str>>,
    ) -> Vec<KeyValue> {
        let mut attrs: Vec<KeyValue> = Vec::with_capacity(10 + self.attributes.len());
        attrs.push(static_kv(semconv::GEN_AI_OPERATION_NAME, self.operation));
        attrs.push(static_kv(semconv::GEN_AI_PROVIDER_NAME, self.provider));
        attrs.push(KeyValue::new(
            semconv::GEN_AI_REQUEST_MODEL,
            Value::String(self.model.clone()),
        ));
        if let Some(response_model) = response_model {
            attrs.push(KeyValue::new(
                semconv::GEN_AI_RESPONSE_MODEL,
                response_model.to_owned(),
            ));
        }
        if let Some(error_type) = error_type {
            attrs.push(KeyValue::new(semconv::ERROR_TYPE, cow_value(error_type)));
        }
        if let Some(server) = self.server {
            attrs.push(KeyValue::new(
                semconv::SERVER_ADDRESS,
                server.address.clone(),
            ));
            attrs.push(KeyValue::new(semconv::SERVER_PORT, server.port));
        }
        attrs.extend(self.attributes.iter().map(|(k, v)| static_kv(k, v)));
        if options.legacy_names {
            attrs.push(static_kv(semconv::GEN_AI_SYSTEM, self.provider));
        }
        if let Some(tenant) = tenant {
            attrs.push(KeyValue::new(TENANT, tenant.clone()));
        }
        attrs
    }
}

/// A model call ended: its duration, token usage, time to first chunk and cost.
pub(crate) fn call_ended(
    i: &Instruments,
    options: &RecordingOptions,
    tenant: Option<&StringValue>,
    call: &Call<'_>,
    end: CallEnd<'_>,
) {
    if let Some(secs) = end.first_chunk {
        // The duration's attributes, bar what is only known at the end
        // (response model, error type): the two slice the same way.
        i.time_to_first_chunk
            .record(secs, &call.attrs(options, tenant, None, None));
    }
    let attrs = |error_type| call.attrs(options, tenant, end.response_model, error_type);
    if end.usage.is_some() && options.prices.is_some() {
        // Cost series carry only provider, model and tenant: few of each.
        let mut cost_attrs = vec![
            static_kv(semconv::GEN_AI_PROVIDER_NAME, call.provider),
            KeyValue::new(
                semconv::GEN_AI_REQUEST_MODEL,
                Value::String(call.model.clone()),
            ),
        ];
        if let Some(tenant) = tenant {
            cost_attrs.push(KeyValue::new(TENANT, tenant.clone()));
        }
        match end.cost {
            Some(cost) => i.llm_cost.add(cost, &cost_attrs),
            None => i.llm_unpriced_calls.add(1, &cost_attrs),
        }
    }
    let usage = end.usage.unwrap_or_default();
    if end.error_type.is_none() {
        call.series.record_llm(
            i,
            &LlmKey {
                model: call.model.as_str(),
                response_model: end.response_model,
                tenant,
                server: call.server,
            },
            || attrs(None),
            &LlmRecord {
                duration: end.elapsed,
                input_tokens: end.usage.and(usage.input_tokens),
                output_tokens: end.usage.and(usage.output_tokens),
            },
        );
        return;
    }
    let mut attrs = attrs(end.error_type);
    i.llm_duration.record(end.elapsed, &attrs);
    if end.usage.is_none() {
        return;
    }
    for (kind, count) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
    ] {
        if let Some(count) = count {
            attrs.push(static_kv(semconv::GEN_AI_TOKEN_TYPE, kind));
            i.token_usage.record(count, &attrs);
            attrs.pop();
        }
    }
}

/// The step metrics' attributes of a library's step span, as the attributes'
/// own steps have them.
fn library_step_attrs(call: &LibraryCall) -> Vec<KeyValue> {
    vec![
        KeyValue::new(
            semconv::GEN_AI_OPERATION_NAME,
            call.operation.clone().unwrap_or_default(),
        ),
        KeyValue::new(STEP_NAME, call.step_name.clone().unwrap_or_default()),
    ]
}

/// Counts a library's step in flight once it says what it is: a library may
/// name its tool after the span started (rig does), and the count must come
/// down in the series it went up in.
pub(crate) fn library_step_started(i: &Instruments, call: &mut LibraryCall) {
    if call.in_flight.is_none() && call.is_step() && call.step_name.is_some() {
        let attrs = library_step_attrs(call);
        i.step_active.add(1, &attrs);
        call.in_flight = Some(attrs);
    }
}

/// A library's span closed: a step's duration and outcome, as the attributes
/// record their own, so that a framework's tool needs no `#[agent_step]` for
/// the step dashboards.
pub(crate) fn library_step_ended(i: &Instruments, call: &LibraryCall) {
    // Down in the series it went up in, whatever the span said since.
    if let Some(attrs) = &call.in_flight {
        i.step_active.add(-1, attrs);
    }
    if !call.is_step() {
        return;
    }
    let mut attrs = library_step_attrs(call);
    let failed = call.failed || call.error_type.is_some();
    attrs.push(KeyValue::new(
        STEP_OUTCOME,
        if failed { "failure" } else { "success" },
    ));
    if failed {
        attrs.push(KeyValue::new(
            semconv::ERROR_TYPE,
            call.error_type
                .clone()
                .unwrap_or_else(|| ERROR_TYPE_OTHER.to_owned()),
        ));
    }
    i.step_duration
        .record(call.started.elapsed().as_secs_f64(), &attrs);
    i.step_calls.add(1, &attrs);
}

/// A library's model call ended: the conventions' metrics, as the attributes
/// record them for their own (the same instruments, buckets and attribute
/// names), and its cost.
pub(crate) fn library_call_ended(
    i: &Instruments,
    options: &RecordingOptions,
    call: &LibraryCall,
    cost: Option<f64>,
) {
    let operation = call.operation.clone().unwrap_or_default();
    let model = call.request_model.clone().unwrap_or_default();
    let provider = call
        .provider
        .clone()
        .unwrap_or_else(|| crate::provider::infer_provider(&model).to_owned());
    let mut attrs = vec![
        KeyValue::new(semconv::GEN_AI_OPERATION_NAME, operation),
        KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, provider.clone()),
        KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, model.clone()),
    ];
    if let Some(address) = &call.server_address {
        attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, address.clone()));
    }
    if let Some(port) = call.server_port {
        attrs.push(KeyValue::new(semconv::SERVER_PORT, port));
    }
    if let Some(ttfc) = call.time_to_first_chunk {
        i.time_to_first_chunk.record(ttfc, &attrs);
    }
    if let Some(response_model) = &call.response_model {
        attrs.push(KeyValue::new(
            semconv::GEN_AI_RESPONSE_MODEL,
            response_model.clone(),
        ));
    }
    match &call.error_type {
        Some(error_type) => attrs.push(KeyValue::new(semconv::ERROR_TYPE, error_type.clone())),
        None if call.failed => attrs.push(KeyValue::new(semconv::ERROR_TYPE, ERROR_TYPE_OTHER)),
        None => {}
    }
    if options.legacy_names {
        attrs.push(KeyValue::new(semconv::GEN_AI_SYSTEM, provider.clone()));
    }
    i.llm_duration
        .record(call.started.elapsed().as_secs_f64(), &attrs);
    for (kind, count) in [("input", call.input_tokens), ("output", call.output_tokens)] {
        if let Some(count) = count {
            attrs.push(KeyValue::new(
                Key::from_static_str(semconv::GEN_AI_TOKEN_TYPE),
                Value::from(kind),
            ));
            i.token_usage.record(count, &attrs);
            attrs.pop();
        }
    }
    if call.tokens().is_some() && options.prices.is_some() {
        let cost_attrs = [
            KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, provider),
            KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, model),
        ];
        match cost {
            Some(cost) => i.llm_cost.add(cost, &cost_attrs),
            None => i.llm_unpriced_calls.add(1, &cost_attrs),
        }
    }
}
