//! Checkpoints: everything needed to continue a run bit for bit, written atomically and
//! verified before use.
//!
//! A checkpoint is a directory:
//!
//! | file | content |
//! |---|---|
//! | `model.bpk` | network parameters (burnpack; loadable with burn's `Module::load_file`) |
//! | `optim.bpk` | Adam state: per-parameter moments and step counts (burnpack) |
//! | `state.json` | [`TrainState`]: config, counters, RNG state, pass order, best validation so far |
//! | `fused_adam.bin` | only for runs with the fused kernels: their Adam state ([`crate::fused::Adam::to_bytes`]; `optim.bpk` is then burn's empty optimiser) |
//! | `SHA256SUMS` | sha256 of the files above (`sha256sum -c` format) |
//!
//! Writing: all files go into a fresh temp directory next to the target, each synced, and the
//! directory is renamed into place (a replaced `best/` or `final/` is moved aside first, then
//! deleted), so a crash never leaves a half-written checkpoint under the real name (a crash
//! between the two renames leaves `.NAME.old-PID`, which the next start of the run puts back:
//! `run_dir::clean_stale_temps`). Reading:
//! `SHA256SUMS` is checked before anything is parsed, so a truncated or modified file is refused
//! with an error naming it, never loaded.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};
use trim_env::Rng;
use trim_env::checksum::sha256_hex;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::family::{Family, agg::Agg};
use crate::model::ActorCritic;
use crate::ppo::update::{FUSED_ADAM, optimizer};

/// Format name written into every `state.json`.
pub const FORMAT: &str = "trim-checkpoint";
/// Bumped on incompatible changes of the checkpoint layout.
pub const FORMAT_VERSION: u32 = 1;
/// The checksum file of a checkpoint directory.
pub const SUMS: &str = "SHA256SUMS";
const FILES: [&str; 3] = ["model.bpk", "optim.bpk", "state.json"];

/// One greedy validation (or test) evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRecord {
    /// Updates completed when it was taken.
    pub update: u64,
    /// `accuracy − λ·strong_tokens`, the selection criterion of `best/`.
    pub reward: f64,
    pub accuracy: f64,
    /// Mean strong tokens per problem.
    pub strong_tokens: f64,
    /// Mean regenerate actions per problem.
    pub strong_calls: f64,
    /// Strong tokens ÷ always-strong's on the same problems.
    pub cost_fraction: f64,
}

/// The non-tensor state of a run after `updates_done` updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    pub format: String,
    pub format_version: u32,
    /// `trim` version that wrote it.
    pub crate_version: String,
    /// Backend it was trained on (resuming on another backend is allowed but not bit-exact).
    pub backend: crate::backend::Backend,
    /// Policy family of the network ([`Family::NAME`]); checkpoints from before families were
    /// named are TRIM-Agg.
    #[serde(default = "agg_name")]
    pub family: String,
    /// Run name (directory name under the output root).
    pub run_name: String,
    pub config: TrainConfig,
    /// sha256 of the dataset file; resuming on different data is refused.
    pub dataset_sha256: String,
    /// Problems held out for validation (forest indices), for the record and a resume check.
    pub val_problems: Vec<u32>,
    pub updates_done: u64,
    pub total_updates: u64,
    /// Current pass over the training problems (0-based).
    pub pass: u32,
    /// Problems of the current pass already used.
    pub pass_pos: usize,
    /// Problem order of the current pass.
    pub pass_order: Vec<u32>,
    /// State of the run's random generator.
    pub rng: [u64; 4],
    pub env_steps: u64,
    pub episodes: u64,
    /// Best greedy validation so far (the policy in `best/`).
    pub best: Option<EvalRecord>,
    /// Most recent greedy validation.
    pub last_val: Option<EvalRecord>,
}

impl TrainState {
    /// The run's generator at this point.
    pub fn rng(&self) -> Rng {
        Rng::from_state(self.rng)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| TrainError::io(path, e))?;
    f.write_all(bytes).map_err(|e| TrainError::io(path, e))?;
    f.sync_all().map_err(|e| TrainError::io(path, e))
}

