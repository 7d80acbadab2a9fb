//! TRIM-Seq from training to a decision: a tiny `policy = seq` run, `trim export`, `trim route
//! --export`, the numpy reference router and onnxruntime on `policy.onnx`
//! (`scripts/python/trim_seq_router.py`) agree within 1e-5 on histories of 1, 5 and 30 tokens
//! (and beyond the 32-token window); damaged exports are refused. The Python half runs when
//! numpy, safetensors and onnxruntime are importable (`TRIM_REQUIRE_PYTHON=1`, as in CI, makes
//! their absence a failure).

mod train_support;

use std::path::Path;
use std::process::Command;

use train_support::{make_dataset, ok, run_opts, tiny_config, tmpdir, trim};
use trim::config::PolicyKind;
use trim::train::AnyTrainer;
use trim_env::checksum::sha256_hex;

/// A trained tiny TRIM-Seq run's `best/`, exported with the binary.
fn export(work: &Path) -> std::path::PathBuf {
    let data = make_dataset(work, "tiny", 60, 2, 5);
    let cfg = trim::TrainConfig {
        policy: PolicyKind::Seq,
        seq_dim: 16,
        seq_ff: 32,
        ..tiny_config(&data)
    };
    AnyTrainer::new(cfg, run_opts(work, "run"))
        .unwrap()
        .run()
        .unwrap();
    let exp = work.join("export");
    let out = ok(
        work,
        &["export", "--checkpoint", "run/best", "--out", "export"],
    );
    assert!(out.contains("policy.safetensors"), "{out}");
    exp
}

/// Histories with 0, 4, 29 and 40 kept steps, as `trim route` JSON lines.
fn steps() -> String {
    let mut rng = trim_env::Rng::new(8);
    let mut text = String::new();
    for (i, t) in [0usize, 4, 29, 40, 1, 12].into_iter().enumerate() {
        let prev_prm: Vec<f32> = (0..t).map(|_| rng.f32()).collect();
        let prev_tokens: Vec<u32> = (0..t).map(|_| 1 + rng.below(400) as u32).collect();
        let prev_regenerated: Vec<bool> = (0..t).map(|_| rng.f32() < 0.3).collect();
        let step = serde_json::json!({
            "id": i, "prev_prm": prev_prm, "prev_tokens": prev_tokens,
            "prev_regenerated": prev_regenerated, "prm": rng.f32(), "tokens": 1 + rng.below(300),
        });
        text.push_str(&format!("{step}\n"));
    }
    text
}

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn route(work: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["route"];
    all.extend(args);
    trim(work, &all)
}

#[test]
fn seq_exports_route_identically_in_rust_and_python_and_refuse_damage() {
    let work = tmpdir("export-seq");
    let exp = export(&work);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exp.join("policy.json")).unwrap()).unwrap();
    assert_eq!(m["kind"], "trim-seq");
    assert_eq!(m["architecture"]["shape"]["dim"], 16);
    assert!(exp.join("policy.onnx").is_file());
    std::fs::write(work.join("steps.jsonl"), steps()).unwrap();
    let rust = route(
        &work,
        &["--export", "export", "--strict", "--input", "steps.jsonl"],
    );
    assert!(
        rust.status.success(),
        "{}",
        String::from_utf8_lossy(&rust.stderr)
    );
    let r = lines(&rust.stdout);
    assert_eq!(r.len(), 6);
    // A TRIM-Agg-style step without the Seq fields is an error answer, not a guess.
    let agg_style = "{\"prev_prm\":[0.5],\"prm\":0.5,\"tokens\":9}\n";
    std::fs::write(work.join("agg-style.jsonl"), agg_style).unwrap();
    let o = route(&work, &["--export", "export", "--input", "agg-style.jsonl"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("prev_tokens"));
    let bad = damaged_copies_are_refused(&work, &exp, &m);
    python_agrees(&work, &exp, &bad, &r);
}

