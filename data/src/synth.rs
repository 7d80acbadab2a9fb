//! `trim data synth`: synthetic rollout trees from the latent model.
//!
//! A [`SynthConfig`] (TOML; the shipped one is `data/synth/math-qwen2.5.toml`) holds every
//! parameter. [`generate`] calibrates the [`LatentModel`] to the configured always-weak /
//! always-strong accuracies, then writes `trees` independent sample trees per problem, each with
//! every action history of at most `max_regens` regenerations plus the full all-strong path.
//! Problems are generated in parallel from RNG streams `(seed, problem)` and assembled in order,
//! so the output depends only on the config. The metadata records what is real (calibration
//! inputs), what is synthetic (everything else), the sources with sha256, the resolved config,
//! the solved calibration and the command line. See `data/docs/synth.md`.
//!
//! [`derive_step_tokens`] rebuilds `data/calibration/step_tokens.json` (real per-generator step
//! lengths) from ProcessBench.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use trim_env::Rng;

use crate::build::DatasetBuilder;
use crate::error::{DataError, Loc, Result};
use crate::import::processbench::{PROCESSBENCH_ORIGIN, read_subset};
use crate::io::sha256_file;
use crate::latent::{
    Calibration, HAZARD_ORIGIN, Hazard, LatentConfig, LatentModel, MAX_REGENS_LIMIT,
    STEP_TOKENS_JSON, STRONG_HAZARD_JSON, StepTokenLists, StepTokensFile, WEAK_HAZARD_JSON,
    sha256_text,
};
use crate::obs_model::{MATH_TRAIN_JSON, MATH_TRAIN_ORIGIN, ObsModel};
use crate::schema::{Dataset, Meta, NodeRow, ProblemInfo, SourceRef};
use crate::tokenizer::{TOKENIZER_NAME, TokenCounter};

/// The shipped config, embedded so the binary runs from any directory.
pub const SHIPPED_CONFIG_TOML: &str = include_str!("../synth/math-qwen2.5.toml");
/// Where the shipped config lives in the repository.
pub const SHIPPED_CONFIG_PATH: &str = "data/synth/math-qwen2.5.toml";
/// Weak model on MATH-train: per-step statistics behind the accuracy target (provenance only).
pub const WEAK_TRANSITIONS_JSON: &str = include_str!(
    "../calibration/trim_official/math_train_qwen2.5-1.5b-instruct_transition_params.json"
);
/// Strong model on MATH-train: per-step statistics behind the accuracy target (provenance only).
pub const STRONG_TRANSITIONS_JSON: &str = include_str!(
    "../calibration/trim_official/math_train_qwen2.5-7b-instruct_transition_params.json"
);
/// Where `step_tokens.json` lives in the repository.
pub const STEP_TOKENS_PATH: &str = "data/calibration/step_tokens.json";
/// ProcessBench generators whose steps give the weak role's lengths.
pub const STEP_TOKENS_WEAK_GENERATORS: [&str; 2] = ["Qwen2.5-1.5B-Instruct", "Qwen2-1.5B-Instruct"];
/// ProcessBench generators whose steps give the strong role's lengths.
pub const STEP_TOKENS_STRONG_GENERATORS: [&str; 1] = ["Qwen2.5-7B-Instruct"];
/// ProcessBench subsets the step lengths come from (MATH, like the calibration).
pub const STEP_TOKENS_SUBSETS: [&str; 1] = ["math"];

/// Model names written into every problem row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelNames {
    pub weak: String,
    pub strong: String,
    pub prm: String,
}

/// Optional replacements for the vendored calibration inputs (None = the vendored copy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputPaths {
    /// TRIM terminal-predictor JSON for weak steps.
    pub weak_hazard: Option<PathBuf>,
    /// TRIM terminal-predictor JSON for strong steps.
    pub strong_hazard: Option<PathBuf>,
    /// Step-token lists in the `step_tokens.json` format.
    pub step_tokens: Option<PathBuf>,
    /// TRIM observation-model JSON (`*_obs_distributions_*.json`).
    pub obs_model: Option<PathBuf>,
}