/// Write a checkpoint of `model`, `optim` and `state` to `dir` (replacing it if present).
pub fn save<N: burn::module::Module>(
    dir: &Path,
    model: &N,
    optim: &ModuleOptimizer,
    fused_adam: Option<&[u8]>,
    state: &TrainState,
) -> Result<()> {
    let model_bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::checkpoint(dir, format!("cannot encode model: {e}")))?;
    let optim_bytes = optim
        .into_bytes()
        .map_err(|e| TrainError::checkpoint(dir, format!("cannot encode optimizer: {e}")))?;
    let state_bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| TrainError::checkpoint(dir, format!("cannot encode state: {e}")))?;
    let files = named_files(&model_bytes, &optim_bytes, &state_bytes, fused_adam);
    write_dir(dir, &files)
}

/// The files of a checkpoint by name (`fused_adam.bin` only when there is one).
fn named_files<'a>(
    model: &'a [u8],
    optim: &'a [u8],
    state: &'a [u8],
    fused_adam: Option<&'a [u8]>,
) -> Vec<(&'static str, &'a [u8])> {
    let mut files = vec![(FILES[0], model), (FILES[1], optim), (FILES[2], state)];
    files.extend(fused_adam.map(|b| (FUSED_ADAM, b)));
    files
}

/// Copy the checkpoint `from` to `to` (verified first; written like [`save`]), e.g. into a
/// forked run.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    let v = read_verified(from)?;
    let files = named_files(&v.model, &v.optim, &v.state, v.fused_adam.as_deref());
    write_dir(to, &files)
}

/// Write the files of a checkpoint into a temp directory next to `dir`, each synced, then
/// rename it into place (a present `dir` is moved aside first, then deleted).
fn write_dir(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| TrainError::checkpoint(dir, "not a directory name"))?;
    std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.tmp-{pid}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| -> Result<()> {
        std::fs::create_dir(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        let mut sums = String::new();
        for &(file, bytes) in files {
            write_synced(&tmp.join(file), bytes)?;
            sums.push_str(&format!("{}  {file}\n", sha256_hex(bytes)));
        }
        write_synced(&tmp.join(SUMS), sums.as_bytes())?;
        if dir.exists() {
            let old = parent.join(format!(".{name}.old-{pid}"));
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(dir, &old).map_err(|e| TrainError::io(dir, e))?;
            std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
        }
        // Make the rename itself durable.
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The verified bytes of a checkpoint's files.
struct Verified {
    model: Vec<u8>,
    optim: Vec<u8>,
    state: Vec<u8>,
    /// `fused_adam.bin`, when the checkpoint lists it.
    fused_adam: Option<Vec<u8>>,
}

fn read_verified(dir: &Path) -> Result<Verified> {
    let err = |r: String| TrainError::checkpoint(dir, r);
    if !dir.is_dir() {
        return Err(err("no such checkpoint directory".into()));
    }
    let sums_path = dir.join(SUMS);
    let sums = std::fs::read_to_string(&sums_path).map_err(|e| {
        err(format!(
            "cannot read {SUMS} ({e}): not a checkpoint, or an interrupted write"
        ))
    })?;
    let mut want = std::collections::HashMap::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, file) = line
            .split_once("  ")
            .ok_or_else(|| err(format!("{SUMS} is damaged: bad line `{line}`")))?;
        want.insert(file.to_string(), hash.to_string());
    }
    let read = |file: &str| -> Result<Vec<u8>> {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| err(format!("cannot read {file}: {e}")))?;
        let expected = want
            .get(file)
            .ok_or_else(|| err(format!("{SUMS} has no entry for {file} (damaged)")))?;
        let got = sha256_hex(&bytes);
        if &got != expected {
            return Err(err(format!(
                "{file} is damaged: its sha256 {got} does not match {SUMS} ({expected}); \
                 the file was truncated or modified — resume from another checkpoint"
            )));
        }
        Ok(bytes)
    };
    Ok(Verified {
        model: read(FILES[0])?,
        optim: read(FILES[1])?,
        state: read(FILES[2])?,
        fused_adam: match want.contains_key(FUSED_ADAM) {
            true => Some(read(FUSED_ADAM)?),
            false => None,
        },
    })
}

