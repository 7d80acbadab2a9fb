//! `trim data import gsm8k-paired`: rollout trees from OpenAI's GSM8K GPT-3 6B (weak) / 175B
//! (strong) solution pairs (`grade-school-math`, `example_model_solutions.jsonl`).
//!
//! Why this importer exists: it is the only real, paired weak/strong step data we have, so it
//! anchors the replay environment to real step texts, real token counts and real final-answer
//! correctness. There is no true counterfactual (what the 175B model would write from a 6B
//! prefix), so the tree uses the **suffix switch** (`data/docs/gsm8k-paired.md`):
//!
//! * **Weak chain.** One node per line of the 6B solution (one line = one step, the final
//!   `A: <answer>` line included). Continue walks the chain; the last step finishes with the
//!   6B solution's upstream correctness. Always-weak is exactly the 6B solution.
//! * **Switch.** Regenerate at weak step `t` keeps weak steps `0..t`, takes the 175B step at the
//!   aligned index `j = floor(t·Ls/Lw)`, and the 175B model then writes the rest of its own
//!   solution (`j+1..Ls`). Every step of that suffix is a paid regenerate: after a switch the
//!   tree offers **only regenerate** (continue is masked — no weak continuation of a 175B prefix
//!   exists in the data). Hence always-strong (switch at the root) is exactly the 175B solution
//!   with all its tokens paid, a late switch is cheaper than an early one, and one cheap
//!   regenerate cannot buy the whole 175B solution. The tree has `Lw + Σ_t (Ls − 1 − j(t))`
//!   nodes: quadratic in the (short) solution lengths, never exponential.
//! * **Switch outcome.** 175B correctness if the weak prefix `0..t` is on-chain; otherwise
//!   (conservative) 175B correctness **and** 6B correctness — an off-chain prefix is trusted only
//!   when the 6B solution still reached the right answer through it.
//! * **States and PRM.** A step is on-chain when every calculator result `<<expr=result>>` in it is
//!   among the ground truth's intermediate results (or its final answer). Lines without a
//!   judgeable annotation are neutral (on-chain); the finishing line of a solution is on-chain iff
//!   the solution is correct. Along each path: first off-chain step = S2, later = S1, else S0.
//!   PRM scores are sampled from the TRIM observation model given the state and the running
//!   minimum of the chosen path.
//! * **Weak stand-ins.** Nodes after a switch still need a weak candidate for the observation;
//!   it is the 6B step at the inversely aligned index `floor(k·Lw/Ls)`, written unfinished since
//!   it can never be kept.
//!
//! Modules: [`options`] (settings and summary), `parse` (records, steps and the on-chain
//! heuristic), `tree` (the suffix-switch construction).

pub mod options;
mod parse;
mod tree;

use std::path::{Path, PathBuf};

use trim_env::Rng;
use trim_env::checksum::sha256_hex;

use crate::build::DatasetBuilder;
use crate::error::{DataError, Loc, Result};
use crate::io::sha256_file;
use crate::schema::{Dataset, Meta, ProblemInfo, SourceRef};
use crate::synth::obs_model::{MATH_TRAIN_JSON, MATH_TRAIN_ORIGIN, ObsModel};
use crate::tokenizer::{TOKENIZER_NAME, TokenCounter};

pub use options::{Options, Report, Variant};
use parse::{Record, parse_record};
use tree::{Sampler, build_tree};

/// File name of the paired solutions inside the raw directory.
pub const SOLUTIONS_FILE: &str = "example_model_solutions.jsonl";
/// Upstream origin of [`SOLUTIONS_FILE`].
pub const UPSTREAM_ORIGIN: &str = "github.com/openai/grade-school-math commit 3101c7d5072418e28b9008a6636bde82a006892c, grade_school_math/data/example_model_solutions.jsonl (MIT)";
/// PRM model named in the problem rows: the scores are synthetic draws from its observation model.
pub const PRM_MODEL: &str = "synthetic: Qwen2.5-Math-PRM-7B observation model (TRIM math-train KDE), by heuristic step state";

/// The solutions file inside `raw` (or `raw` itself when it names a file).
pub fn solutions_path(raw: &Path) -> PathBuf {
    if raw.is_dir() {
        raw.join(SOLUTIONS_FILE)
    } else {
        raw.to_path_buf()
    }
}

