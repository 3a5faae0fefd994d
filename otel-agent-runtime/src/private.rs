pub use crate::guard::{LlmGuard, StepGuard};
pub use crate::metrics::SiteMetrics;
pub use crate::probe::{
    OutcomeAlwaysOk, OutcomeClassified, OutcomeClassifiedSilent, OutcomeDisplay, OutcomeOpaque,
    Probe, ReadNoResponse, ReadResponse,
};
pub use crate::semconv;
pub use crate::site::{LlmSite, ModelName, ModelNames, StepSite, TOOL_TYPE};
pub use crate::span_start::{CallStart, StepStart};
pub use crate::stream::{declared_stream, DeclaredStream, LlmStream};
pub use crate::task::{in_call, CallGuard, InstrumentedCall};
pub use crate::tool_content::{
    object as tool_arguments_object, text as tool_text, ToolOutput, ToolOutputDebug,
    ToolOutputJson, ToolOutputNone, ToolOutputOkDebug, ToolOutputOkJson, ToolValue, ToolValueDebug,
    ToolValueJson, ToolValueNone,
};

/// Records a request's settings on an `#[llm_call]` span (`request = ...`).
pub fn record_request<R: crate::LlmRequest + ?Sized>(span: &tracing::Span, request: &R) {
    request.request_params().record(span);
    crate::content::record_request(span, request);
}
/// Records a client's server on an `#[llm_call]` span (`client = ...`).
pub fn record_client<C: crate::LlmClient + ?Sized>(span: &tracing::Span, client: &C) {
    if let Some((address, port)) = client.server() {
        crate::span_state::note_server(span, &address, port);
    }
}
pub use tracing;

/// Runs the body of an annotated `async fn` inside its span.
pub fn instrument<F: core::future::Future>(
    future: F,
    span: &tracing::Span,
) -> crate::task::InCall<F> {
    crate::task::in_async_call(future, span)
}

/// Whether anything listens to the spans the attributes create: when not,
/// generated code runs the body as written, without guard or span. Asked
/// of a call site with the spans' target and level, so filters by target
/// and level (what `RUST_LOG`-style filters use) decide exactly; a filter on
/// span names or fields can only disable a span further, which the guard
/// then sees.
///
/// Decided as `tracing::span!` decides, not as `span_enabled!` does: the
/// latter asks the subscriber on every call even when the call site's
/// cached interest already answers (~190 instructions per call). A cached
/// "always" is trusted once `init()` installed the global subscriber.
#[macro_export]
#[doc(hidden)]
macro_rules! __enabled {
    () => {{
        static __OTEL_AGENT_META: $crate::__private::tracing::Metadata<'static> =
            $crate::__private::tracing::Metadata::new(
                ::core::concat!("enabled ", ::core::file!(), ":", ::core::line!()),
                "otel_agent",
                $crate::__private::tracing::Level::INFO,
                ::core::option::Option::Some(::core::file!()),
                ::core::option::Option::Some(::core::line!()),
                ::core::option::Option::Some(::core::module_path!()),
                $crate::__private::tracing::field::FieldSet::new(
                    &[],
                    $crate::__private::tracing::callsite::Identifier(&__OTEL_AGENT_CALLSITE),
                ),
                $crate::__private::tracing::metadata::Kind::SPAN.hint(),
            );
        static __OTEL_AGENT_CALLSITE: $crate::__private::tracing::callsite::DefaultCallsite =
            $crate::__private::tracing::callsite::DefaultCallsite::new(&__OTEL_AGENT_META);
        $crate::__private::enabled(&__OTEL_AGENT_CALLSITE)
    }};
}

/// What [`__enabled!`] asks of its call site. The level test comes first
/// and inline: with no subscriber it is the whole of the disabled path.
#[inline]
pub fn enabled(callsite: &'static tracing_core::callsite::DefaultCallsite) -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    if tracing::Level::INFO > STATIC_MAX_LEVEL || tracing::Level::INFO > LevelFilter::current() {
        return false;
    }
    asks_interest(callsite)
}

