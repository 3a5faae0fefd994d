//! The attributes' spans are built by the runtime, every other span by
//! tracing-opentelemetry: the two must still make one tree, and what users do
//! inside an annotated call (their own spans, events, OpenTelemetry-native code,
//! attributes on the current span) must land on the right span.

use crate::common;

use common::{attr, harness, span_named};
use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::KeyValue;
use otel_agent_runtime::{agent_step, llm_call, SpanExt as _};

#[derive(Debug, Default)]
struct Reply;

#[llm_call(model = "gpt-4o", provider = "openai")]
fn ask() -> Option<Reply> {
    // A user's span inside the call, made by tracing-opentelemetry.
    let _http = tracing::info_span!("http request", otel.kind = "client").entered();
    // What OpenTelemetry-native code sees as the current span.
    let current = opentelemetry::Context::current();
    assert!(current.span().span_context().is_valid());
    Some(Reply)
}

#[agent_step(agent = "planner")]
fn plan(fail: bool) -> Result<u32, std::io::Error> {
    tracing::info!(step = 1, "thinking");
    tracing::Span::current().set_otel_attribute("app.plan.size", 3_i64);
    ask();
    if fail {
        tracing::error!("gave up");
    }
    Ok(1)
}

#[test]
fn user_spans_nest_under_attribute_spans_and_attribute_spans_under_user_spans() {
    let h = harness();
    h.run(|| {
        let _outer = tracing::info_span!("request").entered();
        plan(false).unwrap();
    });
    let spans = h.finished_spans();
    let request = span_named(&spans, "request");
    let step = span_named(&spans, "invoke_agent planner");
    let call = span_named(&spans, "chat gpt-4o");
    let http = span_named(&spans, "http request");

    assert_eq!(step.parent_span_id, request.span_context.span_id());
    assert_eq!(call.parent_span_id, step.span_context.span_id());
    assert_eq!(http.parent_span_id, call.span_context.span_id());
    for span in [step, call, http] {
        assert_eq!(
            span.span_context.trace_id(),
            request.span_context.trace_id()
        );
    }
    assert_eq!(http.span_kind, opentelemetry::trace::SpanKind::Client);
    assert_eq!(call.span_kind, opentelemetry::trace::SpanKind::Client);
}

#[test]
fn events_and_attributes_inside_a_step_land_on_its_span() {
    let h = harness();
    h.run(|| plan(true).unwrap());
    let spans = h.finished_spans();
    let step = span_named(&spans, "invoke_agent planner");

    assert_eq!(attr(step, "app.plan.size"), Some(3_i64.into()));
    let thinking = step
        .events
        .iter()
        .find(|e| e.name == "thinking")
        .expect("the info event is on the step's span");
    assert!(thinking.attributes.contains(&KeyValue::new("step", 1_i64)));
    assert!(thinking
        .attributes
        .contains(&KeyValue::new("level", "INFO")));
    // An ERROR event marks the span failed, as tracing-opentelemetry does.
    assert!(step.events.iter().any(|e| e.name == "gave up"));
    assert!(matches!(step.status, Status::Error { .. }));
    // Location attributes, as on every other span.
    assert!(attr(step, "code.file.path").is_some());
    assert!(attr(step, "code.line.number").is_some());
}

#[test]
fn the_context_of_an_attribute_span_is_its_own() {
    let h = harness();
    let (inside, outside) = h.run(|| {
        let inside = std::cell::Cell::new(None);
        #[agent_step(kind = tool, name = "probe")]
        fn probe(seen: &std::cell::Cell<Option<opentelemetry::trace::SpanContext>>) {
            let cx = tracing::Span::current().otel_context();
            seen.set(Some(cx.span().span_context().clone()));
        }
        probe(&inside);
        (inside.take(), opentelemetry::Context::current())
    });
    let spans = h.finished_spans();
    let step = span_named(&spans, "execute_tool probe");
    assert_eq!(inside, Some(step.span_context.clone()));
    // Leaving the call detaches its context again.
    assert!(!outside.span().span_context().is_valid());
}

#[test]
fn tracing_opentelemetry_can_build_the_attribute_spans_for_code_that_needs_its_extension() {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let h = common::harness_with(|b| b.spans_through_tracing_opentelemetry(true));
    let seen = h.run(|| {
        #[agent_step(kind = tool, name = "legacy")]
        fn legacy() -> opentelemetry::trace::SpanContext {
            let span = tracing::Span::current();
            span.set_attribute("app.legacy", true);
            span.context().span().span_context().clone()
        }
        let _outer = tracing::info_span!("request").entered();
        let seen = legacy();
        plan(true).unwrap();
        seen
    });
    let spans = h.finished_spans();
    let step = span_named(&spans, "execute_tool legacy");
    assert_eq!(seen, step.span_context);
    assert_eq!(attr(step, "app.legacy"), Some(true.into()));
    // The rest still holds: nesting, usage, failure status, rolled-up tokens.
    let planner = span_named(&spans, "invoke_agent planner");
    let call = span_named(&spans, "chat gpt-4o");
    assert_eq!(call.parent_span_id, planner.span_context.span_id());
    assert_eq!(
        span_named(&spans, "http request").parent_span_id,
        call.span_context.span_id()
    );
    assert!(matches!(planner.status, Status::Error { .. }));
}