/// Everything `trim data synth` needs; the TOML file mirrors it field by field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Dataset name (metadata).
    pub name: String,
    /// `dataset` column of every problem.
    pub dataset: String,
    /// Number of problems.
    pub problems: u32,
    /// Base seed; problem `p` uses the stream `(seed, p)`.
    pub seed: u64,
    /// Independent sample trees per problem.
    pub trees: u32,
    /// K: at most this many regenerations on a path (the all-strong path is always complete).
    pub max_regens: u32,
    /// Probability that a problem goes to the `test` split (else `train`).
    pub test_fraction: f64,
    /// Output file (.parquet or .jsonl).
    pub out: PathBuf,
    /// Model names for the rows.
    pub models: ModelNames,
    /// The latent model.
    pub latent: LatentConfig,
    /// Replacements for vendored inputs.
    #[serde(default)]
    pub inputs: InputPaths,
}

impl Default for SynthConfig {
    /// The shipped config's values (`data/synth/math-qwen2.5.toml`; a test keeps them equal).
    fn default() -> Self {
        SynthConfig {
            name: "synth-math-qwen2.5".into(),
            dataset: "synthetic/math-qwen2.5".into(),
            problems: 2000,
            seed: 20260110,
            trees: 1,
            max_regens: 2,
            test_fraction: 0.1,
            out: PathBuf::from("data/sets/synth-math.parquet"),
            models: ModelNames {
                weak: "synthetic: latent model calibrated to Qwen2.5-1.5B-Instruct (MATH-train)"
                    .into(),
                strong: "synthetic: latent model calibrated to Qwen2.5-7B-Instruct (MATH-train)"
                    .into(),
                prm: "synthetic: Qwen2.5-Math-PRM-7B via the TRIM observation model (by state)"
                    .into(),
            },
            latent: LatentConfig::default(),
            inputs: InputPaths::default(),
        }
    }
}

impl SynthConfig {
    /// Parse TOML text (`path` names it in errors) and check every value.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self> {
        let cfg: SynthConfig = toml::from_str(text)
            .map_err(|e| DataError::file(path, format!("bad synth config: {e}")))?;
        cfg.check(path)?;
        Ok(cfg)
    }

    /// Read and parse a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
        Self::from_toml(path, &text)
    }

    /// The shipped config.
    pub fn shipped() -> Self {
        Self::from_toml(Path::new(SHIPPED_CONFIG_PATH), SHIPPED_CONFIG_TOML)
            .expect("shipped synth config is valid")
    }

    /// Range checks (also run after CLI overrides).
    pub fn check(&self, path: &Path) -> Result<()> {
        let bad =
            |field: &str, reason: String| Err(DataError::new(path, Loc::File, Some(field), reason));
        if self.problems == 0 {
            return bad("problems", "must be at least 1".into());
        }
        if self.trees == 0 {
            return bad("trees", "must be at least 1".into());
        }
        if self.max_regens > MAX_REGENS_LIMIT {
            return bad(
                "max_regens",
                format!(
                    "{} exceeds {MAX_REGENS_LIMIT}: a tree has about depth^K nodes (180 for \
                     K = 2, 600 for K = 3, tens of thousands beyond 6)",
                    self.max_regens
                ),
            );
        }
        if !(0.0..1.0).contains(&self.test_fraction) {
            return bad(
                "test_fraction",
                format!("{} outside [0, 1)", self.test_fraction),
            );
        }
        self.latent.check(path, "latent.")
    }
}

