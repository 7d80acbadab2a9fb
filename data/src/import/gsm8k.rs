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

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;
use trim_env::{Action, Rng};

use crate::build::{DatasetBuilder, TreeWriter};
use crate::error::{DataError, Loc, Result};
use crate::io::{sha256_file, text_hash};
use crate::obs_model::{MATH_TRAIN_JSON, MATH_TRAIN_ORIGIN, ObsModel};
use crate::schema::{CandidateRec, Dataset, Meta, ProblemInfo, SourceRef, state};
use crate::tokenizer::{TOKENIZER_NAME, TokenCounter};

/// File name of the paired solutions inside the raw directory.
pub const SOLUTIONS_FILE: &str = "example_model_solutions.jsonl";
/// Upstream origin of [`SOLUTIONS_FILE`].
pub const UPSTREAM_ORIGIN: &str = "github.com/openai/grade-school-math commit 3101c7d5072418e28b9008a6636bde82a006892c, grade_school_math/data/example_model_solutions.jsonl (MIT)";
/// PRM model named in the problem rows: the scores are synthetic draws from its observation model.
pub const PRM_MODEL: &str = "synthetic: Qwen2.5-Math-PRM-7B observation model (TRIM math-train KDE), by heuristic step state";

/// Which pair of upstream solutions to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// One sample of each fine-tuned model (`6b_finetuning` / `175b_finetuning`).
    Finetuning,
    /// Verifier-selected best of 100 samples (`6b_verification` / `175b_verification`).
    Verification,
}

impl Variant {
    /// Upstream field name of the weak solution.
    pub fn weak_field(self) -> &'static str {
        match self {
            Variant::Finetuning => "6b_finetuning",
            Variant::Verification => "6b_verification",
        }
    }

    /// Upstream field name of the strong solution.
    pub fn strong_field(self) -> &'static str {
        match self {
            Variant::Finetuning => "175b_finetuning",
            Variant::Verification => "175b_verification",
        }
    }

    /// Name used on the command line and in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Finetuning => "finetuning",
            Variant::Verification => "verification",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "finetuning" => Ok(Variant::Finetuning),
            "verification" => Ok(Variant::Verification),
            _ => Err(format!(
                "unknown variant `{s}`: expected finetuning or verification"
            )),
        }
    }
}

/// Importer settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub variant: Variant,
    /// Seed of the PRM-score draws (one RNG stream per upstream line).
    pub seed: u64,
    /// Fraction of problems put in the `test` split (by a hash of the question text, so the split
    /// does not move with the seed or the variant).
    pub test_fraction: f64,
    /// Store step texts (otherwise only their hashes).
    pub with_text: bool,
    /// The command that regenerates the dataset (recorded in the metadata).
    pub command: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            variant: Variant::Finetuning,
            seed: 0,
            test_fraction: 0.2,
            with_text: false,
            command: String::new(),
        }
    }
}

/// What the import read and built, for the command's summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub problems: usize,
    pub test_problems: usize,
    pub nodes: usize,
    /// Upstream `is_correct` counts of the weak / strong solutions.
    pub weak_correct: usize,
    pub strong_correct: usize,
    /// Steps (lines) of all weak / strong solutions.
    pub weak_steps: usize,
    pub strong_steps: usize,
    /// Weak / strong steps judged off-chain by the heuristic.
    pub weak_off_chain: usize,
    pub strong_off_chain: usize,
    /// Sum of the token counts of all strong solutions (= always-strong cost).
    pub strong_tokens: u64,
}

/// One step (line) of an upstream solution.
#[derive(Clone, Debug)]
struct Step {
    text: String,
    tokens: u32,
    /// The heuristic's verdict: calculator results on the ground-truth chain.
    on_chain: bool,
    /// Last line of the solution: the episode ends when it is kept.
    finished: bool,
}

