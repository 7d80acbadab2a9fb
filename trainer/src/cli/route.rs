//! `trim route`: decisions for JSON lines of step observations, and `trim bench-route`: the
//! decision latency of the Rust router.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use trim::router::{Router, StepObservation};
use trim_env::{AGG_DIM, AggObs, Rng};

/// Arguments of `trim route`.
#[derive(Args)]
pub struct RouteArgs {
    /// Export directory written by `trim export`.
    #[arg(long)]
    pub export: PathBuf,
    /// JSON-lines input, one step per line:
    /// {"id": …, "prev_prm": [kept PRM scores of earlier steps], "prm": 0.42, "tokens": 120}.
    /// Default: stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Threshold on p(regenerate) (default: the export's, 0.5).
    #[arg(long)]
    pub threshold: Option<f32>,
}

fn load(export: &std::path::Path, threshold: Option<f32>) -> Result<Router> {
    let r = Router::load(export)?;
    Ok(match threshold {
        Some(t) => r.with_threshold(t).map_err(anyhow::Error::msg)?,
        None => r,
    })
}

pub fn run(a: RouteArgs) -> Result<()> {
    let router = load(&a.export, a.threshold)?;
    let input: Box<dyn BufRead> = match &a.input {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let name = a
        .input
        .as_ref()
        .map_or("stdin".to_string(), |p| p.display().to_string());
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: cannot read line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let step: StepObservation = serde_json::from_str(&line)
            .with_context(|| format!("{name}:{}: not a step observation", i + 1))?;
        let d = router
            .decide_step(&step)
            .map_err(|e| anyhow::anyhow!("{name}:{}: {e}", i + 1))?;
        let mut o = serde_json::json!({
            "action": if d.regenerate { "regenerate" } else { "continue" },
            "p_regenerate": d.p_regenerate,
            "logits": d.logits,
        });
        if let Some(id) = step.id {
            o["id"] = id;
        }
        writeln!(out, "{o}")?;
        // One decision per step in a serving loop: do not hold answers in the buffer.
        out.flush()?;
    }
    Ok(())
}

/// Arguments of `trim bench-route`.
#[derive(Args)]
pub struct BenchRouteArgs {
    /// Export directory written by `trim export`.
    #[arg(long)]
    pub export: PathBuf,
    /// Single decisions to time.
    #[arg(long, default_value_t = 200_000)]
    pub iters: usize,
    /// Batch size for the throughput measurement.
    #[arg(long, default_value_t = 65_536)]
    pub batch: usize,
}

pub fn bench(a: BenchRouteArgs) -> Result<()> {
    let router = load(&a.export, None)?;
    let mut rng = Rng::new(1);
    let obs: Vec<AggObs> = (0..4096)
        .map(|_| std::array::from_fn(|i| if i < AGG_DIM { rng.f32() } else { 0.0 }))
        .collect();
    // Warm-up, then single decisions one after another (what a serving loop does per step).
    let mut sink = 0.0f32;
    for o in &obs {
        sink += router.decide(o).p_regenerate;
    }
    let n = a.iters.max(1);
    let t = Instant::now();
    for i in 0..n {
        sink += router
            .decide(std::hint::black_box(&obs[i % obs.len()]))
            .p_regenerate;
    }
    let single = t.elapsed().as_secs_f64() / n as f64;
    // Batched throughput.
    let batch: Vec<AggObs> = (0..a.batch.max(1)).map(|i| obs[i % obs.len()]).collect();
    let _ = router.decide_batch(&batch);
    let reps = 5;
    let t = Instant::now();
    for _ in 0..reps {
        let d = router.decide_batch(std::hint::black_box(&batch));
        sink += d[0].p_regenerate;
    }
    let secs = t.elapsed().as_secs_f64();
    let per_s = (reps * batch.len()) as f64 / secs;
    std::hint::black_box(sink);
    println!(
        "single decision: {:.3} µs ({} decisions, hidden {})",
        single * 1e6,
        n,
        router.weights().hidden()
    );
    println!(
        "batched: {:.0} decisions/s ({:.3} µs each; batch {}, {} threads)",
        per_s,
        1e6 / per_s,
        batch.len(),
        rayon::current_num_threads()
    );
    Ok(())
}
