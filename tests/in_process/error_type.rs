//! `error.type` for errors of every shape: one value a dashboard can group by,
//! the same on the span and on the metrics.

use crate::common;

use std::any::Any;
use std::borrow::Cow;
use std::error::Error;
use std::sync::Arc;

use common::{attr, f64_histogram_points, harness, point_attrs, span_named};
use opentelemetry::trace::Status;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use otel_agent_runtime::ErrorType;

mod errors {
    use std::borrow::Cow;

    #[derive(Debug)]
    pub struct RateLimited;

    impl std::fmt::Display for RateLimited {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("rate limited")
        }
    }

    impl std::error::Error for RateLimited {}

    #[derive(Debug)]
    pub struct Wrapper<E>(pub E);

    impl<E: std::fmt::Display> std::fmt::Display for Wrapper<E> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wrapped: {}", self.0)
        }
    }

    /// What most crates call their error type.
    #[derive(Debug)]
    pub struct Error;

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failed")
        }
    }

    /// Classifies itself: its class wins over its name.
    #[derive(Debug)]
    pub struct Quota;

    impl std::fmt::Display for Quota {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("quota exceeded")
        }
    }

    impl std::error::Error for Quota {}

    impl otel_agent_runtime::ErrorType for Quota {
        fn error_type(&self) -> Cow<'static, str> {
            "quota_exceeded".into()
        }
    }
}

/// An `#[llm_call]` (sync) and an `#[agent_step]` (async) that fail with the
/// same error, in a module of their own: `module::llm()`, `module::step()`.
macro_rules! failing {
    ($module:ident: $error:ty = $make:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            #[otel_agent_runtime::llm_call(model = "gpt-4o")]
            pub fn llm() -> Result<u8, $error> {
                Err($make)
            }

            #[otel_agent_runtime::agent_step(agent = "a")]
            pub async fn step() -> Result<u8, $error> {
                crate::common::suspend().await;
                Err($make)
            }
        }
    };
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "took too long")
}

failing!(named: errors::RateLimited = errors::RateLimited);
failing!(generic: errors::Wrapper<errors::RateLimited> = errors::Wrapper(errors::RateLimited));
failing!(called_error: errors::Error = errors::Error);
failing!(classified: errors::Quota = errors::Quota);
failing!(boxed_classified: Box<errors::Quota> = Box::new(errors::Quota));
failing!(io: std::io::Error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
failing!(parse: std::num::ParseIntError = "x".parse::<u8>().unwrap_err());
failing!(string: String = "boom".to_owned());
failing!(str_ref: &'static str = "boom");
failing!(cow: Cow<'static, str> = Cow::Borrowed("boom"));
failing!(boxed_message: Box<dyn Error> = "boom".into());
failing!(boxed_io: Box<dyn Error + Send + Sync> = Box::new(timed_out()));
failing!(boxed_named: Box<dyn Error + Send + Sync> = Box::new(errors::RateLimited));
failing!(shared_io: Arc<dyn Error + Send + Sync> = Arc::new(timed_out()));
failing!(shared_named: Arc<dyn Error + Send + Sync> = Arc::new(errors::Quota));
failing!(anyhow_error: anyhow::Error = anyhow::anyhow!("boom"));
failing!(anyhow_io: anyhow::Error = anyhow::Error::new(timed_out()));
failing!(eyre_report: eyre::Report = eyre::eyre!("boom"));
failing!(any: Box<dyn Any + Send> = Box::new(7_u8));

/// `error.type` of the call's span and of its duration metric, and of the
/// step's span and of its call count; the span must be an error either way.
fn recorded<L, S>(
    llm: fn() -> Result<u8, L>,
    step: impl std::future::Future<Output = Result<u8, S>>,
) -> [String; 4] {
    let h = harness();
    h.run(|| assert!(llm().is_err()));
    assert!(h.block_on(step).is_err());

    let spans = h.finished_spans();
    let span_error_type = |name: &str| {
        let span = span_named(&spans, name);
        assert!(matches!(span.status, Status::Error { .. }), "{span:?}");
        attr(span, "error.type")
            .unwrap_or_else(|| panic!("{name} has no error.type"))
            .as_str()
            .into_owned()
    };

    let metrics = h.metrics();
    let durations = f64_histogram_points(metrics.expect("gen_ai.client.operation.duration"));
    assert_eq!(durations.len(), 1);
    let llm_metric = point_attrs(durations[0].attributes())["error.type"].clone();
    let AggregatedMetrics::U64(MetricData::Sum(calls)) =
        metrics.expect("otel_agent.step.calls").data()
    else {
        panic!("otel_agent.step.calls is a u64 sum")
    };
    let calls: Vec<_> = calls.data_points().collect();
    assert_eq!(calls.len(), 1);
    let step_metric = point_attrs(calls[0].attributes())["error.type"].clone();

    [
        span_error_type("chat gpt-4o"),
        llm_metric,
        span_error_type("invoke_agent a"),
        step_metric,
    ]
}

macro_rules! assert_error_type {
    ($module:ident, $expected:expr) => {
        assert_eq!(
            recorded($module::llm, $module::step()),
            [$expected; 4].map(str::to_owned),
            "{}",
            stringify!($module)
        );
    };
}

#[test]
fn a_named_error_gives_its_short_name() {
    assert_error_type!(named, "RateLimited");
    assert_error_type!(generic, "Wrapper");
    assert_error_type!(parse, "ParseIntError");
}

#[test]
fn an_error_called_error_keeps_its_crate() {
    // The crate this test is in (`in_process`), not its module.
    assert_error_type!(called_error, concat!(env!("CARGO_CRATE_NAME"), "::Error"));
}

#[test]
fn an_error_type_impl_wins() {
    assert_error_type!(classified, "quota_exceeded");
    assert_error_type!(boxed_classified, "quota_exceeded");
    assert_error_type!(io, "ConnectionRefused");
}

#[test]
fn a_type_erased_error_holding_an_io_error_gives_its_kind() {
    assert_error_type!(boxed_io, "TimedOut");
    assert_error_type!(shared_io, "TimedOut");
}

#[test]
fn type_erased_errors_give_other() {
    assert_error_type!(string, "_OTHER");
    assert_error_type!(str_ref, "_OTHER");
    assert_error_type!(cow, "_OTHER");
    assert_error_type!(boxed_message, "_OTHER");
    // Behind `dyn Error` only the types the runtime classifies can be found:
    // not an application's own, not even one that implements `ErrorType`.
    assert_error_type!(boxed_named, "_OTHER");
    assert_error_type!(shared_named, "_OTHER");
    assert_error_type!(anyhow_error, "_OTHER");
    assert_error_type!(anyhow_io, "_OTHER");
    assert_error_type!(eyre_report, "_OTHER");
    assert_error_type!(any, "_OTHER");
}

#[test]
fn a_type_erased_error_can_still_be_classified_by_hand() {
    let boxed: Box<dyn Error + Send + Sync> = Box::new(timed_out());
    assert_eq!(boxed.error_type(), "TimedOut");
    let boxed: Box<dyn Error + Send + Sync> = "boom".into();
    assert_eq!(boxed.error_type(), "_OTHER");
}
