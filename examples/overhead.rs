//! The overhead report of issue 6: one table of medians and ratios, every case
//! measured in this one process run.
//!
//! ```sh
//! cargo run --release --example overhead                  # ~30 s on 2 cores
//! cargo run --release --example overhead -- --rounds 41 --round-ms 40
//! cargo run --release --example overhead -- --only 'enabled #[llm_call]' --iters 20000 --rounds 1   # for a profiler
//! ```
//!
//! Method: each case is a closure that calls its function `n` times with
//! `std::hint::black_box` on the argument and the result. The number of calls per
//! round is calibrated so that a round lasts about `--round-ms`; the rounds of all
//! the cases of a phase are interleaved (case A, B, C, A, B, C, ...) so that a noisy
//! moment hurts every case alike; the table shows the median of the rounds and the
//! spread between the quartiles.
//!
//! Phases, in this order, because `tracing` caches per call site whether anyone
//! listens and a global subscriber cannot be removed once set:
//! 1. **disabled**: `OTEL_SDK_DISABLED=true`, so `init()` installs nothing and there
//!    is no subscriber at all (the state of a program whose telemetry is off);
//! 2. **enabled**: `init()` with spans going through the SDK's `BatchSpanProcessor`
//!    (default settings) into an exporter that drops them, and metrics aggregated
//!    by a periodic reader whose exporter drops them. The hand-written equivalent
//!    runs through this same pipeline: the same `tracing-opentelemetry` layer and
//!    the same meter provider.

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::*;

