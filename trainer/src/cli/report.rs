//! `trim report`: every baseline, the oracles and trained checkpoints on the same problems,
//! written as CSV + JSON + Markdown + a cost-vs-accuracy plot.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use trim::eval::report::{FamilyMetrics, write_report};
use trim::eval::{CheckpointSpec, SuiteOptions, run_suite_on};

use trim::config::DEFAULT_TEST_DATA;

/// Options of the evaluation suite shared by `trim report`, `trim sweep` and `trim eval --report`.
#[derive(Args, Clone, Debug)]
pub struct SuiteArgs {
    /// Cost per strong token λ in the reported reward `accuracy − λ·strong_tokens`.
    #[arg(long = "report-lambda", default_value_t = 8e-4)]
    pub report_lambda: f64,
    /// TRIM-Thr grid: N+1 thresholds evenly spaced in [0, 1].
    #[arg(long, default_value_t = 50)]
    pub threshold_steps: u32,
    /// Random-routing grid: N+1 probabilities evenly spaced in [0, 1].
    #[arg(long, default_value_t = 10)]
    pub random_steps: u32,
    /// Cascade (AutoMix-PRM) grid: N+1 values of τ evenly spaced in [0, 1].
    #[arg(long, default_value_t = 20)]
    pub cascade_steps: u32,
    /// Regenerate-probability thresholds per checkpoint: N−1 values evenly spaced in (0, 1).
    #[arg(long, default_value_t = 20)]
    pub checkpoint_steps: u32,
    /// Episodes per tree for the random policy.
    #[arg(long, default_value_t = 16)]
    pub repeats: u32,
    /// Seed of the random policy and of the bootstrap.
    #[arg(long = "eval-seed", default_value_t = 0)]
    pub eval_seed: u64,
    /// Training data whose `train` split the "TRIM-POMDP (fitted)" family is fitted on
    /// (`none`: no fitted family). Default: the training data of the reported runs, else the
    /// default training world; left out with a warning when it carries no state labels.
    #[arg(long)]
    pub pomdp_fit_data: Option<String>,
}

impl SuiteArgs {
    /// The options, fitting the "TRIM-POMDP (fitted)" family on `--pomdp-fit-data` or else on
    /// `train_data`.
    pub fn options(&self, train_data: &Path) -> SuiteOptions {
        let n = self.checkpoint_steps.max(2);
        SuiteOptions {
            lambda: self.report_lambda,
            threshold_steps: self.threshold_steps,
            random_steps: self.random_steps,
            cascade_steps: self.cascade_steps,
            checkpoint_thresholds: (1..n).map(|i| i as f32 / n as f32).collect(),
            repeats: self.repeats,
            seed: self.eval_seed,
            pomdp_fit_data: match self.pomdp_fit_data.as_deref() {
                Some("none") => None,
                Some(d) => Some(d.into()),
                None => Some(train_data.to_path_buf()),
            },
            pomdp_fit_optional: self.pomdp_fit_data.is_none(),
            ..SuiteOptions::default()
        }
    }
}

/// Arguments of `trim report`.
#[derive(Args)]
pub struct ReportArgs {
    /// Dataset file (.parquet or .jsonl) or synth spec (default: the MATH-500-like test world).
    #[arg(long, default_value = DEFAULT_TEST_DATA)]
    pub data: PathBuf,
    /// Split evaluated (`all` for every problem).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Run directories (their `best/` checkpoint is evaluated; TRIM-POMDP run directories of
    /// `trim pomdp solve --out` are evaluated as their own family) or directories of run
    /// directories (e.g. a sweep's `runs/`). Repeatable.
    #[arg(long)]
    pub runs: Vec<PathBuf>,
    /// Checkpoint directories evaluated as they are. Repeatable.
    #[arg(long)]
    pub checkpoint: Vec<PathBuf>,
    /// Family name of the checkpoints' points (default: the trained family, TRIM-Agg or
    /// TRIM-Seq, as each run recorded it).
    #[arg(long)]
    pub family: Option<String>,
    /// Output directory of the report files.
    #[arg(long, default_value = "reports/latest")]
    pub out: PathBuf,
    #[command(flatten)]
    pub suite: SuiteArgs,
}

/// The checkpoints of `paths`: a run directory gives its `best/` (or `final/`), a directory of
/// run directories gives each of theirs (sorted by name).
pub fn discover(paths: &[PathBuf], family: Option<&str>) -> anyhow::Result<Vec<CheckpointSpec>> {
    let mut out = vec![];
    for p in paths {
        if is_run(p) {
            out.push(run_checkpoint(p, family)?);
            continue;
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| is_run(d))
            .collect();
        dirs.sort();
        anyhow::ensure!(!dirs.is_empty(), "{} holds no run directories", p.display());
        for d in dirs {
            out.push(run_checkpoint(&d, family)?);
        }
    }
    Ok(out)
}

