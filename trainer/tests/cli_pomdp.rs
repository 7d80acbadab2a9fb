//! `trim pomdp solve` end to end: the official model solved and evaluated on a small lazy world,
//! and bad inputs refused with clear errors.

use std::path::Path;
use std::process::{Command, Output};

fn trim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trim"))
        .args(args)
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("run trim")
}

#[test]
fn solve_times_every_lambda_and_evaluates_both_belief_rules() {
    let o = trim(&[
        "pomdp",
        "solve",
        "--lambda",
        "4e-4,3e-3",
        "--grid-step",
        "0.05",
        "--data",
        "synth:math500?problems=60&test_fraction=1",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("solved 2 λ on a 231-point belief grid"),
        "{out}"
    );
    for rule in [
        "release (closeness 0.4)",
        "release (no shortcut)",
        "Bayes filter",
    ] {
        assert_eq!(out.matches(rule).count(), 2, "{rule}: {out}");
    }
}

#[test]
fn bad_lambdas_grid_steps_and_models_are_clear_errors() {
    for (args, needle) in [
        (vec!["--lambda", "1e-4,-2e-4"], "λ must be finite and ≥ 0"),
        (vec!["--grid-step", "0.03"], "does not divide 1"),
        (vec!["--model", "nope"], "cannot read model file nope"),
        (vec!["--model", "reference"], "needs --data"),
    ] {
        let mut all = vec!["pomdp", "solve"];
        all.extend(args);
        let o = trim(&all);
        assert_eq!(o.status.code(), Some(1), "a clean error, not a crash");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle), "{e}");
    }
}

/// The Python interpreter for the reference router (pure Python: no packages needed).
fn python() -> Option<String> {
    let candidate = std::env::var("TRIM_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&candidate)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(candidate)
    } else {
        assert!(
            std::env::var("TRIM_REQUIRE_PYTHON").is_err(),
            "TRIM_REQUIRE_PYTHON is set but {candidate} does not run"
        );
        None
    }
}

/// 400 fixed step histories as JSON lines: 0–14 kept steps, scores clustered near both ends.
fn histories(dir: &std::path::Path) -> std::path::PathBuf {
    let mut rng = trim_env::Rng::new(2025);
    let mut lines = String::new();
    for i in 0..400 {
        let n = rng.below(15) as usize;
        let score = |rng: &mut trim_env::Rng| match rng.below(3) {
            0 => rng.f32() * 0.1,
            1 => 0.9 + rng.f32() * 0.1,
            _ => rng.f32(),
        };
        let prev: Vec<f32> = (0..n).map(|_| score(&mut rng)).collect();
        let step = serde_json::json!({
            "id": i, "prev_prm": prev, "prm": score(&mut rng), "tokens": 1 + rng.below(300),
        });
        lines.push_str(&format!("{step}\n"));
    }
    let input = dir.join("steps.jsonl");
    std::fs::write(&input, &lines).unwrap();
    input
}

fn parse_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run_python(py: &str, target: &std::path::Path, input: &std::path::Path) -> Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/python/trim_pomdp_router.py");
    Command::new(py)
        .arg(&script)
        .arg(target)
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap()
}

