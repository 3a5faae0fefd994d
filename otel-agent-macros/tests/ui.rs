//! Compile-time diagnostics of `#[agent_step]` and `#[llm_call]`, pinned.
//!
//! Every file in `ui/fail/` must fail to compile with exactly the messages in its
//! `.stderr`; every file in `ui/pass/` must compile and run. To update after an
//! intended change: `TRYBUILD=overwrite cargo test -p otel-agent-macros --test ui`,
//! then read every changed `.stderr`.
//!
//! The files use the attributes through `otel-agent-runtime`, as users do, but
//! live here so that trybuild's scratch crate gets only this crate's
//! dev-dependencies: the runtime without its exporters, not the root package's
//! whole tree.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
