//! A tool step's arguments and result as text, from whatever types the
//! function has: JSON when the type is `Serialize`, its `Debug` form
//! otherwise, nothing when it has neither. Chosen at compile time by method
//! resolution (the generated code calls the method on a value behind several
//! references, and the most specific implementation that applies wins), so
//! no bound is asked of the user's types.

use std::fmt::Debug;

use serde::Serialize;
use serde_json::Value as Json;

/// One argument of a tool step (or the value of `arguments = ...`).
pub struct ToolValue<'a, T: ?Sized>(pub &'a T);

/// `Serialize` values become JSON.
pub trait ToolValueJson {
    /// The value as JSON.
    fn __otel_tool_value(&self) -> Option<Json>;
}

impl<T: Serialize + ?Sized> ToolValueJson for &&ToolValue<'_, T> {
    fn __otel_tool_value(&self) -> Option<Json> {
        serde_json::to_value(self.0).ok()
    }
}

/// Other `Debug` values become their `Debug` text.
pub trait ToolValueDebug {
    /// The value as its `Debug` text.
    fn __otel_tool_value(&self) -> Option<Json>;
}

impl<T: Debug + ?Sized> ToolValueDebug for &ToolValue<'_, T> {
    fn __otel_tool_value(&self) -> Option<Json> {
        Some(Json::String(format!("{:?}", self.0)))
    }
}

/// Anything else is left out.
pub trait ToolValueNone {
    /// Nothing.
    fn __otel_tool_value(&self) -> Option<Json>;
}

impl<T: ?Sized> ToolValueNone for ToolValue<'_, T> {
    fn __otel_tool_value(&self) -> Option<Json> {
        None
    }
}

/// A tool step's return value: for a `Result`, its `Ok` value.
pub struct ToolOutput<'a, T: ?Sized>(pub &'a T);

/// `Ok` values that are `Serialize` become JSON; an `Err` has no result.
pub trait ToolOutputOkJson {
    /// The `Ok` value as JSON.
    fn __otel_tool_output(&self) -> Option<Json>;
}

impl<T: Serialize, E> ToolOutputOkJson for &&&&ToolOutput<'_, Result<T, E>> {
    fn __otel_tool_output(&self) -> Option<Json> {
        self.0
            .as_ref()
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
    }
}

/// Other `Serialize` values become JSON.
pub trait ToolOutputJson {
    /// The value as JSON.
    fn __otel_tool_output(&self) -> Option<Json>;
}

impl<T: Serialize + ?Sized> ToolOutputJson for &&&ToolOutput<'_, T> {
    fn __otel_tool_output(&self) -> Option<Json> {
        serde_json::to_value(self.0).ok()
    }
}

/// `Ok` values that are `Debug` become their `Debug` text.
pub trait ToolOutputOkDebug {
    /// The `Ok` value as its `Debug` text.
    fn __otel_tool_output(&self) -> Option<Json>;
}

impl<T: Debug, E> ToolOutputOkDebug for &&ToolOutput<'_, Result<T, E>> {
    fn __otel_tool_output(&self) -> Option<Json> {
        self.0.as_ref().ok().map(|v| Json::String(format!("{v:?}")))
    }
}

/// Other `Debug` values become their `Debug` text.
pub trait ToolOutputDebug {
    /// The value as its `Debug` text.
    fn __otel_tool_output(&self) -> Option<Json>;
}

impl<T: Debug + ?Sized> ToolOutputDebug for &ToolOutput<'_, T> {
    fn __otel_tool_output(&self) -> Option<Json> {
        Some(Json::String(format!("{:?}", self.0)))
    }
}

/// Anything else is left out.
pub trait ToolOutputNone {
    /// Nothing.
    fn __otel_tool_output(&self) -> Option<Json>;
}

impl<T: ?Sized> ToolOutputNone for ToolOutput<'_, T> {
    fn __otel_tool_output(&self) -> Option<Json> {
        None
    }
}

/// The text recorded for a value: a JSON string as its text, `null` (a tool
/// that returns `()`) as nothing, anything else as JSON.
pub fn text(value: Option<Json>) -> Option<String> {
    match value? {
        Json::Null => None,
        Json::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}

/// The arguments of a tool step with no `arguments = ...`: a JSON object of
/// its parameters, those that can be shown.
pub fn object(parameters: &[(&str, Option<Json>)]) -> Option<String> {
    let map: serde_json::Map<String, Json> = parameters
        .iter()
        .filter_map(|(name, value)| Some(((*name).to_owned(), value.clone()?)))
        .collect();
    (!map.is_empty()).then(|| Json::Object(map).to_string())
}

#[cfg(test)]
// The borrows mirror the generated code's depth exactly, so the tests pick
// the impl the expansion picks; clippy's shorter forms would test another path.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[derive(Serialize, Debug)]
    struct Query {
        city: &'static str,
    }

    #[derive(Debug)]
    struct OnlyDebug(#[allow(dead_code)] u8);

    struct Opaque;

    #[test]
    fn the_most_specific_form_is_chosen() {
        let q = Query { city: "Quito" };
        assert_eq!(
            text((&&&ToolValue(&q)).__otel_tool_value()).as_deref(),
            Some(r#"{"city":"Quito"}"#)
        );
        assert_eq!(
            text((&&&ToolValue(&OnlyDebug(3))).__otel_tool_value()).as_deref(),
            Some("OnlyDebug(3)")
        );
        assert_eq!(text((&&&ToolValue(&Opaque)).__otel_tool_value()), None);
        assert_eq!(
            text((&&&ToolValue("sunny")).__otel_tool_value()).as_deref(),
            Some("sunny")
        );

        let ok: Result<Query, String> = Ok(Query { city: "Lima" });
        assert_eq!(
            text((&&&&&ToolOutput(&ok)).__otel_tool_output()).as_deref(),
            Some(r#"{"city":"Lima"}"#)
        );
        let failed: Result<Query, String> = Err("down".into());
        assert_eq!(text((&&&&&ToolOutput(&failed)).__otel_tool_output()), None);
        let debug_ok: Result<OnlyDebug, Opaque> = Ok(OnlyDebug(1));
        assert_eq!(
            text((&&&&&ToolOutput(&debug_ok)).__otel_tool_output()).as_deref(),
            Some("OnlyDebug(1)")
        );
        assert_eq!(text((&&&&&ToolOutput(&())).__otel_tool_output()), None);
        assert_eq!(text((&&&&&ToolOutput(&Opaque)).__otel_tool_output()), None);
        assert_eq!(
            object(&[("city", Some(Json::from("Quito"))), ("client", None)]).as_deref(),
            Some(r#"{"city":"Quito"}"#)
        );
    }
}
