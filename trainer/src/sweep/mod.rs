//! Training sweeps: a grid over any [`TrainConfig`] fields (typically λ × seed), each run in its
//! own run directory. This module is the one source of truth for the grid — expansion and run
//! names ([`SweepSpec::runs`]); [`plan`] decides what each run needs (skip, resume, restart,
//! start) and where it lives (staged under `runs/.partial/` until finished, then renamed into
//! place); [`exec`] trains runs — many on one machine's cores ([`run_sweep`]), or exactly one
//! ([`run_single`], what a Ray task or a Slurm array index executes) — and [`slurm`] renders a
//! job array. Local, Ray and Slurm sweeps therefore run the same runs with the same rules.
//!
//! Sweeps are restartable: finished runs are skipped, interrupted runs resume from their latest
//! checkpoint (bit-identical to an uninterrupted run, see `train_resume`), and a directory left
//! before its first checkpoint is started again in place (nothing in it deleted). A directory
//! whose recorded configuration differs from the planned one is an error rather than silently
//! reused, so editing the grid cannot mix results.

pub mod exec;
pub mod plan;
pub mod slurm;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::{ConfigOverrides, TrainConfig};

pub use exec::{Event, RunResult, SweepOptions, run_single, run_sweep};
pub use plan::{Placement, Plan, plan_dir, plan_run};

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
