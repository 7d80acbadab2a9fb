//! The modes of `trim sweep` that let other executors run a sweep: `--plan` (the expanded runs
//! as JSON lines — the one source of truth a Ray driver reads), `--index`/`--run` (train exactly
//! one run, as a Ray task or a Slurm array index does), `--report-only`, and `--emit-slurm`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use trim::sweep::plan::final_dir;
use trim::sweep::slurm::{self, Invocation, SlurmOptions};
use trim::sweep::{Plan, RunResult, RunSpec, plan_run, run_single};
use trim::train::RunSummary;

use super::sweep::{SweepArgs, options_of, status_line, sweep_report};

/// Mode flags of `trim sweep`.
#[derive(Args, Debug, Default)]
pub struct ModeArgs {
    /// Print the expanded runs as JSON lines (index, name, status, run directory, config, the
    /// command that trains it) and exit. What a Ray driver reads.
    #[arg(long, conflicts_with_all = ["index", "run", "report_only", "emit_slurm"])]
    pub plan: bool,
    /// Train only the run at this position of the plan (0-based), on --threads cores: what a
    /// Ray task or a Slurm array index runs. Safe to repeat and to run on any node.
    #[arg(long, conflicts_with_all = ["run", "report_only", "emit_slurm"])]
    pub index: Option<usize>,
    /// Train only the run with this name (like --index).
    #[arg(long, conflicts_with_all = ["report_only", "emit_slurm"])]
    pub run: Option<String>,
    /// With --index/--run: seconds to wait while another worker holds the run.
    #[arg(long, default_value_t = 3600.0)]
    pub wait_s: f64,
    /// Write the report of a finished sweep (fails, naming them, if runs are unfinished).
    #[arg(long, conflicts_with = "emit_slurm")]
    pub report_only: bool,
    /// Write a Slurm job array for this sweep (DIR/sweep.sbatch, DIR/report.sbatch) and exit.
    #[arg(long, value_name = "DIR")]
    pub emit_slurm: Option<PathBuf>,
    /// Slurm: cores per run (--cpus-per-task; passed to the run as --threads).
    #[arg(long, default_value_t = 1)]
    pub slurm_cpus: usize,
    /// Slurm: memory per run.
    #[arg(long, default_value = "4G")]
    pub slurm_mem: String,
    /// Slurm: time limit per run.
    #[arg(long, default_value = "04:00:00")]
    pub slurm_time: String,
    #[arg(long)]
    pub slurm_partition: Option<String>,
    /// Slurm: at most this many runs at once (the array's %P).
    #[arg(long)]
    pub slurm_max_parallel: Option<usize>,
}

/// Run the mode asked for; false when none was (a plain local sweep).
pub fn dispatch(a: &SweepArgs, runs: &[RunSpec]) -> anyhow::Result<bool> {
    let m = &a.modes;
    if m.plan {
        print_plan(a, runs)?;
    } else if m.index.is_some() || m.run.is_some() {
        single(a, runs)?;
    } else if m.report_only {
        report_only(a, runs)?;
    } else if let Some(dir) = &m.emit_slurm {
        emit_slurm(a, runs, dir)?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// Flags that select a mode (not part of "the sweep"), with whether they take a value.
const MODE_FLAGS: [(&str, bool); 13] = [
    ("--plan", false),
    ("--report-only", false),
    ("--no-report", false),
    ("--index", true),
    ("--run", true),
    ("--wait-s", true),
    ("--threads", true),
    ("--emit-slurm", true),
    ("--slurm-cpus", true),
    ("--slurm-mem", true),
    ("--slurm-time", true),
    ("--slurm-partition", true),
    ("--slurm-max-parallel", true),
];

/// The sweep's own arguments as typed (after `trim sweep`), mode flags removed: re-running
/// them with `--index I` from the same directory trains run I of the same plan.
fn sweep_args() -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let mut out = vec![];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let flag = a.split('=').next().unwrap_or(a);
        match MODE_FLAGS.iter().find(|(f, _)| *f == flag) {
            Some((_, true)) if !a.contains('=') => i += 2,
            Some(_) => i += 1,
            None => {
                out.push(a.clone());
                i += 1;
            }
        }
    }
    out
}

fn invocation() -> anyhow::Result<Invocation> {
    Ok(Invocation {
        trim: std::env::current_exe()?,
        cwd: std::env::current_dir()?,
        args: sweep_args(),
    })
}