/// What a case is judged against.
#[derive(Clone, Copy)]
enum Target {
    None,
    /// At most this many ns above the baseline case.
    WithinNsOf(&'static str, f64),
    /// At most this ratio of the named case (and a stretch ratio).
    RatioOf(&'static str, f64, f64),
    /// At most this many ns per call.
    AtMostNs(f64),
}

struct Case {
    name: &'static str,
    /// The plain function the case wraps.
    baseline: &'static str,
    /// The hand-written equivalent, when there is one.
    hand: Option<&'static str>,
    target: Target,
    run: Box<dyn FnMut(u64)>,
    iters: u64,
    samples: Vec<f64>,
}

fn case(
    name: &'static str,
    baseline: &'static str,
    hand: Option<&'static str>,
    target: Target,
    run: impl FnMut(u64) + 'static,
) -> Case {
    Case {
        name,
        baseline,
        hand,
        target,
        run: Box::new(run),
        iters: 0,
        samples: Vec::new(),
    }
}

struct Options {
    rounds: usize,
    round: Duration,
    /// Exact case names, comma-separated on the command line.
    only: Option<Vec<String>>,
    iters: Option<u64>,
}

fn options() -> Options {
    let mut o = Options {
        rounds: 21,
        round: Duration::from_millis(25),
        only: None,
        iters: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--rounds" => {
                o.rounds = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--rounds takes a number"))
            }
            "--round-ms" => {
                o.round = Duration::from_millis(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--round-ms takes a number")),
                )
            }
            "--only" => o.only = Some(value().split(',').map(|n| n.trim().to_owned()).collect()),
            "--iters" => {
                o.iters = Some(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--iters takes a number")),
                )
            }
            "--bench" => {} // passed by `cargo bench`; harmless
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    o.rounds = o.rounds.max(1);
    o
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("overhead: {problem}");
    }
    eprintln!(
        "usage: cargo run --release --example overhead -- [--rounds N] [--round-ms MS] [--only 'CASE NAME,CASE NAME'] [--iters N]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

fn disabled_cases() -> Vec<Case> {
    let hand = Box::leak(Box::new(HandInstruments::from_global()));
    let hand: &'static HandInstruments = hand;
    vec![
        case("plain call", "plain call", None, Target::None, |n| {
            for _ in 0..n {
                black_box(plain_call(black_box(PROMPT))).ok();
            }
        }),
        case(
            "plain call (full reply)",
            "plain call (full reply)",
            None,
            Target::None,
            |n| {
                for _ in 0..n {
                    black_box(plain_call_full(black_box(PROMPT))).ok();
                }
            },
        ),
        case("plain step", "plain step", None, Target::None, |n| {
            for _ in 0..n {
                black_box(plain_step(black_box(PROMPT))).ok();
            }
        }),
        case(
            "plain async call",
            "plain async call",
            None,
            Target::None,
            |n| {
                for _ in 0..n {
                    black_box(run(plain_call_async(black_box(PROMPT)))).ok();
                }
            },
        ),
        case(
            "disabled #[llm_call]",
            "plain call",
            Some("disabled hand-written llm"),
            Target::WithinNsOf("plain call", 2.0),
            |n| {
                for _ in 0..n {
                    black_box(macro_llm_call(black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "disabled #[llm_call] (full reply)",
            "plain call (full reply)",
            None,
            Target::WithinNsOf("plain call (full reply)", 2.0),
            |n| {
                for _ in 0..n {
                    black_box(macro_llm_call_full(black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "disabled #[agent_step]",
            "plain step",
            Some("disabled hand-written step"),
            Target::WithinNsOf("plain step", 2.0),
            |n| {
                for _ in 0..n {
                    black_box(macro_step(black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "disabled async #[llm_call]",
            "plain async call",
            None,
            Target::WithinNsOf("plain async call", 2.0),
            |n| {
                for _ in 0..n {
                    black_box(run(macro_llm_call_async(black_box(PROMPT)))).ok();
                }
            },
        ),
        case(
            "disabled hand-written llm",
            "plain call",
            None,
            Target::None,
            move |n| {
                for _ in 0..n {
                    black_box(hand_llm_call(hand, black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "disabled hand-written step",
            "plain step",
            None,
            Target::None,
            move |n| {
                for _ in 0..n {
                    black_box(hand_step(hand, black_box(PROMPT))).ok();
                }
            },
        ),
    ]
}

fn enabled_cases() -> Vec<Case> {
    let hand = Box::leak(Box::new(HandInstruments::from_global()));
    let hand: &'static HandInstruments = hand;
    vec![
        case(
            "enabled #[llm_call]",
            "plain call",
            Some("enabled hand-written llm"),
            Target::RatioOf("enabled hand-written llm", 0.5, 0.25),
            |n| {
                for _ in 0..n {
                    black_box(macro_llm_call(black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "enabled #[llm_call] (full reply)",
            "plain call (full reply)",
            None,
            Target::None,
            |n| {
                for _ in 0..n {
                    black_box(macro_llm_call_full(black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "enabled #[llm_call] (model chosen at run time)",
            "plain call",
            Some("enabled hand-written llm"),
            Target::None,
            |n| {
                let model = CONFIGURED_MODEL.as_str();
                for _ in 0..n {
                    black_box(macro_llm_call_runtime_model(
                        black_box(model),
                        black_box(PROMPT),
                    ))
                    .ok();
                }
            },
        ),
        case(
            "enabled async #[llm_call]",
            "plain async call",
            Some("enabled hand-written llm"),
            Target::None,
            |n| {
                for _ in 0..n {
                    black_box(run(macro_llm_call_async(black_box(PROMPT)))).ok();
                }
            },
        ),
        case(
            "enabled hand-written llm",
            "plain call",
            None,
            Target::None,
            move |n| {
                for _ in 0..n {
                    black_box(hand_llm_call(hand, black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "enabled #[agent_step]",
            "plain step",
            Some("enabled hand-written step"),
            Target::None,
            |n| {
                for _ in 0..n {
                    black_box(macro_step(black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "enabled hand-written step",
            "plain step",
            None,
            Target::None,
            move |n| {
                for _ in 0..n {
                    black_box(hand_step(hand, black_box(PROMPT))).ok();
                }
            },
        ),
        case(
            "metric record (series bound once)",
            "",
            None,
            Target::AtMostNs(10.0),
            move |n| {
                for _ in 0..n {
                    record_bound_site(hand, black_box(0.25));
                }
            },
        ),
        case(
            "counter add (series bound once)",
            "",
            None,
            Target::None,
            move |n| {
                for _ in 0..n {
                    add_bound_counter(hand, black_box(1));
                }
            },
        ),
        case(
            "metric record (static attributes)",
            "",
            None,
            Target::None,
            move |n| {
                for _ in 0..n {
                    record_static_site(hand, black_box(0.25));
                }
            },
        ),
        case(
            "metric record (fresh Vec<KeyValue>)",
            "",
            None,
            Target::None,
            move |n| {
                for _ in 0..n {
                    record_fresh_vec(hand, black_box(0.25));
                }
            },
        ),
    ]
}

fn time(case: &mut Case, iters: u64) -> f64 {
    let start = Instant::now();
    (case.run)(iters);
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Runs the cases' rounds interleaved; fills `samples` (ns per call).
fn measure(cases: &mut [Case], o: &Options) {
    for c in cases.iter_mut() {
        // Warm up (first-call registration, lazy statics, caches), then calibrate.
        (c.run)(1000);
        c.iters = match o.iters {
            Some(n) => n,
            None => {
                let mut n = 1000u64;
                loop {
                    let start = Instant::now();
                    (c.run)(n);
                    let took = start.elapsed();
                    if took >= o.round / 4 || n >= 1 << 32 {
                        break ((n as f64) * o.round.as_secs_f64() / took.as_secs_f64()).max(1.0)
                            as u64;
                    }
                    n *= 4;
                }
            }
        };
    }
    for _ in 0..o.rounds {
        for c in cases.iter_mut() {
            let iters = c.iters;
            let ns = time(c, iters);
            c.samples.push(ns);
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

struct Summary {
    median: f64,
    q1: f64,
    q3: f64,
}

fn summarise(samples: &[f64]) -> Summary {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    Summary {
        median: quantile(&s, 0.5),
        q1: quantile(&s, 0.25),
        q3: quantile(&s, 0.75),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The 1-minute load average, to tell a quiet machine from a busy one.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn main() {
    let o = options();
    let load_before = load_average();
    let wanted = |c: &Case| match &o.only {
        Some(only) => only.iter().any(|n| n == c.name),
        None => true,
    };

    // Phase 1: nothing installed, no subscriber has ever existed in this process.
    let _disabled = install_disabled();
    let mut disabled: Vec<Case> = disabled_cases().into_iter().filter(wanted).collect();
    measure(&mut disabled, &o);

    // Phase 2: the enabled pipeline, installed for the rest of the process.
    let pipeline = install_enabled();
    let mut enabled: Vec<Case> = enabled_cases().into_iter().filter(wanted).collect();
    measure(&mut enabled, &o);

    let load_after = load_average();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all: Vec<&Case> = disabled.iter().chain(enabled.iter()).collect();
    let median_of = |name: &str| {
        all.iter()
            .find(|c| c.name == name)
            .map(|c| summarise(&c.samples).median)
    };

    println!(
        "otel-agent overhead: {} rounds of ~{} ms per case, {} on {cores} cores, load average {load_before:.1} → {load_after:.1}; median ns per call (quartiles)\n",
        o.rounds,
        o.round.as_millis(),
        cpu_model(),
    );
    if load_before.max(load_after) > cores as f64 {
        println!("warning: the machine was busy (load above {cores}): absolute times are inflated; the ratios hold better\n");
    }
    println!("| case | median ns/call | q1–q3 | vs plain | vs hand-written | target | result |");
    println!("|---|---:|---:|---:|---:|---|---|");
    let mut misses = 0;
    for c in &all {
        let s = summarise(&c.samples);
        let plain = median_of(c.baseline);
        let vs_plain = match plain {
            Some(p) if c.baseline != c.name => {
                format!("+{:.1} ns ({:.1}×)", s.median - p, s.median / p)
            }
            _ => "—".to_owned(),
        };
        let vs_hand = match c.hand.and_then(median_of) {
            Some(h) => format!("{:.2}×", s.median / h),
            None => "—".to_owned(),
        };
        let (target, result) = match c.target {
            Target::None => ("—".to_owned(), "—".to_owned()),
            Target::WithinNsOf(base, ns) => match median_of(base) {
                Some(b) => (
                    format!("≤ plain + {ns} ns"),
                    verdict(
                        s.median - b <= ns,
                        &mut misses,
                        format!("+{:.1} ns", s.median - b),
                    ),
                ),
                None => (format!("≤ plain + {ns} ns"), "not measured".to_owned()),
            },
            Target::RatioOf(other, ratio, stretch) => match median_of(other) {
                Some(h) => {
                    let r = s.median / h;
                    let mut v = verdict(r <= ratio, &mut misses, format!("{r:.2}×"));
                    if r <= stretch {
                        v.push_str(", stretch met");
                    }
                    (format!("≤ {ratio}× hand-written (stretch {stretch}×)"), v)
                }
                None => (
                    format!("≤ {ratio}× hand-written"),
                    "not measured".to_owned(),
                ),
            },
            Target::AtMostNs(ns) => (
                format!("≤ {ns} ns"),
                verdict(s.median <= ns, &mut misses, format!("{:.1} ns", s.median)),
            ),
        };
        println!(
            "| {} | {:.1} | {:.1}–{:.1} | {} | {} | {} | {} |",
            c.name, s.median, s.q1, s.q3, vs_plain, vs_hand, target, result
        );
    }

    {
        let p = pipeline;
        let _ = p.telemetry.force_flush();
        let ended = p.telemetry.spans_ended();
        let exported = p.exported.load(Ordering::Relaxed);
        println!(
            "\nspans ended: {ended}; handed to the no-op exporter by the batch processor: {exported} ({} not exported)",
            ended.saturating_sub(exported)
        );
    }
    println!("targets missed: {misses}");
}

fn verdict(pass: bool, misses: &mut u32, detail: String) -> String {
    if pass {
        format!("PASS ({detail})")
    } else {
        *misses += 1;
        format!("**MISS** ({detail})")
    }
}
