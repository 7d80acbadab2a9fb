//! Training sweeps: a grid over any [`TrainConfig`] fields (typically λ × seed), each run in its
//! own run directory, trained in parallel on a rayon pool of a fixed size.
//!
//! Sweeps are restartable: before training, every run directory is *planned* — finished runs are
//! skipped, interrupted runs resume from their latest checkpoint (bit-identical to an
//! uninterrupted run, see `train_resume`), and a directory left before its first checkpoint is
//! started again in place (nothing in it deleted). A directory whose recorded configuration differs from the planned one is an
//! error rather than silently reused, so editing the grid cannot mix results.
//!
//! One PPO run is effectively single-threaded (small network, 64-episode batches), so `threads`
//! concurrent runs keep `threads` cores busy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Deserialize;

use crate::backend::Backend;
use crate::checkpoint;
use crate::config::{ConfigOverrides, TrainConfig};
use crate::run_dir::recorded_config;
use crate::train::{AnyTrainer, RunOptions, RunStatus, RunSummary};

/// A sweep: base configuration values and the grid, as in a sweep TOML file:
///
/// ```toml
/// [base]            # any `trim train` configuration field
/// passes = 10
/// [grid]            # every combination of these values is one run
/// lambda = [2e-4, 4e-4, 8e-4]
/// seed = [1, 2]
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Fixed configuration values of every run.
    #[serde(default)]
    pub base: toml::Table,
    /// Field → values; the runs are the cartesian product (in key order).
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
}

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Directory name, from the grid values (`lambda=0.0008__seed=1`).
    pub name: String,
    pub config: TrainConfig,
}

/// Parse a flag value as a TOML value (`8e-4`, `true`, `"x"`); bare words become strings.
pub fn parse_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// `key=v1,v2,…` (a grid axis or, with one value, a base setting).
pub fn parse_assignment(text: &str) -> anyhow::Result<(String, Vec<toml::Value>)> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("`{text}`: expected FIELD=VALUE[,VALUE…]"))?;
    let k = k.trim().replace('-', "_");
    anyhow::ensure!(
        TrainConfig::FIELDS.contains(&k.as_str()),
        "`{k}` is not a configuration field (fields: {})",
        TrainConfig::FIELDS.join(", ")
    );
    let vals: Vec<toml::Value> = v.split(',').map(|s| parse_value(s.trim())).collect();
    Ok((k, vals))
}

fn value_name(v: &toml::Value) -> String {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl SweepSpec {
    /// Parse a sweep TOML file's text.
    pub fn from_toml_str(text: &str) -> Result<SweepSpec, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Every run of the grid, configuration resolved and validated. `config_file` is an optional
    /// `trim train`-style TOML file applied before `base`.
    pub fn runs(&self, config_file: Option<&Path>) -> anyhow::Result<Vec<RunSpec>> {
        for k in self.base.keys().chain(self.grid.keys()) {
            anyhow::ensure!(
                TrainConfig::FIELDS.contains(&k.as_str()),
                "`{k}` is not a configuration field (fields: {})",
                TrainConfig::FIELDS.join(", ")
            );
        }
        for (k, v) in &self.grid {
            anyhow::ensure!(!v.is_empty(), "grid field `{k}` has no values");
        }
        let mut combos: Vec<Vec<(&String, &toml::Value)>> = vec![vec![]];
        for (k, vals) in &self.grid {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    vals.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((k, v));
                        c
                    })
                })
                .collect();
        }
        let mut runs = Vec::with_capacity(combos.len());
        for combo in combos {
            let mut table = self.base.clone();
            for (k, v) in &combo {
                table.insert((*k).clone(), (*v).clone());
            }
            let text = toml::to_string(&table)?;
            let o = ConfigOverrides::from_toml_str(&text)
                .map_err(|e| anyhow::anyhow!("sweep configuration: {e}"))?;
            let mut layers = vec![];
            if let Some(f) = config_file {
                layers.push(ConfigOverrides::from_toml_file(f)?);
            }
            layers.push(o);
            let cfg = TrainConfig::from_layers(&layers)?;
            let name = if combo.is_empty() {
                "base".to_string()
            } else {
                combo
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_name(v)))
                    .collect::<Vec<_>>()
                    .join("__")
            };
            runs.push(RunSpec { name, config: cfg });
        }
        let mut names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        anyhow::ensure!(
            names.len() == runs.len(),
            "two grid points give the same run name; make the values distinct"
        );
        Ok(runs)
    }
}

