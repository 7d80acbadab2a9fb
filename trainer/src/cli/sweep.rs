//! `trim sweep`: train a grid of TRIM-Agg runs in parallel, then report every run against every
//! baseline and the hindsight-optimal frontier.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use trim::backend::Backend;
use trim::config::TestSplit;
use trim::sweep::{
    Event, Plan, RunResult, RunSpec, SweepOptions, SweepSpec, parse_assignment, run_sweep,
};
use trim::train::RunStatus;

use super::report::{SuiteArgs, discover, report};

/// Arguments of `trim sweep`.
#[derive(Args)]
#[command(
    after_help = "A sweep file has a [base] table (fixed configuration fields) and a \
[grid] table (field = [values]); every combination is one run in OUT/runs/<field=value__…>. \
--set and --grid add to or override the file. Finished runs are skipped and interrupted ones \
resumed, so the same command continues a sweep. Example: trim sweep trainer/configs/sweep.toml"
)]
pub struct SweepArgs {
    /// Sweep TOML file ([base] and [grid] tables).
    pub spec: Option<PathBuf>,
    /// A `trim train`-style configuration file applied before [base].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A grid axis: FIELD=V1,V2,… (repeatable), e.g. --grid lambda=2e-4,8e-4 --grid seed=1,2.
    #[arg(long)]
    pub grid: Vec<String>,
    /// A fixed field: FIELD=VALUE (repeatable), e.g. --set passes=20.
    #[arg(long)]
    pub set: Vec<String>,
    /// Sweep directory: runs in OUT/runs/, the report in OUT/report/.
    #[arg(long, default_value = "checkpoints/sweep")]
    pub out: PathBuf,
    /// Runs trained at once in this process (`--population` is the same flag): each a
    /// population member with its own run directory, one core each (a member's arithmetic does
    /// not depend on how many run beside it). Default: available cores.
    #[arg(long, visible_alias = "population")]
    pub threads: Option<usize>,
    /// Stop every run after this many updates (resumable); the report is skipped.
    #[arg(long)]
    pub stop_after_updates: Option<u64>,
    /// Backend: flex (default) or tch (needs `--features tch`).
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Train only; do not write the report.
    #[arg(long)]
    pub no_report: bool,
    #[command(flatten)]
    pub modes: super::sweep_modes::ModeArgs,
    #[command(flatten)]
    pub suite: SuiteArgs,
}

/// The sweep file, with `--set` and `--grid` applied.
fn spec_of(a: &SweepArgs) -> anyhow::Result<SweepSpec> {
    let mut spec = match &a.spec {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
            SweepSpec::from_toml_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => SweepSpec::default(),
    };
    for s in &a.set {
        let (k, mut v) = parse_assignment(s)?;
        anyhow::ensure!(
            v.len() == 1,
            "--set {s}: one value (use --grid for several)"
        );
        spec.grid.remove(&k);
        spec.base.insert(k, v.remove(0));
    }
    for g in &a.grid {
        let (k, v) = parse_assignment(g)?;
        spec.base.remove(&k);
        spec.grid.insert(k, v);
    }
    Ok(spec)
}

/// The status line of one sweep event (None: nothing to say).
pub(super) fn status_line(e: &Event<'_>) -> Option<String> {
    match e {
        Event::Start { run, plan } => {
            let what = match plan {
                Plan::New => "started",
                Plan::Resume => "resumed from its latest checkpoint",
                Plan::Restart => "restarted in place (no checkpoint yet)",
                Plan::Skip => return None,
            };
            Some(format!("  {run}: {what}"))
        }
        Event::Done {
            run,
            plan: Plan::Skip,
            summary: s,
            ..
        } => Some(format!("  {run}: skipped (already {})", s.status)),
        Event::Done {
            run,
            summary: s,
            seconds,
            ..
        } => Some(format!(
            "  {run}: {} after {} updates in {seconds:.1} s; best validation reward {}",
            s.status,
            s.updates_done,
            s.best.map_or("n/a".into(), |b| format!("{:.4}", b.reward))
        )),
        Event::Failed { run, error } => Some(format!("  {run}: FAILED: {error}")),
    }
}

