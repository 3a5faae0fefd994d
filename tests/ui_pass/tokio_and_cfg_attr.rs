//! Stacked with `#[tokio::main]` / `#[tokio::test]` in either order, and applied
//! through `#[cfg_attr]`.
#![deny(warnings)]
// `feature = "x"` is not a feature of this test crate: on purpose.
#![allow(unexpected_cfgs)]

use otel_agent_runtime::agent_step;

#[agent_step(kind = workflow, name = "inner_main")]
#[tokio::main(flavor = "current_thread")]
async fn ours_first() -> u32 {
    tokio::task::yield_now().await;
    1
}

#[tokio::main(flavor = "current_thread")]
#[agent_step(kind = workflow, name = "outer_main")]
async fn tokio_first() -> u32 {
    tokio::task::yield_now().await;
    2
}

#[tokio::test]
#[agent_step]
async fn a_test() {}

#[agent_step]
#[tokio::test]
async fn another_test() {}

#[cfg_attr(all(), agent_step(kind = tool, name = "on"))]
fn cfg_enabled() -> u32 {
    3
}

#[cfg_attr(any(), agent_step(kind = tool, name = "off"))]
fn cfg_disabled() -> u32 {
    4
}

#[cfg_attr(feature = "x", agent_step)]
fn cfg_feature() -> u32 {
    5
}

pub fn main() {
    assert_eq!(ours_first(), 1);
    assert_eq!(tokio_first(), 2);
    assert_eq!(cfg_enabled() + cfg_disabled() + cfg_feature(), 12);
}