/// Load the latent model from the config's inputs (vendored copies unless replaced) and
/// describe those inputs for the metadata.
pub fn load_model(
    latent: &LatentConfig,
    inputs: &InputPaths,
    cfg_path: &Path,
) -> Result<(LatentModel, Vec<SourceRef>)> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| DataError::file(p, format!("cannot read: {e}")))
    };
    let mut sources = vec![];
    let mut src = |name: &str, origin: &str, text: &str, over: &Option<PathBuf>| {
        sources.push(SourceRef {
            name: over
                .as_ref()
                .map_or(name.to_string(), |p| p.display().to_string()),
            origin: if over.is_some() {
                "user-supplied replacement".into()
            } else {
                origin.into()
            },
            sha256: Some(sha256_text(text)),
        });
    };
    let load = |over: &Option<PathBuf>, embedded: &'static str| -> Result<(String, PathBuf)> {
        Ok(match over {
            Some(p) => (read(p)?, p.clone()),
            None => (embedded.to_string(), PathBuf::from("<embedded>")),
        })
    };
    let (t, p) = load(&inputs.weak_hazard, WEAK_HAZARD_JSON)?;
    let weak = Hazard::from_json(&p, &t)?;
    src(
        "data/calibration/trim_official/math_train_terminal_predictor_slm.json",
        HAZARD_ORIGIN,
        &t,
        &inputs.weak_hazard,
    );
    let (t, p) = load(&inputs.strong_hazard, STRONG_HAZARD_JSON)?;
    let strong = Hazard::from_json(&p, &t)?;
    src(
        "data/calibration/trim_official/math_train_terminal_predictor_llm.json",
        HAZARD_ORIGIN,
        &t,
        &inputs.strong_hazard,
    );
    let (t, p) = load(&inputs.step_tokens, STEP_TOKENS_JSON)?;
    let tokens = StepTokensFile::from_json(&p, &t)?;
    src(
        STEP_TOKENS_PATH,
        "real ProcessBench step lengths (cl100k), see data/calibration/SOURCE.md",
        &t,
        &inputs.step_tokens,
    );
    let (t, p) = load(&inputs.obs_model, MATH_TRAIN_JSON)?;
    let obs = ObsModel::from_json(&p, &t)?;
    src(
        "data/calibration/trim_official/math-train_obs_distributions_bin_size_0.05.json",
        MATH_TRAIN_ORIGIN,
        &t,
        &inputs.obs_model,
    );
    // The step-token lists' own inputs (ProcessBench files) are sources too.
    sources.extend(tokens.sources.iter().cloned());
    let model = LatentModel::new(latent.clone(), weak, strong, tokens, obs, cfg_path)?;
    Ok((model, sources))
}

/// Counts and calibration of a generated dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthReport {
    pub problems: usize,
    pub test_problems: usize,
    pub trees: usize,
    pub nodes: usize,
    pub calibration: Calibration,
}

/// Generate the dataset `cfg` describes (`cfg_path` names the config in errors; `command` is
/// recorded as the command that regenerates it).
pub fn generate(
    cfg: &SynthConfig,
    cfg_path: &Path,
    command: &str,
) -> Result<(Dataset, SynthReport)> {
    generate_with_progress(cfg, cfg_path, command, &|| {})
}