/// A training run directory or a TRIM-POMDP run directory (`trim pomdp solve --out`).
fn is_run(dir: &Path) -> bool {
    dir.join("config.toml").is_file() || trim::pomdp_run::is_pomdp_run(dir)
}

fn run_checkpoint(run: &Path, family: Option<&str>) -> anyhow::Result<CheckpointSpec> {
    let family = match family {
        Some(f) => f.to_string(),
        None if trim::pomdp_run::is_pomdp_run(run) => String::new(),
        None => trim::run_dir::recorded_config(run)?
            .family_display_name()
            .to_string(),
    };
    let label = run
        .file_name()
        .map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into());
    if trim::pomdp_run::is_pomdp_run(run) {
        return Ok(CheckpointSpec {
            family,
            label,
            dir: run.to_path_buf(),
        });
    }
    let dir = ["best", "final"]
        .iter()
        .map(|c| run.join(c))
        .find(|d| d.is_dir())
        .ok_or_else(|| anyhow::anyhow!("{} has no best/ or final/ checkpoint", run.display()))?;
    Ok(CheckpointSpec { family, label, dir })
}

/// Evaluate everything, write the report into `out` and print the summary table.
pub fn report(
    (data, train_data): (&Path, &Path),
    split: &str,
    checkpoints: &[CheckpointSpec],
    out: &Path,
    suite: &SuiteArgs,
) -> anyhow::Result<Vec<FamilyMetrics>> {
    let t0 = Instant::now();
    let l = trim_data::DataSource::open(data, &trim_data::LoadOptions::from_env())?;
    let problems = l.problems_in_split(split);
    anyhow::ensure!(
        !problems.is_empty(),
        "no problems in split `{split}` of {} (splits: {:?})",
        data.display(),
        l.splits()
    );
    let mut options = suite.options(train_data);
    options.conditioned_lambdas = per_lambda_lambdas(checkpoints);
    let s = run_suite_on(&l, data, split, &problems, checkpoints, &options)?;
    let (w, m) = write_report(out, &s)?;
    println!("{}", trim::eval::report::summary_markdown(&s, &m));
    println!(
        "report in {:.1} s: {}, {}, {}, {}, {}, {}",
        t0.elapsed().as_secs_f64(),
        w.markdown.display(),
        w.points_csv.display(),
        w.frontier_csv.display(),
        w.json.display(),
        w.png.display(),
        w.svg.display()
    );
    Ok(m)
}

/// The report name of the family a checkpoint directory records.
fn checkpoint_family(dir: &Path) -> anyhow::Result<String> {
    let state = trim::checkpoint::load_state(dir)?;
    let cfg = &state.config;
    if cfg.lambda_range.bounds().is_some() || cfg.budget_range.bounds().is_some() {
        return Ok(cfg.family_display_name().into());
    }
    let kind: trim::config::PolicyKind =
        (state.family.parse()).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    Ok(kind.display_name().into())
}

/// The λ of every per-λ (not conditioned) checkpoint in `cks`, sorted and deduplicated: where a
/// λ-conditioned checkpoint in the same report is evaluated.
fn per_lambda_lambdas(cks: &[CheckpointSpec]) -> Vec<f64> {
    let mut v: Vec<f64> = (cks.iter())
        .filter_map(|c| trim::checkpoint::load_state(&c.dir).ok())
        .filter(|s| s.config.lambda_range.bounds().is_none())
        .map(|s| s.config.lambda)
        .collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// The training data recorded by the first trained run among `cks` (what `trim sweep` fits the
/// "TRIM-POMDP (fitted)" family on, so both commands report the same families).
fn training_data(cks: &[CheckpointSpec]) -> Option<PathBuf> {
    cks.iter()
        .filter_map(|c| trim::run_dir::run_dir_of_checkpoint(&c.dir))
        .find_map(|run| trim::run_dir::recorded_config(&run).ok())
        .map(|cfg| cfg.data)
}

/// `trim report`.
pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let mut cks = discover(&a.runs, a.family.as_deref())?;
    for c in &a.checkpoint {
        let family = match &a.family {
            Some(f) => f.clone(),
            None => checkpoint_family(c)?,
        };
        cks.push(CheckpointSpec {
            family,
            label: c.display().to_string(),
            dir: c.clone(),
        });
    }
    let train = training_data(&cks).unwrap_or_else(|| trim::config::DEFAULT_DATA.into());
    report((&a.data, &train), &a.split, &cks, &a.out, &a.suite)?;
    Ok(())
}
