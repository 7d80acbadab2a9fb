//! The run directory `checkpoints/<run-name>/` and the files in it that are not checkpoints:
//!
//! ```text
//! config.toml        resolved config + [provenance] (command line, version, git revision, …);
//!                    feed it back with `trim train --config` to repeat the run
//! metrics.csv        one row per update (columns: crate::metrics::MetricsRow)
//! checkpoints/update_NNNNNN/   periodic resumable checkpoints
//! best/              checkpoint of the best greedy validation reward
//! final/             checkpoint after the last update
//! summary.json       what tools read: status, throughput, best/final, baselines, test
//! run.lock           held (flock) by the one process training the run
//! ```
//!
//! This module also owns what keeps a directory consistent between processes: the exclusive
//! [`RunLock`], and [`clean_stale_temps`], which removes the temporary entries that a killed
//! process left behind (and puts back a checkpoint that was moved aside mid-replacement).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::checkpoint;
use crate::config::{ConfigOverrides, PROVENANCE_TABLE, TrainConfig};
use crate::error::{Result, TrainError};
use crate::run_summary::{RunStatus, RunSummary};

/// The lock file of a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// `<dataset stem>__lam<λ>__s<seed>__<unix time>` (`…__seq__lam…` for TRIM-Seq), CleanRL's
/// naming with the routing knobs. For
/// a synth spec the stem is the profile's (`synth:math-train?problems=7500` → `math-train`), so
/// the name stays a plain, portable directory name (no `:`, `?`, `&`, `=`).
pub fn default_run_name(cfg: &TrainConfig, unix_time: u64) -> String {
    let text = cfg.data.to_string_lossy();
    let profile = text
        .strip_prefix(trim_data::source::SYNTH_SCHEME)
        .map(|body| {
            let profile = body.split('?').next().unwrap_or(body);
            Path::new(profile)
                .file_stem()
                .map_or(profile.to_string(), |s| s.to_string_lossy().into_owned())
        });
    let stem = profile.unwrap_or_else(|| {
        cfg.data
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("data")
            .to_string()
    });
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let policy = match cfg.policy {
        crate::config::PolicyKind::Agg => String::new(),
        p => format!("{p}__"),
    };
    format!(
        "{stem}__{policy}lam{:e}__s{}__{unix_time}",
        cfg.lambda, cfg.seed
    )
}

/// `git rev-parse HEAD` of the working directory, or "unknown".
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Where and how the run was started, written under `[provenance]` in `config.toml`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Provenance {
    pub command_line: String,
    pub crate_version: String,
    pub git_revision: String,
    pub backend: Backend,
    pub run_name: String,
    pub started_unix: u64,
    pub dataset_sha256: String,
    /// For a forked run: the checkpoint it continues from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<PathBuf>,
}

/// Write `config.toml`: the resolved config, then the provenance table.
pub fn write_config(run_dir: &Path, cfg: &TrainConfig, prov: &Provenance) -> Result<()> {
    let path = run_dir.join("config.toml");
    let prov = toml::to_string(prov).map_err(|e| TrainError::io(&path, e))?;
    let text = format!(
        "# Resolved configuration of this run; `trim train --config {}` repeats it.\n{}\n[{PROVENANCE_TABLE}]\n{prov}",
        path.display(),
        cfg.to_toml()
    );
    write_file(&path, text.as_bytes())
}

/// The configuration recorded in a run directory's `config.toml`.
pub fn recorded_config(run_dir: &Path) -> Result<TrainConfig> {
    let mut cfg = TrainConfig::default();
    cfg.apply(&ConfigOverrides::from_toml_file(
        &run_dir.join("config.toml"),
    )?);
    Ok(cfg)
}

/// Write a small file atomically (temp file + rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    trim_data::io::write_atomic(path, |w| {
        w.write_all(bytes)
            .map_err(|e| trim_data::DataError::file(path, e.to_string()))
    })
    .map_err(|e| TrainError::io(path, e))
}

/// Find the run directory of a checkpoint directory (the nearest ancestor with `config.toml`).
pub fn run_dir_of_checkpoint(ckpt: &Path) -> Option<PathBuf> {
    ckpt.ancestors()
        .skip(1)
        .take(2)
        .find(|d| d.join("config.toml").is_file())
        .map(Path::to_path_buf)
}

