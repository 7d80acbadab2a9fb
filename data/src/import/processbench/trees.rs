//! The ProcessBench import proper: small-generator solutions grouped by problem, each solution
//! the real all-weak path of one sample tree, latent-model regenerations around it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::Rng;

use crate::error::{DataError, Result};
use crate::io::text_hash;
use crate::schema::{Dataset, Meta, ProblemInfo, SourceRef};
use crate::synth::latent::{LatentModel, RealStep};
use crate::synth::parallel::{Built, build_problems, one_problem};
use crate::synth::params::MAX_REGENS_LIMIT;
use crate::synth::progress::OnProgress;
use crate::tokenizer::{TOKENIZER_NAME, TokenCounter};

use super::math500::Math500;
use super::solution::{
    SUBSETS, Solution, generator_size_b, read_subset, subset_path, subset_source,
};

/// Strong-model name of the problem rows: every strong candidate is synthetic.
const STRONG_MODEL: &str =
    "synthetic: latent model calibrated to Qwen2.5-7B-Instruct on MATH-train";
/// PRM name of the problem rows: every score is drawn from the observation model.
const PRM_MODEL: &str = "synthetic: Qwen2.5-Math-PRM-7B via the TRIM observation model (by state)";

/// What to import and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Subset files to read (`<raw>/<subset>.json`).
    pub subsets: Vec<String>,
    /// Keep solutions whose generator has at most this many billion parameters.
    pub max_generator_b: f64,
    /// At most this many regenerations per path (the all-strong path is always complete).
    pub max_regens: u32,
    /// Seed of the per-problem RNG streams.
    pub seed: u64,
    /// Store step texts of the real steps (hashes are always stored).
    pub keep_text: bool,
    /// Put MATH-500 problems into the `test` split (else everything is `train`).
    pub math500_holdout: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            subsets: vec!["math".into()],
            max_generator_b: 8.0,
            max_regens: 2,
            seed: 0,
            keep_text: false,
            math500_holdout: true,
        }
    }
}

/// Counts from an import, for the CLI and the metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub solutions_read: usize,
    pub solutions_used: usize,
    pub problems: usize,
    pub test_problems: usize,
    pub trees: usize,
    pub nodes: usize,
    /// Distinct problem texts of the read subsets (all generators) that are in MATH-500.
    pub math500_problems_seen: usize,
    /// (generator, solutions used).
    pub generators: Vec<(String, usize)>,
}

/// A subset file as read.
struct SubsetFile {
    subset: String,
    solutions: Vec<Solution>,
}

/// The small-generator solutions of one problem (one subset, one problem text), in file order.
struct Group<'a> {
    subset: &'a str,
    solutions: Vec<&'a Solution>,
}

/// Import ProcessBench from `raw` (the directory holding `<subset>.json`). `model` is the
/// calibrated latent model and `model_sources` its inputs (for provenance). Reports
/// [`Progress`](crate::synth::progress::Progress) events (one per problem, from worker threads)
/// for a front end to draw; pass a no-op closure when nothing is drawn.
pub fn import_with_progress(
    raw: &Path,
    opts: &ImportOptions,
    model: &LatentModel,
    model_sources: &[SourceRef],
    math500: &Math500,
    command: &str,
    on_progress: OnProgress<'_>,
) -> Result<(Dataset, ImportReport)> {
    let files = read_files(raw, opts)?;
    let mut report = ImportReport::default();
    let groups = group_solutions(&files, opts, math500, &mut report);
    if groups.is_empty() {
        return Err(DataError::file(
            raw,
            format!(
                "no solution from a generator of at most {}B parameters",
                opts.max_generator_b
            ),
        ));
    }
    let (problems, rows) = build_problems(groups.len(), on_progress, |p| {
        build_group(p, &groups[p], opts, model, math500)
    });
    report.test_problems = problems.iter().filter(|i| i.split == "test").count();
    report.trees = groups.iter().map(|g| g.solutions.len()).sum();
    report.problems = problems.len();
    report.nodes = rows.len();
    report.solutions_used = report.generators.iter().map(|g| g.1).sum();

    let mut meta = describe(opts);
    for f in &files {
        meta.sources.push(subset_source(raw, &f.subset)?);
    }
    meta.sources.extend(model_sources.iter().cloned());
    meta.sources.push(math500.file.vendored_source());
    meta.command = command.to_string();
    meta.params = serde_json::json!({
        "options": opts,
        "latent": model.cfg,
        "calibration": model.calibration,
        "report": report,
    });
    Ok((Dataset::new(meta, problems, rows), report))
}

