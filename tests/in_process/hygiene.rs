//! The expansion is hygienic and lint-clean in the user's crate: it compiles
//! inside `#![no_implicit_prelude]`, beside user items named like the prelude's
//! (`Result`, `Option`, `Some`, `Box`, `Span`, ...), under `#![deny(warnings)]`,
//! and `cargo clippy --all-targets -- -D warnings` checks it with the pedantic
//! group on (below), so no lint is caused by the expansion.
#![deny(warnings)]
#![warn(clippy::pedantic)]

use otel_agent_runtime::{agent_step, llm_call};

/// User items that shadow what generated code might name without a path.
mod shadowing {
    #![allow(dead_code)]

    use ::otel_agent_runtime::{agent_step, llm_call};

    pub struct Span;
    pub struct Option;
    pub struct Some;
    pub struct None;
    pub struct Ok;
    pub struct Err;
    pub struct Box;
    pub struct String;
    pub struct Vec;
    pub struct Clone;
    pub struct Into;
    pub struct Instrument;
    pub struct Future;
    pub struct StepGuard;
    pub struct LlmGuard;
    pub type Result<T = u32> = ::std::result::Result<T, ::std::io::Error>;
    pub mod tracing {}
    pub mod core {}
    pub mod std {}
    pub mod otel_agent_runtime {}

    /// Fails on zero.
    ///
    /// # Errors
    /// When `x` is zero.
    #[agent_step(agent = "shadowed", fields(app.x = x))]
    pub fn step(x: u32) -> Result {
        if x == 0 {
            return ::std::result::Result::Err(::std::io::Error::other("zero"));
        }
        ::std::result::Result::Ok(x)
    }

    /// The model's name length.
    ///
    /// # Errors
    /// Never.
    #[llm_call(model = model, provider = "openai", metric_attributes(app.team = "t"))]
    pub async fn call(model: &str) -> Result<usize> {
        ::std::result::Result::Ok(model.len())
    }
}

#[no_implicit_prelude]
mod bare {
    #[::otel_agent_runtime::agent_step(kind = tool, name = "bare", fields(app.x = x, x))]
    pub fn step(x: u32) -> ::std::result::Result<u32, &'static str> {
        if x == 0 {
            return ::std::result::Result::Err("zero");
        }
        ::std::result::Result::Ok(x)
    }

    #[::otel_agent_runtime::llm_call(model = "gpt-4o", fields(app.x = ?x))]
    pub async fn call(x: u32) -> ::std::option::Option<u32> {
        ::std::option::Option::Some(x)
    }

    pub struct Agent {
        pub model: &'static str,
        pub notes: u32,
    }

    impl Agent {
        #[::otel_agent_runtime::llm_call(model = self.model)]
        pub fn ask(&self) -> u32 {
            self.notes
        }

        #[::otel_agent_runtime::agent_step(kind = workflow, name = "bump")]
        pub async fn bump(&mut self) -> &mut u32 {
            self.notes += 1;
            &mut self.notes
        }
    }
}

/// Lints the user asked for still apply to their own code in the body.
#[agent_step]
fn unit_body() {
    let _ = 1 + 1;
}

#[agent_step]
#[allow(clippy::unnecessary_wraps)]
fn early_return(flag: bool) -> Option<u32> {
    if flag {
        return None;
    }
    Some(1)
}

#[llm_call(model = "gpt-4o")]
async fn unit_async() {}

#[test]
fn compiles_and_runs_without_the_prelude_and_beside_shadowing_items() {
    assert!(shadowing::step(0).is_err());
    assert_eq!(shadowing::step(2).unwrap(), 2);
    assert!(bare::step(0).is_err());
    let mut agent = bare::Agent {
        model: "m",
        notes: 1,
    };
    assert_eq!(agent.ask(), 1);
    unit_body();
    assert_eq!(early_return(true), None);
    futures::executor::block_on(async {
        assert_eq!(shadowing::call("abc").await.unwrap(), 3);
        assert_eq!(bare::call(2).await, Some(2));
        *agent.bump().await += 1;
        unit_async().await;
    });
    assert_eq!(agent.notes, 3);
}