/// `--plan`: one JSON line per run.
fn print_plan(a: &SweepArgs, runs: &[RunSpec]) -> anyhow::Result<()> {
    let o = options_of(a)?;
    let inv = invocation()?;
    let sha = trim_data::io::sha256_file(&inv.trim)?;
    let runs_dir = inv.cwd.join(&o.runs_dir);
    for (i, r) in runs.iter().enumerate() {
        let p = plan_run(&o.runs_dir, &r.name, &r.config)?;
        let status = match (&p.plan, p.staged) {
            (Plan::Skip, false) => "finished",
            (Plan::Skip, true) => "finished-staged",
            (Plan::New, _) => "new",
            (Plan::Resume, _) => "resume",
            (Plan::Restart, _) => "restart",
        };
        let mut argv = vec![inv.trim.display().to_string(), "sweep".into()];
        argv.extend(inv.args.iter().cloned());
        argv.extend(["--index".to_string(), i.to_string()]);
        let line = json!({
            "index": i,
            "name": r.name,
            "status": status,
            "run_dir": final_dir(&runs_dir, &r.name),
            "config": r.config,
            "argv": argv,
            "cwd": inv.cwd,
            "trim_sha256": sha,
        });
        println!("{line}");
    }
    Ok(())
}

/// `--index`/`--run`: train one run; a JSON line with its outcome on stdout.
fn single(a: &SweepArgs, runs: &[RunSpec]) -> anyhow::Result<()> {
    let m = &a.modes;
    let r = match (m.index, &m.run) {
        (Some(i), _) => runs.get(i).ok_or_else(|| {
            anyhow::anyhow!(
                "--index {i}: the sweep has {} runs (0..{})",
                runs.len(),
                runs.len().saturating_sub(1)
            )
        })?,
        (None, Some(name)) => runs.iter().find(|r| &r.name == name).ok_or_else(|| {
            anyhow::anyhow!("--run {name}: no such run in the sweep (see --plan)")
        })?,
        (None, None) => unreachable!("dispatched on one of them"),
    };
    let mut o = options_of(a)?;
    o.threads = a.threads.unwrap_or(1);
    let on_event = |e: trim::sweep::Event<'_>| {
        if let Some(msg) = status_line(&e) {
            eprintln!("{msg}");
        }
    };
    let res = run_single(r, &o, Duration::from_secs_f64(m.wait_s.max(0.0)), &on_event)?;
    let s = res
        .outcome
        .map_err(|e| anyhow::anyhow!("{}: {e}", r.name))?;
    println!(
        "{}",
        json!({"name": r.name, "status": s.status, "updates_done": s.updates_done,
               "run_dir": res.run_dir})
    );
    Ok(())
}

/// `--report-only`: every run must be finished and in place.
fn report_only(a: &SweepArgs, runs: &[RunSpec]) -> anyhow::Result<()> {
    let o = options_of(a)?;
    let mut results = vec![];
    let mut unfinished = vec![];
    for r in runs {
        let p = plan_run(&o.runs_dir, &r.name, &r.config)?;
        if p.plan != Plan::Skip || p.staged {
            unfinished.push(format!("{} ({:?})", r.name, p.plan));
            continue;
        }
        results.push(RunResult {
            name: r.name.clone(),
            outcome: RunSummary::read(&p.dir).map_err(|e| e.to_string()),
            run_dir: p.dir,
            plan: p.plan,
        });
    }
    anyhow::ensure!(
        unfinished.is_empty(),
        "{} of {} runs are not finished: {}",
        unfinished.len(),
        runs.len(),
        unfinished.join(", ")
    );
    sweep_report(a, runs, &results)?;
    eprintln!("report: {}", a.out.join("report").display());
    Ok(())
}

/// `--emit-slurm DIR`.
fn emit_slurm(a: &SweepArgs, runs: &[RunSpec], dir: &std::path::Path) -> anyhow::Result<()> {
    let m = &a.modes;
    let o = SlurmOptions {
        cpus: m.slurm_cpus.max(1),
        mem: m.slurm_mem.clone(),
        time: m.slurm_time.clone(),
        partition: m.slurm_partition.clone(),
        max_parallel: m.slurm_max_parallel,
    };
    let dir = std::env::current_dir()?.join(dir);
    let files = slurm::write(&dir, runs.len(), &invocation()?, &o)?;
    for f in &files {
        println!("{}", f.display());
    }
    eprintln!(
        "{} runs: submit with `jobid=$(sbatch --parsable {})`, then `sbatch \
         --dependency=afterok:$jobid {}`",
        runs.len(),
        files[0].display(),
        files[1].display()
    );
    Ok(())
}