/// Check the options and read the selected subset files.
fn read_files(raw: &Path, opts: &ImportOptions) -> Result<Vec<SubsetFile>> {
    if opts.subsets.is_empty() {
        return Err(DataError::file(raw, "no subsets selected"));
    }
    if opts.max_regens > MAX_REGENS_LIMIT {
        return Err(DataError::file(
            raw,
            format!(
                "max_regens {} exceeds {MAX_REGENS_LIMIT} (a tree has about depth^K nodes)",
                opts.max_regens
            ),
        ));
    }
    let mut files = vec![];
    for s in &opts.subsets {
        if !SUBSETS.contains(&s.as_str()) {
            return Err(DataError::file(
                raw,
                format!(
                    "unknown subset `{s}` (expected one of {})",
                    SUBSETS.join(", ")
                ),
            ));
        }
        files.push(SubsetFile {
            subset: s.clone(),
            solutions: read_subset(&subset_path(raw, s))?,
        });
    }
    Ok(files)
}

/// Group small-generator solutions by (subset, problem text), in file order; count what was
/// read into `report`.
fn group_solutions<'a>(
    files: &'a [SubsetFile],
    opts: &ImportOptions,
    math500: &Math500,
    report: &mut ImportReport,
) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'_>> = vec![];
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut seen_math500: HashSet<&str> = HashSet::new();
    let mut gen_count: HashMap<&str, usize> = HashMap::new();
    for f in files {
        report.solutions_read += f.solutions.len();
        for s in &f.solutions {
            if opts.math500_holdout && math500.contains(&s.problem) {
                seen_math500.insert(s.problem.as_str());
            }
            let small = generator_size_b(&s.generator).is_some_and(|b| b <= opts.max_generator_b);
            if !small {
                continue;
            }
            *gen_count.entry(s.generator.as_str()).or_default() += 1;
            let key = (f.subset.as_str(), s.problem.as_str());
            let g = *index.entry(key).or_insert_with(|| {
                groups.push(Group {
                    subset: &f.subset,
                    solutions: vec![],
                });
                groups.len() - 1
            });
            groups[g].solutions.push(s);
        }
    }
    report.math500_problems_seen = seen_math500.len();
    let mut gens: Vec<(String, usize)> = gen_count
        .into_iter()
        .map(|(g, n)| (g.to_string(), n))
        .collect();
    gens.sort();
    report.generators = gens;
    groups
}

/// Problem `p`: one sample tree per solution of its group, all from the RNG stream `(seed, p)`,
/// with the difficulty drawn from its posterior given every logged solution.
fn build_group(
    p: usize,
    g: &Group<'_>,
    opts: &ImportOptions,
    model: &LatentModel,
    math500: &Math500,
) -> Built {
    let counter = TokenCounter::new();
    let mut rng = Rng::stream(opts.seed, p as u64);
    let test = opts.math500_holdout && math500.contains(&g.solutions[0].problem);
    let mut gens: Vec<&str> = vec![];
    for s in &g.solutions {
        if !gens.contains(&s.generator.as_str()) {
            gens.push(&s.generator);
        }
    }
    let info = ProblemInfo {
        problem_id: g.solutions[0].id.clone(),
        dataset: format!("processbench/{}", g.subset),
        split: if test { "test" } else { "train" }.into(),
        weak_model: gens.join(" | "),
        strong_model: STRONG_MODEL.into(),
        prm_model: PRM_MODEL.into(),
    };
    let (mut ok_steps, mut errors) = (0u32, 0u32);
    for s in &g.solutions {
        match usize::try_from(s.label) {
            Ok(l) => {
                ok_steps += l as u32;
                errors += 1;
            }
            Err(_) => ok_steps += s.steps.len() as u32,
        }
    }
    let d = model.posterior_difficulty(ok_steps, errors, &mut rng);
    one_problem(info, |b, pi| {
        for s in &g.solutions {
            let real = real_steps(s, &counter, opts.keep_text);
            let mut w = b.tree(pi);
            model.expand_tree(&mut w, &d, opts.max_regens, &real, rng.next_u64());
        }
    })
}

