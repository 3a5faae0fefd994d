use otel_agent_runtime::agent_step;

#[agent_step(metric_attributes(session.id = "s-1", request_id = "r-1", gen_ai.conversation.id = "c-1"))]
fn research() {}

fn main() {}
