//! Shared helpers of the `train_*` tests: a small synthetic dataset with a real routing
//! trade-off, and run-directory comparisons.
//!
//! Trees follow a latent step-correctness model: a solution of `L` steps is correct iff every
//! kept step is correct; a weak step is correct with probability `p_w`, a strong one with
//! `p_s`; the PRM score is high for steps that keep the solution correct and low otherwise
//! (noisy). Once an earlier step is wrong, regenerating later steps cannot help — the case
//! where history (min PRM) beats a myopic threshold.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trim_data::{CandidateRec, DatasetBuilder, Meta, ProblemInfo, TreeWriter};
use trim_env::{Action, Rng};

/// A tiny schedule on `data` (the `make_dataset(…, 60, …)` sets): 48 train-split problems − 5
/// held out = 43 → 6 updates per pass × 2 passes = 12 updates, checkpoints at 4, 8, 12.
pub fn tiny_config(data: &Path) -> trim::TrainConfig {
    trim::TrainConfig {
        data: data.to_path_buf(),
        test_data: trim::config::TestData::SameAsData,
        batch_episodes: 8,
        minibatch_episodes: 8,
        passes: 2,
        val_every: 4,
        checkpoint_every: 4,
        lr: 3e-3,
        ..trim::TrainConfig::default()
    }
}

/// Options of a new run `out/name`.
pub fn run_opts(out: &Path, name: &str) -> trim::RunOptions {
    trim::RunOptions {
        out_root: out.to_path_buf(),
        name: Some(name.into()),
        ..trim::RunOptions::default()
    }
}

/// Options resuming a run directory or checkpoint in place (`name` None) or forking it into
/// `name` beside the run directory it names, stopping after `stop` updates if given.
pub fn resume_opts(run_or_ckpt: &Path, name: Option<&str>, stop: Option<u64>) -> trim::RunOptions {
    trim::RunOptions {
        resume: Some(run_or_ckpt.to_path_buf()),
        out_root: run_or_ckpt.parent().unwrap().to_path_buf(),
        name: name.map(String::from),
        stop_after_updates: stop,
        ..trim::RunOptions::default()
    }
}

/// Run the real `trim` binary in `dir` (with the backend chosen by flags, not the environment).
pub fn trim(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trim"))
        .args(args)
        .current_dir(dir)
        .env_remove("TRIM_BACKEND")
        .output()
        .expect("run trim")
}

/// Run `trim` and return its stdout, failing the test with its stderr if it fails.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = trim(dir, args);
    assert!(
        o.status.success(),
        "trim {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trim-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn prm(ok: bool, rng: &mut Rng) -> f32 {
    let x = if ok {
        0.55 + 0.45 * rng.f32()
    } else {
        0.5 * rng.f32()
    };
    // A little label noise so the threshold is not perfect.
    if rng.f32() < 0.1 { 1.0 - x } else { x }
}