/// What an existing run directory holds, as far as starting or resuming it goes.
#[derive(Debug)]
pub struct RunDirState {
    /// `config.toml` exists.
    pub has_config: bool,
    /// The newest periodic checkpoint: `(updates, path)`.
    pub latest_checkpoint: Option<(u64, PathBuf)>,
    /// `final/` exists.
    pub has_final: bool,
    /// `summary.json`, if there is one.
    pub summary: Option<RunSummary>,
    /// Entries other than our lock file and temporary entries (a directory someone else uses).
    pub foreign_entries: bool,
}

impl RunDirState {
    /// Read what `run_dir` holds; a damaged `summary.json` is an error naming it.
    pub fn read(run_dir: &Path) -> Result<RunDirState> {
        let summary = if run_dir.join("summary.json").is_file() {
            Some(RunSummary::read(run_dir)?)
        } else {
            None
        };
        let mut foreign_entries = false;
        for e in std::fs::read_dir(run_dir).map_err(|e| TrainError::io(run_dir, e))? {
            let e = e.map_err(|e| TrainError::io(run_dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name == LOCK_FILE || parse_temp(&name).is_some();
            let run_file = matches!(
                name.as_str(),
                "config.toml" | "metrics.csv" | "summary.json" | "checkpoints" | "best" | "final"
            );
            foreign_entries |= !ours && !run_file;
        }
        Ok(RunDirState {
            has_config: run_dir.join("config.toml").is_file(),
            latest_checkpoint: checkpoint::periodic(run_dir).pop(),
            has_final: run_dir.join("final").exists(),
            summary,
            foreign_entries,
        })
    }

    /// The furthest update this run has checkpointed: its newest periodic checkpoint, or the
    /// update its summary records as finished or stopped (a failed run's later updates have no
    /// checkpoint; like rows after a crash, they would be redone).
    pub fn furthest_update(&self) -> u64 {
        let ckpt = self.latest_checkpoint.as_ref().map_or(0, |c| c.0);
        let summary = self
            .summary
            .as_ref()
            .filter(|s| s.status != RunStatus::Failed)
            .map_or(0, |s| s.updates_done);
        ckpt.max(summary)
    }
}

/// An exclusive lock on a run directory (`flock` on `run.lock`), held until dropped or the
/// process exits; so two processes never train or resume the same run at once. On platforms
/// without `flock` it is a no-op.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Take the lock of `run_dir` (which must exist), or fail (after a 0.5 s grace period) if another
    /// process holds it, naming that process.
    pub fn acquire(run_dir: &Path) -> Result<RunLock> {
        let path = run_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        if !lock_with_grace(&file).map_err(|e| TrainError::io(&path, e))? {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(TrainError::run_dir(
                run_dir,
                format!(
                    "in use by another trim process (pid {}, holding {LOCK_FILE}); wait for it \
                     to finish or stop it",
                    holder.trim()
                ),
            ));
        }
        let pid = std::process::id().to_string();
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            f.write_all(pid.as_bytes())
        };
        write(&mut file).map_err(|e| TrainError::io(&path, e))?;
        Ok(RunLock { _file: file })
    }
}

/// How long a held lock is retried before the run is reported in use. A lock is briefly
/// "held" after its owner dropped it whenever a concurrent `fork` (any thread of this process
/// spawning a child, e.g. a grader or a Ray worker) copied the descriptor and has not reached
/// `exec` yet; without a grace period that window reports a free run as busy.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

