//! A TRIM-POMDP run directory (`trim pomdp solve --out DIR` writes one per λ, `DIR/lambda=<λ>/`),
//! read by `trim report --runs` and `trim export --pomdp`:
//!
//! | file | content |
//! |---|---|
//! | `solution.json` | model, λ, grid and continuation table, with its sha256 line |
//! | `model.json` | the model and its provenance (source, data, fingerprint, split), with its sha256 line |
//! | `config.json` | how it was solved: model spec, λ, grid step, trim version, git revision, solve time |
//! | `summary.json` | present when solved with `--data`: the evaluation under each belief rule |
//!
//! The directory is built under a temporary name and renamed into place, so a run directory
//! either is complete or does not exist; an existing one is never touched.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use trim_pomdp::model_file::{ModelSource, model_from_json, model_to_json};
use trim_pomdp::{PomdpModel, Solution};

/// The solution file of a run directory.
pub const SOLUTION: &str = "solution.json";
/// The model file of a run directory.
pub const MODEL: &str = "model.json";
/// The solve configuration of a run directory.
pub const CONFIG: &str = "config.json";
/// The evaluation of a run directory (optional).
pub const SUMMARY: &str = "summary.json";

/// How a run was solved (`config.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SolveConfig {
    pub command: String,
    /// The `--model` argument.
    pub model: String,
    pub lambda: f64,
    pub grid_step: f64,
    pub grid_divisions: usize,
    pub trim_version: String,
    pub git_revision: String,
    /// Wall time of solving every λ of the command, divided by their number.
    pub solve_seconds_per_lambda: f64,
}

/// One evaluated belief rule (`summary.json` rows).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleSummary {
    pub belief_rule: String,
    pub data: String,
    pub split: String,
    pub problems: usize,
    pub accuracy: f64,
    pub cost_fraction: f64,
    pub strong_calls: f64,
    pub reward: f64,
}

/// A run directory read back and verified.
pub struct PomdpRun {
    pub dir: PathBuf,
    pub solution: Solution,
    pub model: PomdpModel,
    pub source: ModelSource,
    pub config: SolveConfig,
    /// `summary.json`, if the run was evaluated.
    pub summary: Option<Vec<RuleSummary>>,
}

/// Does `dir` look like a POMDP run directory?
pub fn is_pomdp_run(dir: &Path) -> bool {
    dir.join(SOLUTION).is_file() && dir.join(MODEL).is_file()
}

/// The directory name of λ's run.
pub fn run_name(lambda: f64) -> String {
    format!("lambda={lambda:e}")
}

/// Everything one run directory holds.
pub struct RunContents<'a> {
    pub solution: &'a Solution,
    pub model: &'a PomdpModel,
    pub source: &'a ModelSource,
    pub config: &'a SolveConfig,
    pub summary: Option<&'a [RuleSummary]>,
}

/// Write `out/lambda=<λ>/` atomically; refuse if it exists.
pub fn write_run(out: &Path, c: &RunContents<'_>) -> anyhow::Result<PathBuf> {
    let dir = out.join(run_name(c.solution.lambda));
    anyhow::ensure!(
        std::fs::symlink_metadata(&dir).is_err(),
        "{} exists; pick another --out (run directories are never overwritten)",
        dir.display()
    );
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let tmp = out.join(format!(
        ".{}.tmp-{}",
        run_name(c.solution.lambda),
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .map_err(|e| anyhow::anyhow!("cannot clear {}: {e}", tmp.display()))?;
    }
    std::fs::create_dir(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
    let mut files = vec![
        (SOLUTION, c.solution.to_json(c.model)),
        (MODEL, model_to_json(c.model, c.source)),
        (CONFIG, serde_json::to_string_pretty(c.config)? + "\n"),
    ];
    if let Some(s) = c.summary {
        files.push((SUMMARY, serde_json::to_string_pretty(s)? + "\n"));
    }
    for (name, text) in files {
        trim_data::io::write_text_atomic(&tmp.join(name), &text)?;
    }
    std::fs::rename(&tmp, &dir)
        .map_err(|e| anyhow::anyhow!("cannot move {} to {}: {e}", tmp.display(), dir.display()))?;
    Ok(dir)
}

/// Read and verify a run directory: both checksummed files, and that the solution was solved
/// for the model recorded beside it.
pub fn read_run(dir: &Path) -> anyhow::Result<PomdpRun> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
    };
    let (solution, model) = Solution::from_json(&read(SOLUTION)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(SOLUTION).display()))?;
    let (recorded, source) = model_from_json(&read(MODEL)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(MODEL).display()))?;
    anyhow::ensure!(
        recorded == model,
        "{}: the model differs from the one in {SOLUTION}: the directory mixes two runs",
        dir.join(MODEL).display()
    );
    let config: SolveConfig = serde_json::from_str(&read(CONFIG)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(CONFIG).display()))?;
    let summary = match dir.join(SUMMARY).is_file() {
        true => Some(
            serde_json::from_str(&read(SUMMARY)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(SUMMARY).display()))?,
        ),
        false => None,
    };
    Ok(PomdpRun {
        dir: dir.to_path_buf(),
        solution,
        model,
        source,
        config,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run directory reads back as written; a damaged or mixed-up file is refused naming it,
    /// and an existing run directory is never overwritten.
    #[test]
    fn run_directories_round_trip_and_damage_is_named() {
        let dir = std::env::temp_dir().join(format!("trim-pomdp-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (model, source) = crate::pomdp_models::official_math_train().unwrap();
        let sols = trim_pomdp::solve(&model, 8, &[4e-4, 2e-3]).unwrap();
        let config = |l: f64| SolveConfig {
            command: "test".into(),
            model: "official".into(),
            lambda: l,
            grid_step: 0.125,
            grid_divisions: 8,
            trim_version: "test".into(),
            git_revision: "test".into(),
            solve_seconds_per_lambda: 0.0,
        };
        let mut dirs = vec![];
        for sol in &sols {
            let c = config(sol.lambda);
            let contents = RunContents {
                solution: sol,
                model: &model,
                source: &source,
                config: &c,
                summary: None,
            };
            dirs.push(write_run(&dir, &contents).unwrap());
            let e = write_run(&dir, &contents).unwrap_err().to_string();
            assert!(e.contains("never overwritten"), "{e}");
        }
        let run = read_run(&dirs[0]).unwrap();
        assert_eq!(run.solution.lambda, 4e-4);
        assert!(run.model == model && run.source == source && run.summary.is_none());
        // A solution of the same model at another λ is consistent with model.json.
        std::fs::copy(dirs[1].join(SOLUTION), dirs[0].join(SOLUTION)).unwrap();
        assert!(read_run(&dirs[0]).is_ok());
        for (file, text) in [
            (MODEL, "{\"format\": \"trim-pomdp-model/1\"}\n"),
            (SOLUTION, "truncated"),
            (CONFIG, "{"),
            (SUMMARY, "[{\"belief_rule\": 3}]"),
        ] {
            let d = dir.join(format!("copy-{file}"));
            std::fs::create_dir_all(&d).unwrap();
            for f in [SOLUTION, MODEL, CONFIG] {
                std::fs::copy(dirs[1].join(f), d.join(f)).unwrap();
            }
            std::fs::write(d.join(file), text).unwrap();
            let e = read_run(&d).err().expect("refused").to_string();
            assert!(
                e.contains(file) || file == MODEL && e.contains("model"),
                "{file}: {e}"
            );
        }
    }
}
