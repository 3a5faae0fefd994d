#![deny(dead_code)]

use otel_agent_runtime::agent_step;

#[agent_step]
async fn never_called() {}

fn main() {}