#[derive(Clone, Debug)]
struct Solution {
    steps: Vec<Step>,
    correct: bool,
}

/// Running context of one path: what a new candidate's state and PRM draw depend on.
#[derive(Clone, Copy, Debug)]
struct PathCtx {
    min_prev: f32,
    has_error: bool,
}

impl PathCtx {
    const START: PathCtx = PathCtx {
        min_prev: 1.0,
        has_error: false,
    };

    /// The context after `c` was kept.
    fn after(self, c: &CandidateRec) -> PathCtx {
        PathCtx {
            min_prev: self.min_prev.min(c.prm),
            has_error: self.has_error || c.state != Some(state::S0),
        }
    }
}

/// Samples candidates in the context of a path.
struct Sampler<'a> {
    obs: &'a ObsModel,
    rng: Rng,
    with_text: bool,
}

impl Sampler<'_> {
    fn cand(&mut self, step: &Step, ctx: PathCtx, finished: bool) -> CandidateRec {
        let s = if ctx.has_error {
            state::S1
        } else if step.on_chain {
            state::S0
        } else {
            state::S2
        };
        CandidateRec {
            tokens: step.tokens,
            prm: self.obs.sample(s, ctx.min_prev, &mut self.rng),
            finished,
            state: Some(s),
            text: self.with_text.then(|| step.text.clone()),
            hash: Some(text_hash(&step.text)),
        }
    }
}

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
            sha256: Some(sha256_file(&path)?),
        },
        SourceRef {
            name: "trim_official/math-train_obs_distributions_bin_size_0.05.json".into(),
            origin: MATH_TRAIN_ORIGIN.into(),
            sha256: Some(sha256_hex(MATH_TRAIN_JSON.as_bytes())),
        },
    ];
    meta.command = opts.command.clone();

    let mut b = DatasetBuilder::new(meta);
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

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// Deterministic split from the question text alone.
fn in_test(question: &str, fraction: f64) -> bool {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(question.as_bytes());
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(x) as f64 / 2f64.powi(64)) < fraction
}

struct Record {
    question: String,
    weak: Solution,
    strong: Solution,
}

fn parse_record(
    path: &Path,
    lineno: usize,
    line: &str,
    variant: Variant,
    counter: &TokenCounter,
) -> Result<Record> {
    let err = |field: Option<&str>, reason: String| {
        DataError::new(path, Loc::Line(lineno), field, reason)
    };
    let v: Value = serde_json::from_str(line).map_err(|e| err(None, format!("bad JSON: {e}")))?;
    let str_field = |obj: &Value, name: &str, field: &str| -> Result<String> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(err(Some(field), "expected a string".into())),
            None => Err(err(Some(field), "missing field".into())),
        }
    };
    let question = str_field(&v, "question", "question")?;
    let gt_text = str_field(&v, "ground_truth", "ground_truth")?;
    let gt = ground_truth_results(&gt_text);
    let solution = |name: &str| -> Result<Solution> {
        let obj = v
            .get(name)
            .ok_or_else(|| err(Some(name), "missing field".into()))?;
        let sol_field = format!("{name}.solution");
        let ok_field = format!("{name}.is_correct");
        let text = str_field(obj, "solution", &sol_field)?;
        let correct = match obj.get("is_correct") {
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(err(Some(&ok_field), "expected a boolean".into())),
            None => return Err(err(Some(&ok_field), "missing field".into())),
        };
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .collect();
        if lines.is_empty() {
            return Err(err(
                Some(&sol_field),
                "solution has no non-empty line".into(),
            ));
        }
        let n = lines.len();
        let steps = lines
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let finished = k + 1 == n;
                Step {
                    text: (*l).to_string(),
                    tokens: counter.count(l),
                    // The finishing line carries the answer: on-chain iff the answer is right.
                    on_chain: if finished {
                        correct
                    } else {
                        line_on_chain(l, &gt)
                    },
                    finished,
                }
            })
            .collect();
        Ok(Solution { steps, correct })
    };
    Ok(Record {
        question,
        weak: solution(variant.weak_field())?,
        strong: solution(variant.strong_field())?,
    })
}

