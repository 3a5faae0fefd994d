use otel_agent_runtime::agent_step;

fn team() -> &'static str {
    "search"
}

#[agent_step(metric_attributes(app.team = team(), app.tier))]
fn research() {}

fn main() {}