/// What to do with a run directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// No directory yet: start a run.
    New,
    /// Finished (`summary.json` says so): nothing to do.
    Skip,
    /// Interrupted after a checkpoint: continue from the latest one.
    Resume,
    /// Interrupted before its first checkpoint: start again in the same directory.
    Restart,
}

/// Decide what to do with `run_dir` for configuration `cfg`.
pub fn plan_run(run_dir: &Path, cfg: &TrainConfig) -> anyhow::Result<Plan> {
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

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Directory holding the run directories.
    pub runs_dir: PathBuf,
    /// Concurrent runs (the rayon pool size).
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
    pub run_dir: PathBuf,
    pub plan: Plan,
    /// The run's summary (read back for skipped runs), or the error.
    pub outcome: Result<RunSummary, String>,
}

fn run_one(r: &RunSpec, plan: &Plan, o: &SweepOptions) -> Result<RunSummary, String> {
    let run_dir = o.runs_dir.join(&r.name);
    let mut opts = RunOptions {
        out_root: o.runs_dir.clone(),
        name: Some(r.name.clone()),
        resume: None,
        stop_after_updates: o.stop_after_updates,
        backend: o.backend,
        command_line: o.command_line.clone(),
    };
    let trainer = match plan {
        Plan::Skip => return RunSummary::read(&run_dir).map_err(|e| e.to_string()),
        Plan::Resume => {
            opts.resume = Some(run_dir);
            AnyTrainer::resume(opts)
        }
        // A restart reuses the directory in place (Trainer::new checks it has no checkpoint).
        Plan::Restart | Plan::New => AnyTrainer::new(r.config.clone(), opts),
    };
    trainer.and_then(AnyTrainer::run).map_err(|e| e.to_string())
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
    let plans: Vec<Plan> = runs
        .iter()
        .map(|r| plan_run(&o.runs_dir.join(&r.name), &r.config))
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
                    let (Some(r), Some(plan)) = (runs.get(i), plans.get(i)) else {
                        break;
                    };
                    on_event(Event::Start { run: &r.name, plan });
                    let t0 = Instant::now();
                    let outcome = pool.install(|| run_one(r, plan, o));
                    match &outcome {
                        Ok(summary) => on_event(Event::Done {
                            run: &r.name,
                            plan,
                            summary,
                            seconds: t0.elapsed().as_secs_f64(),
                        }),
                        Err(e) => on_event(Event::Failed {
                            run: &r.name,
                            error: e,
                        }),
                    }
                    let res = RunResult {
                        name: r.name.clone(),
                        run_dir: o.runs_dir.join(&r.name),
                        plan: plan.clone(),
                        outcome,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_cartesian_product_with_stable_names() {
        let spec = SweepSpec::from_toml_str(
            "[base]\npasses = 2\n[grid]\nlambda = [1e-4, 8e-4]\nseed = [1, 2, 3]\n",
        )
        .unwrap();
        let runs = spec.runs(None).unwrap();
        assert_eq!(runs.len(), 6);
        assert_eq!(runs[0].name, "lambda=0.0001__seed=1");
        assert_eq!(runs[5].name, "lambda=0.0008__seed=3");
        assert!(runs.iter().all(|r| r.config.passes == 2));
        assert_eq!(runs[4].config.lambda, 8e-4);
        assert_eq!(runs[4].config.seed, 2);
    }

    #[test]
    fn bad_fields_and_values_are_refused() {
        let spec = SweepSpec::from_toml_str("[grid]\nlamda = [1e-4]\n").unwrap();
        assert!(format!("{}", spec.runs(None).unwrap_err()).contains("lamda"));
        let spec = SweepSpec::from_toml_str("[grid]\nseed = [\"x\"]\n").unwrap();
        assert!(spec.runs(None).is_err());
        let spec = SweepSpec::from_toml_str("[grid]\nlambda = []\n").unwrap();
        assert!(spec.runs(None).is_err());
        assert!(parse_assignment("nope=1").is_err());
        assert!(parse_assignment("lambda").is_err());
    }

    #[test]
    fn flag_values_parse_as_toml() {
        let (k, v) = parse_assignment("val-every=5,10").unwrap();
        assert_eq!(k, "val_every");
        assert_eq!(v, vec![toml::Value::Integer(5), toml::Value::Integer(10)]);
        assert_eq!(parse_value("8e-4"), toml::Value::Float(8e-4));
        assert_eq!(
            parse_value("data/x.parquet"),
            toml::Value::String("data/x.parquet".into())
        );
    }
}
