//! λ-conditioned TRIM-Agg through the binary: `trim train --lambda-range`, its summary's λ
//! curve, determinism, export (safetensors + ONNX + parity), `trim route` with λ (and the
//! refusals), the Python router's parity with λ, and `trim report` against per-λ runs.

mod train_support;

use std::path::Path;
use std::process::Command;

use train_support::{
    TINY_TRAIN as TRAIN, make_dataset, ok, python_with, tmpdir, train_tiny as train, trim,
    weights_of_as,
};
use trim::family::agg_lambda::AggLambda;

fn summary(dir: &Path, run: &str) -> serde_json::Value {
    let p = dir.join("checkpoints").join(run).join("summary.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn route(dir: &Path, export: &str, extra: &[&str], input: &str) -> (bool, String, String) {
    let inp = dir.join("steps.jsonl");
    std::fs::write(&inp, input).unwrap();
    let mut args = vec!["route", "--export", export, "--input", "steps.jsonl"];
    args.extend(extra);
    let o = trim(dir, &args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn conditioned_runs_train_export_route_and_report() {
    let d = tmpdir("conditioned");
    make_dataset(&d, "tiny", 60, 2, 7);
    train(&d, "c", &["--lambda-range=1e-4:1e-2"]);
    train(&d, "c2", &["--lambda-range=1e-4:1e-2"]);
    train(&d, "p", &[]);

    // Summary: the λ curve over the 8-point validation grid, on validation and test.
    let s = summary(&d, "c");
    let curve = s["val"]["lambda_curve"].as_array().unwrap();
    assert_eq!(curve.len(), 8);
    assert!((curve[0]["lambda"].as_f64().unwrap() - 1e-4).abs() < 1e-12);
    assert!((curve[7]["lambda"].as_f64().unwrap() - 1e-2).abs() < 1e-12);
    assert!(summary(&d, "p")["val"].get("lambda_curve").is_none());
    // Same seed, same weights.
    let w = |r: &str| weights_of_as::<AggLambda>(&d.join("checkpoints").join(r).join("final"));
    assert_eq!(w("c"), w("c2"));

    // Bad ranges are refused, naming the field.
    let e = trim(&d, &[TRAIN, &["--lambda-range=1e-2:1e-4"]].concat());
    assert!(String::from_utf8_lossy(&e.stderr).contains("need 0 < LO < HI"));
    let e = trim(&d, &[TRAIN, &["--lambda-range=1e-5:1e-4"]].concat());
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("outside lambda_range"),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
    let e = trim(
        &d,
        &[TRAIN, &["--budget-range=0:400", "--policy=seq"]].concat(),
    );
    assert!(String::from_utf8_lossy(&e.stderr).contains("TRIM-Agg only"));

    conditioned_export_and_route(&d);
    // Report: the conditioned policy acts at each per-λ run's λ and is compared with them.
    let rep = ok(
        &d,
        &[
            "report",
            "--data=tiny.jsonl",
            "--split=all",
            "--runs",
            "checkpoints/c",
            "--runs",
            "checkpoints/p",
            "--pomdp-fit-data=none",
            "--out",
            "rep",
        ],
    );
    assert!(
        rep.contains("λ-conditioned TRIM-Agg against the envelope"),
        "{rep}"
    );
    assert!(rep.contains("c lambda=1.000e-3"), "{rep}");
    // The TwinRouterBench table: the anchors, RSD's default point, TRIM-Thr's best point, the
    // plain run and the conditioned run at its best λ.
    for row in [
        "| always-strong (high) | 100.0 |",
        "| RSD (δ = 0.70, i.e. TRIM-Thr 0.70) |",
        "best combined of 51) |",
        "TRIM-Agg p (greedy) |",
        "TRIM-Agg (λ-conditioned) c (lambda=",
    ] {
        assert!(rep.contains(row), "{row}: {rep}");
    }

    // Calibration moves λ (the threshold stays); decisions without λ then act at it.
    let out = ok(
        &d,
        &[
            "calibrate",
            "--export",
            "expc",
            "--data",
            "tiny.jsonl",
            "--target",
            "cost=0.3",
        ],
    );
    assert!(out.contains("at threshold 0.500000"), "{out}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expc/policy.json")).unwrap())
            .unwrap();
    let cal = &m["calibration"];
    let lam = cal["lambda"].as_f64().unwrap();
    assert!((1e-4..=1e-2).contains(&lam), "{cal}");
    assert!(cal["achieved"].as_f64().unwrap() <= 0.3 + 1e-12, "{cal}");
    let line = "{\"id\":1,\"prev_prm\":[0.8],\"prm\":0.4,\"tokens\":30}\n";
    let (_, default, _) = route(&d, "expc", &[], line);
    let named =
        format!("{{\"id\":1,\"prev_prm\":[0.8],\"prm\":0.4,\"tokens\":30,\"lambda\":{lam}}}\n");
    let (_, explicit, _) = route(&d, "expc", &[], &named);
    assert!(default.contains("\"action\""), "{default}");
    assert_eq!(default, explicit);
}

/// Export the conditioned run `c` and the plain run `p`, route through both (λ given, missing,
/// out of range, refused), and check Python's decisions against Rust's.
fn conditioned_export_and_route(d: &Path) {
    let d = d.to_path_buf();
    // Export: the manifest names the λ input and its range; the router verifies parity.
    for (run, out) in [("c", "expc"), ("p", "expp")] {
        let ck = format!("checkpoints/{run}/best");
        ok(
            &d,
            &[
                "export",
                "--checkpoint",
                &ck,
                "--format",
                "all",
                "--out",
                out,
            ],
        );
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expc/policy.json")).unwrap())
            .unwrap();
    assert_eq!(m["architecture"]["input_dim"], 6);
    assert_eq!(m["lambda_range"], serde_json::json!([1e-4, 1e-2]));
    assert_eq!(m["features"][5]["name"], "log10_lambda_scaled");
    let r = trim_router::Router::load(&d.join("expc")).unwrap();
    assert_eq!(r.lambda_range(), Some([1e-4, 1e-2]));
    damaged_manifests_are_refused(&d);

    // Routing: λ per line or from --lambda; missing or out-of-range λ is an error answer; an
    // export without a λ input refuses --lambda and a line's λ.
    let lines: String = (0..40)
        .map(|i| {
            let lam = [1e-4, 1e-3, 1e-2][i % 3];
            format!(
                "{{\"id\":{i},\"prev_prm\":[0.9,{}],\"prm\":{},\"tokens\":{},\"lambda\":{lam}}}\n",
                0.3 + 0.01 * i as f64,
                (i as f64 * 0.137) % 1.0,
                20 + 7 * i
            )
        })
        .collect();
    let (okc, out, err) = route(&d, "expc", &[], &lines);
    assert!(okc, "{err}");
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 40);
    assert!(answers.iter().all(|a| a.get("action").is_some()), "{out}");
    let (_, out, _) = route(&d, "expc", &[], "{\"id\":1,\"prm\":0.4,\"tokens\":30}\n");
    assert!(out.contains("needs `lambda`"), "{out}");
    let (_, out, _) = route(
        &d,
        "expc",
        &[],
        "{\"id\":1,\"prm\":0.4,\"tokens\":30,\"lambda\":0.5}\n",
    );
    assert!(out.contains("outside the range"), "{out}");
    let (okd, out, err) = route(
        &d,
        "expc",
        &["--lambda", "1e-3"],
        "{\"id\":1,\"prm\":0.4,\"tokens\":30}\n",
    );
    assert!(okd && out.contains("\"action\""), "{out}{err}");
    let (okp, _, err) = route(&d, "expp", &["--lambda", "1e-3"], "");
    assert!(!okp && err.contains("no λ input"), "{err}");
    let (_, out, _) = route(
        &d,
        "expp",
        &[],
        "{\"id\":1,\"prm\":0.4,\"tokens\":30,\"lambda\":1e-3}\n",
    );
    assert!(out.contains("no λ input"), "{out}");

    // Python: parity of numpy and ONNX on the 6-wide fixture, and the same decisions as Rust.
    python_parity(&d, "expc", &lines, &answers);
}

/// Hand-edited conditioning fields of a conditioned export's manifest are refused at load.
fn damaged_manifests_are_refused(d: &Path) {
    let text = std::fs::read_to_string(d.join("expc/policy.json")).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 4] = [
        ("is not a range", |m| {
            m["lambda_range"] = serde_json::json!([1e-2, 1e-4])
        }),
        ("do not match", |m| {
            m.as_object_mut().unwrap().remove("lambda_range");
        }),
        ("together", |m| {
            m["budget_range"] = serde_json::json!([0, 400])
        }),
        ("is not a range", |m| {
            m["lambda_range"] = serde_json::json!([0.0, 1e-2])
        }),
    ];
    for (i, (want, edit)) in edits.iter().enumerate() {
        let bad = d.join(format!("bad-manifest-{i}"));
        std::fs::create_dir_all(&bad).unwrap();
        for f in std::fs::read_dir(d.join("expc")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, bad.join(f.file_name().unwrap())).unwrap();
        }
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        edit(&mut m);
        std::fs::write(bad.join("policy.json"), m.to_string()).unwrap();
        let e = trim_router::Router::load(&bad).unwrap_err().to_string();
        assert!(e.contains(want), "edit {i}: {e}");
    }
}

