use otel_agent_runtime::{agent_step, llm_call};

#[agent_step(agent = )]
fn research() {}

#[agent_step(description)]
fn write() {}

#[llm_call(model)]
fn complete() {}

fn main() {}
