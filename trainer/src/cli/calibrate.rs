//! `trim data calibrate --check`: a synthetic world's TRIM-Thr curve beside the real one.

use std::path::PathBuf;

use trim_data::synth::curve_noise::{CurveNoise, Share};
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
        Some(p) => {
            let text = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("cannot read the curve {}: {e}", p.display()))?;
            parse_curve(p, &String::from_utf8_lossy(&text))?
        }
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
    let size = (c.noise.as_ref()).map_or("problems unknown".into(), |z| {
        format!("{} problems", z.problems)
    });
    println!(
        "TRIM-Thr: real curve ({size} per threshold) vs {} (split `{}`, {n} problems)",
        a.file.display(),
        a.split
    );
    println!(
        "{:>9} | {:>8} {:>6} {:>6} | {:>8} {:>6} {:>6} | {:>7} {:>7} {:>5}",
        "threshold", "real acc", "cost", "calls", "world", "cost", "calls", "Δacc", "Δcost", "(sd)"
    );
    print_rows(c, n);
    let mark = |ok: bool| if ok { "ok" } else { "OUT" };
    println!(
        "mean |Δacc| {:.1} pt (≤ {:.0}: {}), worst {:.1} pt (≤ {:.0}: {}), worst |Δcost| {:.3} (≤ {COST_TOL}: {}), worst |Δcalls| {:.2} (≤ {CALLS_TOL}: {})",
        100.0 * c.devs.mean_abs_accuracy_dev,
        100.0 * MEAN_ACC_TOL,
        mark(c.devs.mean_abs_accuracy_dev <= MEAN_ACC_TOL),
        100.0 * c.devs.worst_accuracy_dev,
        100.0 * WORST_ACC_TOL,
        mark(c.devs.worst_accuracy_dev <= WORST_ACC_TOL),
        c.devs.worst_cost_dev,
        mark(c.devs.worst_cost_dev <= COST_TOL),
        c.devs.worst_calls_dev,
        mark(c.devs.worst_calls_dev <= CALLS_TOL),
    );
    println!(
        "endpoints |Δacc| weak-only {:.1} pt, strong-only {:.1} pt (≤ {:.1}: {}); TRIM-Thr above strong-only by up to {:.1} pt",
        100.0 * c.devs.endpoint_devs.0,
        100.0 * c.devs.endpoint_devs.1,
        100.0 * ENDPOINT_TOL,
        mark(c.devs.endpoint_devs.0 <= ENDPOINT_TOL && c.devs.endpoint_devs.1 <= ENDPOINT_TOL),
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
    if let Some(z) = &c.noise {
        print_noise(z);
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

/// One line per threshold: both curves and their deviations.
fn print_rows(c: &CurveCheck, n: usize) {
    for (i, (r, w)) in c.rows.iter().enumerate() {
        let dc = w.cost_fraction - r.cost_fraction;
        println!(
            "{:>9.2} | {:>7.1}% {:>6.3} {:>6.2} | {:>7.1}% {:>6.3} {:>6.2} | {:>+6.1}pt {:>+7.3} {:>5}",
            r.threshold,
            100.0 * r.accuracy,
            r.cost_fraction,
            r.strong_calls,
            100.0 * w.accuracy,
            w.cost_fraction,
            w.strong_calls,
            100.0 * (w.accuracy - r.accuracy),
            dc,
            c.noise
                .as_ref()
                .map_or(String::new(), |z| in_sds(dc, z, i, n)),
        );
    }
}

/// A cost deviation in standard deviations of the difference between a real run of the
/// noise's size and the world's `n` problems (the world's own share is `size ÷ n` of the
/// variance). The two ways of drawing agree on it within a few percent on the shipped worlds;
/// the larger is used, so the figure errs low. Blank where a run's cost cannot move (weak-only,
/// strong-only).
fn in_sds(dc: f64, z: &CurveNoise, i: usize, n: usize) -> String {
    let scale = (1.0 + z.problems as f64 / n.max(1) as f64).sqrt();
    let sd = z.sd.paired[i]
        .cost_fraction
        .max(z.sd.fresh[i].cost_fraction)
        * scale;
    if sd > 0.0 {
        format!("{:.1}", dc.abs() / sd)
    } else {
        String::new()
    }
}

/// How the world's own runs of the real run's size fare against the tolerances.
fn print_noise(z: &CurveNoise) {
    println!(
        "sampling noise: {} runs of {} problems drawn from this world's own outcomes, scored \
         against its full curve (paired: the same problems at every threshold; fresh: new \
         problems per threshold; the release re-ran the same problems with fresh samples, in \
         between). (sd) above: |Δcost| in standard deviations of such a run",
        z.draws, z.problems
    );
    println!(
        "{:>28} | {:>11} {:>11} {:>11} {:>11} {:>11} | {:>5}",
        "share of draws", "mean Δacc", "worst Δacc", "Δcost", "Δcalls", "endpoints", "all"
    );
    let pct = |x: f64| format!("{:.0}%", 100.0 * x);
    for (name, s) in [("paired", &z.paired), ("fresh", &z.fresh)] {
        let row = |f: fn(&Share) -> f64| {
            (s.shares().iter())
                .map(|x| format!(" {:>11}", pct(f(x))))
                .collect::<String>()
        };
        let (within, far) = (row(|x| x.within), row(|x| x.as_far_as_real));
        println!(
            "{:>28} |{within} | {:>5}",
            format!("{name}: within tolerance"),
            pct(s.within_all)
        );
        println!("{:>28} |{far} |", format!("{name}: as far as the real"));
    }
}
