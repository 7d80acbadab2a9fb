//! `trim pomdp solve` end to end: the official model solved and evaluated on a small lazy world,
//! and bad inputs refused with clear errors.

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
        (vec!["--model", "nope"], "unknown --model `nope`"),
        (vec!["--model", "reference"], "needs --data synth:"),
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

/// `trim route --pomdp` and the Python reference router decide identically on a fixed set of
/// step histories, and both refuse a damaged solution.
#[test]
fn rust_and_python_pomdp_routers_agree_and_refuse_damage() {
    let Some(py) = python() else {
        eprintln!("no python3: skipping the POMDP router parity check");
        return;
    };
    let dir = std::env::temp_dir().join(format!("trim-pomdp-parity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_string_lossy().into_owned();
    let o = trim(&["pomdp", "solve", "--lambda", "8e-4", "--out", &d]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let solution = dir.join("lambda=8e-4/solution.json");
    // 400 histories: 0–14 kept steps, scores across [0, 1] (clustered near both ends).
    let mut rng = trim_env::Rng::new(2026);
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
    let sol = solution.to_string_lossy().into_owned();
    let inp = input.to_string_lossy().into_owned();
    let rust = trim(&["route", "--pomdp", &sol, "--strict", "--input", &inp]);
    assert!(
        rust.status.success(),
        "{}",
        String::from_utf8_lossy(&rust.stderr)
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/python/trim_pomdp_router.py");
    let python = Command::new(&py)
        .arg(&script)
        .arg(&solution)
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let parse = |out: &[u8]| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (r, p) = (parse(&rust.stdout), parse(&python.stdout));
    assert_eq!(r.len(), 400);
    assert_eq!(p.len(), 400);
    let mut regenerations = 0;
    for (a, b) in r.iter().zip(&p) {
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["action"], b["action"], "{a} vs {b}");
        assert_eq!(a["shortcut"], b["shortcut"], "{a} vs {b}");
        regenerations += usize::from(a["action"] == "regenerate");
    }
    assert!(
        (20..380).contains(&regenerations),
        "{regenerations}: a non-trivial mix"
    );
    // A damaged solution: refused by both.
    let mut text = std::fs::read_to_string(&solution).unwrap();
    let i = text.find("\"p_w\":").unwrap() + 7;
    text.replace_range(i..i + 1, if &text[i..i + 1] == "7" { "6" } else { "7" });
    let damaged = dir.join("damaged.json");
    std::fs::write(&damaged, text).unwrap();
    let dmg = damaged.to_string_lossy().into_owned();
    let o = trim(&["route", "--pomdp", &dmg, "--input", &inp]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("damaged"));
    let o = Command::new(&py)
        .arg(&script)
        .arg(&damaged)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("damaged"));
}