/// Import the paired solutions under `raw` (a directory holding [`SOLUTIONS_FILE`], or the file).
pub fn import(raw: &Path, opts: &Options) -> Result<(Dataset, Report)> {
    let path = solutions_path(raw);
    if !(0.0..=1.0).contains(&opts.test_fraction) {
        return Err(DataError::new(
            &path,
            Loc::File,
            Some("test_fraction"),
            format!("test fraction {} must be in [0, 1]", opts.test_fraction),
        ));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| DataError::file(&path, format!("cannot read: {e}")))?;
    let counter = TokenCounter::new();
    let obs = ObsModel::math_train();
    let mut b = DatasetBuilder::new(describe(opts, &path)?);
    let mut report = Report::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let lineno = i + 1;
        let rec = parse_record(&path, lineno, line, opts.variant, &counter)?;
        let split = if in_test(&rec.question, opts.test_fraction) {
            report.test_problems += 1;
            "test"
        } else {
            "train"
        };
        let p = b.add_problem(ProblemInfo {
            problem_id: format!("gsm8k-test-{:04}", lineno - 1),
            dataset: "gsm8k".into(),
            split: split.into(),
            weak_model: format!("GPT-3 6B ({})", opts.variant.weak_field()),
            strong_model: format!("GPT-3 175B ({})", opts.variant.strong_field()),
            prm_model: PRM_MODEL.into(),
        });
        let mut sampler = Sampler {
            obs: &obs,
            rng: Rng::stream(opts.seed, (lineno - 1) as u64),
            with_text: opts.with_text,
        };
        let mut tw = b.tree(p);
        build_tree(&mut tw, &rec.weak, &rec.strong, &mut sampler);
        report.nodes += tw.len();
        count(&mut report, &rec);
    }
    if report.problems == 0 {
        return Err(DataError::file(&path, "no problems in file"));
    }
    b.meta_mut().params = serde_json::json!({
        "variant": opts.variant.name(),
        "weak_field": opts.variant.weak_field(),
        "strong_field": opts.variant.strong_field(),
        "seed": opts.seed,
        "test_fraction": opts.test_fraction,
        "with_text": opts.with_text,
        "step_segmentation": "one line = one step (final `A:` line included)",
        "alignment": "j = floor(t * Ls / Lw); after a switch only regenerate is available",
        "switch_outcome": "strong_correct if weak prefix on-chain else strong_correct && weak_correct",
        "split": "test iff first 8 bytes of sha256(question) / 2^64 < test_fraction",
        "problems": report.problems,
        "nodes": report.nodes,
    });
    Ok((b.finish(), report))
}

/// Add one record's upstream counts to the summary.
fn count(report: &mut Report, rec: &Record) {
    report.problems += 1;
    report.weak_correct += usize::from(rec.weak.correct);
    report.strong_correct += usize::from(rec.strong.correct);
    report.weak_steps += rec.weak.steps.len();
    report.strong_steps += rec.strong.steps.len();
    report.weak_off_chain += rec.weak.steps.iter().filter(|s| !s.on_chain).count();
    report.strong_off_chain += rec.strong.steps.iter().filter(|s| !s.on_chain).count();
    report.strong_tokens += rec
        .strong
        .steps
        .iter()
        .map(|s| u64::from(s.tokens))
        .sum::<u64>();
}

/// The provenance of the dataset: what is real, what is synthetic, and the sources.
fn describe(opts: &Options, path: &Path) -> Result<Meta> {
    let mut meta = Meta::new(format!("gsm8k-paired-{}", opts.variant));
    meta.description = format!(
        "GSM8K test problems with real GPT-3 6B (weak) and 175B (strong) solutions ({} variant), \
         one line = one step, arranged as suffix-switch trees: regenerate at weak step t hands \
         the rest of the solution to the 175B model from its aligned step floor(t*Ls/Lw); every \
         175B step is paid. See data/docs/gsm8k-paired.md.",
        opts.variant
    );
    meta.real = vec![
        "step texts, segmentation (one line = one step) and order of the 6B and 175B solutions"
            .into(),
        "token counts of every step (cl100k BPE on the real step text)".into(),
        "final-answer correctness of the all-weak path (6B) and of the all-strong path (175B), \
         upstream is_correct"
            .into(),
    ];
    meta.synthetic = vec![
        "PRM scores: drawn from the TRIM math-train Qwen2.5-Math-PRM-7B observation model given \
         the step state and the running minimum of the chosen path"
            .into(),
        "step states S0/S1/S2: first off-chain calculator result heuristic (result not among \
         the ground truth's intermediate results)"
            .into(),
        "counterfactual alignment: the 175B step at floor(t*Ls/Lw) stands in for the strong \
         regeneration of weak step t, and the 175B suffix for everything after it"
            .into(),
        "outcomes of switches at t > 0: 175B correctness if the weak prefix is on-chain, else \
         175B and 6B correctness"
            .into(),
        "weak candidates at post-switch nodes (continue masked): 6B step at index \
         floor(k*Lw/Ls), observation only"
            .into(),
    ];
    meta.tokenizer = TOKENIZER_NAME.into();
    meta.sources = vec![
        SourceRef {
            name: format!("gsm8k_model_solutions/{SOLUTIONS_FILE}"),
            origin: UPSTREAM_ORIGIN.into(),
            sha256: Some(sha256_file(path)?),
        },
        SourceRef {
            name: "trim_official/math-train_obs_distributions_bin_size_0.05.json".into(),
            origin: MATH_TRAIN_ORIGIN.into(),
            sha256: Some(sha256_hex(MATH_TRAIN_JSON.as_bytes())),
        },
    ];
    meta.command = opts.command.clone();
    Ok(meta)
}

/// Deterministic split from the question text alone: the first 8 bytes of sha256(question) as a
/// fraction of 2^64 (the first 16 hex digits are those bytes, big-endian).
fn in_test(question: &str, fraction: f64) -> bool {
    let hex = sha256_hex(question.as_bytes());
    let top = hex.chars().take(16).fold(0u64, |acc, c| {
        (acc << 4) | u64::from(c.to_digit(16).unwrap_or(0))
    });
    (top as f64 / 2f64.powi(64)) < fraction
}

#[cfg(test)]
mod tests;
