//! `trim calibrate`: set an exported policy's operating point from a target on your traffic.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use trim::operating_point::{Target, calibrate, write_into};
use trim_data::{DataSource, LoadOptions, with_world};
use trim_router::Policy as Export;
use trim_router::manifest::Calibration;

const AFTER: &str = "\
Targets: calls=R (strong calls per routing decision, e.g. 0.2 = at most 20 % of steps to the \
strong model), cost=F (strong tokens as a fraction of always-strong's), tokens=N (strong tokens \
per problem). The smallest threshold on p(regenerate) that meets the target is chosen (the most \
strong-model use the target allows; for a λ-conditioned export, the smallest λ of its range) and written into DIR/policy.json with the achieved value, \
its 95 % bootstrap CI over the traffic's problems and the feasible range; an unreachable target \
is refused with that range. TRIM-Agg and TRIM-Seq exports.";

#[derive(Args)]
#[command(after_help = AFTER)]
pub struct CalibrateArgs {
    /// Export directory (`trim export`); its policy.json is updated in place.
    #[arg(long)]
    pub export: PathBuf,
    /// Traffic to calibrate on: a trees dataset (e.g. imported serving paths) or a synth spec.
    #[arg(long)]
    pub data: PathBuf,
    /// Split of the traffic to use (`all` for every problem).
    #[arg(long, default_value = "all")]
    pub split: String,
    /// The target: calls=R, cost=F or tokens=N.
    #[arg(long)]
    pub target: String,
    /// Seed of the replay and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the operating point without writing it.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: CalibrateArgs) -> Result<()> {
    let target: Target = a
        .target
        .parse()
        .map_err(|e| anyhow::anyhow!("--target {e}"))?;
    let export = Export::load(&a.export)?;
    let previous = match &export {
        Export::Agg(r) => r.threshold(),
        Export::Seq(r, _) => r.threshold(),
        Export::Pomdp(..) => 0.5,
    };
    let src = DataSource::open(&a.data, &LoadOptions::from_env())?;
    let problems = src.problems_in_split(&a.split);
    anyhow::ensure!(
        !problems.is_empty(),
        "{}: no problems in split `{}` (splits: {:?})",
        a.data.display(),
        a.split,
        src.splits()
    );
    let c = with_world!(&src, |w| calibrate(w, &problems, &export, target, a.seed))?;
    let knob = match c.lambda {
        Some(l) => format!("λ {l:.4e} at threshold {:.6}", c.threshold),
        None => format!("threshold {:.6} (was {previous:.6})", c.threshold),
    };
    println!(
        "{target}: {knob} → {:.4} (95 % CI {:.4}–{:.4}) on {} problems; accuracy {:.1} % \
         ({:.1}–{:.1}); feasible range [{:.4}, {:.4}]",
        c.achieved,
        c.ci95.0,
        c.ci95.1,
        problems.len(),
        100.0 * c.accuracy,
        100.0 * c.accuracy_ci95.0,
        100.0 * c.accuracy_ci95.1,
        c.feasible.0,
        c.feasible.1
    );
    if a.dry_run {
        return Ok(());
    }
    let cal = Calibration {
        target: target.to_string(),
        threshold: c.threshold,
        lambda: c.lambda,
        previous_threshold: previous,
        achieved: c.achieved,
        ci95: [c.ci95.0, c.ci95.1],
        accuracy: c.accuracy,
        accuracy_ci95: [c.accuracy_ci95.0, c.accuracy_ci95.1],
        feasible: [c.feasible.0, c.feasible.1],
        traffic: a.data.display().to_string(),
        traffic_sha256: src.fingerprint(&a.data)?,
        split: a.split.clone(),
        problems: problems.len(),
        trim_version: env!("CARGO_PKG_VERSION").into(),
    };
    write_into(&a.export, cal)?;
    println!("wrote {}", a.export.join("policy.json").display());
    Ok(())
}
