//! Compile-time diagnostics of `#[agent_step]` and `#[llm_call]`, pinned.
//!
//! Every file in `ui/fail/` must fail to compile with exactly the messages in
//! its `.stderr`. The files that must compile and run are built by the root
//! package's `tests/ui_pass/` with the rest of the workspace: given
//! compile-fail cases only, trybuild checks its scratch crate instead of building it, so the
//! dependencies it cannot share with the workspace's build (its own target
//! directory, its own flags) are only checked, never compiled to code or
//! linked. To update after an intended change:
//! `TRYBUILD=overwrite cargo test -p otel-agent-macros --test ui`, then read
//! every changed `.stderr`.
//!
//! The files use the attributes through `otel-agent-runtime`, as users do, but
//! live here so that trybuild's scratch crate gets only this crate's
//! dev-dependencies: the runtime without its exporters, not the root package's
//! whole tree. Those are `cfg(trybuild)` dev-dependencies (see `Cargo.toml`),
//! so the workspace's build does not compile them a second time.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}