fn python_parity(d: &Path, export: &str, lines: &str, rust: &[serde_json::Value]) {
    python_parity_with(d, ("trim_router.py", export), lines, rust);
}

/// Parity of the Python router `script` on `export`: `check_parity.py` for TRIM-Agg exports,
/// and the same decisions as Rust on `lines` with the numpy and ONNX backends.
fn python_parity_with(
    d: &Path,
    (script, export): (&str, &str),
    lines: &str,
    rust: &[serde_json::Value],
) {
    let Some(py) = python_with("numpy, safetensors, onnxruntime") else {
        assert_ne!(
            std::env::var("TRIM_REQUIRE_PYTHON").as_deref(),
            Ok("1"),
            "TRIM_REQUIRE_PYTHON=1 but no python with numpy, safetensors, onnxruntime"
        );
        eprintln!("SKIPPED python parity: no python with numpy, safetensors, onnxruntime");
        return;
    };
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python");
    if script == "trim_router.py" {
        let o = Command::new(&py)
            .arg(scripts.join("check_parity.py"))
            .arg(d.join(export))
            .arg("--require-onnx")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{text}");
    }
    for backend in ["numpy", "onnx"] {
        let mut child = Command::new(&py)
            .arg(scripts.join(script))
            .arg(d.join(export))
            .arg(backend)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let got: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got.len(), rust.len(), "{backend}");
        for (g, r) in got.iter().zip(rust) {
            assert_eq!(g["action"], r["action"], "{backend}: {g} vs {r}");
            let (pg, pr) = (g["p_regenerate"].as_f64(), r["p_regenerate"].as_f64());
            assert!(
                (pg.unwrap() - pr.unwrap()).abs() < 1e-5,
                "{backend}: {g} vs {r}"
            );
        }
    }
}

