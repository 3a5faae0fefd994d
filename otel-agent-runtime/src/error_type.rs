//! The `error.type` of an error that does not classify itself ([`ErrorType`]).
//!
//! `error.type` is a metric label, so it has to be something a dashboard can
//! group by: a named error type gives its short name, and an error whose type
//! says nothing about the failure (a string, `Box<dyn Error>`, `anyhow::Error`)
//! gives the conventions' fallback, [`ERROR_TYPE_OTHER`], unless it carries an
//! error the runtime knows how to classify.

use std::borrow::Cow;
use std::error::Error;

use crate::response::ErrorType;

/// The `error.type` value for an error of no known class: the fallback the
/// OpenTelemetry semantic conventions define for `error.type` (the conventions
/// crate has a constant for the key only, not for this value).
///
/// Recorded for strings, `Box<dyn Error>` and similar type-erased errors,
/// `anyhow::Error` and `eyre::Report`.
pub const ERROR_TYPE_OTHER: &str = "_OTHER";

/// The `error.type` of an `E` that does not implement [`ErrorType`], from its
/// type alone.
pub(crate) fn of_type<E: ?Sized>() -> Cow<'static, str> {
    from_type_name(std::any::type_name::<E>())
}

/// The class of a type-erased error: the class of the error inside when it is
/// one the runtime has an [`ErrorType`] for, the fallback otherwise. A type
/// the runtime does not know cannot be named from behind `dyn Error`.
fn of_dyn(error: &(dyn Error + 'static)) -> Cow<'static, str> {
    if let Some(error) = error.downcast_ref::<std::io::Error>() {
        return error.error_type();
    }
    #[cfg(feature = "async-openai")]
    if let Some(error) = error.downcast_ref::<async_openai::error::OpenAIError>() {
        return error.error_type();
    }
    Cow::Borrowed(ERROR_TYPE_OTHER)
}

macro_rules! dyn_error_type {
    ($($bounds:tt)*) => {
        /// The class of the error inside when the runtime knows its type
        /// (`std::io::Error`, async-openai's `OpenAIError`), else `_OTHER`.
        impl ErrorType for dyn Error $($bounds)* + 'static {
            fn error_type(&self) -> Cow<'static, str> {
                of_dyn(self)
            }
        }
    };
}
dyn_error_type!();
dyn_error_type!(+ Send);
dyn_error_type!(+ Sync);
dyn_error_type!(+ Send + Sync);

/// Carriers of an error of any type, named by `(crate, type)`: they say how
/// the error travelled, not what went wrong. Matched on the crate and the last
/// segment because the module path between them is not part of their API
/// (`color_eyre::Report` is `eyre::Report`, listed in case that changes).
const ERASED: &[(&str, &str)] = &[
    ("anyhow", "Error"),
    ("eyre", "Report"),
    ("color_eyre", "Report"),
    ("miette", "Report"),
];

/// The standard library's crates: `type_name` says `alloc::string::String`
/// today, and may say `std::string::String` in another compiler version.
const STD_CRATES: &[&str] = &["alloc", "core", "std"];

/// Standard types that hold a message or a bag of errors rather than name one.
const STD_CARRIERS: &[&str] = &["String", "Cow", "Vec"];

/// Standard pointers whose pointee is the error that matters.
const STD_POINTERS: &[&str] = &["Box", "Arc", "Rc"];

