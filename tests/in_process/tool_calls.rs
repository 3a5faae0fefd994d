//! Tool calls as a model asks for them: a dispatcher that routes by name gets
//! spans and metrics named for each tool (`name = expr`), and every tool span
//! carries the id of the call the model made (`call_id = ..`).

use crate::common;

use std::collections::BTreeMap;

use common::{attr, harness, point_attrs, span_named};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use otel_agent_runtime::{agent_step, CaptureMode};

/// What a model's tool call carries (async-openai's `ChatCompletionMessageToolCall`
/// has the same three).
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug)]
struct UnknownTool(String);

impl std::fmt::Display for UnknownTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no tool named {}", self.0)
    }
}

#[agent_step(kind = tool, name = call.name, call_id = call.id, arguments = call.arguments)]
fn dispatch(call: &ToolCall) -> Result<String, UnknownTool> {
    match call.name.as_str() {
        "get_weather" => Ok("21 °C".to_owned()),
        "search" => Ok("3 results".to_owned()),
        other => Err(UnknownTool(other.to_owned())),
    }
}

#[agent_step(kind = tool, call_id = id)]
fn get_time(id: &str) -> String {
    let _ = id;
    "12:00".to_owned()
}

fn call(id: &str, name: &str) -> ToolCall {
    ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments: r#"{"city":"Paris"}"#.to_owned(),
    }
}

#[test]
fn a_dispatcher_names_each_span_for_the_tool_it_ran() {
    let h = harness();
    h.run(|| {
        dispatch(&call("call_1", "get_weather")).unwrap();
        dispatch(&call("call_2", "search")).unwrap();
        dispatch(&call("call_3", "search")).unwrap();
        dispatch(&call("call_4", "launch")).unwrap_err();
        get_time("call_5");
    });
    let spans = h.finished_spans();
    let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "execute_tool get_weather",
            "execute_tool search",
            "execute_tool search",
            "execute_tool launch",
            "execute_tool get_time",
        ]
    );
    let ids: Vec<_> = spans
        .iter()
        .map(|s| attr(s, "gen_ai.tool.call.id").map(|v| v.to_string()))
        .collect();
    assert_eq!(
        ids,
        ["call_1", "call_2", "call_3", "call_4", "call_5"].map(|id| Some(id.to_owned()))
    );
    let weather = span_named(&spans, "execute_tool get_weather");
    assert_eq!(
        attr(weather, "gen_ai.tool.name"),
        Some("get_weather".into())
    );
    assert_eq!(
        attr(weather, "gen_ai.operation.name"),
        Some("execute_tool".into())
    );
    let launch = span_named(&spans, "execute_tool launch");
    assert_eq!(attr(launch, "error.type"), Some("UnknownTool".into()));
    // The arguments are content: not recorded with capture off.
    assert_eq!(attr(weather, "gen_ai.tool.call.arguments"), None);

    // Metrics by tool, not by the dispatcher's function name; ids never.
    let metrics = h.metrics();
    let AggregatedMetrics::U64(MetricData::Sum(calls)) =
        metrics.expect("otel_agent.step.calls").data()
    else {
        panic!("otel_agent.step.calls is a u64 sum")
    };
    let mut by_tool: BTreeMap<(String, String), u64> = BTreeMap::new();
    for point in calls.data_points() {
        let attrs = point_attrs(point.attributes());
        assert!(
            !attrs.contains_key("gen_ai.tool.call.id"),
            "an id on a metric: {attrs:?}"
        );
        *by_tool
            .entry((
                attrs["otel_agent.step.name"].clone(),
                attrs["otel_agent.step.outcome"].clone(),
            ))
            .or_default() += point.value();
    }
    let expected: BTreeMap<(String, String), u64> = [
        (("get_time", "success"), 1),
        (("get_weather", "success"), 1),
        (("launch", "failure"), 1),
        (("search", "success"), 2),
    ]
    .into_iter()
    .map(|((n, o), c)| ((n.to_owned(), o.to_owned()), c))
    .collect();
    assert_eq!(by_tool, expected);
    let AggregatedMetrics::I64(MetricData::Sum(active)) =
        metrics.expect("otel_agent.step.active").data()
    else {
        panic!("otel_agent.step.active is an i64 sum")
    };
    for point in active.data_points() {
        assert_eq!(point.value(), 0, "{:?}", point_attrs(point.attributes()));
    }
    assert!(
        !active
            .data_points()
            .any(|p| point_attrs(p.attributes())["otel_agent.step.name"] == "dispatch"),
        "the dispatcher's own name is not a series"
    );
}

#[test]
fn a_dispatched_tool_records_its_arguments_and_result_under_capture() {
    let h = common::harness_with(|b| b.capture_message_content(CaptureMode::SpanOnly));
    h.run(|| dispatch(&call("call_1", "get_weather")).unwrap());
    let spans = h.finished_spans();
    let span = span_named(&spans, "execute_tool get_weather");
    assert_eq!(
        attr(span, "gen_ai.tool.call.arguments"),
        Some(r#"{"city":"Paris"}"#.into())
    );
    assert_eq!(attr(span, "gen_ai.tool.call.result"), Some("21 °C".into()));
}
