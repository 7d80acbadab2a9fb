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
