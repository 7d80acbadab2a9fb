//! `trim data import processbench`: real ProcessBench solutions as the all-weak paths of
//! rollout trees, with latent-model regenerations around them.
//!
//! For every solution written by a small generator (≤ 8B parameters by default) the all-weak path
//! is the real solution: real steps (text hash, optional text), real cl100k token counts, real
//! human first-error labels as states (steps before the label S0, the labelled step S2, later
//! steps S1; label −1 all S0) and the real `final_answer_correct` as its outcome. PRM scores are
//! drawn from the TRIM observation model by state and running minimum. Strong candidates, and
//! every weak step after a regenerate, come from the calibrated [`LatentModel`] with the problem's
//! difficulty drawn from its posterior given the real path(s). Several small-generator solutions
//! of one problem become several sample trees of that problem. Problems of MATH-500 (matched by
//! the vendored normalised-text keys, `data/calibration/math500_keys.json`) form the `test`
//! split. See `data/docs/processbench.md`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use trim_env::Rng;

use crate::build::DatasetBuilder;
use crate::error::{DataError, Loc, Result};
use crate::io::{sha256_file, text_hash};
use crate::latent::{LatentModel, MAX_REGENS_LIMIT, RealStep};
use crate::schema::{Dataset, Meta, NodeRow, ProblemInfo, SourceRef, state};
use crate::synth::compact_json;
use crate::tokenizer::{TOKENIZER_NAME, TokenCounter};

/// Upstream of the ProcessBench files (see `../shared/data/raw/processbench/SOURCE.md`).
pub const PROCESSBENCH_ORIGIN: &str =
    "github.com/QwenLM/ProcessBench@ee5ae00f2d32205df00655cf9ebbc3caddce0646 dataset/";
/// The four ProcessBench subsets.
pub const SUBSETS: [&str; 4] = ["gsm8k", "math", "olympiadbench", "omnimath"];
/// Vendored MATH-500 keys.
pub const MATH500_KEYS_JSON: &str = include_str!("../../calibration/math500_keys.json");
/// Where the vendored keys live in the repository.
pub const MATH500_KEYS_PATH: &str = "data/calibration/math500_keys.json";
/// Prefix keys shorter than this (normalised characters) are refused: too generic to identify a
/// problem ("whatisthesmallestpositiveinteger…").
pub const MIN_PREFIX_KEY: usize = 48;

/// One ProcessBench record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub id: String,
    pub generator: String,
    pub problem: String,
    pub steps: Vec<String>,
    pub final_answer_correct: bool,
    /// 0-based index of the first erroneous step, −1 if the process is correct.
    pub label: i64,
}

impl Solution {
    /// Latent state of step `t` from the human label.
    pub fn state_of(&self, t: usize) -> u8 {
        match usize::try_from(self.label) {
            Err(_) => state::S0,
            Ok(l) if t < l => state::S0,
            Ok(l) if t == l => state::S2,
            Ok(_) => state::S1,
        }
    }
}

/// Read one ProcessBench subset file (a JSON array) and check every record.
pub fn read_subset(path: &Path) -> Result<Vec<Solution>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let sols: Vec<Solution> = serde_path_to_error::deserialize(de).map_err(|e| {
        DataError::new(
            path,
            Loc::File,
            Some(&e.path().to_string()),
            e.inner().to_string(),
        )
    })?;
    for (i, s) in sols.iter().enumerate() {
        if s.steps.is_empty() {
            return Err(DataError::new(
                path,
                Loc::Row(i),
                Some("steps"),
                format!("solution `{}` has no steps", s.id),
            ));
        }
        if s.label < -1 || s.label >= s.steps.len() as i64 {
            return Err(DataError::new(
                path,
                Loc::Row(i),
                Some("label"),
                format!(
                    "solution `{}`: label {} is neither -1 nor a step index below {}",
                    s.id,
                    s.label,
                    s.steps.len()
                ),
            ));
        }
    }
    Ok(sols)
}

/// Parameter count in billions parsed from a generator name (`Qwen2.5-1.5B-Instruct` → 1.5).
pub fn generator_size_b(name: &str) -> Option<f64> {
    name.split(['-', '_', ' ']).find_map(|part| {
        let num = part.strip_suffix('B').or_else(|| part.strip_suffix('b'))?;
        num.parse::<f64>().ok().filter(|x| *x > 0.0)
    })
}

// ---------------------------------------------------------------------------------------------
// MATH-500 keys

