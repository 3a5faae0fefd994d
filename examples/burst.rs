//! Burst test (issue 6): a million `#[llm_call]` calls as fast as one core can make
//! them, exporting spans and metrics over OTLP, then a clean shutdown. Prints the
//! call rate, the spans produced, the flush time and the peak resident memory.
//!
//! ```sh
//! bash benches/burst.sh                       # runs this against a real receiver, and with it down
//! cargo run --release --example burst -- --endpoint http://127.0.0.1:4317 --protocol grpc
//! cargo run --release --example burst -- --down        # nothing listens at the endpoint
//! cargo run --release --example burst -- --disabled    # no telemetry: the memory baseline
//! ```
//!
//! The pipeline is `init()` with the SDK's default `BatchSpanProcessor` (a queue of
//! 2,048 spans, batches of 512, one export in flight): when the receiver is slower
//! than the program, spans beyond the queue are dropped rather than buffered, which
//! is what keeps memory bounded. The receiver counts what actually arrived.

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use otel_agent_runtime::Protocol;
use support::{macro_llm_call, PROMPT};

struct Options {
    calls: u64,
    endpoint: String,
    protocol: Protocol,
    down: bool,
    disabled: bool,
}

fn options() -> Options {
    let mut o = Options {
        calls: 1_000_000,
        endpoint: "http://127.0.0.1:4317".to_owned(),
        protocol: Protocol::Grpc,
        down: false,
        disabled: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--calls" => o.calls = value().replace('_', "").parse().unwrap_or_else(|_| fail("--calls takes a number")),
            "--endpoint" => o.endpoint = value(),
            "--protocol" => {
                o.protocol = match value().as_str() {
                    "grpc" => Protocol::Grpc,
                    "http" | "http/protobuf" => Protocol::HttpProtobuf,
                    other => fail(&format!("unknown protocol `{other}` (grpc or http/protobuf)")),
                }
            }
            "--down" => o.down = true,
            "--disabled" => o.disabled = true,
            other => fail(&format!(
                "unknown argument `{other}`; usage: burst [--calls N] [--endpoint URL] [--protocol grpc|http] [--down] [--disabled]"
            )),
        }
    }
    o
}

fn fail(problem: &str) -> ! {
    eprintln!("burst: {problem}");
    std::process::exit(2)
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// `VmHWM` (peak resident set) and `VmRSS` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    let o = options();
    let endpoint = if o.down {
        format!("http://127.0.0.1:{}", closed_port())
    } else {
        o.endpoint.clone()
    };
    let mode = if o.disabled {
        "disabled"
    } else if o.down {
        "receiver down"
    } else {
        "receiver up"
    };
    let (_, rss_before) = memory_kib();

    let telemetry = if o.disabled {
        None
    } else {
        Some(
            otel_agent_runtime::builder()
                .env(std::iter::empty::<(String, String)>())
                .default_service_name("otel-agent-burst")
                .endpoint(endpoint.clone())
                .protocol(o.protocol)
                .shutdown_timeout(Duration::from_secs(10))
                .init()
                .unwrap_or_else(|e| fail(&format!("telemetry: {e}"))),
        )
    };

    let start = Instant::now();
    let mut tokens = 0u64;
    for _ in 0..o.calls {
        if let Ok(reply) = macro_llm_call(black_box(PROMPT)) {
            tokens += reply.output_tokens;
        }
    }
    let calls_took = start.elapsed();
    black_box(tokens);
    let (_, rss_after_calls) = memory_kib();

    let produced = telemetry.as_ref().map_or(0, |t| t.spans_ended());
    let flush_start = Instant::now();
    let shutdown = telemetry.map(|t| t.shutdown());
    let flush_took = flush_start.elapsed();
    let (peak, rss_end) = memory_kib();

    let rate = o.calls as f64 / calls_took.as_secs_f64();
    println!("burst ({mode}): endpoint {endpoint}");
    println!(
        "calls={} seconds={:.3} calls_per_second={:.0}",
        o.calls,
        calls_took.as_secs_f64(),
        rate
    );
    println!("spans_produced={produced}");
    println!(
        "shutdown_seconds={:.3} shutdown={}",
        flush_took.as_secs_f64(),
        match &shutdown {
            None => "n/a".to_owned(),
            Some(Ok(())) => "ok".to_owned(),
            Some(Err(e)) => format!("error: {e}"),
        }
    );
    println!(
        "rss_before_kib={rss_before} rss_after_calls_kib={rss_after_calls} rss_end_kib={rss_end} peak_rss_kib={peak}"
    );
    println!(
        "summary: {mode}: {} calls in {:.2} s ({:.0} calls/s), {produced} spans produced, peak RSS {}",
        o.calls,
        calls_took.as_secs_f64(),
        rate,
        mib(peak)
    );
}
