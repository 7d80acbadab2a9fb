//! Where a sweep run lives and what it needs.
//!
//! A run trains in a **staging directory** `runs/.partial/<name>/` and is renamed to
//! `runs/<name>/` only when it has finished (its `summary.json` rewritten first to name the final
//! directory). So on shared storage `runs/` only ever holds finished runs, "finished" is simply
//! "the directory exists", and a worker killed at any point leaves a staged run that the next
//! attempt resumes from its latest checkpoint. A worker holds the run's [`Claim`]
//! (`runs/.claims/<name>`, flock) from planning to promotion, so two workers never act on one
//! run at once; the trainer's `run.lock` in the staged directory is a second guard. Run directories of older versions, trained in place under
//! `runs/<name>/`, are still skipped when finished and resumed in place otherwise.

use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::run_dir::recorded_config;
use crate::train::{RunStatus, RunSummary};

/// The staging directory's name under the sweep's `runs/`.
pub const STAGING: &str = ".partial";

/// What to do with a run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// No directory yet: start a run.
    New,
    /// Finished: nothing to train (a staged finished run only needs renaming into place).
    Skip,
    /// Interrupted after a checkpoint: continue from the latest one.
    Resume,
    /// Interrupted before its first checkpoint: start again in the same directory.
    Restart,
}

/// A planned run: what to do and in which directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub plan: Plan,
    /// Where the run is (or will be) trained.
    pub dir: PathBuf,
    /// True when `dir` is the staging directory (renamed into place when finished).
    pub staged: bool,
}

/// `runs_dir/<name>`: a finished run's directory.
pub fn final_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join(name)
}

/// `runs_dir/.partial/<name>`: where an unfinished run trains.
pub fn staging_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join(STAGING).join(name)
}

/// Plan run `name` of a sweep whose run directories are in `runs_dir`.
pub fn plan_run(runs_dir: &Path, name: &str, cfg: &TrainConfig) -> anyhow::Result<Placement> {
    let fin = final_dir(runs_dir, name);
    if fin.exists() {
        return Ok(Placement {
            plan: plan_dir(&fin, cfg)?,
            dir: fin,
            staged: false,
        });
    }
    let dir = staging_dir(runs_dir, name);
    let plan = if dir.exists() {
        plan_dir(&dir, cfg)?
    } else {
        Plan::New
    };
    Ok(Placement {
        plan,
        dir,
        staged: true,
    })
}

/// Decide what to do with the existing (or absent) run directory `run_dir` for `cfg`.
pub fn plan_dir(run_dir: &Path, cfg: &TrainConfig) -> anyhow::Result<Plan> {
    if !run_dir.exists() {
        return Ok(Plan::New);
    }
    if run_dir.join("config.toml").is_file() {
        let rec = recorded_config(run_dir)?;
        anyhow::ensure!(
            rec == *cfg,
            "{} holds a run with a different configuration than the sweep asks for; move it \
             away or restore the sweep's grid",
            run_dir.display()
        );
    }
    if run_dir.join(crate::run_summary::SUMMARY_FILE).is_file()
        && RunSummary::read(run_dir)?.status == RunStatus::Finished
    {
        return Ok(Plan::Skip);
    }
    if checkpoint::periodic(run_dir).is_empty() {
        Ok(Plan::Restart)
    } else {
        Ok(Plan::Resume)
    }
}

/// Move a finished staged run into place: its summary is rewritten to name the final directory,
/// then the directory is renamed (atomic on one filesystem). Returns the final summary.
pub fn promote(runs_dir: &Path, name: &str) -> anyhow::Result<RunSummary> {
    let staged = staging_dir(runs_dir, name);
    let fin = final_dir(runs_dir, name);
    let mut s = RunSummary::read(&staged)?;
    anyhow::ensure!(
        s.status == RunStatus::Finished,
        "{}: only a finished run is moved into place",
        staged.display()
    );
    anyhow::ensure!(
        !fin.exists(),
        "{} already exists; {} was trained again (two sweeps with different storage?)",
        fin.display(),
        staged.display()
    );
    s.run_dir = fin.clone();
    let text = serde_json::to_string_pretty(&s)?;
    let path = staged.join(crate::run_summary::SUMMARY_FILE);
    trim_data::io::write_text_atomic(&path, &text)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
    std::fs::rename(&staged, &fin).map_err(|e| {
        anyhow::anyhow!("cannot move {} to {}: {e}", staged.display(), fin.display())
    })?;
    sync_dir(runs_dir);
    Ok(s)
}

/// Where claims live: `runs_dir/.claims/<name>`.
pub const CLAIMS: &str = ".claims";

/// A worker's exclusive claim on one run of a sweep (`flock` on `runs/.claims/<name>`), held
/// from planning to promotion so that two workers never plan, train or promote the same run at
/// once — on one machine or on shared storage with working `flock` (NFSv4, Lustre, GPFS). The
/// claim files stay (removing a lock file others may be waiting on would break the lock).
pub struct Claim {
    _file: std::fs::File,
}

impl Claim {
    /// Take the claim, waiting up to `wait` while another worker holds it.
    pub fn acquire(
        runs_dir: &Path,
        name: &str,
        wait: std::time::Duration,
    ) -> anyhow::Result<Claim> {
        let dir = runs_dir.join(CLAIMS);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let t0 = std::time::Instant::now();
        while !crate::run_dir::try_lock_exclusive(&file)
            .map_err(|e| anyhow::anyhow!("{}: flock: {e}", path.display()))?
        {
            anyhow::ensure!(
                t0.elapsed() < wait,
                "{}: another worker has held this run for {:.0} s; giving up",
                path.display(),
                t0.elapsed().as_secs_f64()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Ok(Claim { _file: file })
    }
}

/// Make a rename durable (best effort: not every filesystem supports syncing a directory).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}