#[test]
fn budget_aware_runs_train_export_route_and_evaluate() {
    let d = tmpdir("budget-aware");
    make_dataset(&d, "tiny", 60, 2, 7);
    train(&d, "b", &["--budget-range=0:400"]);
    let s = summary(&d, "b");
    let curve = s["val"]["budget_curve"].as_array().unwrap();
    assert_eq!(curve.len(), 8);
    assert_eq!(
        (curve[0]["budget"].as_u64(), curve[7]["budget"].as_u64()),
        (Some(0), Some(400))
    );
    let e = trim(
        &d,
        &[TRAIN, &["--budget-range=0:400", "--lambda-range=1e-4:1e-2"]].concat(),
    );
    assert!(String::from_utf8_lossy(&e.stderr).contains("budget_range"));
    let e = trim(&d, &[TRAIN, &["--budget-range=400:0"]].concat());
    assert!(String::from_utf8_lossy(&e.stderr).contains("LO < HI"));

    ok(
        &d,
        &[
            "export",
            "--checkpoint",
            "checkpoints/b/best",
            "--format",
            "all",
            "--out",
            "expb",
        ],
    );
    let r = trim_router::Router::load(&d.join("expb")).unwrap();
    assert!(r.budget_input() && r.lambda_range().is_none());
    // Tools that decide without a budget refuse it up front (never a panic).
    let e = trim(&d, &["bench-route", "--export", "expb"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("without λ or budget inputs"));

    let (lines, answers) = budget_aware_routing(&d);
    // The budgeted-accuracy table has its row; calibration refuses it (the budget is its knob).
    let t = ok(
        &d,
        &[
            "eval",
            "--data=tiny.jsonl",
            "--split=all",
            "--budgets",
            "0,100,400",
            "--export",
            "expb",
        ],
    );
    assert!(t.contains("expb (budget-aware)"), "{t}");
    let e = trim(
        &d,
        &[
            "calibrate",
            "--export",
            "expb",
            "--data=tiny.jsonl",
            "--target",
            "calls=0.2",
        ],
    );
    assert!(String::from_utf8_lossy(&e.stderr).contains("budget-aware export"));

    // Python agrees line by line (numpy and ONNX).
    python_parity(&d, "expb", &lines, &answers);
}

/// Route through the budget-aware export `expb`: stateless lines with and without budgets, and
/// sessions; returns the stateless lines and Rust's answers.
fn budget_aware_routing(d: &Path) -> (String, Vec<serde_json::Value>) {
    // Stateless: a budget is required (and budget_left ≤ budget); sessions pass what is left.
    let lines: String = (0..30)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"prev_prm\":[0.9],\"prm\":{},\"tokens\":{},\"budget\":400,\"budget_left\":{}}}\n",
                (i as f64 * 0.173) % 1.0,
                20 + 5 * i,
                (i * 37) % 401
            )
        })
        .collect();
    let (okb, out, err) = route(d, "expb", &[], &lines);
    assert!(okb, "{err}");
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(answers.iter().all(|a| a.get("action").is_some()), "{out}");
    let (_, out, _) = route(d, "expb", &[], "{\"id\":1,\"prm\":0.4,\"tokens\":30}\n");
    assert!(out.contains("budget-aware"), "{out}");
    let (_, out, _) = route(
        d,
        "expb",
        &[],
        "{\"id\":1,\"prm\":0.4,\"tokens\":30,\"budget\":10,\"budget_left\":11}\n",
    );
    assert!(out.contains("exceeds the budget"), "{out}");
    let first = "{\"session\":\"a\",\"prm\":0.4,\"tokens\":30,\"budget\":400}\n";
    let (oks, out, err) = route(d, "expb", &["--sessions"], first);
    assert!(oks && out.contains("\"action\""), "{out}{err}");
    let (_, out, _) = route(
        d,
        "expb",
        &["--sessions"],
        "{\"session\":\"a\",\"prm\":0.4,\"tokens\":30}\n",
    );
    assert!(out.contains("budget-aware"), "{out}");

    (lines, answers)
}

