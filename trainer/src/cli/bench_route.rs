//! `trim bench-route`: the decision latency of the Rust router for any export — single
//! TRIM-Agg decisions and batched throughput, and for every network the per-step cost of a
//! serving session (decide on the new step, push the kept one) against the stateless
//! whole-history call.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use trim_env::{AGG_DIM, AggObs, Rng};
use trim_router::{KeptStep, Policy, Router, Session, StepObservation};

/// Kept steps before the timed session decisions: 29, so each decision sees 30 tokens.
const HISTORY: usize = 29;

/// Arguments of `trim bench-route`.
#[derive(Args)]
pub struct BenchRouteArgs {
    /// Export directory written by `trim export` (any kind).
    #[arg(long)]
    pub export: PathBuf,
    /// Single decisions to time.
    #[arg(long, default_value_t = 200_000)]
    pub iters: usize,
    /// Batch size for the TRIM-Agg throughput measurement.
    #[arg(long, default_value_t = 65_536)]
    pub batch: usize,
}

/// Run the benchmark and print the figures.
pub fn run(a: BenchRouteArgs) -> Result<()> {
    let iters = a.iters.max(1);
    let policy = Policy::load(&a.export)?;
    let extra_inputs = match &policy {
        Policy::Agg(r) => r.lambda_range().is_some() || r.budget_input(),
        Policy::Seq(r, _) => r.lambda_range().is_some(),
        Policy::Pomdp(..) => false,
    };
    anyhow::ensure!(
        !extra_inputs,
        "{}: bench-route measures exports without λ or budget inputs; this one needs one per \
         decision (its cost per decision is the same network's)",
        a.export.display()
    );
    match policy {
        Policy::Agg(r) => {
            agg(&r, iters, a.batch.max(1));
            session("TRIM-Agg", || r.session(), iters)
        }
        Policy::Seq(r, _) => {
            session("TRIM-Seq", || r.session(), iters)?;
            let step = history_step();
            let n = (iters / 10).max(1);
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(
                    r.decide_step(std::hint::black_box(&step))
                        .map_err(anyhow::Error::msg)?,
                );
            }
            let us = t.elapsed().as_secs_f64() / n as f64 * 1e6;
            println!(
                "TRIM-Seq stateless whole-history call at {} tokens: {us:.2} µs",
                HISTORY + 1
            );
            Ok(())
        }
        Policy::Pomdp(r, _) => {
            let step = history_step();
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(
                    r.decide_step(std::hint::black_box(&step))
                        .map_err(anyhow::Error::msg)?,
                );
            }
            let us = t.elapsed().as_secs_f64() / iters as f64 * 1e6;
            println!("TRIM-POMDP decision ({} kept steps): {us:.3} µs", HISTORY);
            Ok(())
        }
    }
}

/// A step with `HISTORY` kept steps.
fn history_step() -> StepObservation {
    let mut rng = Rng::new(3);
    StepObservation {
        id: None,
        prev_prm: (0..HISTORY).map(|_| rng.f32()).collect(),
        prm: rng.f32(),
        tokens: 90,
        prev_tokens: (0..HISTORY).map(|_| 1 + rng.below(300) as u32).collect(),
        prev_regenerated: (0..HISTORY).map(|_| rng.f32() < 0.3).collect(),
        lambda: None,
        budget: None,
        budget_left: None,
    }
}

/// Session costs: a decision with `HISTORY` kept steps, and decide + push per step over
/// 30-step episodes.
fn session<'r>(name: &str, make: impl Fn() -> Session<'r>, iters: usize) -> Result<()> {
    let mut rng = Rng::new(7);
    let kept = |rng: &mut Rng| KeptStep {
        prm: rng.f32(),
        tokens: 1 + rng.below(300) as u32,
        regenerated: rng.f32() < 0.3,
    };
    let mut s = make();
    for _ in 0..HISTORY {
        s.push(kept(&mut rng)).map_err(anyhow::Error::msg)?;
    }
    let inputs: Vec<(f32, u32)> = (0..1024)
        .map(|_| (rng.f32(), 1 + rng.below(300) as u32))
        .collect();
    let t = Instant::now();
    for i in 0..iters {
        let (p, n) = inputs[i % inputs.len()];
        std::hint::black_box(
            s.decide(std::hint::black_box(p), n)
                .map_err(anyhow::Error::msg)?,
        );
    }
    let decide = t.elapsed().as_secs_f64() / iters as f64 * 1e6;
    let episodes = (iters / (HISTORY + 1)).max(1);
    let t = Instant::now();
    for e in 0..episodes {
        let mut s = make();
        for k in 0..=HISTORY {
            let (p, n) = inputs[(e + k) % inputs.len()];
            std::hint::black_box(s.decide(p, n).map_err(anyhow::Error::msg)?);
            s.push(kept(&mut rng)).map_err(anyhow::Error::msg)?;
        }
    }
    let per_step = t.elapsed().as_secs_f64() / (episodes * (HISTORY + 1)) as f64 * 1e6;
    println!(
        "{name} session: decide at {} tokens {decide:.3} µs; decide + push per step over {}-step \
         episodes {per_step:.3} µs",
        HISTORY + 1,
        HISTORY + 1
    );
    Ok(())
}

/// Single TRIM-Agg decisions from features and batched throughput.
fn agg(router: &Router, iters: usize, batch: usize) {
    let mut rng = Rng::new(1);
    let obs: Vec<AggObs> = (0..4096)
        .map(|_| std::array::from_fn(|i| if i < AGG_DIM { rng.f32() } else { 0.0 }))
        .collect();
    // Warm-up, then single decisions one after another (what a serving loop does per step).
    let mut sink = 0.0f32;
    for o in &obs {
        sink += router.decide(o).p_regenerate;
    }
    let t = Instant::now();
    for i in 0..iters {
        sink += router
            .decide(std::hint::black_box(&obs[i % obs.len()]))
            .p_regenerate;
    }
    let single = t.elapsed().as_secs_f64() / iters as f64;
    let batch: Vec<AggObs> = (0..batch).map(|i| obs[i % obs.len()]).collect();
    let _ = router.decide_batch(&batch);
    let reps = 5;
    let t = Instant::now();
    for _ in 0..reps {
        let d = router.decide_batch(std::hint::black_box(&batch));
        sink += d[0].p_regenerate;
    }
    let per_s = (reps * batch.len()) as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    println!(
        "single decision: {:.3} µs ({} decisions, hidden {})",
        single * 1e6,
        iters,
        router.net().hidden()
    );
    println!(
        "batched: {:.0} decisions/s ({:.3} µs each; batch {}, {} threads)",
        per_s,
        1e6 / per_s,
        batch.len(),
        rayon::current_num_threads()
    );
}