/// Train every run with a progress bar and status lines.
fn train_all(runs: &[RunSpec], o: &SweepOptions) -> anyhow::Result<Vec<RunResult>> {
    let bar = ProgressBar::new(runs.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} runs ({elapsed}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("sweep");
    let on_event = |e: Event<'_>| {
        if let Some(msg) = status_line(&e) {
            // Through `suspend`, so it prints above the bar (or plainly without a tty).
            bar.suspend(|| eprintln!("{msg}"));
        }
        if matches!(e, Event::Done { .. } | Event::Failed { .. }) {
            bar.inc(1);
        }
    };
    let results = run_sweep(runs, o, &on_event);
    bar.finish_and_clear();
    results
}

/// The sweep's options (`threads` defaults to the available cores).
pub(super) fn options_of(a: &SweepArgs) -> anyhow::Result<SweepOptions> {
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(SweepOptions {
        runs_dir: a.out.join("runs"),
        threads,
        backend: Backend::resolve(a.backend)?,
        stop_after_updates: a.stop_after_updates,
        command_line: super::command_line(),
    })
}

/// Train the grid, then write the report (or one of the modes: plan, one run, report only,
/// Slurm rendering).
pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let spec = spec_of(&a)?;
    let runs = spec.runs(a.config.as_deref())?;
    if super::sweep_modes::dispatch(&a, &runs)? {
        return Ok(());
    }
    let o = options_of(&a)?;
    let threads = o.threads;
    eprintln!(
        "sweep: {} runs ({}) on {threads} threads into {}",
        runs.len(),
        spec.grid
            .iter()
            .map(|(k, v)| format!("{k} × {}", v.len()))
            .collect::<Vec<_>>()
            .join(", "),
        o.runs_dir.display()
    );
    let results = train_all(&runs, &o)?;
    let train_s = t0.elapsed().as_secs_f64();
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|e| format!("{}: {e}", r.name)))
        .collect();
    let unfinished = results
        .iter()
        .filter(|r| matches!(&r.outcome, Ok(s) if s.status != RunStatus::Finished))
        .count();
    eprintln!(
        "sweep: {} runs in {train_s:.1} s ({} skipped, {} failed, {unfinished} stopped early)",
        results.len(),
        results.iter().filter(|r| r.plan == Plan::Skip).count(),
        failed.len()
    );
    anyhow::ensure!(
        failed.is_empty(),
        "{} runs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    if a.no_report || unfinished > 0 {
        return Ok(());
    }
    sweep_report(&a, &runs, &results)?;
    eprintln!("sweep + report: {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The report over every run of the sweep (one test data and split): on the test data when it
/// is separate, else on the training data's test split.
pub(super) fn sweep_report(
    a: &SweepArgs,
    runs: &[RunSpec],
    results: &[RunResult],
) -> anyhow::Result<()> {
    let test_data = |c: &trim::TrainConfig| c.test_data.path().unwrap_or(&c.data).to_path_buf();
    let data = test_data(&runs[0].config);
    let split = &runs[0].config.test_split;
    anyhow::ensure!(
        runs.iter()
            .all(|r| test_data(&r.config) == data && r.config.test_split == *split),
        "the report needs one test data and split for all runs; use --no-report and \
         `trim report` per dataset"
    );
    let TestSplit::Split(split) = split else {
        anyhow::bail!(
            "the report scores the test split, and the sweep has test_split = none; use \
             --no-report, or `trim report --split NAME` on the runs"
        );
    };
    let dirs: Vec<PathBuf> = results.iter().map(|r| r.run_dir.clone()).collect();
    let cks = discover(&dirs, None)?;
    let train = &runs[0].config.data;
    report((&data, train), split, &cks, &a.out.join("report"), &a.suite)?;
    Ok(())
}
