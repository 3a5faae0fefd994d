//! Reading outcomes and responses out of whatever type an annotated function returns.
//!
//! Rust has no specialisation, so the generated code calls these through
//! auto-ref probing: `(&&&&&Probe(&value)).__otel_outcome()` resolves to the most
//! specific impl that applies to the concrete return type at the call site. A type
//! that implements nothing here still compiles; it simply reports less.

use std::fmt::Display;

pub use crate::outcome::Outcome;
use crate::response::{ErrorType, LlmResponse};

/// Borrowed return value of an annotated function.
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// `Err(E)` where `E` classifies itself and prints.
pub trait OutcomeClassified {
    /// The outcome.
    fn __otel_outcome(&self) -> Outcome;
}
impl<T, E: ErrorType + Display> OutcomeClassified for &&&&Probe<'_, Result<T, E>> {
    fn __otel_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure {
                error_type: e.error_type(),
                message: Some(e.to_string()),
            },
        }
    }
}

/// `Err(E)` where `E` classifies itself but does not print.
pub trait OutcomeClassifiedSilent {
    /// The outcome.
    fn __otel_outcome(&self) -> Outcome;
}
impl<T, E: ErrorType> OutcomeClassifiedSilent for &&&Probe<'_, Result<T, E>> {
    fn __otel_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure {
                error_type: e.error_type(),
                message: None,
            },
        }
    }
}

/// `Err(E)` where `E` prints (every `std::error::Error`, `anyhow::Error`, ...):
/// `error.type` is read from the type (its short name, or `_OTHER`).
pub trait OutcomeDisplay {
    /// The outcome.
    fn __otel_outcome(&self) -> Outcome;
}
impl<T, E: Display> OutcomeDisplay for &&Probe<'_, Result<T, E>> {
    fn __otel_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure {
                error_type: crate::error_type::of_type::<E>(),
                message: Some(e.to_string()),
            },
        }
    }
}

/// `Err(E)` for any other `E`.
pub trait OutcomeOpaque {
    /// The outcome.
    fn __otel_outcome(&self) -> Outcome;
}
impl<T, E> OutcomeOpaque for &Probe<'_, Result<T, E>> {
    fn __otel_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure {
                error_type: crate::error_type::of_type::<E>(),
                message: None,
            },
        }
    }
}

/// Anything that is not a `Result`.
pub trait OutcomeAlwaysOk {
    /// The outcome.
    fn __otel_outcome(&self) -> Outcome;
}
impl<T: ?Sized> OutcomeAlwaysOk for Probe<'_, T> {
    fn __otel_outcome(&self) -> Outcome {
        Outcome::Success
    }
}

/// What an `#[llm_call]` read from its return value.
#[derive(Debug, Default)]
pub struct ResponseReport {
    /// Token usage.
    pub usage: Option<crate::Usage>,
    /// `gen_ai.response.model`.
    pub response_model: Option<String>,
    /// `gen_ai.response.id`.
    pub response_id: Option<String>,
    /// `gen_ai.response.finish_reasons`.
    pub finish_reasons: Vec<String>,
    /// `gen_ai.output.messages`, read only when content is captured.
    pub output: Vec<crate::message::Message>,
}