/// [`generate`], calling `on_problem` once per finished problem (from worker threads) so a
/// front end can show progress without this crate knowing about terminals.
pub fn generate_with_progress(
    cfg: &SynthConfig,
    cfg_path: &Path,
    command: &str,
    on_problem: &(dyn Fn() + Sync),
) -> Result<(Dataset, SynthReport)> {
    cfg.check(cfg_path)?;
    let (model, mut sources) = load_model(&cfg.latent, &cfg.inputs, cfg_path)?;
    let built: Vec<(ProblemInfo, Vec<NodeRow>)> = (0..cfg.problems)
        .into_par_iter()
        .map(|p| {
            let mut rng = Rng::stream(cfg.seed, u64::from(p));
            let test = rng.bernoulli(cfg.test_fraction);
            let d = model.sample_difficulty(&mut rng);
            let info = ProblemInfo {
                problem_id: format!("synth-{p:06}"),
                dataset: cfg.dataset.clone(),
                split: if test { "test" } else { "train" }.into(),
                weak_model: cfg.models.weak.clone(),
                strong_model: cfg.models.strong.clone(),
                prm_model: cfg.models.prm.clone(),
            };
            let mut b = DatasetBuilder::new(Meta::new(""));
            let pi = b.add_problem(info.clone());
            for _ in 0..cfg.trees {
                let mut w = b.tree(pi);
                model.expand_tree(&mut w, &d, cfg.max_regens, &[], &mut rng);
            }
            on_problem();
            (info, b.finish().rows)
        })
        .collect();
    let mut problems = Vec::with_capacity(built.len());
    let mut rows = vec![];
    for (p, (info, mut r)) in built.into_iter().enumerate() {
        for row in &mut r {
            row.problem = p as u32;
        }
        rows.append(&mut r);
        problems.push(info);
    }
    let report = SynthReport {
        problems: problems.len(),
        test_problems: problems.iter().filter(|p| p.split == "test").count(),
        trees: problems.len() * cfg.trees as usize,
        nodes: rows.len(),
        calibration: model.calibration,
    };

    let mut meta = Meta::new(cfg.name.clone());
    meta.description = format!(
        "Synthetic rollout trees from the latent step-correctness model (TRIM-POMDP states \
         S0/S1/S2), calibrated so that always-weak / always-strong accuracies are {:.4} / {:.4} \
         (Qwen2.5-1.5B / 7B-Instruct on MATH-train); {} problems x {} sample trees, at most {} \
         regenerations per path plus the complete all-strong path.",
        cfg.latent.target_weak_accuracy,
        cfg.latent.target_strong_accuracy,
        cfg.problems,
        cfg.trees,
        cfg.max_regens
    );
    meta.real = vec![
        "accuracy targets: Qwen2.5-1.5B-Instruct 2819/7500 and Qwen2.5-7B-Instruct 5785/7500 \
         correct on MATH-train (official TRIM transition statistics)"
            .into(),
        "solution-length hazards: official TRIM terminal predictors (weak and strong)".into(),
        "PRM observation model: official TRIM Qwen2.5-Math-PRM-7B distributions per state, \
         fitted on ProcessBench human labels"
            .into(),
        "step token counts: cl100k counts of real ProcessBench steps by Qwen2.5/Qwen2-1.5B \
         (weak) and Qwen2.5-7B (strong) on MATH"
            .into(),
    ];
    meta.synthetic = vec![
        "every tree: latent correctness states, step lengths, finish flags, outcomes, PRM \
         scores (drawn from the observation model given state and running minimum) and token \
         counts (drawn from the real step lengths)"
            .into(),
        "per-problem difficulty z ~ N(0,1) shared by both models; per-step accuracies solved by \
         bisection to match the accuracy targets"
            .into(),
    ];
    meta.tokenizer = TOKENIZER_NAME.into();
    sources.push(SourceRef {
        name:
            "data/calibration/trim_official/math_train_qwen2.5-1.5b-instruct_transition_params.json"
                .into(),
        origin: "TRIM release 5ec6323 (accuracy target 2819/7500)".into(),
        sha256: Some(sha256_text(WEAK_TRANSITIONS_JSON)),
    });
    sources.push(SourceRef {
        name:
            "data/calibration/trim_official/math_train_qwen2.5-7b-instruct_transition_params.json"
                .into(),
        origin: "TRIM release 5ec6323 (accuracy target 5785/7500)".into(),
        sha256: Some(sha256_text(STRONG_TRANSITIONS_JSON)),
    });
    meta.sources = sources;
    meta.command = command.to_string();
    meta.params = serde_json::json!({
        "config": cfg,
        "calibration": model.calibration,
        "report": {
            "problems": report.problems,
            "test_problems": report.test_problems,
            "trees": report.trees,
            "nodes": report.nodes,
        },
    });
    Ok((Dataset::new(meta, problems, rows), report))
}