/// Read only the state of a checkpoint (verified).
pub fn load_state(dir: &Path) -> Result<TrainState> {
    let v = read_verified(dir)?;
    parse_state(dir, &v.state)
}

fn parse_state(dir: &Path, bytes: &[u8]) -> Result<TrainState> {
    let state: TrainState = serde_json::from_slice(bytes)
        .map_err(|e| TrainError::checkpoint(dir, format!("state.json: {e}")))?;
    if state.format != FORMAT || state.format_version != FORMAT_VERSION {
        return Err(TrainError::checkpoint(
            dir,
            format!(
                "format {} v{} is not {FORMAT} v{FORMAT_VERSION}",
                state.format, state.format_version
            ),
        ));
    }
    Ok(state)
}

fn agg_name() -> String {
    Agg::NAME.into()
}

/// A loaded checkpoint.
pub struct Loaded<N = ActorCritic> {
    pub model: N,
    pub optim: ModuleOptimizer,
    /// A fused run's Adam state (`fused_adam.bin`, verified, not yet parsed).
    pub fused_adam: Option<Vec<u8>>,
    pub state: TrainState,
}

/// Load a TRIM-Agg checkpoint (see [`load_as`]).
pub fn load(dir: &Path, device: &Device) -> Result<Loaded> {
    load_as::<Agg>(dir, device)
}

/// Load a checkpoint of family `F`: verify checksums and the family, then rebuild the model on
/// `device` and the optimizer.
pub fn load_as<F: Family>(dir: &Path, device: &Device) -> Result<Loaded<F::Net>> {
    let v = read_verified(dir)?;
    let state = parse_state(dir, &v.state)?;
    let model = load_model_bytes::<F>(dir, v.model, &state, device)?;
    let optim = optimizer(&state.config)
        .from_bytes(Bytes::from_bytes_vec(v.optim))
        .map_err(|e| TrainError::checkpoint(dir, format!("optim.bpk: {e}")))?;
    Ok(Loaded {
        model,
        optim,
        fused_adam: v.fused_adam,
        state,
    })
}

/// Load only the network of a TRIM-Agg checkpoint (verified), e.g. `best/` for evaluation.
pub fn load_model(dir: &Path, device: &Device) -> Result<(ActorCritic, TrainState)> {
    load_model_as::<Agg>(dir, device)
}

/// Load only the network of a checkpoint of family `F` (verified).
pub fn load_model_as<F: Family>(dir: &Path, device: &Device) -> Result<(F::Net, TrainState)> {
    let v = read_verified(dir)?;
    let state = parse_state(dir, &v.state)?;
    let model = load_model_bytes::<F>(dir, v.model, &state, device)?;
    Ok((model, state))
}

fn load_model_bytes<F: Family>(
    dir: &Path,
    bytes: Vec<u8>,
    state: &TrainState,
    device: &Device,
) -> Result<F::Net> {
    if state.family != F::NAME {
        return Err(TrainError::checkpoint(
            dir,
            format!(
                "a {} checkpoint, not a {} one (family mismatch)",
                state.family,
                F::NAME
            ),
        ));
    }
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| TrainError::checkpoint(dir, format!("model.bpk: {e}")))?;
    // The fresh weights are overwritten (values and parameter ids) by the record.
    F::init(&state.config, &mut Rng::new(0), device)
        .map_err(|e| TrainError::checkpoint(dir, e))?
        .try_load_record(record)
        .map_err(|e| TrainError::checkpoint(dir, format!("model.bpk: {e}")))
}

/// Periodic checkpoints of a run directory, oldest first: `(updates, path)`.
pub fn periodic(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(run_dir.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let n = name.strip_prefix("update_")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Directory name of the periodic checkpoint after `updates` updates.
pub fn periodic_name(updates: u64) -> String {
    format!("update_{updates:06}")
}