/// Write the tree of one problem (see the module doc for the construction).
fn build_tree(tw: &mut TreeWriter<'_>, weak: &Solution, strong: &Solution, s: &mut Sampler<'_>) {
    let lw = weak.steps.len();
    let ls = strong.steps.len();
    let mut ctx = PathCtx::START;
    let mut prev: Option<u32> = None;
    let mut prefix_on_chain = true;
    for t in 0..lw {
        let wstep = &weak.steps[t];
        let j = t * ls / lw;
        let w = s.cand(wstep, ctx, wstep.finished);
        let sc = s.cand(&strong.steps[j], ctx, strong.steps[j].finished);
        let after_switch = ctx.after(&sc);
        let node = match prev {
            None => tw.root(w.clone(), Some(sc)),
            Some(pn) => tw.child(pn, Action::Continue, w.clone(), Some(sc)),
        };
        if wstep.finished {
            tw.set_outcome(node, Action::Continue, weak.correct);
        }
        let switch_correct = strong.correct && (prefix_on_chain || weak.correct);
        if strong.steps[j].finished {
            tw.set_outcome(node, Action::Regenerate, switch_correct);
        }
        // The 175B suffix after the switch: regenerate only.
        let mut sctx = after_switch;
        let mut parent = node;
        for k in j + 1..ls {
            let stand_in = &weak.steps[(k * lw / ls).min(lw - 1)];
            let sw = s.cand(stand_in, sctx, false);
            let ss = s.cand(&strong.steps[k], sctx, strong.steps[k].finished);
            let next_ctx = sctx.after(&ss);
            let n = tw.child(parent, Action::Regenerate, sw, Some(ss));
            if strong.steps[k].finished {
                tw.set_outcome(n, Action::Regenerate, switch_correct);
            }
            sctx = next_ctx;
            parent = n;
        }
        ctx = ctx.after(&w);
        prefix_on_chain &= wstep.on_chain;
        prev = Some(node);
    }
}

/// Calculator results of the ground truth plus its final answer: the "chain" of the heuristic.
fn ground_truth_results(gt: &str) -> Vec<f64> {
    let mut out: Vec<f64> = annotation_results(gt).into_iter().flatten().collect();
    for l in gt.lines() {
        if let Some(a) = l.trim().strip_prefix("A:").and_then(parse_number) {
            out.push(a);
        }
    }
    out
}

/// Results of every `<<expr=result>>` annotation in `text` (None when not a plain number).
fn annotation_results(text: &str) -> Vec<Option<f64>> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(start) = rest.find("<<") {
        let inner = &rest[start + 2..];
        let Some(end) = inner.find(">>") else { break };
        let ann = &inner[..end];
        out.push(ann.rsplit_once('=').and_then(|(_, r)| parse_number(r)));
        rest = &inner[end + 2..];
    }
    out
}

/// A plain number, tolerating `$`, `%`, thousands commas and a trailing period.
fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s
        .trim()
        .trim_end_matches('.')
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | '%' | ' '))
        .collect();
    cleaned.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A non-final line is on-chain when every judgeable calculator result is a ground-truth result;
