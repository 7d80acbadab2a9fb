//! `trim data calibrate --check`: a synthetic world's TRIM-Thr curve beside the real one.

use std::path::PathBuf;

use trim_data::synth::real_curve::{
    CALLS_TOL, COST_TOL, CurveCheck, ENDPOINT_TOL, MEAN_ACC_TOL, WORST_ACC_TOL, check,
    math500_curve, parse_curve,
};

use super::data::IntegrityArgs;

/// The world checked when none is given: the shipped MATH-500 profile (10000 problems).
pub const DEFAULT_CHECKED: &str = "synth:math500";

/// Arguments of `trim data calibrate`.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// Compare the dataset's TRIM-Thr curve with the real one at the release's thresholds and
    /// print the side-by-side table (exit 0 either way; the verdict is printed).
    #[arg(long, required = true)]
    pub check: bool,
    /// Dataset (.parquet or .jsonl) or a synth spec (default: the shipped MATH-500 profile).
    #[arg(default_value = DEFAULT_CHECKED)]
    pub file: PathBuf,
    /// Problems to replay: a split name, or `all`.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// A release TRIM-Thr summary (JSON lines; default: the vendored MATH-500 curve).
    #[arg(long)]
    pub curve: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub integrity: IntegrityArgs,
}

pub fn run(a: CalibrateArgs) -> anyhow::Result<()> {
    let real = match &a.curve {
        Some(p) => parse_curve(p, &std::fs::read_to_string(p)?)?,
        None => math500_curve()?,
    };
    let l = trim_data::DataSource::open(&a.file, &a.integrity.options())?;
    let problems = l.problems_in_split(&a.split);
    anyhow::ensure!(
        !problems.is_empty(),
        "no problems in split `{}` of {} (splits: {:?})",
        a.split,
        a.file.display(),
        l.splits()
    );
    let c = trim_data::with_world!(&l, |w| check(&real, w, &problems))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print_check(&a, problems.len(), &c);
    }
    Ok(())
}

fn print_check(a: &CalibrateArgs, n: usize, c: &CurveCheck) {
    println!(
        "TRIM-Thr: real curve (release, MATH-500, 500 problems) vs {} (split `{}`, {n} problems)",
        a.file.display(),
        a.split
    );
    println!(
        "{:>9} | {:>8} {:>6} {:>6} | {:>8} {:>6} {:>6} | {:>7}",
        "threshold", "real acc", "cost", "calls", "world", "cost", "calls", "Δacc"
    );
    for (r, w) in &c.rows {
        println!(
            "{:>9.2} | {:>7.1}% {:>6.3} {:>6.2} | {:>7.1}% {:>6.3} {:>6.2} | {:>+6.1}pt",
            r.threshold,
            100.0 * r.accuracy,
            r.cost_fraction,
            r.strong_calls,
            100.0 * w.accuracy,
            w.cost_fraction,
            w.strong_calls,
            100.0 * (w.accuracy - r.accuracy)
        );
    }
    let mark = |ok: bool| if ok { "ok" } else { "OUT" };
    println!(
        "mean |Δacc| {:.1} pt (≤ {:.0}: {}), worst {:.1} pt (≤ {:.0}: {}), worst |Δcost| {:.3} (≤ {COST_TOL}: {}), worst |Δcalls| {:.2} (≤ {CALLS_TOL}: {})",
        100.0 * c.mean_abs_accuracy_dev,
        100.0 * MEAN_ACC_TOL,
        mark(c.mean_abs_accuracy_dev <= MEAN_ACC_TOL),
        100.0 * c.worst_accuracy_dev,
        100.0 * WORST_ACC_TOL,
        mark(c.worst_accuracy_dev <= WORST_ACC_TOL),
        c.worst_cost_dev,
        mark(c.worst_cost_dev <= COST_TOL),
        c.worst_calls_dev,
        mark(c.worst_calls_dev <= CALLS_TOL),
    );
    println!(
        "endpoints |Δacc| weak-only {:.1} pt, strong-only {:.1} pt (≤ {:.1}: {}); TRIM-Thr above strong-only by up to {:.1} pt",
        100.0 * c.endpoint_devs.0,
        100.0 * c.endpoint_devs.1,
        100.0 * ENDPOINT_TOL,
        mark(c.endpoint_devs.0 <= ENDPOINT_TOL && c.endpoint_devs.1 <= ENDPOINT_TOL),
        100.0 * c.exceeds_strong_by
    );
    if let Some(p) = c.per_call {
        println!(
            "cost per strong call over the {} routed thresholds: real {:.3} ± {:.4} (mean ± sd: the \
             real run's sampling noise in strong-step lengths), world {:.3} ± {:.4}; at the \
             worst-cost threshold {:.2}: real {:.3} ({:+.1} sd), world {:.3}",
            p.thresholds,
            p.real_mean,
            p.real_sd,
            p.world_mean,
            p.world_sd,
            p.worst_threshold,
            p.real_at_worst,
            (p.real_at_worst - p.real_mean) / p.real_sd,
            p.world_at_worst,
        );
    }
    println!(
        "verdict: {}",
        if c.pass {
            "within every tolerance"
        } else {
            "outside the tolerances (see OUT)"
        }
    );
}