/// Return types that implement [`LlmResponse`].
pub trait ReadResponse {
    /// Fills the report; the output messages only when `content` (captured).
    fn __otel_response(&self, content: bool) -> ResponseReport;
}
impl<T: LlmResponse + ?Sized> ReadResponse for &Probe<'_, T> {
    fn __otel_response(&self, content: bool) -> ResponseReport {
        let value = self.0;
        ResponseReport {
            output: if content {
                value.output_messages()
            } else {
                Vec::new()
            },
            usage: value.usage().map(crate::response::Usage::bounded),
            response_model: value.response_model().map(str::to_owned),
            response_id: value.response_id().map(str::to_owned),
            finish_reasons: value
                .finish_reasons()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// Return types that do not: nothing to read.
pub trait ReadNoResponse {
    /// An empty report.
    fn __otel_response(&self, content: bool) -> ResponseReport;
}
impl<T: ?Sized> ReadNoResponse for Probe<'_, T> {
    fn __otel_response(&self, _content: bool) -> ResponseReport {
        ResponseReport::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::needless_borrow)]
    use super::*;
    use crate::Usage;
    use std::borrow::Cow;

    #[derive(Debug)]
    struct Classified;
    impl std::error::Error for Classified {}
    impl ErrorType for Classified {
        fn error_type(&self) -> Cow<'static, str> {
            "rate_limited".into()
        }
    }
    impl Display for Classified {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("slow down")
        }
    }
    struct Opaque;
    struct Reply;
    impl LlmResponse for Reply {
        fn usage(&self) -> Option<Usage> {
            Some(Usage::new(3, 4))
        }
    }

    #[test]
    fn the_most_specific_outcome_wins() {
        let r: Result<(), Classified> = Err(Classified);
        assert_eq!(
            (&&&&&Probe(&r)).__otel_outcome(),
            Outcome::Failure {
                error_type: "rate_limited".into(),
                message: Some("slow down".into())
            }
        );
        let r: Result<(), std::fmt::Error> = Err(std::fmt::Error);
        assert!(matches!((&&&&&Probe(&r)).__otel_outcome(),
            Outcome::Failure { error_type, message: Some(_) } if error_type == "fmt::Error"));
        let r: Result<(), Opaque> = Err(Opaque);
        assert!(matches!(
            (&&&&&Probe(&r)).__otel_outcome(),
            Outcome::Failure { message: None, .. }
        ));
        let r: Result<u8, Opaque> = Ok(1);
        assert_eq!((&&&&&Probe(&r)).__otel_outcome(), Outcome::Success);
        assert_eq!((&&&&&Probe(&5_u8)).__otel_outcome(), Outcome::Success);
    }

    /// A macro, not a generic function: probes resolve on the concrete type,
    /// as in generated code.
    macro_rules! error_type_of {
        ($error:expr) => {
            match (&&&&&Probe(&Err::<(), _>($error))).__otel_outcome() {
                Outcome::Failure { error_type, .. } => error_type,
                Outcome::Success => unreachable!("an Err is a failure"),
            }
        };
    }

    #[test]
    fn every_probe_gives_a_groupable_error_type() {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        assert_eq!(error_type_of!(Classified), "rate_limited");
        assert_eq!(error_type_of!(Box::new(Classified)), "rate_limited");
        assert_eq!(
            error_type_of!(std::sync::Arc::new(Classified)),
            "rate_limited"
        );
        assert_eq!(error_type_of!(&Classified), "rate_limited");
        assert_eq!(error_type_of!(timed_out()), "TimedOut");
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(timed_out());
        assert_eq!(error_type_of!(boxed), "TimedOut");
        let boxed: Box<dyn std::error::Error> = Box::new(Classified);
        assert_eq!(error_type_of!(boxed), "_OTHER");
        assert_eq!(
            error_type_of!("x".parse::<u8>().unwrap_err()),
            "ParseIntError"
        );
        assert_eq!(error_type_of!(String::from("boom")), "_OTHER");
        assert_eq!(error_type_of!("boom"), "_OTHER");
        assert_eq!(error_type_of!(Opaque), "Opaque");
        let any: Box<dyn std::any::Any + Send> = Box::new(1_u8);
        assert_eq!(error_type_of!(any), "_OTHER");
    }

    #[test]
    fn responses_are_read_when_the_type_says_how() {
        let r: Result<Reply, Opaque> = Ok(Reply);
        assert_eq!(
            (&&Probe(&r)).__otel_response(false).usage,
            Some(Usage::new(3, 4))
        );
        let r: Result<String, Opaque> = Ok(String::new());
        assert_eq!((&&Probe(&r)).__otel_response(false).usage, None);
    }
}
