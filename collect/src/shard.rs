//! The resumable work directory `<out>.collect/`:
//!
//! ```text
//! run.json             what is being collected (config and problem file identity)
//! lock                 held (flock) by the one process collecting
//! shard-000001.jsonl   committed problems: one JSON line each, then {"shard_sha256": …}
//! summary.json         the last run's counters (requests, retries, failures, wall time)
//! ```
//!
//! A shard is written to a temporary name, synced and renamed, so it is either whole or
//! absent: a run killed at any instant (kill -9 included) loses only the problems in flight,
//! and a re-run collects exactly those. A re-run with a different configuration or problem
//! file is refused, naming the field, instead of mixing two collections in one dataset.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{CollectError, Result};
use crate::expand::Spend;
use crate::tree::Tree;

/// One committed problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProblemRecord {
    /// Position in the problem file.
    pub index: u32,
    pub id: String,
    pub trees: Vec<Tree>,
    pub spend: Spend,
}

/// The identity of a collection: what must not change between a run and its resumption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    pub format: String,
    /// The configuration fields that shape the data (not concurrency, timeouts or prices).
    pub config: Value,
    pub problems_sha256: String,
    pub problems: usize,
}

const IDENTITY_FORMAT: &str = "trim-collect-v1";

impl RunIdentity {
    pub fn new(config: Value, problems_sha256: String, problems: usize) -> Self {
        RunIdentity {
            format: IDENTITY_FORMAT.into(),
            config,
            problems_sha256,
            problems,
        }
    }
}

/// An open work directory, locked for this process.
pub struct WorkDir {
    pub dir: PathBuf,
    _lock: File,
}

impl WorkDir {
    /// Open (or create) `dir` for `id`: take the lock, then write `run.json` or check it.
    pub fn open(dir: &Path, id: &RunIdentity) -> Result<WorkDir> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CollectError::file(dir, format!("cannot create: {e}")))?;
        let lock = lock(dir)?;
        remove_stale_temps(dir)?;
        let run = dir.join("run.json");
        if run.exists() {
            let text = std::fs::read_to_string(&run)
                .map_err(|e| CollectError::file(&run, format!("cannot read: {e}")))?;
            let old: RunIdentity = serde_json::from_str(&text)
                .map_err(|e| CollectError::file(&run, format!("damaged: {e}")))?;
            if let Some(diff) = first_difference(
                &serde_json::to_value(&old).unwrap_or_default(),
                &serde_json::to_value(id).unwrap_or_default(),
                "",
            ) {
                return Err(CollectError::file(
                    &run,
                    format!(
                        "this work directory collects something else ({diff} differs); resume \
                         with the same configuration and problem file, or choose another --out"
                    ),
                ));
            }
        } else {
            let text = serde_json::to_string_pretty(id).expect("serialisable");
            write_file(&run, text.as_bytes())?;
        }
        Ok(WorkDir {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// Every committed problem, by index. A damaged shard is an error naming it (nothing is
    /// deleted: move it aside and its problems are collected again).
    pub fn load(&self) -> Result<BTreeMap<u32, ProblemRecord>> {
        let mut out: BTreeMap<u32, ProblemRecord> = BTreeMap::new();
        for path in self.shards()? {
            for rec in read_shard(&path)? {
                match out.get(&rec.index) {
                    Some(prev) if prev != &rec => {
                        return Err(CollectError::file(
                            &path,
                            format!(
                                "problem {} is also in another shard with different trees \
                                 (two processes wrote this directory?)",
                                rec.id
                            ),
                        ));
                    }
                    _ => {
                        out.insert(rec.index, rec);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Committed shard files in order.
    fn shards(&self) -> Result<Vec<PathBuf>> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| CollectError::file(&self.dir, format!("cannot list: {e}")))?;
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| shard_number(p).is_some())
            .collect();
        v.sort();
        Ok(v)
    }

    /// Commit `records` as the next shard.
    pub fn commit(&self, records: &[ProblemRecord]) -> Result<PathBuf> {
        let next = (self.shards()?.iter())
            .filter_map(|p| shard_number(p))
            .max()
            .map_or(1, |n| n + 1);
        let path = self.dir.join(format!("shard-{next:06}.jsonl"));
        let mut body = Vec::new();
        for r in records {
            serde_json::to_writer(&mut body, r).expect("serialisable");
            body.push(b'\n');
        }
        let sum = hex(&Sha256::digest(&body));
        body.extend_from_slice(format!("{{\"shard_sha256\":\"{sum}\"}}\n").as_bytes());
        write_file(&path, &body)?;
        Ok(path)
    }

    /// Write `name` in the work directory atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_file(&self.dir.join(name), bytes)
    }
}

/// Remove the temporary files of interrupted writes (`.NAME.tmp.PID`). Safe because this
/// process holds the lock: no other process is writing here.
fn remove_stale_temps(dir: &Path) -> Result<()> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| CollectError::file(dir, format!("cannot list: {e}")))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some((target, pid)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp."))
        else {
            continue;
        };
        let ours = shard_number(Path::new(target)).is_some()
            || target == "run.json"
            || target == "summary.json";
        if ours && pid.parse::<u32>().is_ok() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

fn shard_number(p: &Path) -> Option<u32> {
    let name = p.file_name()?.to_str()?;
    name.strip_prefix("shard-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}

/// Read and verify one shard.
pub fn read_shard(path: &Path) -> Result<Vec<ProblemRecord>> {
    let bytes =
        std::fs::read(path).map_err(|e| CollectError::file(path, format!("cannot read: {e}")))?;
    let damaged = |why: String| {
        CollectError::file(
            path,
            format!(
                "damaged shard ({why}); move it aside and re-run to collect its problems again"
            ),
        )
    };
    let body_end = bytes[..bytes.len().saturating_sub(1)]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let (body, last) = bytes.split_at(body_end);
    let last = std::str::from_utf8(last).map_err(|_| damaged("last line is not UTF-8".into()))?;
    let recorded: Value =
        serde_json::from_str(last.trim()).map_err(|_| damaged("no checksum line".into()))?;
    let recorded = recorded
        .get("shard_sha256")
        .and_then(Value::as_str)
        .ok_or_else(|| damaged("no checksum line".into()))?;
    if recorded != hex(&Sha256::digest(body)) {
        return Err(damaged("checksum mismatch".into()));
    }
    let text = std::str::from_utf8(body).map_err(|_| damaged("not UTF-8".into()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let mut r: ProblemRecord =
                serde_json::from_str(line).map_err(|e| damaged(format!("line {}: {e}", i + 1)))?;
            for t in &mut r.trees {
                t.relink()
                    .map_err(|e| damaged(format!("line {}: {e}", i + 1)))?;
            }
            Ok(r)
        })
        .collect()
}

/// The first dotted path at which two JSON values differ.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let sub = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &sub),
                    _ => Some(sub),
                }
            })
        }
        _ if a == b => None,
        _ => Some(if at.is_empty() {
            "the run".into()
        } else {
            format!("`{at}`")
        }),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    trim_data::io::write_atomic(path, |w| {
        w.write_all(bytes)
            .map_err(|e| trim_data::DataError::file(path, format!("cannot write: {e}")))
    })
    .map_err(CollectError::from)
}