#[test]
fn seq_conditioned_runs_train_export_and_route() {
    let d = tmpdir("seq-conditioned");
    make_dataset(&d, "tiny", 60, 2, 7);
    train(&d, "s", &["--policy=seq", "--lambda-range=1e-4:1e-2"]);
    let curve = summary(&d, "s")["val"]["lambda_curve"].clone();
    assert_eq!(curve.as_array().map(Vec::len), Some(8), "{curve}");
    let ck = "checkpoints/s/best";
    ok(
        &d,
        &[
            "export",
            "--checkpoint",
            ck,
            "--format",
            "all",
            "--out",
            "exs",
        ],
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("exs/policy.json")).unwrap()).unwrap();
    assert_eq!(m["lambda_range"], serde_json::json!([1e-4, 1e-2]));
    assert_eq!(m["architecture"]["shape"]["lambda_input"], true);
    // Hand-edited conditioning fields of the TRIM-Seq manifest are refused at load.
    let text = std::fs::read_to_string(d.join("exs/policy.json")).unwrap();
    for (i, (key, value, want)) in [
        (
            "lambda_range",
            serde_json::json!([1e-2, 1e-4]),
            "is not a range",
        ),
        ("lambda_range", serde_json::Value::Null, "disagree"),
    ]
    .into_iter()
    .enumerate()
    {
        let bad = d.join(format!("bad-seq-{i}"));
        std::fs::create_dir_all(&bad).unwrap();
        for f in std::fs::read_dir(d.join("exs")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, bad.join(f.file_name().unwrap())).unwrap();
        }
        let mut mm: serde_json::Value = serde_json::from_str(&text).unwrap();
        match value {
            serde_json::Value::Null => {
                mm.as_object_mut().unwrap().remove(key);
            }
            v => mm[key] = v,
        }
        std::fs::write(bad.join("policy.json"), mm.to_string()).unwrap();
        let e = trim_router::Policy::load(&bad).unwrap_err().to_string();
        assert!(e.contains(want), "{key}: {e}");
    }
    let lines: String = (0..24)
        .map(|i| {
            let lam = [1e-4, 1e-3, 1e-2][i % 3];
            let t = i % 5;
            let prev: Vec<String> = (0..t).map(|k| format!("{}", 0.5 + 0.1 * k as f64)).collect();
            let toks: Vec<String> = (0..t).map(|k| format!("{}", 30 + k)).collect();
            let regen: Vec<&str> = (0..t).map(|k| if k % 2 == 0 { "false" } else { "true" }).collect();
            format!(
                "{{\"id\":{i},\"prev_prm\":[{}],\"prev_tokens\":[{}],\"prev_regenerated\":[{}],\"prm\":{},\"tokens\":{},\"lambda\":{lam}}}\n",
                prev.join(","),
                toks.join(","),
                regen.join(","),
                (i as f64 * 0.131) % 1.0,
                20 + 3 * i
            )
        })
        .collect();
    let (oks, out, err) = route(&d, "exs", &[], &lines);
    assert!(oks, "{err}");
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(answers.iter().all(|a| a.get("action").is_some()), "{out}");
    let (_, out, _) = route(&d, "exs", &[], "{\"id\":1,\"prm\":0.4,\"tokens\":30}\n");
    assert!(out.contains("needs `lambda`"), "{out}");
    // Sessions at --lambda decide like the stateless call at that λ.
    let sess = "{\"session\":\"a\",\"prm\":0.4,\"tokens\":30}\n";
    let (_, s_out, _) = route(&d, "exs", &["--sessions", "--lambda", "1e-3"], sess);
    let one = "{\"prm\":0.4,\"tokens\":30,\"lambda\":1e-3}\n";
    let (_, o_out, _) = route(&d, "exs", &[], one);
    let p = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t.lines().next().unwrap()).unwrap()["p_regenerate"].clone()
    };
    assert_eq!(p(&s_out), p(&o_out), "{s_out} {o_out}");
    python_parity_with(&d, ("trim_seq_router.py", "exs"), &lines, &answers);
}
