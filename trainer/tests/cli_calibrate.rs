//! `trim data calibrate --check` end to end: the release's real TRIM-Thr curve beside a world's,
//! the sampling-noise section, curves of your own; and `trim data stats`'s masked-regenerate
//! rate.

mod train_support;

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `trim data calibrate --check` replays the release's 21 thresholds and puts them beside the
/// real MATH-500 curve; `trim data stats` reports the masked-regenerate rate of budgeted TRIM-Thr.
#[test]
fn calibrate_check_and_masked_regenerate_rate() {
    let root = repo_root();
    let ok = |args: &[&str]| train_support::ok(&root, args);
    let data = root.join("data/sets/gsm8k-paired.parquet");
    let data = data.to_str().unwrap();
    let check = |extra: &[&str]| {
        let base = ["data", "calibrate", "--check", data, "--split", "all"];
        ok(&[&base[..], extra].concat())
    };
    let out = check(&["--json"]);
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = c["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 21);
    assert_eq!(rows[0][0]["accuracy"], 0.364);
    assert_eq!(rows[20][0]["cost_fraction"], 1.0);
    // Threshold 0 is weak-only and threshold 1 strong-only in the world too.
    assert_eq!(rows[0][1]["strong_calls"], 0.0);
    assert_eq!(rows[20][1]["cost_fraction"], 1.0);
    // GPT-3 on GSM8K is nothing like Qwen on MATH-500: the verdict says so.
    assert_eq!(c["pass"], false);
    // The real curve's cost per strong call over its 19 routed thresholds.
    assert_eq!(c["per_call"]["thresholds"], 19);
    let real_mean = c["per_call"]["real_mean"].as_f64().unwrap();
    assert!((real_mean - 0.148).abs() < 1e-3, "{real_mean}");
    // The vendored curve says its runs had 500 problems (num_correct ÷ accuracy): the check
    // draws the world's own 500-problem runs; GPT-3's curve is far outside their noise.
    let z = &c["noise"];
    assert_eq!(
        (z["problems"].as_u64(), z["draws"].as_u64()),
        (Some(500), Some(1000))
    );
    assert_eq!(z["sd"]["fresh"].as_array().unwrap().len(), 21);
    assert_eq!(z["paired"]["cost"]["as_far_as_real"], 0.0);
    let table = check(&[]);
    assert!(table.contains("verdict: outside the tolerances"), "{table}");
    assert!(
        table.contains("sampling noise: 1000 runs of 500 problems"),
        "{table}"
    );
    assert!(table.contains("paired: within tolerance"), "{table}");
    // A curve whose lines do not say how many problems they ran gets no noise section.
    let d = std::env::temp_dir().join(format!("trim-curve-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let curve = d.join("c.jsonl");
    let line = |k: f64, tokens: f64| {
        format!(
            "{{\"threshold\":{k},\"accuracy\":0.5,\"avg_target_tokens_per_question\":{tokens},\"avg_target_calls_per_question\":1}}\n"
        )
    };
    std::fs::write(&curve, line(0.5, 10.0) + &line(1.0, 100.0)).unwrap();
    let own = check(&["--curve", curve.to_str().unwrap(), "--json"]);
    let own: serde_json::Value = serde_json::from_str(&own).unwrap();
    assert_eq!(own["rows"].as_array().unwrap().len(), 2);
    assert!(own["noise"].is_null(), "{own}");
    let _ = std::fs::remove_dir_all(&d);
    assert!(table.contains("cost per strong call over the 19 routed thresholds: real 0.148"));
    let o = train_support::trim(
        &root,
        &["data", "calibrate", "--check", data, "--split", "nope"],
    );
    assert_eq!(o.status.code(), Some(1), "a clean error, not a crash");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("no problems in split `nope`"), "{e}");

    let stats = ok(&["data", "stats", data, "--json"]);
    let s: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let m = &s["masked_regenerate"];
    assert_eq!(m["max_calls"], 4);
    assert_eq!(m["by_threshold"].as_array().unwrap().len(), 21);
    // Suffix-switch trees offer regenerate on every node of every path.
    assert_eq!(m["worst"][1], 0.0);
    let synth = repo_root().join("data/sets/synth-math.parquet");
    let stats = ok(&["data", "stats", synth.to_str().unwrap()]);
    assert!(stats.contains("masked regen"), "{stats}");
}
