//! The expansion is hygienic: it compiles inside `#![no_implicit_prelude]`, beside
//! user types that shadow `Result`, `Option`, `Box`, `Span` and friends, and under
//! `#![deny(warnings)]`.
#![deny(warnings)]

#[allow(dead_code)]
struct Span;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
struct Some;
#[allow(dead_code)]
struct Ok;
#[allow(dead_code)]
struct String;
#[allow(dead_code)]
struct Clone;
type Result = ::std::result::Result<u32, ::std::io::Error>;

#[otel_agent_runtime::agent_step(agent = "shadowed", fields(app.x = x))]
fn shadowed(x: u32) -> Result {
    ::std::result::Result::Ok(x)
}

#[otel_agent_runtime::llm_call(model = model, metric_attributes(app.team = "t"))]
async fn shadowed_llm(model: &str) -> Result {
    ::std::result::Result::Ok(u32::try_from(model.len()).unwrap_or(0))
}

#[no_implicit_prelude]
mod bare {
    #[::otel_agent_runtime::agent_step(kind = tool, name = "bare", fields(app.x = x))]
    pub fn step(x: u32) -> ::std::result::Result<u32, ::std::string::String> {
        if x == 0 {
            return ::std::result::Result::Err(::std::borrow::ToOwned::to_owned("zero"));
        }
        ::std::result::Result::Ok(x)
    }

    #[::otel_agent_runtime::llm_call(model = "gpt-4o", fields(app.x = x))]
    pub async fn call(x: u32) -> ::std::option::Option<u32> {
        ::std::option::Option::Some(x)
    }

    pub struct Agent {
        pub model: ::std::string::String,
    }

    impl Agent {
        #[::otel_agent_runtime::llm_call(model = self.model)]
        pub fn ask(&self) -> u32 {
            1
        }
    }
}

pub fn main() {
    assert!(shadowed(1).is_ok());
    assert!(bare::step(0).is_err());
    assert_eq!(bare::Agent { model: "m".into() }.ask(), 1);
    ::futures::executor::block_on(async {
        assert!(shadowed_llm("abc").await.is_ok());
        assert_eq!(bare::call(2).await, ::std::option::Option::Some(2));
    });
}