/// The strings a call site holds (its operation, provider, model, tool type)
/// are stored on the span as they are, not copied: `tracing` hands each field
/// over as a `&str`, and a copy per field per call, freed on the export thread,
/// cost a quarter of a call's time. What a user puts in `fields(...)` is copied.
#[test]
fn the_spans_store_the_call_sites_strings_without_copying_them() {
    use otel_agent_runtime::__private::TOOL_TYPE;

    #[llm_call(model = model, provider = "openai")]
    fn ask_model(model: &str) -> Option<Reply> {
        let _ = model;
        Some(Reply)
    }

    #[agent_step(kind = tool, name = "lookup", fields(query = query))]
    fn lookup(query: &str) -> usize {
        query.len()
    }

    let h = harness();
    let query = String::from("weather");
    h.run(|| {
        ask_model("gpt-4o-mini");
        lookup(&query);
    });
    let spans = h.finished_spans();
    let address = |span, key| match attr(span, key) {
        Some(opentelemetry::Value::String(s)) => s.as_str().as_ptr(),
        other => panic!("{key}: {other:?}"),
    };

    let tool = span_named(&spans, "execute_tool lookup");
    assert_eq!(address(tool, "gen_ai.tool.type"), TOOL_TYPE.as_ptr());
    assert_eq!(attr(tool, "gen_ai.tool.name"), Some("lookup".into()));
    assert_eq!(
        attr(tool, "gen_ai.operation.name"),
        Some("execute_tool".into())
    );
    assert_eq!(attr(tool, "query"), Some("weather".into()));
    assert_ne!(address(tool, "query"), query.as_ptr());

    let call = span_named(&spans, "chat gpt-4o-mini");
    assert_eq!(
        attr(call, "gen_ai.request.model"),
        Some("gpt-4o-mini".into())
    );
    assert_eq!(attr(call, "gen_ai.provider.name"), Some("openai".into()));
    assert_eq!(attr(call, "gen_ai.operation.name"), Some("chat".into()));
}

/// A span created while another's fields are evaluated (an annotated function
/// called in `fields(...)`) gets its own call site's values, and the outer span
/// still gets its own afterwards, each stored without a copy.
#[test]
fn a_span_made_inside_another_spans_fields_leaves_the_outer_start_in_place() {
    use otel_agent_runtime::__private::TOOL_TYPE;

    #[agent_step(kind = tool, name = "inner_lookup")]
    fn inner_lookup(query: &str) -> usize {
        query.len()
    }

    #[llm_call(model = "gpt-4o", provider = "openai", fields(looked_up = inner_lookup(query)))]
    fn ask_after_lookup(query: &str) -> Option<Reply> {
        let _ = query;
        Some(Reply)
    }

    #[agent_step(kind = tool, name = "outer_lookup", fields(asked = ask_after_lookup(query).is_some()))]
    fn outer_lookup(query: &str) -> usize {
        query.len()
    }

    let h = harness();
    h.run(|| {
        outer_lookup("weather");
    });
    let spans = h.finished_spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let tool_type = |span| match attr(span, "gen_ai.tool.type") {
        Some(opentelemetry::Value::String(s)) => s.as_str().as_ptr(),
        other => panic!("gen_ai.tool.type: {other:?}"),
    };
    for (name, tool) in [
        ("execute_tool inner_lookup", "inner_lookup"),
        ("execute_tool outer_lookup", "outer_lookup"),
    ] {
        let span = span_named(&spans, name);
        assert_eq!(attr(span, "gen_ai.tool.name"), Some(tool.into()));
        assert_eq!(tool_type(span), TOOL_TYPE.as_ptr(), "{name}");
    }
    let call = span_named(&spans, "chat gpt-4o");
    assert_eq!(attr(call, "gen_ai.request.model"), Some("gpt-4o".into()));
    assert_eq!(attr(call, "gen_ai.provider.name"), Some("openai".into()));
    assert_eq!(attr(call, "looked_up"), Some(7_i64.into()));
    let outer = span_named(&spans, "execute_tool outer_lookup");
    assert_eq!(attr(outer, "asked"), Some(true.into()));
}

/// A model chosen at run time is made into a shared string and a span name once
/// per site and model, and every later call naming it shares both: copied per
/// call, they were freed on the export thread and made such a call a third
/// slower than one with a literal model. A site keeps a few short models only;
/// past that, or for a long name, each call copies, and every span is still
/// named and attributed right.
#[test]
fn a_model_chosen_at_run_time_is_made_once_per_site_and_shared_by_later_calls() {
    // A call site of its own, like `ask_model` above but not shared with it:
    // which models the site keeps depends on every call it has seen.
    #[llm_call(model = model, provider = "openai")]
    fn ask_any(model: &str) -> Option<Reply> {
        let _ = model;
        Some(Reply)
    }

    let h = harness();
    let models: Vec<String> = (0..12)
        .map(|i| format!("model-{i}"))
        .chain([format!("long-{}", "x".repeat(300))])
        .collect();
    h.run(|| {
        for _ in 0..2 {
            for model in &models {
                ask_any(model);
            }
        }
    });
    let spans = h.finished_spans();
    let called: Vec<&String> = models.iter().chain(&models).collect();
    assert_eq!(spans.len(), called.len());
    for (span, model) in spans.iter().zip(&called) {
        assert_eq!(span.name, format!("chat {model}"));
        assert_eq!(
            attr(span, "gen_ai.request.model"),
            Some(model.as_str().to_owned().into())
        );
    }
    let model_address =
        |span: &opentelemetry_sdk::trace::SpanData| match attr(span, "gen_ai.request.model") {
            Some(opentelemetry::Value::String(s)) => s.as_str().as_ptr(),
            other => panic!("model: {other:?}"),
        };
    let (first, second) = spans.split_at(models.len());
    for (i, (a, b)) in first.iter().zip(second).enumerate() {
        let shared = a.name.as_ptr() == b.name.as_ptr() && model_address(a) == model_address(b);
        // The first eight short models are kept; the rest are copied per call.
        assert_eq!(shared, i < 8, "{}", a.name);
    }
}