/// Lowercase ASCII letters and digits only: robust to LaTeX spacing, escapes and punctuation.
pub fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One MATH-500 problem's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Math500Key {
    /// Normalised characters covered by the hash.
    pub len: u32,
    /// The hash covers the whole normalised problem (else a prefix of it).
    pub complete: bool,
    /// `io::text_hash` of the first `len` normalised characters.
    pub hash: String,
}

/// `data/calibration/math500_keys.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Math500KeysFile {
    pub description: String,
    /// The file the keys were computed from, and its upstream.
    pub source: SourceRef,
    /// How problem texts are normalised and matched.
    pub normalisation: String,
    /// The command that regenerates the file.
    pub command: String,
    pub count: usize,
    pub entries: Vec<Math500Key>,
}

/// Matcher over the keys.
pub struct Math500 {
    pub file: Math500KeysFile,
    by_len: HashMap<(u32, bool), HashSet<String>>,
}

impl Math500 {
    /// Parse a keys file.
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let file: Math500KeysFile = crate::io::parse_json(path, text)?;
        let mut by_len: HashMap<(u32, bool), HashSet<String>> = HashMap::new();
        for k in &file.entries {
            by_len
                .entry((k.len, k.complete))
                .or_default()
                .insert(k.hash.clone());
        }
        Ok(Math500 { file, by_len })
    }

    /// The vendored keys.
    pub fn vendored() -> Self {
        Self::from_json(Path::new(MATH500_KEYS_PATH), MATH500_KEYS_JSON)
            .expect("embedded MATH-500 keys are valid")
    }

    /// Is `problem` a MATH-500 problem?
    pub fn contains(&self, problem: &str) -> bool {
        let n = normalise(problem);
        self.by_len.iter().any(|(&(len, complete), set)| {
            let len = len as usize;
            let fits = if complete {
                n.len() == len
            } else {
                n.len() >= len
            };
            fits && set.contains(&text_hash(&n[..len]))
        })
    }
}

/// Build the keys from `src`: a JSONL file of MATH-500 records with a `problem` field (e.g.
/// HuggingFaceH4/MATH-500 `test.jsonl`; every key then covers the whole problem), or a TSV
/// transcription whose lines are `F<TAB>full problem` or `T<TAB>prefix` (≥ 48 normalised
/// characters), with `# origin: …` naming the upstream file.
pub fn build_math500_keys(src: &Path, command: &str) -> Result<Math500KeysFile> {
    let text = std::fs::read_to_string(src)
        .map_err(|e| DataError::file(src, format!("cannot read: {e}")))?;
    let mut origin = String::new();
    let mut entries = vec![];
    let tsv = src.extension().and_then(|e| e.to_str()) == Some("tsv");
    for (i, line) in text.lines().enumerate() {
        let loc = Loc::Line(i + 1);
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(o) = rest.trim().strip_prefix("origin:") {
                origin = o.trim().to_string();
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (complete, problem) = if tsv {
            match line.split_once('\t') {
                Some(("F", p)) => (true, p.to_string()),
                Some(("T", p)) => (false, p.to_string()),
                _ => {
                    return Err(DataError::new(
                        src,
                        loc,
                        None,
                        "expected `F<TAB>problem` or `T<TAB>prefix`",
                    ));
                }
            }
        } else {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| DataError::new(src, loc.clone(), None, format!("bad JSON: {e}")))?;
            let p = v.get("problem").and_then(|p| p.as_str()).ok_or_else(|| {
                DataError::new(src, loc.clone(), Some("problem"), "missing string field")
            })?;
            (true, p.to_string())
        };
        let n = normalise(&problem);
        if n.is_empty() || (!complete && n.len() < MIN_PREFIX_KEY) {
            return Err(DataError::new(
                src,
                loc,
                Some("problem"),
                format!(
                    "prefix has {} normalised characters; at least {MIN_PREFIX_KEY} are needed",
                    n.len()
                ),
            ));
        }
        entries.push(Math500Key {
            len: n.len() as u32,
            complete,
            hash: text_hash(&n),
        });
    }
    if entries.is_empty() {
        return Err(DataError::file(src, "no problems"));
    }
    Ok(Math500KeysFile {
        description: "MATH-500 (Lightman et al. 2023, the PRM800K test split of MATH) problem \
                      keys, in upstream order, for holding MATH-500 out of imported data"
            .into(),
        source: SourceRef {
            name: src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            origin: if origin.is_empty() {
                src.display().to_string()
            } else {
                origin
            },
            sha256: Some(sha256_file(src)?),
        },
        normalisation: format!(
            "keep ASCII letters and digits, lowercase; hash = 16-hex sha256 prefix of the first \
             `len` normalised characters; a problem matches a key if its normalised text has \
             exactly `len` characters (complete) or at least `len` (prefix, >= {MIN_PREFIX_KEY}) \
             and the hash of its first `len` characters is equal"
        ),
        command: command.to_string(),
        count: entries.len(),
        entries,
    })
}

