//! Configuration values and exporter errors as messages may show them: header
//! values, URL credentials and query values hidden, so that no error, warning
//! or summary prints a secret.

/// Whether `var` may hold credentials in its value: header lists.
pub(crate) fn holds_headers(name: &str) -> bool {
    name.ends_with("_HEADERS") || name == "headers"
}

/// Whether `var` (or a builder setting) holds an endpoint URL, which may carry
/// a user and password.
pub(crate) fn holds_endpoint(name: &str) -> bool {
    name.ends_with("_ENDPOINT") || name == "endpoint"
}

/// A variable's or a builder setting's value as messages may show it: header
/// lists by their keys only, endpoints without credentials, anything else as
/// it is.
pub(crate) fn printable_value(name: &str, value: &str) -> String {
    if holds_headers(name) {
        printable_headers(value)
    } else if holds_endpoint(name) {
        printable_endpoint(value)
    } else {
        value.to_owned()
    }
}

/// An endpoint URL as messages may show it: without the user and password
/// (`http://user:secret@host` becomes `http://***@host`), with query values
/// hidden (`?key=***`) and without fragment. Works on malformed URLs too, the
/// ones an error shows; a URL without credentials is returned unchanged.
pub(crate) fn printable_endpoint(url: &str) -> String {
    let (url, fragment) = match url.split_once('#') {
        Some((url, _)) => (url, true),
        None => (url, false),
    };
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = match base.find("://") {
        Some(i) => base.split_at(i + 3),
        None => ("", base),
    };
    // Everything up to the last `@` is credentials, even when what follows is
    // malformed: over-hiding a path with an `@` is better than showing a
    // password with a `/` in it.
    let mut out = match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => base.to_owned(),
    };
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                None if param.is_empty() => String::new(),
                None => "***".to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    if fragment {
        out.push_str("#***");
    }
    out
}

/// A header list (`OTEL_EXPORTER_OTLP_HEADERS`) as messages may show it: each
/// entry as `key=***`; an entry whose key could itself be a secret (not a
/// valid header name, or with nothing after `=`, as a pasted token with
/// base64 padding has) as `***`.
pub(crate) fn printable_headers(value: &str) -> String {
    let entries: Vec<String> = value
        .split(',')
        .map(|item| {
            let item = item.trim();
            match item.split_once('=') {
                _ if item.is_empty() => String::new(),
                Some((key, val))
                    if key.trim().len() <= 64
                        && http::HeaderName::from_bytes(key.trim().as_bytes()).is_ok()
                        && !val.trim().trim_matches('=').is_empty() =>
                {
                    format!("{}=***", key.trim())
                }
                _ => "***".to_owned(),
            }
        })
        .collect();
    entries.join(",")
}

/// Free text (an exporter's error) as messages may show it: the credentials
/// of every URL in it hidden, as [`printable_endpoint`] does.
pub(crate) fn printable_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The URL's start: back to the scheme.
        let scheme_start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| j + 1);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |j| i + j);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&printable_endpoint(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