#[inline(never)]
fn asks_interest(callsite: &'static tracing_core::callsite::DefaultCallsite) -> bool {
    use tracing_core::Callsite as _;
    let interest = callsite.interest();
    // The cached interest is the process's: with several subscribers
    // alive, theirs only. "Always" then holds for this thread too only if
    // it has a subscriber, which it does once `init()` installed the
    // global one; otherwise its own subscriber (maybe none) is asked.
    (interest.is_always() && crate::telemetry::global_subscriber_installed())
        || (!interest.is_never()
            && tracing::dispatcher::get_default(|d| d.enabled(callsite.metadata())))
}

/// Creates the span of an `#[agent_step]`. Fields after `;` are passed to
/// `tracing::span!` as written (the attribute's `fields(...)`).
#[macro_export]
#[doc(hidden)]
macro_rules! __agent_step_span {
    (agent, $span_name:literal, $site:expr $(; $($extra:tt)*)?) => {
        $crate::__agent_step_span!(@span $span_name, $site, [
            { $crate::__private::semconv::GEN_AI_AGENT_NAME } = $site.name,
            { $crate::__private::semconv::GEN_AI_AGENT_DESCRIPTION } = $site.description,
        ] $(; $($extra)*)?)
    };
    (tool, $span_name:literal, $site:expr $(; $($extra:tt)*)?) => {
        $crate::__agent_step_span!(@span $span_name, $site, [
            { $crate::__private::semconv::GEN_AI_TOOL_NAME } = $site.name,
            { $crate::__private::semconv::GEN_AI_TOOL_TYPE } = $crate::__private::TOOL_TYPE,
            { $crate::__private::semconv::GEN_AI_TOOL_DESCRIPTION } = $site.description,
        ] $(; $($extra)*)?)
    };
    // A tool named at run time: the span's OpenTelemetry name and
    // `gen_ai.tool.name` come from `$start` (a `StepStart`).
    (tool_named, $span_name:literal, $site:expr, $start:expr $(; $($extra:tt)*)?) => {
        $crate::__agent_step_span!(@span $span_name, $site, [
            otel.name = $start.span_name(),
            { $crate::__private::semconv::GEN_AI_TOOL_NAME } = $start.name(),
            { $crate::__private::semconv::GEN_AI_TOOL_TYPE } = $crate::__private::TOOL_TYPE,
            { $crate::__private::semconv::GEN_AI_TOOL_DESCRIPTION } = $site.description,
        ] $(; $($extra)*)?)
    };
    (workflow, $span_name:literal, $site:expr $(; $($extra:tt)*)?) => {
        $crate::__agent_step_span!(@span $span_name, $site, [
            { $crate::__private::semconv::GEN_AI_WORKFLOW_NAME } = $site.name,
        ] $(; $($extra)*)?)
    };
    // What every step's span has: its operation, then the kind's own fields,
    // then the fields recorded later.
    (@span $span_name:literal, $site:expr, [$($kind:tt)*] $(; $($extra:tt)*)?) => {{
        // tracing's `{ key } = value` fields name a bare `Some`: bring it
        // into scope so the span compiles inside `#![no_implicit_prelude]`.
        #[allow(unused_imports)]
        use ::core::option::Option::Some;
        $crate::__private::tracing::span!(
            target: "otel_agent::step",
            $crate::__private::tracing::Level::INFO,
            $span_name,
            { $crate::__private::semconv::GEN_AI_OPERATION_NAME } = $site.operation,
            $($kind)*
            { $crate::__private::semconv::ERROR_TYPE } = $crate::__private::tracing::field::Empty,
            // Declared so that a library recording usage on the current
            // span (rig does) is kept: exported as the step's roll-up.
            { $crate::__private::semconv::GEN_AI_USAGE_INPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::GEN_AI_USAGE_OUTPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            otel.status_code = $crate::__private::tracing::field::Empty,
            otel.status_description = $crate::__private::tracing::field::Empty,
            $($($extra)*)?
        )
    }};
}

/// Creates the span of an `#[llm_call]`. `$otel_name` is `Some` when the model
/// is only known at run time, and then names the OpenTelemetry span.
#[macro_export]
#[doc(hidden)]
macro_rules! __llm_call_span {
    ($span_name:literal, $otel_name:expr, $operation:expr, $provider:expr, $model:expr $(; $($extra:tt)*)?) => {{
        // tracing's `{ key } = value` fields name a bare `Some`: bring it
        // into scope so the span compiles inside `#![no_implicit_prelude]`.
        #[allow(unused_imports)]
        use ::core::option::Option::Some;
        $crate::__private::tracing::span!(
            target: "otel_agent::llm_call",
            $crate::__private::tracing::Level::INFO,
            $span_name,
            otel.name = $otel_name,
            otel.kind = "client",
            { $crate::__private::semconv::GEN_AI_OPERATION_NAME } = $operation,
            { $crate::__private::semconv::GEN_AI_PROVIDER_NAME } = $provider,
            { $crate::__private::semconv::GEN_AI_REQUEST_MODEL } = $model,
            { $crate::__private::semconv::GEN_AI_RESPONSE_MODEL } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::GEN_AI_RESPONSE_ID } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::GEN_AI_USAGE_INPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::GEN_AI_USAGE_OUTPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS } = $crate::__private::tracing::field::Empty,
            { $crate::__private::semconv::ERROR_TYPE } = $crate::__private::tracing::field::Empty,
            otel.status_code = $crate::__private::tracing::field::Empty,
            otel.status_description = $crate::__private::tracing::field::Empty,
            $($($extra)*)?
        )
    }};
}

