//! `trim collect` through the real binary against the fake OpenAI-compatible + pooling server
//! on 127.0.0.1: collect → `trim data validate` → `trim train --stop-after-updates 5` →
//! `trim export`; and kill -9 in the middle, then resume: the dataset equals an uninterrupted
//! run's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod train_support;

use train_support::{ok, tmpdir, trim};
use trim_collect::fake::world::problem_file;
use trim_collect::fake::{FakeServer, FakeWorld, Faults};

/// `trim collect --config collect.toml --out OUT --quiet EXTRA…` in `d`; its output.
fn collect(d: &Path, out: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "collect",
        "--config",
        "collect.toml",
        "--out",
        out,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ok(d, &args)
}

/// A collect.toml for the fake server.
fn write_config(dir: &Path, srv: &FakeServer, extra: &str) {
    let url = srv.url();
    let text = format!(
        "problems = \"problems.jsonl\"\nseed = 3\n\
         [weak]\nmodel = \"fake-weak\"\nurl = \"{url}/v1\"\n\
         [strong]\nmodel = \"fake-strong\"\nurl = \"{url}/v1\"\napi = \"chat\"\n\
         [prm]\nmodel = \"fake-prm\"\nurl = \"{url}\"\n\
         [expand]\nmax_regens = 2\n{extra}"
    );
    std::fs::write(dir.join("collect.toml"), text).unwrap();
}

#[test]
fn collect_validate_train_export() {
    let d = tmpdir("e2e");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    std::fs::write(d.join("problems.jsonl"), problem_file(40)).unwrap();
    write_config(&d, &srv, "");
    let out = collect(&d, "trees.parquet", &[]);
    assert!(out.contains("collected 40 problems"), "{out}");
    let v = ok(&d, &["data", "validate", "trees.parquet"]);
    assert!(v.contains("checksum verified"), "{v}");
    let stats = ok(&d, &["data", "stats", "trees.parquet"]);
    assert!(stats.contains("coverage"), "{stats}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&d, &["data", "stats", "--json", "trees.parquet"])).unwrap();
    assert_eq!(json["params"]["strong"]["model"], "fake-strong");
    assert_eq!(json["params"]["counts"]["problems"], 40);
    assert!(
        json["command"]
            .as_str()
            .unwrap()
            .starts_with("trim collect")
    );
    train_and_export(&d);
    // The exported policy guides a second, focused collection round.
    let out = collect(
        &d,
        "round2.parquet",
        &[
            "--strategy",
            "policy",
            "--policy",
            "exp",
            "--set",
            "expand.episodes=2",
            "--set",
            "expand.epsilon=0.2",
        ],
    );
    assert!(out.contains("collected 40 problems"), "{out}");
    ok(&d, &["data", "validate", "round2.parquet"]);
    // Bad input: a damaged problem file is named with its line, nothing is written.
    std::fs::write(d.join("bad.jsonl"), "{\"id\": 1, \"question\": \"q\"}\n").unwrap();
    let o = trim(
        &d,
        &[
            "collect",
            "--config",
            "collect.toml",
            "--problems",
            "bad.jsonl",
            "--out",
            "x.parquet",
        ],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("bad.jsonl") && e.contains("line 1"),
        "{e}"
    );
    assert!(!d.join("x.parquet").exists());
    std::fs::remove_dir_all(&d).unwrap();
}

/// `trim train --stop-after-updates 5` on the collected trees, then `trim export` into `exp/`.
fn train_and_export(d: &Path) {
    let train = ok(
        d,
        &[
            "train",
            "--quiet",
            "--name",
            "c",
            "--data=trees.parquet",
            "--batch-episodes=8",
            "--passes=3",
            "--val-every=5",
            "--checkpoint-every=5",
            "--stop-after-updates",
            "5",
        ],
    );
    let ckpt = "checkpoints/c/checkpoints/update_000005";
    assert!(
        d.join(ckpt).is_dir(),
        "{train}\n{}",
        walk(&d.join("checkpoints"))
    );
    let e = ok(d, &["export", "--checkpoint", ckpt, "--out", "exp"]);
    assert!(d.join("exp/policy.json").is_file(), "{e}");
}

fn shards(work: &Path) -> usize {
    std::fs::read_dir(work).map_or(0, |rd| {
        rd.filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.starts_with("shard-") && n.ends_with(".jsonl")
            })
            .count()
    })
}

#[test]
fn kill_9_then_resume_equals_an_uninterrupted_run() {
    let d = tmpdir("kill");
    let faults = Faults {
        latency_ms: 3,
        ..Faults::default()
    };
    let srv = FakeServer::start(FakeWorld::default(), faults).unwrap();
    std::fs::write(d.join("problems.jsonl"), problem_file(24)).unwrap();
    write_config(&d, &srv, "[run]\nshard_size = 1\nproblems_in_flight = 2\n");
    collect(&d, "a.parquet", &[]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_trim"))
        .args([
            "collect",
            "--config",
            "collect.toml",
            "--out",
            "b.parquet",
            "--quiet",
        ])
        .current_dir(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let work = d.join("b.parquet.collect");
    let t = Instant::now();
    while shards(&work) < 4 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run finished before it could be killed"
    );
    assert!(!d.join("b.parquet").exists());
    let committed = shards(&work);
    assert!(
        (4..24).contains(&committed),
        "{committed} shards at the kill"
    );

    let out = collect(&d, "b.parquet", &[]);
    assert!(out.contains("were already committed"), "{out}");
    let a = trim_data::load(&d.join("a.parquet")).unwrap().ds;
    let b = trim_data::load(&d.join("b.parquet")).unwrap().ds;
    assert_eq!(a.problems, b.problems);
    assert_eq!(
        a.rows, b.rows,
        "the resumed dataset differs from the uninterrupted one"
    );
    assert_eq!(a.meta.params, b.meta.params);
    std::fs::remove_dir_all(&d).unwrap();
}

fn walk(p: &Path) -> String {
    let mut s = String::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            s.push_str(&format!("{}\n", e.path().display()));
            if e.path().is_dir() {
                s.push_str(&walk(&e.path()));
            }
        }
    }
    s
}

#[test]
fn judge_flags_and_logprobs_fill_the_signal_columns() {
    let d = tmpdir("signals");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    std::fs::write(d.join("problems.jsonl"), problem_file(6)).unwrap();
    write_config(&d, &srv, "");
    let judge_url = format!("{}/v1", srv.url());
    let out = collect(
        &d,
        "signals.parquet",
        &[
            "--judge-url",
            &judge_url,
            "--judge-model",
            "fake-judge",
            "--set",
            "signals.logprobs=true",
        ],
    );
    assert!(
        out.contains("judge requests:") && out.contains("judge "),
        "{out}"
    );
    ok(&d, &["data", "validate", "signals.parquet"]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&d, &["data", "stats", "--json", "signals.parquet"])).unwrap();
    let p = &json["params"];
    assert_eq!(p["signals"]["logprobs"], true);
    assert_eq!(p["judge"]["model"], "fake-judge");
    assert_eq!(p["judge"]["url"], judge_url.as_str());
    let rows = trim_data::load(&d.join("signals.parquet")).unwrap().ds.rows;
    assert!(
        rows.iter()
            .all(|r| r.weak.judge_score.is_some() && r.weak.mean_logprob.is_some())
    );
    std::fs::remove_dir_all(&d).unwrap();
}