/// A changed weight byte is refused by its checksum; re-signed in the manifest, by the parity
/// fixture. Returns the damaged directory.
fn damaged_copies_are_refused(
    work: &Path,
    exp: &Path,
    m: &serde_json::Value,
) -> std::path::PathBuf {
    let bad = work.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for f in [
        "policy.json",
        "policy.safetensors",
        "policy.onnx",
        "parity.json",
    ] {
        std::fs::copy(exp.join(f), bad.join(f)).unwrap();
    }
    let mut st = std::fs::read(bad.join("policy.safetensors")).unwrap();
    // The high byte of the first weight (embed.weight[0][0]; every logit depends on it).
    let header = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    st[8 + header + 3] ^= 0x20;
    std::fs::write(bad.join("policy.safetensors"), &st).unwrap();
    let o = route(work, &["--export", "bad", "--input", "steps.jsonl"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("sha256"), "{e}");
    let mut m2 = m.clone();
    m2["files"]["policy.safetensors"] = serde_json::json!(sha256_hex(&st));
    std::fs::write(bad.join("policy.json"), serde_json::to_vec(&m2).unwrap()).unwrap();
    let o = route(work, &["--export", "bad", "--input", "steps.jsonl"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("reproduce the exported logits") || e.contains("non-finite"),
        "{e}"
    );
    bad
}

/// The numpy and onnxruntime backends of the Python router give the Rust router's logits
/// within 1e-5 on every step, and refuse the damaged export.
fn python_agrees(work: &Path, exp: &Path, bad: &Path, rust: &[serde_json::Value]) {
    let Some(py) = train_support::python_with("numpy, safetensors, onnxruntime") else {
        assert!(
            std::env::var("TRIM_REQUIRE_PYTHON").is_err(),
            "TRIM_REQUIRE_PYTHON is set but no Python with numpy, safetensors, onnxruntime"
        );
        eprintln!("no Python with numpy + safetensors + onnxruntime: skipping the Python half");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python/trim_seq_router.py");
    for backend in ["numpy", "onnx"] {
        let o = Command::new(&py)
            .arg(&script)
            .arg(exp)
            .arg(backend)
            .stdin(std::fs::File::open(work.join("steps.jsonl")).unwrap())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let p = lines(&o.stdout);
        assert_eq!(p.len(), rust.len(), "{backend}");
        for (a, b) in rust.iter().zip(&p) {
            assert_eq!(a["id"], b["id"]);
            assert_eq!(a["action"], b["action"]);
            for k in 0..2 {
                let (x, y) = (
                    a["logits"][k].as_f64().unwrap(),
                    b["logits"][k].as_f64().unwrap(),
                );
                assert!(
                    (x - y).abs() <= 1e-5,
                    "{backend} step {}: {x} vs {y}",
                    a["id"]
                );
            }
        }
        let o = Command::new(&py)
            .arg(&script)
            .arg(bad)
            .arg(backend)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{backend} accepted a damaged export");
    }
}

/// Fuzz-style: any single changed, removed or inserted byte in any file of a TRIM-Seq export
/// is refused cleanly (never a panic), or — when it cannot matter (whitespace in JSON) — the
/// export loads and decides exactly as the original.
#[test]
fn random_byte_damage_to_a_seq_export_never_panics_or_changes_decisions() {
    let work = tmpdir("export-seq-fuzz");
    let exp = export(&work);
    let original = trim_router::Policy::load(&exp).unwrap();
    let steps = trim_router::seq_export::parity_steps();
    let decide = |p: &trim_router::Policy| -> Vec<trim_router::PolicyDecision> {
        steps.iter().map(|s| p.decide_step(s).unwrap()).collect()
    };
    let want = decide(&original);
    let files = [
        "policy.json",
        "policy.safetensors",
        "policy.onnx",
        "parity.json",
    ];
    let bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(exp.join(f)).unwrap())
        .collect();
    let bad = work.join("fuzz");
    std::fs::create_dir_all(&bad).unwrap();
    let mut rng = trim_env::Rng::new(21);
    let (mut refused, mut loaded) = (0, 0);
    for round in 0..240 {
        let k = round % files.len();
        for (f, b) in files.iter().zip(&bytes) {
            std::fs::write(bad.join(f), b).unwrap();
        }
        let mut b = bytes[k].clone();
        let i = rng.below(b.len() as u64) as usize;
        match rng.below(3) {
            0 => b[i] = b[i].wrapping_add(1 + rng.below(255) as u8),
            1 => {
                b.remove(i);
            }
            _ => b.insert(i, b"0 {\"\n"[rng.below(5) as usize]),
        }
        std::fs::write(bad.join(files[k]), &b).unwrap();
        match std::panic::catch_unwind(|| trim_router::Policy::load(&bad)) {
            Err(_) => panic!("{} byte {i} panicked", files[k]),
            Ok(Err(_)) => refused += 1,
            Ok(Ok(p)) => {
                loaded += 1;
                assert_eq!(decide(&p), want, "{} byte {i} changed decisions", files[k]);
            }
        }
    }
    assert!(refused > 200, "{refused} refused, {loaded} loaded");
}

/// Three interleaved 35-step episodes as `--sessions` lines (new numbers only) and as
/// whole-history lines for the same decisions.
fn interleaved_episodes() -> (String, String) {
    let mut rng = trim_env::Rng::new(17);
    let (mut session_lines, mut whole_lines) = (String::new(), String::new());
    let mut hist: Vec<(Vec<f32>, Vec<u32>, Vec<bool>)> = vec![Default::default(); 3];
    for _ in 0..35 {
        for (e, h) in hist.iter_mut().enumerate() {
            let (prm, tokens) = (rng.f32(), 1 + rng.below(300));
            session_lines.push_str(&format!(
                "{}\n",
                serde_json::json!({"session": format!("e{e}"), "prm": prm, "tokens": tokens})
            ));
            whole_lines.push_str(&format!(
                "{}\n",
                serde_json::json!({"id": format!("e{e}"), "prev_prm": h.0, "prev_tokens": h.1,
                    "prev_regenerated": h.2, "prm": prm, "tokens": tokens})
            ));
            let r = rng.f32() < 0.3;
            let kept = (
                if r { rng.f32() } else { prm },
                if r {
                    1 + rng.below(300) as u32
                } else {
                    tokens as u32
                },
            );
            session_lines.push_str(&format!(
                "{}\n",
                serde_json::json!({"session": format!("e{e}"),
                    "kept": {"prm": kept.0, "tokens": kept.1, "regenerated": r}})
            ));
            h.0.push(kept.0);
            h.1.push(kept.1);
            h.2.push(r);
        }
    }
    (session_lines, whole_lines)
}

/// `trim route --sessions`: three interleaved episodes sending only their new numbers get
/// exactly the decisions of the stateless whole-history call.
#[test]
fn route_sessions_decide_as_the_whole_history_does() {
    let work = tmpdir("route-sessions");
    export(&work);
    let (session_lines, whole_lines) = interleaved_episodes();
    std::fs::write(work.join("sessions.jsonl"), &session_lines).unwrap();
    std::fs::write(work.join("whole.jsonl"), &whole_lines).unwrap();
    let s = trim(
        &work,
        &[
            "route",
            "--export",
            "export",
            "--sessions",
            "--strict",
            "--input",
            "sessions.jsonl",
        ],
    );
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let w = trim(
        &work,
        &[
            "route",
            "--export",
            "export",
            "--strict",
            "--input",
            "whole.jsonl",
        ],
    );
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let decisions: Vec<serde_json::Value> = lines(&s.stdout)
        .into_iter()
        .filter(|v| v.get("action").is_some())
        .collect();
    let whole = lines(&w.stdout);
    assert_eq!(decisions.len(), 105);
    for (a, b) in decisions.iter().zip(&whole) {
        assert_eq!(a["session"], b["id"]);
        assert_eq!(a["logits"], b["logits"], "{a} vs {b}");
    }
}

/// `trim route --sessions` answers bad lines with an error naming the session, opens a session
/// only with a valid decision, and holds the open-session limit.
#[test]
fn route_sessions_answer_bad_lines_and_hold_the_limit() {
    let work = tmpdir("route-sessions-bad");
    export(&work);
    let bad = [
        "{\"session\":\"x\",\"kept\":{\"prm\":0.5,\"tokens\":3,\"regenerated\":false}}",
        "{\"session\":\"x\",\"prm\":1.5,\"tokens\":3}",
        "{\"session\":\"x\",\"prm\":0.5}",
        "{\"session\":\"x\",\"prm\":0.5,\"tokens\":3,\"extra\":1}",
        "{\"session\":\"x\",\"end\":true}",
        "{\"session\":\"y\",\"prm\":0.5,\"tokens\":3}",
        "{\"session\":\"z\",\"prm\":0.5,\"tokens\":3}",
    ]
    .join("\n");
    std::fs::write(work.join("bad.jsonl"), bad).unwrap();
    let o = trim(
        &work,
        &[
            "route",
            "--export",
            "export",
            "--sessions",
            "--max-sessions",
            "1",
            "--input",
            "bad.jsonl",
        ],
    );
    assert!(o.status.success());
    let out = lines(&o.stdout);
    assert_eq!(out.len(), 7);
    for (i, v) in out.iter().enumerate() {
        assert_eq!(v.get("error").is_none(), i == 5, "line {}: {v}", i + 1);
    }
    assert!(
        out[4]["error"]
            .as_str()
            .unwrap()
            .contains("no open session"),
        "{}",
        out[4]
    );
    assert!(out[6]["error"].as_str().unwrap().contains("max-sessions"));
    assert_eq!(out[0]["id"], "x");
}