fn candidate(tokens: u32, prm: f32, finished: bool) -> CandidateRec {
    CandidateRec {
        tokens,
        prm,
        finished,
        state: None,
        text: None,
        hash: None,
        judge_score: None,
        mean_logprob: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn grow(
    t: &mut TreeWriter<'_>,
    parent: Option<(u32, Action)>,
    depth: u16,
    len: u16,
    ok_so_far: bool,
    p_w: f32,
    rng: &mut Rng,
) {
    let wc = rng.f32() < p_w;
    let sc = rng.f32() < 0.97;
    let last = depth + 1 == len;
    // Draw order (tokens, then PRM; weak, then strong) fixes the generated data.
    let weak = candidate(
        20 + (rng.f32() * 60.0) as u32,
        prm(ok_so_far && wc, rng),
        last,
    );
    let strong = candidate(
        30 + (rng.f32() * 50.0) as u32,
        prm(ok_so_far && sc, rng),
        last,
    );
    let node = match parent {
        None => t.root(weak, Some(strong)),
        Some((p, a)) => t.child(p, a, weak, Some(strong)),
    };
    if last {
        t.set_outcome(node, Action::Continue, ok_so_far && wc);
        t.set_outcome(node, Action::Regenerate, ok_so_far && sc);
    } else {
        grow(
            t,
            Some((node, Action::Continue)),
            depth + 1,
            len,
            ok_so_far && wc,
            p_w,
            rng,
        );
        grow(
            t,
            Some((node, Action::Regenerate)),
            depth + 1,
            len,
            ok_so_far && sc,
            p_w,
            rng,
        );
    }
}

/// Write a dataset of `n` problems (80 % `train`, 20 % `test`), `trees` sample trees each, to
/// `dir/name.jsonl`; returns its path.
pub fn make_dataset(dir: &Path, name: &str, n: usize, trees: usize, seed: u64) -> PathBuf {
    let mut b = DatasetBuilder::new(Meta::new(name));
    let mut rng = Rng::new(seed);
    for i in 0..n {
        let p = b.add_problem(ProblemInfo {
            problem_id: format!("p{i}"),
            dataset: name.into(),
            split: if i % 5 == 4 { "test" } else { "train" }.into(),
            weak_model: "w".into(),
            strong_model: "s".into(),
            prm_model: "prm".into(),
        });
        let len = 3 + rng.below(3) as u16;
        let p_w = 0.7 + 0.25 * rng.f32();
        for _ in 0..trees {
            let mut t = b.tree(p);
            grow(&mut t, None, 0, len, true, p_w, &mut rng);
        }
    }
    let path = dir.join(format!("{name}.jsonl"));
    trim_data::io::write_dataset(&path, &b.finish()).unwrap();
    path
}

/// `metrics.csv` without the wall-clock (`time/*`) columns, the only ones allowed to differ
/// between two runs with the same seed.
pub fn metrics_without_time(run_dir: &Path) -> String {
    let text = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].starts_with("time/"))
        .collect();
    assert!(keep.len() + 2 == header.len(), "{header:?}");
    std::iter::once(header)
        .chain(lines.map(|l| l.split(',').collect()))
        .map(|cols: Vec<&str>| keep.iter().map(|&i| cols[i]).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join("\n")
}

/// All parameter values of a checkpoint's network, in module order.
pub fn weights_of(ckpt: &Path) -> Vec<f32> {
    weights_of_as::<trim::family::agg::Agg>(ckpt)
}

/// Every parameter of a checkpoint of family `F`, flattened.
pub fn weights_of_as<F: trim::family::Family>(ckpt: &Path) -> Vec<f32> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.extend(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap(),
            );
        }
    }
    let device = trim::backend::Backend::Flex.device().unwrap();
    let (model, _) = trim::checkpoint::load_model_as::<F>(ckpt, &device).unwrap();
    let mut c = Collect(vec![]);
    model.visit(&mut c);
    c.0
}

/// A Python interpreter that can import `modules` (comma-separated): `$TRIM_PYTHON`, else
/// `/root/.cache/trim-venv/bin/python`, else `python3`.
pub fn python_with(modules: &str) -> Option<PathBuf> {
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("TRIM_PYTHON") {
        cands.push(p.into());
    }
    cands.push("/root/.cache/trim-venv/bin/python".into());
    cands.push("python3".into());
    cands.into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", &format!("import {modules}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// `trim train` on `dir/tiny.jsonl` with a short schedule (12 updates) at λ = 1e-3.
pub const TINY_TRAIN: &[&str] = &[
    "train",
    "--quiet",
    "--data=tiny.jsonl",
    "--batch-episodes=8",
    "--passes=2",
    "--val-every=4",
    "--lr=3e-3",
    "--lambda=1e-3",
];

/// Run [`TINY_TRAIN`] as run `name` with `extra` flags, failing the test if it fails.
pub fn train_tiny(dir: &Path, name: &str, extra: &[&str]) {
    let mut args = TINY_TRAIN.to_vec();
    args.extend(["--name", name]);
    args.extend(extra);
    ok(dir, &args);
}

/// The tiny dataset `dir/tiny.jsonl`, a full tiny TRIM-Agg run `dir/checkpoints/p` (12
/// updates) and its export in `dir/exp`, through the binary.
pub fn train_and_export_tiny(dir: &Path) {
    make_dataset(dir, "tiny", 60, 2, 7);
    ok(
        dir,
        &[
            "train",
            "--quiet",
            "--name",
            "p",
            "--data=tiny.jsonl",
            "--batch-episodes=8",
            "--passes=2",
            "--val-every=4",
            "--checkpoint-every=4",
            "--lr=3e-3",
        ],
    );
    ok(
        dir,
        &[
            "export",
            "--checkpoint",
            "checkpoints/p/final",
            "--out",
            "exp",
        ],
    );
}