fn lock_with_grace(file: &File) -> std::io::Result<bool> {
    let start = std::time::Instant::now();
    loop {
        if try_lock_exclusive(file)? {
            return Ok(true);
        }
        if start.elapsed() >= LOCK_GRACE {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Take an exclusive `flock` on `file` without blocking: false when another open file
/// description holds it.
#[cfg(unix)]
pub(crate) fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this `File` owns and keeps open.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
pub(crate) fn try_lock_exclusive(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// A temporary entry of an interrupted write.
#[derive(Debug, PartialEq, Eq)]
struct TempEntry {
    /// The name it was written for (`update_000050`, `best`, `summary.json`).
    target: String,
    /// A checkpoint moved aside while being replaced (`.NAME.old-PID`).
    moved_aside: bool,
    pid: u32,
}

/// Parse `.NAME.tmp-PID` / `.NAME.old-PID` (checkpoint directories) and `.NAME.tmp.PID`
/// (atomic file writes).
fn parse_temp(file_name: &str) -> Option<TempEntry> {
    let rest = file_name.strip_prefix('.')?;
    ["tmp-", "old-", "tmp."].into_iter().find_map(|marker| {
        let (target, pid) = rest.rsplit_once(&format!(".{marker}"))?;
        let pid = pid.parse().ok().filter(|_| !target.is_empty())?;
        Some(TempEntry {
            target: target.to_string(),
            moved_aside: marker == "old-",
            pid,
        })
    })
}

/// Whether process `pid` is certainly gone (never true where that cannot be known).
fn process_is_gone(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let r = unsafe { libc::kill(pid, 0) };
        r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Remove the temporary entries that processes no longer alive left in `run_dir` and its
/// `checkpoints/` (call it holding the [`RunLock`]). A checkpoint moved aside while being
/// replaced is put back when its replacement never arrived. Returns the paths removed or
/// restored.
pub fn clean_stale_temps(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut done = vec![];
    for dir in [run_dir.to_path_buf(), run_dir.join("checkpoints")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(t) = parse_temp(&name) else { continue };
            if !process_is_gone(t.pid) {
                continue;
            }
            let path = e.path();
            let target = dir.join(&t.target);
            let r = if t.moved_aside && !target.exists() {
                std::fs::rename(&path, &target)
            } else if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            r.map_err(|e| TrainError::io(&path, format!("cannot clean up: {e}")))?;
            done.push(path);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_run_names_are_plain_directory_names() {
        let name = |data: &str| {
            let cfg = TrainConfig {
                data: data.into(),
                ..TrainConfig::default()
            };
            default_run_name(&cfg, 7)
        };
        assert_eq!(name("data/sets/x.parquet"), "x__lam8e-4__s10__7");
        assert_eq!(
            name("synth:math-train?problems=7500&test_fraction=0"),
            "math-train__lam8e-4__s10__7"
        );
        assert_eq!(
            name("synth:dir/my world.toml?cap=2"),
            "my_world__lam8e-4__s10__7"
        );
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("trim-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("checkpoints")).unwrap();
        d
    }

    #[test]
    fn temp_names_parse() {
        let t = parse_temp(".update_000050.tmp-123").unwrap();
        assert_eq!(
            (t.target.as_str(), t.moved_aside, t.pid),
            ("update_000050", false, 123)
        );
        assert!(parse_temp(".best.old-7").unwrap().moved_aside);
        assert_eq!(
            parse_temp(".summary.json.tmp.42").unwrap().target,
            "summary.json"
        );
        for no in ["best", ".best", ".best.tmp-x", ".tmp-3", "metrics.csv"] {
            assert_eq!(parse_temp(no), None, "{no}");
        }
    }

    /// Defect 11: stale temp directories of dead processes are removed (a live process's are
    /// kept), and a `best/` moved aside by a killed replacement is put back.
    #[test]
    fn stale_temps_of_dead_processes_are_cleaned() {
        let d = tmp("clean");
        let dead = i32::MAX as u32;
        let live = std::process::id();
        let stale = d.join(format!("checkpoints/.update_000008.tmp-{dead}"));
        let kept = d.join(format!("checkpoints/.update_000009.tmp-{live}"));
        let aside = d.join(format!(".best.old-{dead}"));
        let file = d.join(format!(".summary.json.tmp.{dead}"));
        for p in [&stale, &kept, &aside] {
            std::fs::create_dir_all(p).unwrap();
            std::fs::write(p.join("state.json"), "{}").unwrap();
        }
        std::fs::write(&file, "x").unwrap();
        let done = clean_stale_temps(&d).unwrap();
        assert_eq!(done.len(), 3, "{done:?}");
        assert!(!stale.exists() && !file.exists() && !aside.exists());
        assert!(kept.exists());
        assert!(d.join("best/state.json").is_file(), "best/ not restored");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Defect 11: a second lock of the same run directory fails at once, naming the holder.
    #[test]
    fn a_run_directory_is_locked_once() {
        let d = tmp("lock");
        let first = RunLock::acquire(&d).unwrap();
        let e = RunLock::acquire(&d).unwrap_err().to_string();
        assert!(e.contains("in use by another trim process"), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(first);
        assert!(RunLock::acquire(&d).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
