//! `trim train` through the real binary: an end-to-end run on a tiny dataset, the run
//! directory it writes, config files, and configuration errors caught before training.

mod train_support;

use std::path::Path;

use train_support::{make_dataset, metrics_without_time, ok, tmpdir, trim};

fn fails(dir: &Path, args: &[&str]) -> String {
    let o = trim(dir, args);
    assert!(!o.status.success(), "trim {args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

const TINY: &[&str] = &[
    "--data=tiny.jsonl",
    "--batch-episodes=8",
    "--passes=2",
    "--val-every=4",
    "--checkpoint-every=5",
    "--lr=3e-3",
];

#[test]
fn end_to_end_run_writes_the_run_directory() {
    let d = tmpdir("cli-e2e");
    make_dataset(&d, "tiny", 60, 2, 7);
    let mut args = vec!["train", "--quiet", "--name", "run1"];
    args.extend(TINY);
    let out = ok(&d, &args);
    assert!(out.starts_with("finished 12 updates"), "{out}");
    let run = d.join("checkpoints/run1");
    for f in ["config.toml", "metrics.csv", "summary.json"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    for c in [
        "best",
        "final",
        "checkpoints/update_000005",
        "checkpoints/update_000010",
    ] {
        for f in ["model.bpk", "optim.bpk", "state.json", "SHA256SUMS"] {
            assert!(run.join(c).join(f).is_file(), "{c}/{f} missing");
        }
    }
    // The final update is always checkpointed too.
    assert!(run.join("checkpoints/update_000012").is_dir());

    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for needle in [
        "lambda = 0.0008",
        "batch_episodes = 8",
        "[provenance]",
        "command_line = \"trim train --quiet --name run1 --data=tiny.jsonl",
        "crate_version = ",
        "git_revision = ",
        "backend = \"flex\"",
    ] {
        assert!(
            config.contains(needle),
            "config.toml lacks {needle}:\n{config}"
        );
    }

    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header = metrics.lines().next().unwrap();
    for col in [
        "train/policy_loss",
        "train/value_loss",
        "train/entropy",
        "train/approx_kl",
        "train/clip_fraction",
        "train/explained_variance",
        "train/lr",
        "rollout/reward",
        "rollout/accuracy",
        "rollout/strong_token_frac",
        "rollout/strong_calls",
        "time/steps_per_s",
        "val/reward",
    ] {
        assert!(header.split(',').any(|c| c == col), "no column {col}");
    }
    assert_eq!(metrics.lines().count(), 13);
    // Validation cells are filled exactly on updates 4, 8, 12 (and the last).
    let cols: Vec<&str> = header.split(',').collect();
    let vr = cols.iter().position(|c| *c == "val/reward").unwrap();
    let filled: Vec<usize> = metrics
        .lines()
        .skip(1)
        .enumerate()
        .filter(|(_, l)| !l.split(',').nth(vr).unwrap().is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(filled, vec![4, 8, 12]);
    // Losses are finite numbers.
    for l in metrics.lines().skip(1) {
        let v: f64 = l.split(',').nth(4).unwrap().parse().unwrap();
        assert!(v.is_finite());
    }

    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "finished");
    assert_eq!(s["updates_done"], 12);
    assert_eq!(s["val"]["problems"], 5);
    assert_eq!(s["test"]["split"], "test");
    assert_eq!(s["test"]["problems"], 12);
    assert!(s["best"]["reward"].as_f64().is_some());
    assert!(s["val"]["best_threshold"]["reward"].as_f64().is_some());
    assert!(s["timing"]["updates_per_s"].as_f64().unwrap() > 0.0);

    // The run's own config.toml repeats the run exactly.
    ok(
        &d,
        &[
            "train",
            "-q",
            "--name",
            "run2",
            "--config",
            "checkpoints/run1/config.toml",
        ],
    );
    assert_eq!(
        metrics_without_time(&run),
        metrics_without_time(&d.join("checkpoints/run2"))
    );

    // Same name again: refused, nothing overwritten.
    let mut again = vec!["train", "-q", "--name", "run1"];
    again.extend(TINY);
    let e = fails(&d, &again);
    assert!(
        e.contains("already exists") && e.contains("--resume"),
        "{e}"
    );
    // Resume with a changed hyper-parameter: refused.
    let e = fails(
        &d,
        &["train", "--resume", "checkpoints/run1", "--lambda=1e-3"],
    );
    assert!(
        e.contains("own configuration") && e.contains("lambda"),
        "{e}"
    );
    // Resume of a finished run is a no-op that keeps it finished.
    let out = ok(&d, &["train", "-q", "--resume", "checkpoints/run1"]);
    assert!(out.starts_with("finished 12 updates"), "{out}");
}

#[test]
fn invalid_configuration_is_rejected_before_training() {
    let d = tmpdir("cli-config");
    make_dataset(&d, "tiny", 60, 1, 8);
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--lambda=-1e-4"]);
    assert!(e.contains("lambda") && e.contains(">= 0"), "{e}");
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--lambda", "abc"]);
    assert!(e.contains("--lambda"), "{e}");
    // Batch larger than the 43 training problems left after the hold-out.
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--batch-episodes=50"]);
    assert!(
        e.contains("batch_episodes: 50 is larger than the 43 training problems"),
        "{e}"
    );
    std::fs::write(d.join("bad.toml"), "lambda = 1e-3\nbatch_size = 64\n").unwrap();
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--config", "bad.toml"]);
    assert!(
        e.contains("bad.toml") && e.contains("unknown field `batch_size`"),
        "{e}"
    );
    std::fs::write(d.join("typed.toml"), "seed = -3\n").unwrap();
    let e = fails(
        &d,
        &["train", "--data=tiny.jsonl", "--config", "typed.toml"],
    );
    assert!(e.contains("typed.toml") && e.contains("seed"), "{e}");
    let e = fails(&d, &["train", "--data=missing.parquet"]);
    assert!(e.contains("missing.parquet"), "{e}");
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--train-split", "nope"]);
    assert!(e.contains("no problems in split `nope`"), "{e}");
    // Defects 5, 7 and 10: limits and split names checked before anything is created.
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--hidden=2048"]);
    assert!(e.contains("hidden: 2048") && e.contains("1024"), "{e}");
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--lambda=1e308"]);
    assert!(e.contains("lambda") && e.contains("<= 1"), "{e}");
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--test-split", "tets"]);
    assert!(
        e.contains("no split `tets`") && e.contains("test: 12, train: 48"),
        "{e}"
    );
    let e = fails(&d, &["train", "--data=tiny.jsonl", "--backend", "cuda"]);
    assert!(e.contains("unknown backend"), "{e}");
    // Nothing was created by any of the failures.
    assert!(
        !d.join("checkpoints").exists()
            || std::fs::read_dir(d.join("checkpoints"))
                .unwrap()
                .next()
                .is_none()
    );
    // --help shows the doc comments with defaults.
    let help = ok(&d, &["train", "--help"]);
    assert!(help.contains("--lambda <LAMBDA>"), "{help}");
    assert!(help.contains("Cost per strong token"), "{help}");
    assert!(help.contains("[default: 8e-4]"), "{help}");
}

/// `--test-split none` skips the test evaluation and is written back as `none`; a run that
/// diverges (defect 7: a huge --lr used to end in "action regenerate is masked" or NaN weights) exits
/// non-zero naming the update and the quantity, with summary.json marked failed.
#[test]
fn no_test_split_and_divergence_through_the_binary() {
    let d = tmpdir("cli-none");
    make_dataset(&d, "tiny", 60, 1, 9);
    let base = ["--data=tiny.jsonl", "--batch-episodes=8", "--passes=1"];
    let mut args = vec!["train", "-q", "--name", "none", "--test-split", "none"];
    args.extend(base);
    ok(&d, &args);
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("checkpoints/none/summary.json")).unwrap(),
    )
    .unwrap();
    assert!(
        s["test"].is_null() && s["val"]["split"] == "validation",
        "{s}"
    );
    let config = std::fs::read_to_string(d.join("checkpoints/none/config.toml")).unwrap();
    assert!(config.contains("test_split = \"none\""), "{config}");

    let mut args = vec!["train", "-q", "--name", "nan", "--lr=1e30"];
    args.extend(base);
    let e = fails(&d, &args);
    assert!(e.contains("training diverged at update"), "{e}");
    assert!(!e.contains("is masked"), "{e}");
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("checkpoints/nan/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["status"], "failed");
    assert!(s["error"].as_str().unwrap().contains("diverged"), "{s}");
}