/// Write a keys file (atomically, compact JSON).
pub fn write_math500_keys(path: &Path, f: &Math500KeysFile) -> Result<()> {
    let v = serde_json::to_value(f).map_err(|e| DataError::file(path, e.to_string()))?;
    crate::io::write_text_atomic(path, &compact_json(&v))
}

// ---------------------------------------------------------------------------------------------
// Import

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

struct Group<'a> {
    subset: &'a str,
    solutions: Vec<&'a Solution>,
}

/// Import ProcessBench from `raw` (the directory holding `<subset>.json`). `model` is the
/// calibrated latent model and `model_sources` its inputs (for provenance).
pub fn import(
    raw: &Path,
    opts: &ImportOptions,
    model: &LatentModel,
    model_sources: &[SourceRef],
    math500: &Math500,
    command: &str,
) -> Result<(Dataset, ImportReport)> {
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
    let mut files: Vec<(String, PathBuf, Vec<Solution>)> = vec![];
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
        let path = raw.join(format!("{s}.json"));
        let sols = read_subset(&path)?;
        files.push((s.clone(), path, sols));
    }
    let mut report = ImportReport::default();
    // Group small-generator solutions by (subset, problem text), in file order.
    let mut groups: Vec<Group<'_>> = vec![];
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut seen_math500: HashSet<&str> = HashSet::new();
    let mut gen_count: HashMap<&str, usize> = HashMap::new();
    for (subset, _, sols) in &files {
        report.solutions_read += sols.len();
        for s in sols {
            if opts.math500_holdout && math500.contains(&s.problem) {
                seen_math500.insert(s.problem.as_str());
            }
            let small = generator_size_b(&s.generator).is_some_and(|b| b <= opts.max_generator_b);
            if !small {
                continue;
            }
            *gen_count.entry(s.generator.as_str()).or_default() += 1;
            let key = (subset.as_str(), s.problem.as_str());
            let g = *index.entry(key).or_insert_with(|| {
                groups.push(Group {
                    subset,
                    solutions: vec![],
                });
                groups.len() - 1
            });
            groups[g].solutions.push(s);
        }
    }
    if groups.is_empty() {
        return Err(DataError::file(
            raw,
            format!(
                "no solution from a generator of at most {}B parameters",
                opts.max_generator_b
            ),
        ));
    }
    report.math500_problems_seen = seen_math500.len();
    let mut gens: Vec<(String, usize)> = gen_count
        .into_iter()
        .map(|(g, n)| (g.to_string(), n))
        .collect();
    gens.sort();
    report.generators = gens;

    let strong_name = "synthetic: latent model calibrated to Qwen2.5-7B-Instruct on MATH-train";
    let prm_name = "synthetic: Qwen2.5-Math-PRM-7B via the TRIM observation model (by state)";
    let built: Vec<(ProblemInfo, Vec<NodeRow>, usize)> = groups
        .par_iter()
        .enumerate()
        .map(|(p, g)| {
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
                strong_model: strong_name.into(),
                prm_model: prm_name.into(),
            };
            // Difficulty posterior from every logged solution of the problem.
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
            let mut b = DatasetBuilder::new(Meta::new(""));
            let pi = b.add_problem(info.clone());
            for s in &g.solutions {
                let n = s.steps.len();
                let real: Vec<RealStep> = s
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(t, text)| RealStep {
                        tokens: counter.count(text),
                        state: s.state_of(t),
                        finished: t + 1 == n,
                        correct: (t + 1 == n).then_some(s.final_answer_correct),
                        text: opts.keep_text.then(|| text.clone()),
                        hash: Some(text_hash(text)),
                    })
                    .collect();
                let mut w = b.tree(pi);
                model.expand_tree(&mut w, &d, opts.max_regens, &real, &mut rng);
            }
            let trees = g.solutions.len();
            (info, b.finish().rows, trees)
        })
        .collect();

    let mut problems = Vec::with_capacity(built.len());
    let mut rows = vec![];
    for (p, (info, mut r, trees)) in built.into_iter().enumerate() {
        report.test_problems += usize::from(info.split == "test");
        report.trees += trees;
        for row in &mut r {
            row.problem = p as u32;
        }
        rows.append(&mut r);
        problems.push(info);
    }
    report.problems = problems.len();
    report.nodes = rows.len();
    report.solutions_used = report.generators.iter().map(|g| g.1).sum();

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
    for (s, path, _) in &files {
        meta.sources.push(SourceRef {
            name: format!("processbench/{s}.json"),
            origin: format!("{PROCESSBENCH_ORIGIN}{s}.json"),
            sha256: Some(sha256_file(path)?),
        });
    }
    meta.sources.extend(model_sources.iter().cloned());
    meta.sources.push(SourceRef {
        name: MATH500_KEYS_PATH.into(),
        origin: format!(
            "keys derived from {} ({})",
            math500.file.source.origin, math500.file.source.name
        ),
        sha256: Some(crate::latent::sha256_text(MATH500_KEYS_JSON)),
    });
    meta.command = command.to_string();
    meta.params = serde_json::json!({
        "options": opts,
        "latent": model.cfg,
        "calibration": model.calibration,
        "report": report,
    });
    Ok((Dataset::new(meta, problems, rows), report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::LatentConfig;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("trim-pb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

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
    fn sizes_and_states_from_labels() {
        assert_eq!(generator_size_b("Qwen2.5-1.5B-Instruct"), Some(1.5));
        assert_eq!(generator_size_b("Meta-Llama-3-8B-Instruct"), Some(8.0));
        assert_eq!(generator_size_b("Qwen2.5-Math-72B-Instruct"), Some(72.0));
        assert_eq!(generator_size_b("gpt-4o"), None);
        let s = Solution {
            id: "x".into(),
            generator: "g".into(),
            problem: "p".into(),
            steps: vec!["a".into(); 4],
            final_answer_correct: false,
            label: 1,
        };
        let st: Vec<u8> = (0..4).map(|t| s.state_of(t)).collect();
        assert_eq!(st, vec![0, 2, 1, 1]);
        let ok = Solution { label: -1, ..s };
        assert!((0..4).all(|t| ok.state_of(t) == 0));
    }

    #[test]
    fn math500_keys_match_known_problems_only() {
        let m = Math500::vendored();
        assert_eq!(m.file.count, 500);
        assert!(m.contains(
            "What is the smallest positive perfect cube that can be written as the sum of three consecutive integers?"
        ));
        // Whitespace and escapes do not matter; a different problem with the same opening does.
        assert!(m.contains("Simplify  $\\sqrt{242}$ ."));
        assert!(!m.contains("Simplify $\\sqrt{243}$."));
        assert!(!m.contains("Compute $2+2$."));
    }

    #[test]
    fn key_builder_reads_jsonl_and_tsv_and_refuses_short_prefixes() {
        let d = tmpdir("keys");
        let j = d.join("m.jsonl");
        std::fs::write(&j, "{\"problem\": \"Compute $2+2$.\"}\n").unwrap();
        let f = build_math500_keys(&j, "cmd").unwrap();
        assert_eq!(f.count, 1);
        assert!(f.entries[0].complete);
        let text = serde_json::to_string(&f).unwrap();
        let m = Math500::from_json(&j, &text).unwrap();
        assert!(m.contains("compute 2 + 2"));
        let t = d.join("m.tsv");
        std::fs::write(&t, "# origin: somewhere\nT\tCompute two plus two.\n").unwrap();
        let e = build_math500_keys(&t, "cmd").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        std::fs::write(&t, "X\tfoo\n").unwrap();
        assert!(build_math500_keys(&t, "cmd").is_err());
    }

    #[test]
    fn imports_real_paths_with_labels_tokens_and_holdout() {
        let d = tmpdir("import");
        std::fs::write(d.join("math.json"), sample().to_string()).unwrap();
        let model = LatentModel::vendored(LatentConfig::default(), Path::new("<test>")).unwrap();
        let opts = ImportOptions {
            keep_text: true,
            ..ImportOptions::default()
        };
        let (ds, rep) = import(&d, &opts, &model, &[], &Math500::vendored(), "trim test").unwrap();
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
                        .find(|x| x.parent == Some(node) && x.action == Some(0))
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
        let (again, _) = import(&d, &opts, &model, &[], &Math500::vendored(), "trim test").unwrap();
        assert_eq!(again.rows, ds.rows);
        // Bad input: a label past the last step names the record.
        let mut bad = sample();
        bad[0]["label"] = serde_json::json!(7);
        std::fs::write(d.join("math.json"), bad.to_string()).unwrap();
        let e = import(&d, &opts, &model, &[], &Math500::vendored(), "t").unwrap_err();
        assert!(
            e.to_string().contains("row 0") && e.to_string().contains("label"),
            "{e}"
        );
        std::fs::write(d.join("math.json"), "[{\"id\": 3}]").unwrap();
        let e = import(&d, &opts, &model, &[], &Math500::vendored(), "t").unwrap_err();
        assert!(e.to_string().contains("[0]"), "{e}");
    }
}
