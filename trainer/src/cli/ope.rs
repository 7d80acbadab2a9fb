//! `trim ope`: estimate a policy's value from serving logs with propensities (SNIS, PDWIS,
//! effective sample size, bootstrap CIs, support), optionally beside its exact value by replay.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use trim::ope::{Estimate, Trajectory, evaluate, trajectories};
use trim::operating_point::{ExportAt, check_actable};
use trim_data::import::paths::{DEFAULT_MAX_STEPS, read_traces};
use trim_data::{DataSource, LoadOptions, with_world};
use trim_env::{EvalOptions, Policy, RefPolicy, summarize};

/// Arguments of `trim ope`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).args(["target", "export"])))]
pub struct OpeArgs {
    /// Trace log with propensities (`trim data import paths` format, `propensity` column).
    #[arg(long)]
    pub logs: PathBuf,
    /// The policy to evaluate: threshold:K, weak or strong.
    #[arg(long)]
    pub target: Option<String>,
    /// …or an export (TRIM-Agg / TRIM-Seq at its threshold; a λ-conditioned one at its
    /// calibrated λ).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Cost per strong token in the value `correct − λ·strong tokens`.
    #[arg(long, default_value_t = 8e-4)]
    pub lambda: f64,
    /// Also replay the target on these trees (the logs' source) for its exact value.
    #[arg(long)]
    pub exact: Option<PathBuf>,
    /// Split of --exact to replay.
    #[arg(long, default_value = "all")]
    pub split: String,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn fmt(e: Option<Estimate>) -> String {
    e.map_or("undefined (every trajectory has weight 0)".into(), |e| {
        format!("{:.4} (95 % CI {:.4} … {:.4})", e.value, e.ci95.0, e.ci95.1)
    })
}

/// The `--target` reference policy, if any: deterministic, and reading only signals the logs
/// carry on every step.
fn reference_target(a: &OpeArgs, trajs: &[Trajectory]) -> anyhow::Result<Option<RefPolicy>> {
    let Some(t) = a.target.as_deref() else {
        return Ok(None);
    };
    let p: RefPolicy = t.parse().map_err(anyhow::Error::msg)?;
    if let RefPolicy::Random(_) = p {
        anyhow::bail!(
            "--target random:P is not deterministic; evaluate threshold:K, weak or strong"
        );
    }
    let missing = trim::ope::missing_signals(trajs, p.needs_signals());
    anyhow::ensure!(
        missing.is_empty(),
        "--target {p} reads {} on every step, which {} does not log on every row",
        missing.join(", "),
        a.logs.display()
    );
    Ok(Some(p))
}

/// `trim ope`.
pub fn run(a: OpeArgs) -> Result<()> {
    let rows: Vec<_> = (read_traces(&a.logs, DEFAULT_MAX_STEPS)?.into_iter())
        .map(|(_, r)| r)
        .collect();
    let trajs = trajectories(&rows).map_err(|e| anyhow::anyhow!("{}: {e}", a.logs.display()))?;
    let export = (a.export.as_deref())
        .map(trim_router::Policy::load)
        .transpose()?;
    let reference = reference_target(&a, &trajs)?;
    let at = match &export {
        Some(e) => {
            check_actable(e, None, false)?;
            let threshold = match e {
                trim_router::Policy::Agg(r) => r.threshold(),
                trim_router::Policy::Seq(r, _) => r.threshold(),
                trim_router::Policy::Pomdp(..) => 0.5,
            };
            Some(ExportAt {
                export: e,
                threshold,
                lambda: None,
            })
        }
        None => None,
    };
    let target: &dyn Policy = match (&at, &reference) {
        (Some(p), _) => p,
        (None, Some(r)) => r,
        (None, None) => anyhow::bail!("name the policy to evaluate: --target or --export"),
    };
    let r = evaluate(&trajs, target, a.lambda, a.seed);
    println!(
        "{} logged trajectories (λ = {:e})",
        r.trajectories, a.lambda
    );
    println!("logging policy's own value   {:.4}", r.logged_value);
    println!("SNIS (trajectory-wise)       {}", fmt(r.snis));
    println!("PDWIS (per-decision)         {}", fmt(r.pdwis));
    println!("doubly robust (FQE critic)   {}", fmt(r.dr));
    println!(
        "effective sample size        {:.1} of {} ({:.1} %)",
        r.ess,
        r.trajectories,
        100.0 * r.ess / r.trajectories.max(1) as f64
    );
    println!(
        "supported trajectories       {} (the target agrees with every logged choice); {} \
         forced decisions (propensity 1)",
        r.supported_trajectories, r.forced_decisions
    );
    if r.ess < 0.01 * r.trajectories as f64 {
        eprintln!(
            "warning: effective sample size {:.1} is under 1 % of the logs: the logger rarely \
             acted as the target would; the estimate rests on a handful of trajectories",
            r.ess
        );
    }
    if let Some(data) = &a.exact {
        let src = DataSource::open(data, &LoadOptions::from_env())?;
        let problems = src.problems_in_split(&a.split);
        let out = with_world!(&src, |w| trim_env::evaluate(
            w,
            &problems,
            target,
            EvalOptions::default()
        ))?;
        let exact = summarize(&out, 1.0, a.lambda).reward;
        println!(
            "exact value by replay        {exact:.4} ({} problems of {})",
            problems.len(),
            data.display()
        );
    }
    Ok(())
}
