//! Text and JSON cut to a size limit: on a character boundary, with the cut
//! marked, and JSON kept valid.

use serde_json::Value as Json;

const TRUNCATED: &str = "…[truncated]";

/// Cuts a string to at most `max` bytes (on a character boundary), marking the cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &text[..end])
}

/// Applies `f` to every string leaf of a JSON value.
pub(crate) fn map_strings(value: &mut Json, f: &dyn Fn(&str) -> String) {
    match value {
        Json::String(s) => *s = f(s),
        Json::Array(items) => items.iter_mut().for_each(|v| map_strings(v, f)),
        Json::Object(map) => map.iter_mut().for_each(|(_, v)| map_strings(v, f)),
        _ => {}
    }
}

/// Serialises `value` to at most `max` bytes of valid JSON: long strings are cut
/// first (all to the same length, found by bisection), then the oldest array
/// items are dropped; a value that still does not fit becomes `[]`.
pub(crate) fn fit_json(value: &Json, max: usize) -> String {
    let full = value.to_string();
    if full.len() <= max {
        return full;
    }
    let with_cap = |cap: usize| {
        let mut v = value.clone();
        map_strings(&mut v, &|s| cut(s, cap));
        v
    };
    let (mut lo, mut hi) = (0usize, full.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if with_cap(mid).to_string().len() <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut best = with_cap(lo);
    if best.to_string().len() <= max {
        return best.to_string();
    }
    if let Json::Array(items) = &mut best {
        while !items.is_empty() {
            items.remove(0);
            let s = Json::Array(items.clone()).to_string();
            if s.len() <= max {
                return s;
            }
        }
    }
    "[]".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truncation_keeps_valid_json_within_the_limit() {
        let messages = json!([
            {"role": "user", "parts": [{"type": "text", "content": "a".repeat(5000)}]},
            {"role": "assistant", "parts": [{"type": "text", "content": "é".repeat(3000)}]},
        ]);
        for max in [64, 100, 500, 2000, 20_000] {
            let out = fit_json(&messages, max);
            assert!(out.len() <= max, "{} > {max}", out.len());
            let parsed: Json = serde_json::from_str(&out).expect("valid JSON");
            assert!(parsed.is_array());
        }
        let roomy = fit_json(&messages, 2000);
        assert!(
            roomy.contains(TRUNCATED) && roomy.contains("\"role\":\"user\""),
            "{roomy}"
        );
        assert_eq!(fit_json(&json!([1, 2]), 100), "[1,2]");
    }
}
