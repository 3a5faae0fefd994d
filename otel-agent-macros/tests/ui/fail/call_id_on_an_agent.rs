use otel_agent_runtime::agent_step;

struct Call {
    id: String,
    name: String,
}

#[agent_step(agent = "planner", call_id = call.id)]
fn plan(call: &Call) -> usize {
    call.id.len()
}

// A name known at run time is a tool's (a dispatcher's): not an agent's.
#[agent_step(name = call.name)]
fn route(call: &Call) -> usize {
    call.name.len()
}

fn main() {}
