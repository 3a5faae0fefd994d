//! The attributes on every shape of code users write, compiled and run: each
//! file here must compile (under its own `#![deny(warnings)]`) and its `main`
//! must run to the end. Their compile errors' twins, the files that must not
//! compile, are `otel-agent-macros/tests/ui/fail/`.
//!
//! They are modules of this one test, not trybuild `pass` cases: trybuild
//! builds its scratch crate in a target directory of its own, so a single
//! `pass` case makes it compile and link the runtime's whole dependency tree
//! again, where compile-fail cases alone only need it checked. They live in
//! this package rather than the macros crate because a proc-macro crate's
//! dev-dependencies are resolved apart from the workspace: there the runtime
//! and its tree would be compiled a second time. Each file is still its own
//! module, with its own lint levels and its own shadowed names, as it was its
//! own crate; dead code is allowed, as trybuild allowed it, and each `main` is
//! `pub` to be called from here.

// `tokio_and_cfg_attr.rs` names a feature no crate here has, on purpose; the
// lint fires before that module's own `allow` applies.
#![allow(unexpected_cfgs)]

#[allow(dead_code)]
#[path = "async_trait.rs"]
mod pass_async_trait;

#[test]
fn async_trait() {
    pass_async_trait::main();
}

#[allow(dead_code)]
#[path = "fields_and_metric_attributes.rs"]
mod pass_fields_and_metric_attributes;

#[test]
fn fields_and_metric_attributes() {
    pass_fields_and_metric_attributes::main();
}

#[allow(dead_code)]
#[path = "free_functions.rs"]
mod pass_free_functions;

#[test]
fn free_functions() {
    pass_free_functions::main();
}

#[allow(dead_code)]
#[path = "hygiene.rs"]
mod pass_hygiene;

#[test]
fn hygiene() {
    pass_hygiene::main();
}

#[allow(dead_code)]
#[path = "methods.rs"]
mod pass_methods;

#[test]
fn methods() {
    pass_methods::main();
}

#[allow(dead_code)]
#[path = "streams_in_results.rs"]
mod pass_streams_in_results;

#[test]
fn streams_in_results() {
    pass_streams_in_results::main();
}

#[allow(dead_code)]
#[path = "tokio_and_cfg_attr.rs"]
mod pass_tokio_and_cfg_attr;

#[test]
fn tokio_and_cfg_attr() {
    pass_tokio_and_cfg_attr::main();
}

#[allow(dead_code)]
#[path = "trait_default_methods.rs"]
mod pass_trait_default_methods;

#[test]
fn trait_default_methods() {
    pass_trait_default_methods::main();
}