/// Starts an `#[llm_call]`'s work, all of it: the model, its provider, the
/// span, the guard. `if_enabled` gives `None` when nothing listens (the body
/// then runs as written), `boxed_if_enabled` the same with the guard boxed
/// (an `async fn`'s state grows by a pointer, not by the guard), `always` the
/// guard itself. `$model` is the attribute's string literal with `literal`,
/// and with `named` a `ModelName` an expression gave at run time (the span's
/// name is then made from it); `capture_content` when the attribute asks for
/// content. Fields after `;` go to the span as written.
#[macro_export]
#[doc(hidden)]
macro_rules! __llm_call_start {
    ($mode:ident, $site:ident, $model:expr, $span_name:literal, $how:ident $(, $capture:ident)? $(; $($fields:tt)*)?) => {
        $crate::__llm_call_start!(@$mode $site, $model, $span_name, $how $(, $capture)? $(; $($fields)*)?)
    };
    (@if_enabled $($rest:tt)*) => {
        if $crate::__enabled!() {
            ::core::option::Option::Some($crate::__llm_call_start!(@always $($rest)*))
        } else {
            ::core::option::Option::None
        }
    };
    (@boxed_if_enabled $($rest:tt)*) => {
        ::core::option::Option::map($crate::__llm_call_start!(@if_enabled $($rest)*), ::std::boxed::Box::new)
    };
    (@always $site:ident, $model:expr, $span_name:literal, $how:ident $(, $capture:ident)? $(; $($fields:tt)*)?) => {{
        let start = $crate::__private::CallStart::$how(&$site, $model);
        $crate::__private::LlmGuard::start(
            $crate::__llm_call_span!($span_name, start.span_name(), $site.operation, start.provider(), start.model() $(; $($fields)*)?),
            start,
        ) $(.$capture())?
    }};
}

/// Starts an `#[agent_step]`'s work: the span of the step's kind (`agent`,
/// `tool`, `workflow`, or `tool_named(name)` for a tool named at run time)
/// and the guard; the modes as in [`__llm_call_start!`].
#[macro_export]
#[doc(hidden)]
macro_rules! __agent_step_start {
    (if_enabled, $($rest:tt)*) => {
        if $crate::__enabled!() {
            ::core::option::Option::Some($crate::__agent_step_start!(always, $($rest)*))
        } else {
            ::core::option::Option::None
        }
    };
    (boxed_if_enabled, $($rest:tt)*) => {
        ::core::option::Option::map($crate::__agent_step_start!(if_enabled, $($rest)*), ::std::boxed::Box::new)
    };
    (always, $site:ident, tool_named($name:expr), $span_name:literal $(; $($fields:tt)*)?) => {{
        let start = $crate::__private::StepStart::tool_named(&$site, $name);
        $crate::__private::StepGuard::start(
            $crate::__agent_step_span!(tool_named, $span_name, $site, start $(; $($fields)*)?),
            start,
        )
    }};
    (always, $site:ident, $kind:ident, $span_name:literal $(; $($fields:tt)*)?) => {{
        let start = $crate::__private::StepStart::new(&$site);
        $crate::__private::StepGuard::start(
            $crate::__agent_step_span!($kind, $span_name, $site $(; $($fields)*)?),
            start,
        )
    }};
}

