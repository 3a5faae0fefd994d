use otel_agent_runtime::agent_step;

#[agent_step(agent = "planner", arguments = goal)]
fn plan(goal: &str) -> usize {
    goal.len()
}

fn main() {}