/// sha256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| CollectError::file(path, format!("cannot read: {e}")))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exclusive lock on `dir/lock`, refused at once if another process holds it.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CollectError::file(&path, format!("cannot open: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this `File` owns and keeps open.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            return Err(CollectError::file(
                dir,
                "another trim collect is writing this work directory; wait for it or stop it",
            ));
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("trim-shard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn shards_round_trip_and_damage_is_named() {
        let d = tmp("rt");
        let id = RunIdentity::new(json!({"seed": 1}), "ab".into(), 2);
        let w = WorkDir::open(&d, &id).unwrap();
        let rec = ProblemRecord {
            index: 1,
            id: "p".into(),
            trees: vec![Tree::default()],
            spend: Spend::default(),
        };
        let p = w.commit(std::slice::from_ref(&rec)).unwrap();
        assert_eq!(w.load().unwrap()[&1], rec);
        let good = std::fs::read(&p).unwrap();
        // Every truncation and every single flipped byte is refused, naming the shard.
        for cut in 0..good.len() - 1 {
            std::fs::write(&p, &good[..cut]).unwrap();
            let e = w.load().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("shard-000001.jsonl"), "cut {cut}: {e}");
        }
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            std::fs::write(&p, &bad).unwrap();
            assert!(w.load().is_err(), "flip at {i}");
        }
        drop(w);
        // A temp file of a write killed midway is removed at the next open; nothing else is.
        std::fs::write(&p, &good).unwrap();
        let stale = d.join(".shard-000002.jsonl.tmp.99999");
        let foreign = d.join("notes.txt");
        std::fs::write(&stale, "half").unwrap();
        std::fs::write(&foreign, "mine").unwrap();
        let w = WorkDir::open(&d, &id).unwrap();
        assert!(!stale.exists() && foreign.exists());
        assert_eq!(w.load().unwrap().len(), 1);
        drop(w);
        // Another configuration is refused, naming the field.
        let other = RunIdentity::new(json!({"seed": 2}), "ab".into(), 2);
        let e = WorkDir::open(&d, &other).err().unwrap().to_string();
        assert!(e.contains("config.seed"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn one_process_per_work_directory() {
        let d = tmp("lock");
        let id = RunIdentity::new(json!({}), "x".into(), 1);
        let _w = WorkDir::open(&d, &id).unwrap();
        // flock is per open file description: a second open in this process conflicts too.
        let e = WorkDir::open(&d, &id).err().unwrap().to_string();
        assert!(e.contains("another trim collect"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
