//! Training the runs of a sweep: all of them on this machine's cores ([`run_sweep`]), or one of
//! them ([`run_single`]: what a Ray task or a Slurm array index executes). Both go through
//! `run_one`, so every executor applies the same skip / resume / restart rules and the same
//! staging and promotion.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::RunSpec;
use super::plan::{Claim, Placement, Plan, final_dir, plan_run, promote};
use crate::backend::Backend;
use crate::train::{AnyTrainer, RunOptions, RunStatus, RunSummary};

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Directory holding the run directories.
    pub runs_dir: PathBuf,
    /// Concurrent runs in [`run_sweep`]; the cores of the one run in [`run_single`].
    pub threads: usize,
    pub backend: Backend,
    /// Stop each run after this many updates (a checkpoint is written; the sweep can resume).
    pub stop_after_updates: Option<u64>,
    pub command_line: String,
}

/// Per-run progress events, for status lines.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    Start {
        run: &'a str,
        plan: &'a Plan,
    },
    Done {
        run: &'a str,
        plan: &'a Plan,
        summary: &'a RunSummary,
        seconds: f64,
    },
    Failed {
        run: &'a str,
        error: &'a str,
    },
}

/// The result of one run.
#[derive(Debug)]
pub struct RunResult {
    pub name: String,
    /// Where the run is now (its final directory once finished).
    pub run_dir: PathBuf,
    pub plan: Plan,
    /// The run's summary (read back for skipped runs), or the error.
    pub outcome: Result<RunSummary, String>,
}

/// Train (or skip, resume, restart) one planned run; a finished staged run is moved into place.
fn run_one(r: &RunSpec, p: &Placement, o: &SweepOptions) -> Result<RunSummary, String> {
    let err = |e: anyhow::Error| format!("{e:#}");
    if p.plan == Plan::Skip {
        return match p.staged {
            true => promote(&o.runs_dir, &r.name).map_err(err),
            false => RunSummary::read(&p.dir).map_err(|e| e.to_string()),
        };
    }
    let parent = p.dir.parent().expect("a run directory has a parent");
    let mut opts = RunOptions {
        out_root: parent.to_path_buf(),
        name: Some(r.name.clone()),
        resume: None,
        stop_after_updates: o.stop_after_updates,
        backend: o.backend,
        command_line: o.command_line.clone(),
    };
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let trainer = match p.plan {
        Plan::Resume => {
            opts.resume = Some(p.dir.clone());
            AnyTrainer::resume(opts)
        }
        // A restart reuses the directory in place (Trainer::new checks it has no checkpoint).
        Plan::Restart | Plan::New => AnyTrainer::new(r.config.clone(), opts),
        Plan::Skip => unreachable!("handled above"),
    };
    let summary = trainer
        .and_then(AnyTrainer::run)
        .map_err(|e| e.to_string())?;
    if p.staged && summary.status == RunStatus::Finished {
        return promote(&o.runs_dir, &r.name).map_err(err);
    }
    Ok(summary)
}

/// The directory a run's result is in after [`run_one`].
fn result_dir(
    r: &RunSpec,
    p: &Placement,
    o: &SweepOptions,
    s: &Result<RunSummary, String>,
) -> PathBuf {
    match s {
        Ok(s) if s.status == RunStatus::Finished => final_dir(&o.runs_dir, &r.name),
        _ => p.dir.clone(),
    }
}

/// Plan every run, then train the ones that need it on `threads` worker threads.
/// `on_event` is called from worker threads as runs start and end.
pub fn run_sweep(
    runs: &[RunSpec],
    o: &SweepOptions,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> anyhow::Result<Vec<RunResult>> {
    std::fs::create_dir_all(&o.runs_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", o.runs_dir.display()))?;
    let plans: Vec<Placement> = runs
        .iter()
        .map(|r| plan_run(&o.runs_dir, &r.name, &r.config))
        .collect::<anyhow::Result<_>>()?;
    // `threads` workers pull runs from a shared counter; each owns a one-thread rayon pool, so
    // the parallel loops inside a run (validation, evaluation) stay on that worker instead of
    // stealing other runs' jobs — which would start many runs at once, each holding its memory,
    // and finish none early.
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<RunResult>>> = Mutex::new((0..runs.len()).map(|_| None).collect());
    let workers = o.threads.max(1).min(runs.len().max(1));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut handles = vec![];
        for _ in 0..workers {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
            let (next, slots, plans) = (&next, &slots, &plans);
            handles.push(scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(r), Some(p)) = (runs.get(i), plans.get(i)) else {
                        break;
                    };
                    // Plan again under the claim: another process may have moved the run on.
                    let claimed = Claim::acquire(&o.runs_dir, &r.name, Duration::ZERO)
                        .and_then(|c| Ok((c, plan_run(&o.runs_dir, &r.name, &r.config)?)));
                    let res = match claimed {
                        Ok((_claim, p)) => pool.install(|| execute(r, &p, o, on_event)),
                        Err(e) => claimed_elsewhere(r, p, e, on_event),
                    };
                    if let Ok(mut v) = slots.lock() {
                        v[i] = Some(res);
                    }
                }
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a sweep worker panicked"))?;
        }
        Ok(())
    })?;
    let results: Vec<RunResult> = slots
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a sweep worker panicked"))?
        .into_iter()
        .flatten()
        .collect();
    anyhow::ensure!(
        results.len() == runs.len(),
        "some runs did not report a result"
    );
    Ok(results)
}

/// A run another process holds: reported as failed for this sweep (it is not touched).
fn claimed_elsewhere(
    r: &RunSpec,
    p: &Placement,
    e: anyhow::Error,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> RunResult {
    let error = format!("{e:#}");
    on_event(Event::Failed {
        run: &r.name,
        error: &error,
    });
    RunResult {
        name: r.name.clone(),
        run_dir: p.dir.clone(),
        plan: p.plan.clone(),
        outcome: Err(error),
    }
}

/// Run one planned run with its events.
fn execute(
    r: &RunSpec,
    p: &Placement,
    o: &SweepOptions,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> RunResult {
    on_event(Event::Start {
        run: &r.name,
        plan: &p.plan,
    });
    let t0 = Instant::now();
    let outcome = run_one(r, p, o);
    match &outcome {
        Ok(summary) => on_event(Event::Done {
            run: &r.name,
            plan: &p.plan,
            summary,
            seconds: t0.elapsed().as_secs_f64(),
        }),
        Err(e) => on_event(Event::Failed {
            run: &r.name,
            error: e,
        }),
    }
    RunResult {
        name: r.name.clone(),
        run_dir: result_dir(r, p, o, &outcome),
        plan: p.plan.clone(),
        outcome,
    }
}

/// Train exactly one run of the sweep on `o.threads` cores: what each Ray task or Slurm array
/// index runs. The worker first takes the run's [`Claim`] (waiting up to `wait` while another
/// worker holds it), then plans with the claim held — so a run another worker finished meanwhile
/// is skipped, and one it left unfinished is resumed — trains, promotes, and releases the claim.
/// Safe to run any number of times, concurrently, anywhere the storage is visible.
pub fn run_single(
    r: &RunSpec,
    o: &SweepOptions,
    wait: Duration,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&o.runs_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", o.runs_dir.display()))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(o.threads.max(1))
        .build()?;
    let _claim = Claim::acquire(&o.runs_dir, &r.name, wait)?;
    let p = plan_run(&o.runs_dir, &r.name, &r.config)?;
    Ok(pool.install(|| execute(r, &p, o, on_event)))
}
