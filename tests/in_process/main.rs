//! The behaviour tests that run in this one process, each against a pipeline of
//! its own with in-memory exporters (`common::harness`), one module per
//! subject.
//!
//! They are one test binary, not one per file: each binary links the runtime's
//! whole dependency tree, and two dozen of them took most of a fresh
//! `cargo test`'s build. The tests that need a process to themselves (a real
//! server, a child process, a global subscriber, a cargo feature) stay files
//! of their own in `tests/`.

#[path = "../common/mod.rs"]
mod common;

mod bridge;
mod console;
mod console_limits;
mod content;
mod context;
mod cost;
mod disabled_path;
mod error_type;
mod explicit_parents;
mod export_guard;
mod hygiene;
mod init;
mod library_spans;
mod lifecycle;
mod macro_shapes;
mod metrics;
mod propagation;
mod sampling;
mod span_arrival;
mod spans;
mod streams;
mod stress;
mod tool_calls;