/// `trim pomdp fit` (refusing to overwrite) → `trim pomdp solve --out` → `trim export --pomdp`,
/// with the model's provenance in the export. Returns the run and export directories.
fn fit_solve_export(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let p = |x: &std::path::Path| x.to_string_lossy().into_owned();
    let (model, sols, exp) = (dir.join("fit.json"), dir.join("sols"), dir.join("export"));
    let world = "synth:math-train?problems=400&test_fraction=0";
    let o = trim(&["pomdp", "fit", "--data", world, "--out", &p(&model)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = trim(&["pomdp", "fit", "--data", world, "--out", &p(&model)]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("never overwritten"));
    let o = trim(&[
        "pomdp",
        "solve",
        "--model",
        &p(&model),
        "--lambda",
        "8e-4",
        "--out",
        &p(&sols),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = sols.join("lambda=8e-4");
    let o = trim(&["export", "--pomdp", &p(&run), "--out", &p(&exp)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exp.join("policy.json")).unwrap()).unwrap();
    assert_eq!(manifest["kind"], "trim-pomdp");
    assert_eq!(manifest["model_source"]["name"], "fit");
    assert_eq!(manifest["model_source"]["data"], world);
    (run, exp)
}

/// fit → solve → export → `trim route --export` and the Python reference router decide
/// identically on a fixed set of step histories (and so does the bare solution file); a damaged
/// export is refused by both.
#[test]
fn exported_pomdp_decides_identically_in_rust_and_python_and_damage_is_refused() {
    let Some(py) = python() else {
        eprintln!("no python3: skipping the POMDP router parity check");
        return;
    };
    let dir = std::env::temp_dir().join(format!("trim-pomdp-parity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |x: &std::path::Path| x.to_string_lossy().into_owned();
    let (run, exp) = fit_solve_export(&dir);
    let input = histories(&dir);
    let rust = trim(&[
        "route",
        "--export",
        &p(&exp),
        "--strict",
        "--input",
        &p(&input),
    ]);
    assert!(
        rust.status.success(),
        "{}",
        String::from_utf8_lossy(&rust.stderr)
    );
    let bare = trim(&[
        "route",
        "--pomdp",
        &p(&run.join("solution.json")),
        "--input",
        &p(&input),
    ]);
    let python = run_python(&py, &exp, &input);
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let (r, b, y) = (
        parse_lines(&rust.stdout),
        parse_lines(&bare.stdout),
        parse_lines(&python.stdout),
    );
    assert_eq!((r.len(), b.len(), y.len()), (400, 400, 400));
    let mut regenerations = 0;
    for ((a, b), c) in r.iter().zip(&b).zip(&y) {
        assert_eq!(a["id"], c["id"]);
        assert_eq!(a["action"], c["action"], "{a} vs {c}");
        assert_eq!(a["shortcut"], c["shortcut"], "{a} vs {c}");
        assert_eq!(
            a["action"], b["action"],
            "export vs solution file: {a} vs {b}"
        );
        regenerations += usize::from(a["action"] == "regenerate");
    }
    assert!(
        (20..380).contains(&regenerations),
        "{regenerations}: a non-trivial mix"
    );
    damaged_exports_are_refused(&dir, &exp, &input, &py);
}

/// One digit of the table, the parity fixture, or an emptied file: refused by `trim route`
/// (naming the checksum and the file) and by the Python router.
fn damaged_exports_are_refused(dir: &Path, exp: &Path, input: &Path, py: &str) {
    let p = |x: &Path| x.to_string_lossy().into_owned();
    type Damage = fn(&mut Vec<u8>);
    let damage: [(&str, Damage); 3] = [
        ("pomdp_solution.json", |b| {
            let i = b.len() / 2
                + b[b.len() / 2..]
                    .iter()
                    .position(|c| c.is_ascii_digit() && *c != b'0')
                    .unwrap();
            b[i] = b'0';
        }),
        ("parity.json", |b| {
            let t = String::from_utf8_lossy(b).replacen("true", "false", 1);
            *b = t.into_bytes();
        }),
        ("pomdp_solution.json", |b| b.truncate(0)),
    ];
    for (k, (file, f)) in damage.into_iter().enumerate() {
        let bad = dir.join(format!("bad{k}"));
        std::fs::create_dir_all(&bad).unwrap();
        for e in std::fs::read_dir(exp).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), bad.join(e.file_name())).unwrap();
        }
        let mut bytes = std::fs::read(bad.join(file)).unwrap();
        f(&mut bytes);
        std::fs::write(bad.join(file), bytes).unwrap();
        let o = trim(&["route", "--export", &p(&bad), "--input", &p(input)]);
        assert_eq!(o.status.code(), Some(1), "damage {k} must be refused");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("sha256") && e.contains(file), "{e}");
        let o = run_python(py, &bad, input);
        assert!(!o.status.success(), "python accepted damage {k}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("damaged"));
    }
}

/// Hand-written model files with bad values: clear errors naming the field, never a panic.
#[test]
fn bad_model_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("trim-pomdp-models-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("official.json");
    let o = trim(&[
        "pomdp",
        "fit",
        "--source",
        "official",
        "--out",
        &good.to_string_lossy(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&good).unwrap();
    let base: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 5] = [
        (
            |v| v["model"]["obs"][1][3] = serde_json::json!(-0.01),
            "obs[S1]: entry 3 is -0.01",
        ),
        (
            |v| v["model"]["obs"][2][5] = serde_json::json!(0.7),
            "obs[S2]: sums to",
        ),
        (
            |v| v["model"]["hazard"][4] = serde_json::json!(1.2),
            "hazard: h(4) = 1.2",
        ),
        (
            |v| v["model"]["p_s"] = serde_json::json!(-1),
            "p_s: -1 outside [0, 1]",
        ),
        (
            |v| v["format"] = serde_json::json!("trim-pomdp-model/7"),
            "is not trim-pomdp-model/1",
        ),
    ];
    for (i, (edit, needle)) in cases.into_iter().enumerate() {
        let mut v = base.clone();
        edit(&mut v);
        let f = dir.join(format!("bad{i}.json"));
        std::fs::write(&f, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let o = trim(&[
            "pomdp",
            "solve",
            "--model",
            &f.to_string_lossy(),
            "--lambda",
            "1e-3",
        ]);
        assert_eq!(o.status.code(), Some(1), "{needle}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(needle) && e.contains(&format!("bad{i}.json")),
            "{needle}: {e}"
        );
    }
    // NaN is not JSON: a parse error naming the file, not a panic.
    let nan = dir.join("nan.json");
    let t = serde_json::to_string(&base)
        .unwrap()
        .replacen("\"p_w\":", "\"p_w\":NaN,\"x\":", 1);
    std::fs::write(&nan, t).unwrap();
    let o = trim(&["pomdp", "solve", "--model", &nan.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nan.json"));
    // The untouched official model file solves.
    let o = trim(&[
        "pomdp",
        "solve",
        "--model",
        &good.to_string_lossy(),
        "--lambda",
        "1e-3",
        "--grid-step",
        "0.1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