/// Ends an `#[llm_call]` with the value its body returned: its outcome and
/// response read from whatever type that is (see `probe.rs`), and only when
/// something records them.
#[macro_export]
#[doc(hidden)]
macro_rules! __llm_call_finish {
    ($guard:ident, $result:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{
            OutcomeAlwaysOk as _, OutcomeClassified as _, OutcomeClassifiedSilent as _,
            OutcomeDisplay as _, OutcomeOpaque as _, ReadNoResponse as _, ReadResponse as _,
        };
        // Nobody listening: the response is not read at all; its messages
        // only when content is captured.
        if let ::core::option::Option::Some(content) = $guard.reading() {
            $guard.finish(
                (&&&&&$crate::__private::Probe(&$result)).__otel_outcome(),
                (&&$crate::__private::Probe(&$result)).__otel_response(content),
            );
        }
    }};
}

/// Ends an `#[agent_step]` with the value its body returned; `tool` also
/// records a tool's result (under content capture).
#[macro_export]
#[doc(hidden)]
macro_rules! __agent_step_finish {
    (tool $guard:ident, $result:expr) => {
        $crate::__agent_step_finish!(@finish $guard, $result, {
            $guard.tool_result(|| {
                #[allow(unused_imports)]
                use $crate::__private::{
                    ToolOutputDebug as _, ToolOutputJson as _, ToolOutputNone as _,
                    ToolOutputOkDebug as _, ToolOutputOkJson as _,
                };
                $crate::__private::tool_text(
                    (&&&&&$crate::__private::ToolOutput(&$result)).__otel_tool_output(),
                )
            });
        })
    };
    ($guard:ident, $result:expr) => {
        $crate::__agent_step_finish!(@finish $guard, $result, {})
    };
    (@finish $guard:ident, $result:expr, { $($tool:tt)* }) => {{
        #[allow(unused_imports)]
        use $crate::__private::{
            OutcomeAlwaysOk as _, OutcomeClassified as _, OutcomeClassifiedSilent as _,
            OutcomeDisplay as _, OutcomeOpaque as _,
        };
        if $guard.is_recording() {
            $($tool)*
            $guard.finish((&&&&&$crate::__private::Probe(&$result)).__otel_outcome());
        }
    }};
}

/// A call site's optional part as its `static` field: `option` gives
/// `Some(value)` or `None`, `slice` the metric attributes or `&[]`, for the
/// site macros, whose attributes leave out what they do not give.
#[macro_export]
#[doc(hidden)]
macro_rules! __site_field {
    (option) => {
        ::core::option::Option::None
    };
    (option $value:literal) => {
        ::core::option::Option::Some($value)
    };
    (slice) => {
        &[]
    };
    (slice $value:expr) => {
        $value
    };
}

/// Makes an `#[agent_step]`'s call site: the `static` `$site`, what the step
/// is, fixed at compile time: operation, name, the description when given,
/// and after `;` the metric attributes when there are any.
#[macro_export]
#[doc(hidden)]
macro_rules! __agent_step_site {
    ($site:ident, $operation:literal, $name:literal $(, $description:literal)? $(; $attributes:expr)?) => {
        static $site: $crate::__private::StepSite = $crate::__private::StepSite {
            operation: $operation,
            name: $name,
            description: $crate::__site_field!(option $($description)?),
            attributes: $crate::__site_field!(slice $($attributes)?),
            metrics: $crate::__private::SiteMetrics::NEW,
        };
    };
}

/// Makes an `#[llm_call]`'s call site: the `static` `$site`, with its
/// operation, the provider when the attribute names it, and after `;` the
/// metric attributes when there are any.
#[macro_export]
#[doc(hidden)]
macro_rules! __llm_call_site {
    ($site:ident, $operation:literal $(, $provider:literal)? $(; $attributes:expr)?) => {
        static $site: $crate::__private::LlmSite = $crate::__private::LlmSite {
            operation: $operation,
            provider: $crate::__site_field!(option $($provider)?),
            attributes: $crate::__site_field!(slice $($attributes)?),
            metrics: $crate::__private::SiteMetrics::NEW,
            models: $crate::__private::ModelNames::NEW,
        };
    };
}
