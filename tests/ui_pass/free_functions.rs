//! Free functions of every shape, sync and async.
#![deny(warnings)]

use std::fmt::Display;
use std::future::Future;

use otel_agent_runtime::{agent_step, llm_call};

#[agent_step]
fn plain(x: u32) -> u32 {
    x + 1
}

#[agent_step(kind = tool, name = "generic")]
fn generic<T: Clone + Display>(items: &[T]) -> Vec<T> {
    items.to_vec()
}

#[agent_step]
fn with_lifetimes<'a, 'b: 'a>(a: &'a str, _b: &'b str) -> &'a str {
    a
}

#[agent_step]
fn impl_trait_argument(name: impl Into<String>, items: impl IntoIterator<Item = u8>) -> usize {
    name.into().len() + items.into_iter().count()
}

#[agent_step]
fn impl_trait_return(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[agent_step]
fn question_mark_and_early_return(input: &str) -> Result<u32, std::num::ParseIntError> {
    if input.is_empty() {
        return Ok(0);
    }
    let n: u32 = input.parse()?;
    Ok(n * 2)
}

#[agent_step]
fn boxed_error(input: &str) -> Result<u32, Box<dyn std::error::Error>> {
    if input == "bad" {
        return Err("bad input".into());
    }
    Ok(input.parse::<u32>()?)
}

#[agent_step]
fn unit() {}

#[agent_step]
fn destructured((a, b): (u32, u32), [c, _]: [u32; 2]) -> u32 {
    a + b + c
}

#[agent_step]
unsafe fn unsafe_fn(p: *const u32) -> u32 {
    *p
}

#[agent_step]
extern "C" fn with_abi(x: i32) -> i32 {
    x
}

#[agent_step]
async fn async_plain(x: u32) -> u32 {
    x + 1
}

#[agent_step(kind = workflow, name = "generic")]
async fn async_generic<T: Clone + Send + Sync>(items: &[T]) -> Vec<T> {
    items.to_vec()
}

#[agent_step]
async fn async_lifetimes<'a>(a: &'a str, _b: &str) -> &'a str {
    a
}

#[agent_step]
async fn async_impl_trait_argument(name: impl Into<String>) -> usize {
    name.into().len()
}

#[agent_step]
async fn async_impl_trait_return(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[agent_step]
async fn async_question_mark(input: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if input.is_empty() {
        return Err("empty".into());
    }
    Ok(input.parse::<u32>()?)
}

#[agent_step]
async fn async_unit() {}

// The shape under test, not an `async fn`.
#[allow(clippy::manual_async_fn)]
#[llm_call(model = "gpt-4o")]
fn returns_future(prompt: &str) -> impl Future<Output = usize> + '_ {
    async move { prompt.len() }
}

#[llm_call(model = model)]
async fn model_from_argument(model: &str, prompt: String) -> String {
    format!("{model}: {prompt}")
}

#[allow(dead_code)]
#[agent_step(kind = workflow, name = "forever")]
fn diverges() -> ! {
    loop {
        std::thread::park();
    }
}

#[agent_step]
fn inner_attributes() -> u32 {
    #![allow(unused_variables)]
    let unused = 1;
    2
}

pub fn main() {
    assert_eq!(plain(1), 2);
    assert_eq!(generic(&[1, 2]), vec![1, 2]);
    assert_eq!(with_lifetimes("a", "b"), "a");
    assert_eq!(impl_trait_argument("ab", [1u8, 2]), 4);
    assert_eq!(impl_trait_return(3).count(), 3);
    assert_eq!(question_mark_and_early_return(""), Ok(0));
    assert_eq!(question_mark_and_early_return("4"), Ok(8));
    assert!(question_mark_and_early_return("x").is_err());
    assert!(boxed_error("bad").is_err());
    unit();
    assert_eq!(destructured((1, 2), [3, 4]), 6);
    assert_eq!(unsafe { unsafe_fn(&7) }, 7);
    assert_eq!(with_abi(3), 3);
    assert_eq!(inner_attributes(), 2);
    futures::executor::block_on(async {
        assert_eq!(async_plain(1).await, 2);
        assert_eq!(async_generic(&["a"]).await, vec!["a"]);
        assert_eq!(async_lifetimes("a", "b").await, "a");
        assert_eq!(async_impl_trait_argument("abc").await, 3);
        assert_eq!(async_impl_trait_return(2).await.count(), 2);
        assert!(async_question_mark("").await.is_err());
        assert_eq!(async_question_mark("5").await.ok(), Some(5));
        async_unit().await;
        assert_eq!(returns_future("abc").await, 3);
        assert_eq!(model_from_argument("m", "p".to_owned()).await, "m: p");
    });
}
