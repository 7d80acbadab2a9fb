//! `trim data synth`: synthetic rollout trees from the calibrated latent model.
//!
//! [`generate`] calibrates the [`LatentModel`] to the configured always-weak / always-strong
//! accuracies, then writes `trees` independent sample trees per problem, each with every action
//! history of at most `max_regens` regenerations plus the full all-strong path. Problems are
//! generated in parallel from RNG streams `(seed, problem)` and assembled in order, so the output
//! depends only on the config. The metadata records what is real (calibration inputs), what is
//! synthetic (everything else), the sources with sha256, the resolved config, the solved
//! calibration and the command line. See `data/docs/synth.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::Rng;

use crate::error::Result;
use crate::schema::{Dataset, Meta, ProblemInfo, SourceRef};
use crate::tokenizer::TOKENIZER_NAME;

use super::calibrate::Calibration;
use super::config::SynthConfig;
use super::inputs::{accuracy_target_sources, load_model};
use super::latent::{Difficulty, LatentModel};
use super::parallel::{Built, build_problems, one_problem};
use super::progress::{OnProgress, quiet};

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
    generate_with_progress(cfg, cfg_path, command, &quiet)
}

/// [`generate`], reporting [`Progress`](super::progress::Progress) events (one per finished
/// problem, from worker threads) so a front end can show progress without this crate knowing
/// about terminals.
pub fn generate_with_progress(
    cfg: &SynthConfig,
    cfg_path: &Path,
    command: &str,
    on_progress: OnProgress<'_>,
) -> Result<(Dataset, SynthReport)> {
    cfg.check(cfg_path)?;
    let (model, mut sources) = load_model(&cfg.latent, &cfg.inputs, cfg_path)?;
    let (problems, rows) = build_problems(cfg.problems as usize, on_progress, |p| {
        synth_problem(cfg, &model, p as u32)
    });
    let report = SynthReport {
        problems: problems.len(),
        test_problems: problems.iter().filter(|p| p.split == "test").count(),
        trees: problems.len() * cfg.trees as usize,
        nodes: rows.len(),
        calibration: model.calibration,
    };
    sources.extend(accuracy_target_sources());
    let meta = synth_meta(cfg, &report, sources, command);
    Ok((Dataset::new(meta, problems, rows), report))
}

/// What problem `p` draws from its RNG stream `(seed, p)`, in this order: its split, its
/// difficulty, one key per sample tree. The materialised generator and the lazy world
/// ([`LazyWorld`](super::lazy::LazyWorld)) both start here, so they hold the same problems.
#[derive(Clone, Debug, PartialEq)]
pub struct ProblemDraws {
    pub test: bool,
    pub difficulty: Difficulty,
    pub tree_keys: Vec<u64>,
}

impl ProblemDraws {
    /// Problem `p` of `cfg`.
    pub fn new(cfg: &SynthConfig, model: &LatentModel, p: u32) -> Self {
        let mut rng = Rng::stream(cfg.seed, u64::from(p));
        let test = rng.bernoulli(cfg.test_fraction);
        let difficulty = model.sample_difficulty(&mut rng);
        let tree_keys = (0..cfg.trees).map(|_| rng.next_u64()).collect();
        ProblemDraws {
            test,
            difficulty,
            tree_keys,
        }
    }

    /// The split name.
    pub fn split(&self) -> &'static str {
        if self.test { "test" } else { "train" }
    }
}

/// Problem `p`: its split, difficulty and sample trees ([`ProblemDraws`]).
fn synth_problem(cfg: &SynthConfig, model: &LatentModel, p: u32) -> Built {
    let draws = ProblemDraws::new(cfg, model, p);
    let info = ProblemInfo {
        problem_id: format!("synth-{p:06}"),
        dataset: cfg.dataset.clone(),
        split: draws.split().into(),
        weak_model: cfg.models.weak.clone(),
        strong_model: cfg.models.strong.clone(),
        prm_model: cfg.models.prm.clone(),
    };
    one_problem(info, |b, pi| {
        for &key in &draws.tree_keys {
            let mut w = b.tree(pi);
            model.expand_tree(&mut w, &draws.difficulty, cfg.max_regens, &[], key);
        }
    })
}

/// The provenance of a generated dataset: what is real, what is synthetic, its sources, the
/// resolved config, the solved calibration and the command that regenerates it.
fn synth_meta(
    cfg: &SynthConfig,
    report: &SynthReport,
    sources: Vec<SourceRef>,
    command: &str,
) -> Meta {
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
    if !cfg.latent.signals.is_off() {
        meta.synthetic.push(
            "step signals (weak_judge_score / weak_mean_logprob): drawn from a documented model \
             of the latent state and difficulty whose parameters are choices, not fits \
             (data/docs/synth.md, Step signals)"
                .into(),
        );
    }
    meta.tokenizer = TOKENIZER_NAME.into();
    meta.sources = sources;
    meta.command = command.to_string();
    meta.params = serde_json::json!({
        "config": cfg,
        "calibration": report.calibration,
        "report": {
            "problems": report.problems,
            "test_problems": report.test_problems,
            "trees": report.trees,
            "nodes": report.nodes,
        },
    });
    meta
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::synth::progress::Progress;
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
    fn progress_counts_every_problem_once() {
        let events = Mutex::new(vec![]);
        let record = |e: Progress| events.lock().unwrap().push(e);
        let cfg = small(12, 1, 1);
        let (ds, _) = generate_with_progress(&cfg, Path::new("<t>"), "cmd", &record).unwrap();
        let events = events.into_inner().unwrap();
        assert_eq!(
            events.first(),
            Some(&Progress::Start {
                total: 12,
                unit: "problems"
            })
        );
        assert_eq!(events.last(), Some(&Progress::Finish));
        let advances = events.iter().filter(|e| **e == Progress::Advance).count();
        assert_eq!(advances, 12);
        // Reporting does not change the data.
        let (quiet_ds, _) = generate(&cfg, Path::new("<t>"), "cmd").unwrap();
        assert_eq!(ds, quiet_ds);
    }
}
