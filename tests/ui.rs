//! Compile-time diagnostics of `#[agent_step]` and `#[llm_call]`, pinned.
//!
//! Every file in `ui/fail/` must fail to compile with exactly the messages in its
//! `.stderr`; every file in `ui/pass/` must compile and run. To update after an
//! intended change: `TRYBUILD=overwrite cargo test --test ui`, then read every
//! changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