/// A solution's steps as the real all-weak path: cl100k tokens, labelled states, the real outcome
/// on the last step, the text hash (and the text with `keep_text`).
fn real_steps(s: &Solution, counter: &TokenCounter, keep_text: bool) -> Vec<RealStep> {
    let n = s.steps.len();
    s.steps
        .iter()
        .enumerate()
        .map(|(t, text)| RealStep {
            tokens: counter.count(text),
            state: s.state_of(t),
            finished: t + 1 == n,
            correct: (t + 1 == n).then_some(s.final_answer_correct),
            text: keep_text.then(|| text.clone()),
            hash: Some(text_hash(text)),
        })
        .collect()
}

/// The prose of the metadata: what is real and what is synthetic.
fn describe(opts: &ImportOptions) -> Meta {
    let mut meta = Meta::new(format!("processbench-{}", opts.subsets.join("-")));
    meta.description = format!(
        "ProcessBench ({}) solutions by generators of at most {}B parameters as the real \
         all-weak paths of rollout trees (one sample tree per solution); strong regenerations and \
         the weak continuations after them from the calibrated latent model, at most {} \
         regenerations per path plus the complete all-strong path; MATH-500 problems are the \
         `test` split.",
        opts.subsets.join(", "),
        opts.max_generator_b,
        opts.max_regens
    );
    meta.real = vec![
        "all-weak path: real ProcessBench solution steps (text hash per step; text with --text), \
         cl100k token counts of the real step texts"
            .into(),
        "latent states of the all-weak path: ProcessBench human first-error labels (before the \
         label S0, at it S2, after it S1; label -1 all S0)"
            .into(),
        "all-weak outcome: ProcessBench final_answer_correct".into(),
        "weak model names: the real ProcessBench generators".into(),
    ];
    meta.synthetic = vec![
        "PRM scores of every candidate: drawn from the TRIM Qwen2.5-Math-PRM-7B observation \
         model given the candidate's state and the running minimum of the chosen path"
            .into(),
        "strong candidates, every weak step after a regenerate, and their outcomes: latent \
         step-correctness model (calibrated to Qwen2.5-1.5B/7B-Instruct on MATH-train), problem \
         difficulty drawn from its posterior given the real weak path(s)"
            .into(),
        "token counts of synthetic steps: drawn from real ProcessBench step lengths \
         (data/calibration/step_tokens.json)"
            .into(),
    ];
    meta.tokenizer = TOKENIZER_NAME.into();
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::NodeRow;
    use crate::synth::params::LatentConfig;
    use crate::synth::progress::quiet;
    use trim_env::Action;

    fn sample() -> serde_json::Value {
        // A MATH-500 problem (two small generators → two sample trees), a non-MATH-500 one,
        // and a large-generator solution that must be skipped.
        serde_json::json!([
            {"id": "math-1", "generator": "Qwen2.5-1.5B-Instruct",
             "problem": "What is the smallest positive perfect cube that can be written as the sum of three consecutive integers?",
             "steps": ["Let the integers be $n-1$, $n$, $n+1$.", "Their sum is $3n$.", "So the cube is $\\boxed{27}$."],
             "final_answer_correct": true, "label": -1},
            {"id": "math-2", "generator": "Llama-3.1-8B-Instruct",
             "problem": "What is the smallest positive perfect cube that can be written as the sum of three consecutive integers?",
             "steps": ["The sum is $3n$.", "The answer is $\\boxed{8}$."],
             "final_answer_correct": false, "label": 1},
            {"id": "math-3", "generator": "Qwen2-72B-Instruct",
             "problem": "Compute $1+1$.", "steps": ["$\\boxed{2}$"],
             "final_answer_correct": true, "label": -1},
            {"id": "math-4", "generator": "Qwen2-1.5B-Instruct",
             "problem": "Compute $2+2$.", "steps": ["First, 2+2=5.", "Then 5.", "$\\boxed{5}$"],
             "final_answer_correct": false, "label": 0}
        ])
    }

    #[test]
    fn imports_real_paths_with_labels_tokens_and_holdout() {
        let d = crate::import::tmpdir("pb", "import");
        std::fs::write(d.join("math.json"), sample().to_string()).unwrap();
        let model = LatentModel::vendored(LatentConfig::default(), Path::new("<test>")).unwrap();
        let opts = ImportOptions {
            keep_text: true,
            ..ImportOptions::default()
        };
        let import = || {
            let pb = Math500::vendored();
            import_with_progress(&d, &opts, &model, &[], &pb, "trim test", &quiet).unwrap()
        };
        let (ds, rep) = import();
        assert_eq!(rep.solutions_read, 4);
        assert_eq!(rep.solutions_used, 3);
        assert_eq!((rep.problems, rep.trees, rep.test_problems), (2, 3, 1));
        assert_eq!(ds.problems[0].problem_id, "math-1");
        assert_eq!(ds.problems[0].split, "test");
        assert_eq!(
            ds.problems[0].weak_model,
            "Qwen2.5-1.5B-Instruct | Llama-3.1-8B-Instruct"
        );
        assert_eq!(ds.problems[1].split, "train");
        assert!(ds.problems[1].strong_model.starts_with("synthetic"));
        let counter = TokenCounter::new();
        let sols = sample();
        // Follow the all-weak path of every tree and compare with the record.
        for (p, tree, sol) in [(0u32, 0u32, 0usize), (0, 1, 1), (1, 0, 3)] {
            let s: Solution = serde_json::from_value(sols[sol].clone()).unwrap();
            let rows: Vec<&NodeRow> = ds
                .rows
                .iter()
                .filter(|r| r.problem == p && r.tree == tree)
                .collect();
            let mut node = 0u32;
            for (t, text) in s.steps.iter().enumerate() {
                let r = rows.iter().find(|r| r.node == node).unwrap();
                assert_eq!(r.weak.tokens, counter.count(text));
                assert_eq!(r.weak.hash.as_deref(), Some(text_hash(text).as_str()));
                assert_eq!(r.weak.text.as_deref(), Some(text.as_str()));
                assert_eq!(r.weak.state, Some(s.state_of(t)));
                assert!(r.strong.is_some());
                if t + 1 == s.steps.len() {
                    assert!(r.weak.finished);
                    assert_eq!(r.continue_correct, Some(s.final_answer_correct));
                } else {
                    node = rows
                        .iter()
                        .find(|x| x.parent == Some(node) && x.action == Some(Action::Continue))
                        .unwrap()
                        .node;
                }
            }
            // Synthetic candidates carry no text.
            assert!(
                rows.iter()
                    .all(|r| r.strong.as_ref().is_none_or(|s| s.hash.is_none()))
            );
        }
        let l = crate::validate(Path::new("<mem>"), ds.clone()).unwrap();
        assert_eq!(l.forest.n_trees(), 3);
        // Deterministic by seed.
        let (again, _) = import();
        assert_eq!(again.rows, ds.rows);
        // Bad input: a label past the last step names the record.
        let mut bad = sample();
        bad[0]["label"] = serde_json::json!(7);
        std::fs::write(d.join("math.json"), bad.to_string()).unwrap();
        let e = import_with_progress(&d, &opts, &model, &[], &Math500::vendored(), "t", &quiet)
            .unwrap_err();
        assert!(
            e.to_string().contains("row 0") && e.to_string().contains("label"),
            "{e}"
        );
        std::fs::write(d.join("math.json"), "[{\"id\": 3}]").unwrap();
        let e = import_with_progress(&d, &opts, &model, &[], &Math500::vendored(), "t", &quiet)
            .unwrap_err();
        assert!(e.to_string().contains("[0]"), "{e}");
    }
}