/// Rebuild the step-token lists from ProcessBench (`raw` holds `math.json`).
pub fn derive_step_tokens(raw: &Path, command: &str) -> Result<StepTokensFile> {
    let counter = TokenCounter::new();
    let mut sources = vec![];
    let lists = |gens: &[&str]| -> Result<StepTokenLists> {
        let mut l = StepTokenLists {
            generators: gens.iter().map(|g| g.to_string()).collect(),
            subsets: STEP_TOKENS_SUBSETS.iter().map(|s| s.to_string()).collect(),
            solutions: 0,
            nonfinal: vec![],
            last: vec![],
        };
        for s in STEP_TOKENS_SUBSETS {
            let path = raw.join(format!("{s}.json"));
            for sol in read_subset(&path)? {
                if !gens.contains(&sol.generator.as_str()) {
                    continue;
                }
                l.solutions += 1;
                let n = sol.steps.len();
                for (t, step) in sol.steps.iter().enumerate() {
                    let tok = counter.count(step);
                    if t + 1 == n {
                        l.last.push(tok);
                    } else {
                        l.nonfinal.push(tok);
                    }
                }
            }
        }
        if l.solutions == 0 {
            return Err(DataError::file(
                raw,
                format!("no ProcessBench solution by {}", gens.join(" or ")),
            ));
        }
        Ok(l)
    };
    let weak = lists(&STEP_TOKENS_WEAK_GENERATORS)?;
    let strong = lists(&STEP_TOKENS_STRONG_GENERATORS)?;
    for s in STEP_TOKENS_SUBSETS {
        let path = raw.join(format!("{s}.json"));
        sources.push(SourceRef {
            name: format!("processbench/{s}.json"),
            origin: format!("{PROCESSBENCH_ORIGIN}{s}.json"),
            sha256: Some(sha256_file(&path)?),
        });
    }
    Ok(StepTokensFile {
        description: "Token counts of real ProcessBench solution steps, per model role: `weak` \
                      from Qwen2.5-1.5B-Instruct and Qwen2-1.5B-Instruct, `strong` from \
                      Qwen2.5-7B-Instruct, MATH subset; `final` holds each solution's last step \
                      (the one with the answer), `nonfinal` the others. ProcessBench steps are \
                      paragraph-level re-segmentations of the generators' outputs."
            .into(),
        tokenizer: TOKENIZER_NAME.into(),
        sources,
        command: command.to_string(),
        weak,
        strong,
    })
}

/// Write `step_tokens.json` atomically (compact lists).
pub fn write_step_tokens(path: &Path, f: &StepTokensFile) -> Result<()> {
    let v = serde_json::to_value(f).map_err(|e| DataError::file(path, e.to_string()))?;
    crate::io::write_text_atomic(path, &compact_json(&v))
}

/// Pretty JSON that keeps lists of numbers on wrapped lines and flat records on one line each,
/// so vendored calibration files stay small and diffable.
pub fn compact_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, 0);
    out.push('\n');
    out
}

fn is_scalar(v: &Value) -> bool {
    !v.is_array() && !v.is_object()
}