/// a line without judgeable annotations is neutral (on-chain).
fn line_on_chain(line: &str, gt: &[f64]) -> bool {
    annotation_results(line)
        .into_iter()
        .flatten()
        .all(|r| gt.iter().any(|&g| (r - g).abs() <= 1e-6 * g.abs().max(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate;
    use trim_env::{EvalOptions, RefPolicy, evaluate};

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("trim-gsm8k-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn sol(text: &str, ok: bool) -> Value {
        serde_json::json!({ "is_correct": ok, "solution": text })
    }

    /// Three upstream-format problems: (weak wrong, strong right), (weak right, strong wrong),
    /// and a one-line strong solution.
    fn sample_lines() -> Vec<Value> {
        let gt1 =
            "She has 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\nA: 18";
        let gt2 = "It takes 2/2=<<2/2=1>>1 bolt\nSo 2+1=<<2+1=3>>3 bolts\nA: 3";
        let gt3 = "He has 5+5=<<5+5=10>>10 apples\nA: 10";
        let q = |s: &str| serde_json::Value::String(s.into());
        vec![
            serde_json::json!({
                "question": q("Janet's ducks lay 16 eggs per day ..."),
                "ground_truth": gt1,
                "6b_finetuning": sol("She has 16 - 3 = <<16-3=13>>13 eggs left\nShe makes 13 * 2 = $<<13*2=26>>26\nA: 26", false),
                "175b_finetuning": sol("She uses 3 + 4 = <<3+4=7>>7 eggs\n16 - 7 = <<16-7=9>>9 are for sale\nShe makes 2 * 9 = $<<2*9=18>>18\nA: 18", true),
                "6b_verification": sol("A: 18", true),
                "175b_verification": sol("A: 18", true),
            }),
            serde_json::json!({
                "question": q("A robe takes 2 bolts of blue fiber ..."),
                "ground_truth": gt2,
                "6b_finetuning": sol("It takes 2*1/2=<<2*1/2=1.0>>1 bolt\nSo 2+1=<<2+1=3>>3 bolts\nA: 3", true),
                "175b_finetuning": sol("It takes 2/2 = <<2/2=1.0>>1 bolt\nA bolt is 100/2 = <<100/2=50.0>>50 meters\nSo 2*100 = <<2*100=200>>200\nA: 250", false),
                "6b_verification": sol("A: 3", true),
                "175b_verification": sol("A: 3", true),
            }),
            serde_json::json!({
                "question": q("John has 5 apples and buys 5 more ..."),
                "ground_truth": gt3,
                "6b_finetuning": sol("He buys 5 apples\nHe has 5*5=<<5*5=25>>25 apples\nA: 25", false),
                "175b_finetuning": sol("A: 10", true),
                "6b_verification": sol("A: 10", true),
                "175b_verification": sol("A: 10", true),
            }),
        ]
    }

    fn write_sample(name: &str) -> PathBuf {
        let d = tmpdir(name);
        let text: String = sample_lines().iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(d.join(SOLUTIONS_FILE), text).expect("write sample");
        d
    }

    fn tokens(text: &str) -> u32 {
        TokenCounter::new().count(text)
    }

    #[test]
    fn heuristic_marks_first_off_chain_step() {
        let gt = ground_truth_results("a <<16-3-4=9>>9\nb $<<9*2=18>>18\nA: 18");
        assert_eq!(gt, vec![9.0, 18.0, 18.0]);
        assert!(line_on_chain("x <<2*9=18.0>>18", &gt));
        assert!(!line_on_chain("x <<16-3=13>>13", &gt));
        assert!(line_on_chain("no annotation here", &gt));
        assert!(line_on_chain("odd <<2/3>> annotation", &gt));
        assert_eq!(parse_number(" $1,000. "), Some(1000.0));
        assert_eq!(parse_number("1/2"), None);
    }

    #[test]
    fn trees_have_suffix_switch_structure() {
        let d = write_sample("structure");
        let (ds, rep) = import(&d, &Options::default()).expect("import");
        assert_eq!(rep.problems, 3);
        assert_eq!(ds.problems.len(), 3);
        // Problem 0: Lw = 3, Ls = 4. j(t) = 0, 1, 2; suffix nodes 3 + 2 + 1; total 3 + 6 = 9.
        // Problem 1: Lw = 3, Ls = 4 → 9 nodes. Problem 2: Lw = 3, Ls = 1 → 3 nodes.
        let count = |p: u32| ds.rows.iter().filter(|r| r.problem == p).count();
        assert_eq!((count(0), count(1), count(2)), (9, 9, 3));
        assert_eq!(rep.nodes, 21);
        let rows0: Vec<_> = ds.rows.iter().filter(|r| r.problem == 0).collect();
        // Post-switch nodes offer only regenerate: their weak stand-in is unfinished and they
        // have no continue child.
        for r in &rows0 {
            if r.action == Some(1) {
                assert!(!r.weak.finished);
                assert!(r.continue_correct.is_none());
                assert!(
                    rows0
                        .iter()
                        .all(|c| c.parent != Some(r.node) || c.action == Some(1))
                );
            }
        }
        // Weak chain states: step 0 off-chain (13 not in {9, 18}) = S2, then S1.
        let chain: Vec<_> = rows0.iter().filter(|r| r.action != Some(1)).collect();
        assert_eq!(chain.len(), 3);
        let st: Vec<_> = chain.iter().map(|r| r.weak.state).collect();
        assert_eq!(st, vec![Some(2), Some(1), Some(1)]);
        assert_eq!(
            chain[0].weak.tokens,
            tokens("She has 16 - 3 = <<16-3=13>>13 eggs left")
        );
        assert_eq!(
            chain[0].weak.hash.as_deref(),
            Some(text_hash("She has 16 - 3 = <<16-3=13>>13 eggs left").as_str())
        );
        assert!(chain[0].weak.text.is_none());
        // Switch outcomes: at t = 0 the prefix is empty → 175B correct; at t ≥ 1 the prefix
        // holds an off-chain step and the 6B answer is wrong → conservative rule gives wrong.
        let l = validate(Path::new("mem"), ds.clone()).expect("valid trees");
        let f = &l.forest;
        let root = f.root(0);
        assert_eq!(f.mask(root), [true, true]);
        let mut tr = vec![];
        for first_switch in 0..3u16 {
            let mut node = root;
            let mut depth = 0u16;
            let correct = loop {
                let a = if depth >= first_switch {
                    Action::Regenerate
                } else {
                    Action::Continue
                };
                match f.branch(node, a) {
                    trim_env::Branch::Node(n) => node = n,
                    trim_env::Branch::Outcome(c) => break c,
                    trim_env::Branch::Absent => panic!("absent branch"),
                }
                if depth >= first_switch {
                    assert_eq!(
                        f.mask(node),
                        [false, true],
                        "post-switch node must be forced"
                    );
                }
                depth += 1;
            };
            tr.push(correct);
        }
        assert_eq!(tr, vec![true, false, false]);
    }

    #[test]
    fn anchors_equal_upstream_solutions() {
        let d = write_sample("anchors");
        let opts = Options {
            with_text: true,
            ..Options::default()
        };
        let (ds, rep) = import(&d, &opts).expect("import");
        let l = validate(Path::new("mem"), ds).expect("valid trees");
        let all: Vec<u32> = (0..3).collect();
        let run = |p: RefPolicy| {
            evaluate(&l.forest, &all, &p, EvalOptions::default()).expect("masks obeyed")
        };
        let weak = run(RefPolicy::Weak);
        let strong = run(RefPolicy::Strong);
        let acc = |o: &[trim_env::ProblemOutcome]| o.iter().map(|x| x.accuracy).collect::<Vec<_>>();
        assert_eq!(acc(&weak), vec![0.0, 1.0, 0.0]);
        assert_eq!(acc(&strong), vec![1.0, 0.0, 1.0]);
        assert!(weak.iter().all(|o| o.strong_tokens == 0.0));
        // Always-strong pays every 175B step, and takes exactly Ls steps.
        let lines = sample_lines();
        for (p, v) in lines.iter().enumerate() {
            let text = v["175b_finetuning"]["solution"].as_str().expect("str");
            let want: u32 = text.lines().map(tokens).sum();
            assert_eq!(strong[p].strong_tokens, f64::from(want), "problem {p}");
            assert_eq!(strong[p].steps, text.lines().count() as f64);
            assert_eq!(strong[p].strong_calls, strong[p].steps);
        }
        assert_eq!(
            rep.strong_tokens as f64,
            strong.iter().map(|o| o.strong_tokens).sum::<f64>()
        );
        // --with-text keeps the real lines on the chosen candidates.
        let root = &l.ds.rows[l.forest_row[l.forest.root(0) as usize] as usize];
        assert_eq!(
            root.weak.text.as_deref(),
            Some("She has 16 - 3 = <<16-3=13>>13 eggs left")
        );
        assert_eq!(
            root.strong.as_ref().and_then(|s| s.text.as_deref()),
            Some("She uses 3 + 4 = <<3+4=7>>7 eggs")
        );
    }

    #[test]
    fn deterministic_by_seed_and_split_by_text() {
        let d = write_sample("determinism");
        let opts = Options::default();
        let (a, _) = import(&d, &opts).expect("import");
        let (b, _) = import(&d, &opts).expect("import");
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.problems, b.problems);
        let (c, _) = import(
            &d,
            &Options {
                seed: 1,
                ..opts.clone()
            },
        )
        .expect("import");
        assert_ne!(a.rows, c.rows, "another seed draws other PRM scores");
        // Only PRM scores move with the seed; the split does not.
        assert_eq!(a.problems, c.problems);
        let strip = |rows: &[crate::NodeRow]| {
            rows.iter()
                .map(|r| {
                    (
                        r.node,
                        r.parent,
                        r.weak.tokens,
                        r.weak.state,
                        r.continue_correct,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&a.rows), strip(&c.rows));
        let all_test = import(
            &d,
            &Options {
                test_fraction: 1.0,
                ..opts.clone()
            },
        )
        .expect("import")
        .0;
        assert!(all_test.problems.iter().all(|p| p.split == "test"));
        let none_test = import(
            &d,
            &Options {
                test_fraction: 0.0,
                ..opts
            },
        )
        .expect("import")
        .0;
        assert!(none_test.problems.iter().all(|p| p.split == "train"));
    }

    #[test]
    fn bad_records_name_line_and_field() {
        let d = tmpdir("bad");
        let mut lines = sample_lines();
        lines[1]["175b_finetuning"]
            .as_object_mut()
            .expect("object")
            .remove("is_correct");
        let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(d.join(SOLUTIONS_FILE), text).expect("write");
        let e = import(&d, &Options::default()).expect_err("must fail");
        assert_eq!(e.details().loc, Loc::Line(2));
        assert_eq!(
            e.details().field.as_deref(),
            Some("175b_finetuning.is_correct")
        );
        let e = import(
            &d,
            &Options {
                test_fraction: 1.5,
                ..Options::default()
            },
        )
        .expect_err("must fail");
        assert_eq!(e.details().field.as_deref(), Some("test_fraction"));
    }

    /// The shipped dataset keeps the upstream anchors (SOURCE.md pairing counts, finetuning
    /// variant): 6B right on 198 + 88 = 286 problems, 175B right on 260 + 198 = 458.
    #[test]
    fn shipped_dataset_keeps_upstream_anchors() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("sets/gsm8k-paired.parquet");
        let l = crate::load(&p).expect("shipped dataset loads");
        assert_eq!(l.forest.n_problems(), 1319);
        let all: Vec<u32> = (0..1319).collect();
        let correct = |p: RefPolicy| {
            evaluate(&l.forest, &all, &p, EvalOptions::default())
                .expect("masks obeyed")
                .iter()
                .map(|o| o.accuracy)
                .sum::<f64>()
        };
        assert_eq!(correct(RefPolicy::Weak), 286.0);
        assert_eq!(correct(RefPolicy::Strong), 458.0);
    }
}
