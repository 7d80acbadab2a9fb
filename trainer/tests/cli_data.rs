//! End-to-end tests of the real `trim` binary on small data: data tools, eval, errors, --help.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn trim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trim"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("TRIM_ALLOW_UNVERIFIED")
        .output()
        .expect("run trim")
}

/// `trim` with unverified datasets allowed through the environment (commands without the
/// `--allow-unverified` flag, such as `eval`, reading the hand-written toy file).
fn trim_unverified(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trim"))
        .args(args)
        .current_dir(repo_root())
        .env("TRIM_ALLOW_UNVERIFIED", "1")
        .output()
        .expect("run trim")
}

fn fails(o: Output) -> String {
    assert!(!o.status.success(), "should fail");
    assert_eq!(o.status.code(), Some(1), "a clean error, not a crash");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ok(args: &[&str]) -> String {
    succeeded(args, trim(args))
}

fn ok_unverified(args: &[&str]) -> String {
    succeeded(args, trim_unverified(args))
}

fn succeeded(args: &[&str], o: Output) -> String {
    assert!(
        o.status.success(),
        "trim {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trim-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Hand-written, so it has no checksum: it loads only when unverified files are allowed.
const TOY: &str = "data/examples/toy.jsonl";

#[test]
fn validate_convert_stats_round_trip() {
    let d = tmp("convert");
    let err = fails(trim(&["data", "validate", TOY]));
    assert!(
        err.contains("no integrity checksum") && err.contains("--allow-unverified"),
        "{err}"
    );
    let out = ok(&["data", "validate", "--allow-unverified", TOY]);
    assert!(
        out.contains("ok (1 problems, 1 sample trees, 3 nodes; UNVERIFIED: no checksum)"),
        "{out}"
    );
    let pq = d.join("toy.parquet");
    ok(&[
        "data",
        "convert",
        "--allow-unverified",
        TOY,
        pq.to_str().unwrap(),
    ]);
    let out = ok(&["data", "validate", pq.to_str().unwrap()]);
    assert!(out.contains("3 nodes; checksum verified"), "{out}");
    // An existing output is never replaced without --force.
    let err = fails(trim(&[
        "data",
        "convert",
        pq.to_str().unwrap(),
        pq.to_str().unwrap(),
    ]));
    assert!(err.contains("refusing to overwrite"), "{err}");
    let back = d.join("toy.jsonl");
    ok(&[
        "data",
        "convert",
        pq.to_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    std::fs::write(&back, "stale").unwrap();
    ok(&[
        "data",
        "convert",
        "--force",
        pq.to_str().unwrap(),
        back.to_str().unwrap(),
    ]);
    ok(&["data", "validate", back.to_str().unwrap()]);
    let js: serde_json::Value =
        serde_json::from_str(&ok(&["data", "stats", pq.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(js["nodes"], 3);
    assert_eq!(js["always_weak"]["accuracy"], 0.0);
    assert_eq!(js["always_strong"]["accuracy"], 1.0);
    assert_eq!(js["always_strong"]["strong_tokens_per_problem"], 37.0);
    assert_eq!(js["prm"]["labelled"], 4);
    // S0 candidates (0.93, 0.97, 0.88) all above the one error (0.21).
    assert_eq!(js["prm"]["auroc_correct_vs_error"], 1.0);
    let table = ok(&["data", "stats", pq.to_str().unwrap()]);
    assert!(table.contains("always-strong  accuracy 100.0%"), "{table}");
}

#[test]
fn eval_reports_hand_computed_operating_points() {
    let d = tmp("eval");
    let json = d.join("eval.json");
    ok_unverified(&[
        "eval",
        "--data",
        TOY,
        "--split",
        "all",
        "--policy",
        "weak,strong,threshold:0.5,threshold:0.95",
        "--lambda",
        "0.01",
        "--json",
        json.to_str().unwrap(),
    ]);
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let get = |i: usize, k: &str| rows[i][k].as_f64().unwrap();
    // weak: continue → wrong; strong: regenerate (37 tokens) → correct.
    assert_eq!((get(0, "accuracy"), get(0, "cost_fraction")), (0.0, 0.0));
    assert_eq!((get(1, "accuracy"), get(1, "cost_fraction")), (1.0, 1.0));
    assert!((get(1, "reward") - (1.0 - 0.37)).abs() < 1e-9);
    // PRM 0.93 ≥ 0.5 → continue (wrong); 0.93 < 0.95 → regenerate (right).
    assert_eq!(get(2, "accuracy"), 0.0);
    assert_eq!(
        (get(3, "accuracy"), get(3, "strong_calls_per_problem")),
        (1.0, 1.0)
    );
}

#[test]
fn bad_input_fails_with_file_line_and_field() {
    let d = tmp("bad");
    let text = std::fs::read_to_string(repo_root().join(TOY)).unwrap();
    let bad = d.join("bad.jsonl");
    std::fs::write(&bad, text.replace("\"prm\": 0.21", "\"prm\": 1.21")).unwrap();
    let o = trim(&[
        "data",
        "validate",
        "--allow-unverified",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.jsonl: line 2 (problem `p1`, tree 0, node 1), field `weak_prm`"),
        "{err}"
    );
    let o = trim_unverified(&["eval", "--data", TOY, "--policy", "threshold:2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be in [0, 1]"));
    // The peer rules need their signal: refused by name on data without it, evaluated on a
    // world that draws it (judge 0 keeps every step: always-weak).
    let o = trim_unverified(&["eval", "--data", TOY, "--policy", "judge:0.5"]);
    assert!(fails(o).contains("judge_score"));
    let o = trim_unverified(&["eval", "--data", TOY, "--policy", "confidence:-0.5"]);
    assert!(fails(o).contains("mean_logprob"));
    let world = "synth:math500?problems=60&test_fraction=1";
    let rows = ok(&[
        "eval",
        "--data",
        world,
        "--policy",
        "weak,judge:0,confidence:-0.2",
    ]);
    let lines: Vec<&str> = rows.lines().filter(|l| l.contains('%')).collect();
    assert!(lines.len() >= 3, "{rows}");
    let acc = |l: &str| l.split_whitespace().nth(1).unwrap_or("").to_string();
    assert_eq!(acc(lines[0]), acc(lines[1]), "{rows}");
    let o = trim(&[
        "data",
        "validate",
        d.join("missing.parquet").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot open"));
}

#[test]
fn damaged_parquet_is_a_clean_error_and_bench_reports_throughput() {
    let d = tmp("damaged");
    let good = d.join("good.parquet");
    ok(&[
        "data",
        "synth",
        "--problems",
        "40",
        "--seed",
        "3",
        "--out",
        good.to_str().unwrap(),
    ]);
    let out = ok(&["data", "validate", "--bench", good.to_str().unwrap()]);
    assert!(
        out.contains("M nodes/s") && out.contains("bytes/node"),
        "{out}"
    );
    let bytes = std::fs::read(&good).unwrap();
    // Flip one bit at 40 places spread over the file, one copy each: each must exit 1 (or
    // load unchanged), never crash with exit 101.
    let bad = d.join("bad.parquet");
    let mut refused = 0;
    for at in (0..bytes.len()).step_by(bytes.len() / 40 + 1) {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        std::fs::write(&bad, &b).unwrap();
        let o = trim(&["data", "validate", bad.to_str().unwrap()]);
        match o.status.code() {
            Some(0) => {}
            Some(1) => refused += 1,
            c => panic!(
                "byte {at}: exit {c:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
        }
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains("panicked"),
            "byte {at}"
        );
    }
    assert!(refused > 0);
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["data", "--help"],
        vec!["data", "validate", "--help"],
        vec!["data", "stats", "--help"],
        vec!["data", "convert", "--help"],
        vec!["data", "synth", "--help"],
        vec!["data", "import", "--help"],
        vec!["data", "import", "processbench", "--help"],
        vec!["data", "import", "gsm8k-paired", "--help"],
        vec!["data", "import", "paths", "--help"],
        vec!["eval", "--help"],
        vec!["bench", "--help"],
        vec!["bench-kernels", "--help"],
    ] {
        let out = ok(&args);
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
}

/// `trim bench-kernels` times both paths on a small minibatch and reports positive figures;
/// bad sizes are refused.
#[test]
fn bench_kernels_times_both_paths() {
    let out = ok(&[
        "bench-kernels",
        "--rows",
        "24",
        "--steps",
        "3",
        "--population",
        "3",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let t = &v["single"];
    for k in ["burn_s", "fused_s", "fused_forward_s", "fused_backward_s"] {
        assert!(t[k].as_f64().unwrap() > 0.0, "{k}: {out}");
    }
    assert_eq!(t["rows"], 24);
    // One learner on both cores, where there are two (null on a one-core machine).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match t["fused_two_cores_s"].as_f64() {
        Some(s) => assert!(cores >= 2 && s > 0.0, "{out}"),
        None => assert!(cores < 2, "{out}"),
    }
    assert_eq!(v["population"]["members"], 3);
    assert!(
        v["population"]["steps_per_s"].as_f64().unwrap() > 0.0,
        "{out}"
    );
    assert!(fails(trim(&["bench-kernels", "--hidden", "0"])).contains("--hidden"));
}

/// `trim bench-train --population P` trains P runs through the sweep executor and counts all
/// their steps; burn and fused kernels both run; an impossible kernel choice is refused.
#[test]
fn bench_train_times_a_population_with_either_kernels() {
    let data = "synth:math-train?problems=120&test_fraction=0";
    let run = |kernels: &str, population: &str| -> serde_json::Value {
        let out = ok(&[
            "bench-train",
            "--data",
            data,
            "--updates",
            "3",
            "--batch-episodes",
            "8",
            "--kernels",
            kernels,
            "--population",
            population,
            "--json",
        ]);
        serde_json::from_str(out.trim()).unwrap()
    };
    let one = run("burn", "1");
    assert_eq!(
        (one["kernels"].as_str(), one["updates"].as_u64()),
        (Some("burn"), Some(3))
    );
    let pop = run("auto", "3");
    assert_eq!(pop["kernels"], "fused");
    assert_eq!(pop["population"], 3);
    // Three members of the same length of schedule: about three times one member's steps.
    let (s1, s3) = (
        one["env_steps"].as_f64().unwrap(),
        pop["env_steps"].as_f64().unwrap(),
    );
    assert!(s3 > 2.0 * s1 && s3 < 4.0 * s1, "{s1} vs {s3}");
    assert!(pop["ppo_gflop_per_s"].as_f64().unwrap() > 0.0);
    let e = fails(trim(&[
        "bench-train",
        "--policy",
        "seq",
        "--kernels",
        "fused",
        "--data",
        data,
    ]));
    assert!(e.contains("kernels") && e.contains("TRIM-Seq"), "{e}");
    let e = fails(trim(&["bench-train", "--population", "0", "--data", data]));
    assert!(e.contains("--population"), "{e}");
}

#[test]
fn synth_is_deterministic_and_feeds_eval_and_stats() {
    let d = tmp("synth");
    let (a, b, c) = (
        d.join("a.parquet"),
        d.join("b.parquet"),
        d.join("c.parquet"),
    );
    for (out, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        ok(&[
            "data",
            "synth",
            "--problems",
            "120",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
    }
    // The metadata differs only by the output path in the recorded command; the trees must not.
    let rows = |p: &PathBuf| trim_data::io::read_dataset(p).unwrap();
    let (da, db, dc) = (rows(&a), rows(&b), rows(&c));
    assert!(
        da.rows == db.rows && da.problems == db.problems,
        "same seed, same trees"
    );
    assert!(da.rows != dc.rows, "another seed, other trees");
    let js: serde_json::Value =
        serde_json::from_str(&ok(&["data", "stats", a.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(js["problems"], 120);
    assert_eq!(js["coverage"]["trees_with_all_strong_path"], 1.0);
    let weak = js["always_weak"]["accuracy"].as_f64().unwrap();
    let strong = js["always_strong"]["accuracy"].as_f64().unwrap();
    assert!(weak < strong, "{weak} {strong}");
    let json = d.join("sweep.json");
    ok(&[
        "eval",
        "--data",
        a.to_str().unwrap(),
        "--split",
        "all",
        "--threshold-sweep",
        "4",
        "--json",
        json.to_str().unwrap(),
    ]);
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2 + 5);
    // Threshold 0 never regenerates: it is always-weak.
    assert_eq!(rows[2]["accuracy"], rows[0]["accuracy"]);
    assert_eq!(rows[2]["cost_fraction"], 0.0);
    // Raising the threshold never lowers the cost on these trees.
    let costs: Vec<f64> = rows[2..]
        .iter()
        .map(|r| r["cost_fraction"].as_f64().unwrap())
        .collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1] + 1e-12), "{costs:?}");
}

/// `trim eval --budgets`: budgeted accuracy of the masked baselines and the budgeted hindsight
/// DP — zero budget is always-weak for everyone, the DP bounds every policy and grows with the
/// budget.
#[test]
fn budgeted_accuracy_table() {
    let d = std::env::temp_dir().join(format!("trim-eval-budgets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let json = d.join("b.json");
    let o = trim(&[
        "eval",
        "--data",
        &format!(
            "{}/../data/sets/synth-math.parquet",
            env!("CARGO_MANIFEST_DIR")
        ),
        "--policy",
        "weak",
        "--budgets",
        "0,150,600",
        "--budgets-json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("| policy | B = 0 | B = 150 | B = 600 |"),
        "{out}"
    );
    let pts: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let acc = |policy: &str, b: u64| {
        (pts.iter())
            .find(|p| p["policy"].as_str().unwrap().starts_with(policy) && p["budget"] == b)
            .unwrap()["accuracy"]
            .as_f64()
            .unwrap()
    };
    let weak = acc("always-strong", 0);
    for p in ["TRIM-Thr", "hindsight"] {
        assert_eq!(acc(p, 0), weak, "{p} at budget 0 is always-weak");
    }
    for b in [150, 600] {
        for p in ["always-strong", "TRIM-Thr"] {
            assert!(
                acc(p, b) <= acc("hindsight", b) + 1e-12,
                "{p} above the DP at {b}"
            );
        }
        for p in pts
            .iter()
            .filter(|p| p["budget"] == b && p["policy"] != "hindsight-optimal (budgeted DP)")
        {
            assert!(
                p["strong_tokens"].as_f64().unwrap() <= b as f64 + 1e-9,
                "{p}"
            );
        }
    }
    assert!(acc("hindsight", 600) >= acc("hindsight", 150));
    assert!(acc("hindsight", 150) > weak);
    std::fs::remove_dir_all(&d).unwrap();
}

/// `trim data tiers`: one static-track row per labelled step (1-based step indices, gold tier
/// low/high with the benchmark's ids, trim's observation), always-strong passes every row, and
/// an existing output file is refused, not overwritten.
#[test]
fn tiers_write_static_track_rows_and_score_the_baselines() {
    let dir = std::env::temp_dir().join(format!("trim-tiers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("rows.jsonl");
    let o = trim(&[
        "data",
        "tiers",
        "--data",
        "data/sets/synth-math.parquet",
        "--split",
        "test",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("| always-strong (high) | 100.0 |"), "{text}");
    assert!(text.contains("RSD δ = 0.7"), "{text}");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() > 100, "{}", rows.len());
    let mut expect_step = std::collections::HashMap::new();
    for r in &rows {
        let id = r["instance_id"].as_str().unwrap().to_string();
        let k = expect_step.entry(id).or_insert(1u64);
        assert_eq!(r["step_index"].as_u64(), Some(*k), "{r}");
        *k += 1;
        assert!(r["step_index"].as_u64() <= r["total_steps"].as_u64());
        let (tier, id) = (
            r["target_tier"].as_str().unwrap(),
            r["target_tier_id"].as_u64(),
        );
        assert!(
            (tier == "low" && id == Some(0)) || (tier == "high" && id == Some(3)),
            "{r}"
        );
        let prev = r["observation"]["prev_prm"].as_array().unwrap().len() as u64;
        assert_eq!(prev + 1, r["step_index"].as_u64().unwrap());
        assert_eq!(r["messages"][0]["role"], "user");
    }
    let again = trim(&[
        "data",
        "tiers",
        "--data",
        "data/sets/synth-math.parquet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(fails(again).contains("does not overwrite"));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        rows.len()
    );
}