fn write_json(out: &mut String, v: &Value, indent: usize) {
    let pad = |n: usize| " ".repeat(n);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str("{\n");
            for (i, (k, x)) in m.iter().enumerate() {
                out.push_str(&pad(indent + 2));
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_json(out, x, indent + 2);
                if i + 1 < m.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() && a.iter().all(is_scalar) => {
            out.push_str("[\n");
            let mut line = pad(indent + 2);
            for (i, x) in a.iter().enumerate() {
                let item = x.to_string();
                if line.len() + item.len() > 100 && !line.trim().is_empty() {
                    out.push_str(line.trim_end());
                    out.push('\n');
                    line = pad(indent + 2);
                }
                line.push_str(&item);
                if i + 1 < a.len() {
                    line.push_str(", ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Array(a) if !a.is_empty() => {
            let flat = a
                .iter()
                .all(|x| x.as_object().is_some_and(|m| m.values().all(is_scalar)));
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad(indent + 2));
                if flat {
                    out.push_str(&x.to_string());
                } else {
                    write_json(out, x, indent + 2);
                }
                if i + 1 < a.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        _ => out.push_str(&v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trim_env::{EvalOptions, RefPolicy, evaluate, summarize};

    fn small(problems: u32, max_regens: u32, trees: u32) -> SynthConfig {
        SynthConfig {
            problems,
            max_regens,
            trees,
            ..SynthConfig::shipped()
        }
    }

    #[test]
    fn shipped_config_parses_and_repeats_the_defaults() {
        let c = SynthConfig::shipped();
        assert_eq!(c, SynthConfig::default());
        assert_eq!(c.latent, LatentConfig::default());
        assert!(c.problems >= 2000);
        assert_eq!(c.inputs, InputPaths::default());
        // The accuracy targets are the official counts of final-correct solutions.
        for (json, target) in [
            (WEAK_TRANSITIONS_JSON, c.latent.target_weak_accuracy),
            (STRONG_TRANSITIONS_JSON, c.latent.target_strong_accuracy),
        ] {
            let v: Value = serde_json::from_str(json).unwrap();
            let ok = v["correct_steps"].as_array().unwrap().len() as f64;
            let bad = v["incorrect_steps"].as_array().unwrap().len() as f64;
            assert!((ok / (ok + bad) - target).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let p = Path::new("c.toml");
        let text = SHIPPED_CONFIG_TOML.replace("test_fraction = 0.1", "test_fraction = 1.5");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("test_fraction"), "{e}");
        let text = format!("{SHIPPED_CONFIG_TOML}\nbogus = 1\n");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let text = SHIPPED_CONFIG_TOML.replace("max_regens = 2", "max_regens = 9");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("max_regens"), "{e}");
        let text = SHIPPED_CONFIG_TOML.replace("q_err = 0.05", "q_err = 2.0");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("latent.q_err"), "{e}");
    }

    #[test]
    fn deterministic_by_seed() {
        let cfg = small(40, 1, 2);
        let (a, _) = generate(&cfg, Path::new("<t>"), "cmd").unwrap();
        let (b, _) = generate(&cfg, Path::new("<t>"), "cmd").unwrap();
        assert_eq!(a, b);
        let (c, _) = generate(
            &SynthConfig {
                seed: 7,
                ..cfg.clone()
            },
            Path::new("<t>"),
            "cmd",
        )
        .unwrap();
        assert_ne!(a.rows, c.rows);
        // Problems are prefix-stable: more problems keep the first ones unchanged.
        let (d, _) = generate(&small(50, 1, 2), Path::new("<t>"), "cmd").unwrap();
        let n = a.rows.len();
        assert_eq!(a.rows[..], d.rows[..n]);
    }

    #[test]
    fn generated_dataset_matches_the_calibration_targets() {
        // K = 0 keeps the trees small; the anchors need only the all-weak / all-strong paths.
        let cfg = SynthConfig {
            test_fraction: 0.0,
            ..small(6000, 0, 1)
        };
        let (ds, rep) = generate(&cfg, Path::new("<t>"), "cmd").unwrap();
        assert_eq!(rep.test_problems, 0);
        let l = crate::validate(Path::new("<mem>"), ds).unwrap();
        let probs = l.problems_in_split("all");
        let run = |p: RefPolicy| {
            let o = evaluate(&l.forest, &probs, &p, EvalOptions::default()).unwrap();
            summarize(&o, 0.0, 0.0)
        };
        let (w, s) = (run(RefPolicy::Weak), run(RefPolicy::Strong));
        assert!((w.accuracy - 0.3759).abs() < 0.025, "{w:?}");
        assert!((s.accuracy - 0.7713).abs() < 0.025, "{s:?}");
        assert!((w.steps - 7.8).abs() < 0.5, "{w:?}");
        assert!((s.steps - 8.7).abs() < 0.5, "{s:?}");
        assert!(s.strong_tokens > 300.0 && w.strong_tokens == 0.0);
    }

    #[test]
    fn metadata_records_provenance() {
        let (ds, _) = generate(&small(5, 1, 1), Path::new("<t>"), "trim data synth").unwrap();
        let m = &ds.meta;
        assert_eq!(m.command, "trim data synth");
        assert_eq!(m.tokenizer, TOKENIZER_NAME);
        assert!(!m.real.is_empty() && !m.synthetic.is_empty());
        assert!(
            m.sources
                .iter()
                .all(|s| s.sha256.as_ref().is_some_and(|h| h.len() == 64))
        );
        assert!(m.sources.iter().any(|s| s.name == "processbench/math.json"));
        assert_eq!(m.params["config"]["max_regens"], 1);
        assert!(m.params["calibration"]["weak"]["logit"].is_number());
    }

    #[test]
    fn vendored_step_tokens_are_real_lists() {
        let t = StepTokensFile::vendored();
        assert!(t.weak.solutions >= 100 && t.strong.solutions >= 80, "{t:?}");
        assert_eq!(t.weak.last.len(), t.weak.solutions);
        assert!(t.weak.mean() > 20.0 && t.weak.mean() < 200.0);
        assert_eq!(t.tokenizer, TOKENIZER_NAME);
    }

    #[test]
    fn compact_json_round_trips() {
        let v = serde_json::json!({"a": [1, 2, 3], "b": [{"x": 1}, {"x": 2}], "c": {"d": "e"}});
        let s = compact_json(&v);
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
        assert!(s.contains("{\"x\":1}"));
    }
}