/// `error.type` from a type name as `std::any::type_name` spells it.
fn from_type_name(name: &'static str) -> Cow<'static, str> {
    let name = pointee(name);
    let path = name.split_once('<').map_or(name, |(path, _)| path);
    // Trait objects, closures, primitives, tuples, arrays and fn pointers
    // are not named by a path of at least a crate and a type.
    if !is_path(path) {
        return Cow::Borrowed(ERROR_TYPE_OTHER);
    }
    let krate = path.split("::").next().unwrap_or(path);
    let (parent, short) = match path.rsplit_once("::") {
        Some((parent, short)) => (parent, short),
        None => return Cow::Borrowed(ERROR_TYPE_OTHER),
    };
    let is_std = STD_CRATES.contains(&krate);
    // A pointer is left here only when its argument could not be read.
    let std_carrier = STD_CARRIERS.contains(&short) || STD_POINTERS.contains(&short);
    if ERASED.contains(&(krate, short)) || (is_std && std_carrier) {
        return Cow::Borrowed(ERROR_TYPE_OTHER);
    }
    if short != "Error" {
        return Cow::Borrowed(short);
    }
    // `Error` alone is most crates' error type: `reqwest::Error` and
    // `serde_json::Error` must not fall into one group. The standard library
    // is one crate to its users, so its module names the type instead.
    if is_std {
        let module = parent.rsplit("::").next().unwrap_or(parent);
        let start = path.len() - module.len() - "::Error".len();
        Cow::Borrowed(&path[start..])
    } else {
        Cow::Owned(format!("{krate}::Error"))
    }
}

/// Looks through references and the standard smart pointers:
/// `&my::Error` and `Box<my::Error>` are classified as `my::Error`.
fn pointee(mut name: &'static str) -> &'static str {
    loop {
        name = name.trim();
        if let Some(rest) = name.strip_prefix('&') {
            let rest = rest.trim_start();
            let rest = rest.strip_prefix("mut ").unwrap_or(rest);
            // `type_name` leaves lifetimes out today; nothing promises it.
            name = match rest.strip_prefix('\'') {
                Some(lifetime) => lifetime.split_once(' ').map_or(rest, |(_, rest)| rest),
                None => rest,
            };
            continue;
        }
        let Some((path, args)) = name.split_once('<') else {
            return name;
        };
        let krate = path.split("::").next().unwrap_or(path);
        let short = path.rsplit("::").next().unwrap_or(path);
        if !(STD_CRATES.contains(&krate) && STD_POINTERS.contains(&short)) {
            return name;
        }
        match first_argument(args) {
            Some(inner) => name = inner,
            None => return name,
        }
    }
}

/// The first generic argument of `A, B<C, D>>` (what follows a type's `<`):
/// `A`. `None` when the brackets do not balance.
fn first_argument(args: &'static str) -> Option<&'static str> {
    let mut depth = 0_usize;
    let mut previous = ' ';
    for (i, c) in args.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            // The `>` of a fn type's `->` closes nothing.
            '>' if previous == '-' => {}
            '>' | ')' | ']' if depth == 0 => return Some(&args[..i]),
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => return Some(&args[..i]),
            _ => {}
        }
        previous = c;
    }
    None
}

/// Whether `path` is `crate::...::Type`: at least two identifiers.
fn is_path(path: &str) -> bool {
    let mut segments = 0;
    for segment in path.split("::") {
        let mut chars = segment.chars();
        let starts_well = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
        if !starts_well || !chars.all(|c| c.is_alphanumeric() || c == '_') {
            return false;
        }
        segments += 1;
    }
    segments >= 2
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    mod errors {
        #[derive(Debug)]
        pub struct RateLimited;
        pub struct Wrapper<T>(pub T);
        pub struct Error;
    }

    /// The `error.type` the probes give an `E` that is not an [`ErrorType`].
    fn named<E: ?Sized>() -> Cow<'static, str> {
        of_type::<E>()
    }

    #[test]
    fn a_named_type_gives_its_short_name() {
        assert_eq!(named::<errors::RateLimited>(), "RateLimited");
        assert_eq!(named::<std::num::ParseIntError>(), "ParseIntError");
        assert_eq!(
            from_type_name("rig::completion::request::CompletionError"),
            "CompletionError"
        );
        assert_eq!(
            from_type_name("my_crate::errors::RateLimited"),
            "RateLimited"
        );
    }

    #[test]
    fn generic_arguments_are_left_out() {
        assert_eq!(from_type_name("foo::Wrapper<bar::Baz>"), "Wrapper");
        assert_eq!(
            named::<errors::Wrapper<std::num::ParseIntError>>(),
            "Wrapper"
        );
        assert_eq!(
            from_type_name("foo::Wrapper<alloc::vec::Vec<u8>, bar::Baz<u8>>"),
            "Wrapper"
        );
    }

    #[test]
    fn references_and_smart_pointers_are_seen_through() {
        assert_eq!(named::<&errors::RateLimited>(), "RateLimited");
        assert_eq!(named::<&mut errors::RateLimited>(), "RateLimited");
        assert_eq!(named::<Box<errors::RateLimited>>(), "RateLimited");
        assert_eq!(named::<Arc<Box<errors::RateLimited>>>(), "RateLimited");
        assert_eq!(named::<std::rc::Rc<errors::RateLimited>>(), "RateLimited");
        assert_eq!(from_type_name("&'a my::Failed"), "Failed");
        assert_eq!(
            from_type_name("alloc::boxed::Box<my::Failed, alloc::alloc::Global>"),
            "Failed"
        );
    }

    #[test]
    fn a_type_named_error_keeps_its_crate() {
        assert_eq!(from_type_name("reqwest::error::Error"), "reqwest::Error");
        assert_eq!(from_type_name("serde_json::Error"), "serde_json::Error");
        assert_eq!(named::<std::fmt::Error>(), "fmt::Error");
        assert_eq!(from_type_name("std::fmt::Error"), "fmt::Error");
        assert!(named::<errors::Error>().ends_with("::Error"));
        assert_eq!(from_type_name("my::Error<u8>"), "my::Error");
    }

    #[test]
    fn type_erased_errors_give_other() {
        for other in [
            named::<String>(),
            named::<&str>(),
            named::<str>(),
            named::<Box<str>>(),
            named::<Cow<'static, str>>(),
            named::<Vec<String>>(),
            named::<Box<dyn Error>>(),
            named::<Box<dyn Error + Send + Sync>>(),
            named::<Arc<dyn Error + Send + Sync>>(),
            named::<&dyn Error>(),
            named::<Box<dyn std::any::Any + Send>>(),
            named::<Box<dyn Fn() -> u8>>(),
            named::<()>(),
            named::<i32>(),
            named::<(errors::RateLimited, u8)>(),
            named::<[u8; 2]>(),
            named::<fn() -> errors::RateLimited>(),
            from_type_name("anyhow::Error"),
            from_type_name("eyre::Report"),
            from_type_name("color_eyre::Report"),
            from_type_name("miette::eyreish::Report"),
            from_type_name("std::string::String"),
            from_type_name("my::f::{{closure}}"),
            from_type_name("alloc::boxed::Box<"),
        ] {
            assert_eq!(other, ERROR_TYPE_OTHER);
        }
    }

    #[test]
    fn a_closure_gives_other() {
        fn type_name_of<T>(_: &T) -> Cow<'static, str> {
            of_type::<T>()
        }
        assert_eq!(type_name_of(&|| ()), ERROR_TYPE_OTHER);
    }

    #[test]
    fn a_type_erased_error_holding_a_known_error_gives_its_class() {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let boxed: Box<dyn Error> = Box::new(timed_out());
        assert_eq!(boxed.error_type(), "TimedOut");
        let boxed: Box<dyn Error + Send + Sync> = Box::new(timed_out());
        assert_eq!(boxed.error_type(), "TimedOut");
        let shared: Arc<dyn Error + Send + Sync> = Arc::new(timed_out());
        assert_eq!(shared.error_type(), "TimedOut");
        let error = timed_out();
        let borrowed: &(dyn Error + 'static) = &error;
        assert_eq!(borrowed.error_type(), "TimedOut");
    }

    #[test]
    fn a_type_erased_error_holding_anything_else_gives_other() {
        let boxed: Box<dyn Error + Send + Sync> = "boom".into();
        assert_eq!(boxed.error_type(), ERROR_TYPE_OTHER);
        let boxed: Box<dyn Error> = "x".parse::<u8>().unwrap_err().into();
        assert_eq!(boxed.error_type(), ERROR_TYPE_OTHER);
    }
}
