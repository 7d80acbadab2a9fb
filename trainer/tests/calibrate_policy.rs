//! `trim calibrate`: a trained export's threshold set from a calls / cost / tokens target on
//! one traffic set meets the target, within the reported bootstrap CI, on held-out traffic;
//! infeasible targets are refused with the feasible range; routers serve the new threshold.

mod train_support;

use std::path::Path;

use train_support::{make_dataset, ok, tmpdir, train_and_export_tiny, trim};
use trim::operating_point::measure_at;
use trim_data::{DataSource, LoadOptions, with_world};

fn calibration(export: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(export.join("policy.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn targets_hold_on_held_out_traffic_within_the_reported_ci() {
    let d = tmpdir("calibrate");
    train_and_export_tiny(&d);
    make_dataset(&d, "traffic", 1500, 1, 11);
    make_dataset(&d, "heldout", 6000, 1, 12);
    let held = DataSource::open(&d.join("heldout.jsonl"), &LoadOptions::default()).unwrap();
    let held_problems = held.problems_in_split("all");
    for (i, target) in ["calls=0.2", "cost=0.3", "tokens=40"]
        .into_iter()
        .enumerate()
    {
        let out = ok(
            &d,
            &[
                "calibrate",
                "--export",
                "exp",
                "--data",
                "traffic.jsonl",
                "--target",
                target,
            ],
        );
        assert!(out.contains("threshold"), "{out}");
        let m = calibration(&d.join("exp"));
        let c = &m["calibration"];
        assert_eq!(c["target"], target);
        let t = c["threshold"].as_f64().unwrap() as f32;
        assert_eq!(
            m["decision"]["default_threshold"].as_f64().unwrap() as f32,
            t
        );
        let achieved = c["achieved"].as_f64().unwrap();
        let want: f64 = target.split('=').nth(1).unwrap().parse().unwrap();
        assert!(achieved <= want + 1e-9, "{target}: achieved {achieved}");
        let [lo, hi] = [
            c["ci95"][0].as_f64().unwrap(),
            c["ci95"][1].as_f64().unwrap(),
        ];
        assert!(lo <= achieved && achieved <= hi, "{c}");
        // Held-out traffic at the calibrated threshold: inside the reported CI.
        let export = trim_router::Policy::load(&d.join("exp")).unwrap();
        let got = with_world!(&held, |w| measure_at(w, &held_problems, &export, t, 0)).unwrap();
        assert!(
            lo <= got[i] && got[i] <= hi,
            "{target}: held-out {} outside the reported CI [{lo}, {hi}] (achieved {achieved})",
            got[i]
        );
        // Close to the target: the next grid step down would exceed it, so achieved is near.
        assert!(
            want - achieved < (hi - lo).max(0.02 * want),
            "{target}: {achieved} far below"
        );
    }
    // A target the policy cannot reach is refused with the feasible range, nothing written.
    let before = std::fs::read(d.join("exp/policy.json")).unwrap();
    let o = trim(
        &d,
        &[
            "calibrate",
            "--export",
            "exp",
            "--data",
            "traffic.jsonl",
            "--target",
            "tokens=100000",
        ],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("infeasible") && e.contains("feasible targets are in ["),
        "{e}"
    );
    assert_eq!(std::fs::read(d.join("exp/policy.json")).unwrap(), before);
    for bad in ["calls=2", "speed=1", "cost"] {
        let o = trim(
            &d,
            &[
                "calibrate",
                "--export",
                "exp",
                "--data",
                "traffic.jsonl",
                "--target",
                bad,
            ],
        );
        assert!(!o.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--target"),
            "{bad}"
        );
    }
    served_at_the_calibrated_threshold(&d);
    // A damaged calibration record is refused at load, naming the file.
    let text = std::fs::read_to_string(d.join("exp/policy.json")).unwrap();
    let bad = text.replacen("\"achieved\":", "\"achieved\": \"x\", \"was\":", 1);
    assert_ne!(bad, text);
    std::fs::write(d.join("exp/policy.json"), bad).unwrap();
    let o = trim(&d, &["route", "--export", "exp"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("policy.json"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// `trim route` decides with the calibrated threshold: regenerate iff p > threshold.
fn served_at_the_calibrated_threshold(d: &Path) {
    let t = calibration(&d.join("exp"))["decision"]["default_threshold"]
        .as_f64()
        .unwrap();
    let mut input = String::new();
    for k in 0..50 {
        let prm = k as f64 / 50.0;
        input.push_str(&format!(
            "{{\"prm\": {prm}, \"tokens\": 60, \"prev_prm\": [0.9]}}\n"
        ));
    }
    let p = std::process::Command::new(env!("CARGO_BIN_EXE_trim"))
        .args(["route", "--export", "exp"])
        .current_dir(d)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    p.stdin
        .as_ref()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = p.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 50);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let p = v["p_regenerate"].as_f64().unwrap();
        assert_eq!(v["action"] == "regenerate", p > t, "{l} at threshold {t}");
    }
}

/// The calibration replay of an export (Rust router, TRIM-Seq's inputs rebuilt from the
/// episode history) decides exactly like the trainer's own evaluation of the checkpoint it was
/// exported from, at any threshold — for both network families.
#[test]
fn export_replay_matches_the_checkpoints_own_evaluation() {
    use trim::eval::RegenAbove;
    use trim::family::{Family, agg::Agg, seq::Seq};
    use trim::operating_point::ExportAt;
    use trim_env::{EvalOptions, evaluate};

    let d = tmpdir("calibrate-parity");
    let data = make_dataset(&d, "tiny", 60, 2, 7);
    make_dataset(&d, "traffic", 400, 1, 13);
    let traffic = DataSource::open(&d.join("traffic.jsonl"), &LoadOptions::default()).unwrap();
    let DataSource::Stored(l) = &traffic else {
        unreachable!("a file")
    };
    let problems = traffic.problems_in_split("all");
    for (name, policy) in [("agg", "agg"), ("seq", "seq")] {
        let run = trim::train::AnyTrainer::new(
            trim::TrainConfig {
                policy: policy.parse().unwrap(),
                seq_dim: 16,
                seq_ff: 32,
                ..train_support::tiny_config(&data)
            },
            train_support::run_opts(&d.join("checkpoints"), name),
        )
        .unwrap()
        .run()
        .unwrap();
        assert_eq!(run.updates_done, 12);
        let ckpt = d.join("checkpoints").join(name).join("final");
        let exp = d.join(format!("exp-{name}"));
        ok(
            &d,
            &[
                "export",
                "--checkpoint",
                ckpt.to_str().unwrap(),
                "--out",
                exp.to_str().unwrap(),
            ],
        );
        let export = trim_router::Policy::load(&exp).unwrap();
        let device = trim::backend::Backend::Flex.device().unwrap();
        let opts = EvalOptions {
            repeats: 1,
            seed: 0,
        };
        macro_rules! compare {
            ($F:ty) => {{
                let (model, _) = trim::checkpoint::load_model_as::<$F>(&ckpt, &device).unwrap();
                let w = <$F as Family>::acting(&model).unwrap();
                for t in [0.2f32, 0.5, 0.8] {
                    let own = RegenAbove::<$F> {
                        weights: &w,
                        threshold: t,
                    };
                    let a = evaluate(&l.forest, &problems, &own, opts).unwrap();
                    let b = evaluate(
                        &l.forest,
                        &problems,
                        &ExportAt {
                            export: &export,
                            threshold: t,
                            lambda: None,
                        },
                        opts,
                    )
                    .unwrap();
                    assert_eq!(a, b, "{name} at threshold {t}");
                }
            }};
        }
        match policy {
            "agg" => compare!(Agg),
            _ => compare!(Seq),
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A λ-conditioned export is calibrated by moving λ (threshold kept): the target holds on
/// held-out traffic within the reported CI, and every router then acts at that λ.
#[test]
fn conditioned_exports_calibrate_lambda_and_hold_on_held_out_traffic() {
    let d = tmpdir("calibrate-lambda");
    make_dataset(&d, "tiny", 60, 2, 7);
    train_support::train_tiny(&d, "c", &["--lambda-range=1e-4:1e-2"]);
    ok(
        &d,
        &[
            "export",
            "--checkpoint",
            "checkpoints/c/best",
            "--out",
            "exp",
        ],
    );
    make_dataset(&d, "traffic", 1500, 1, 11);
    make_dataset(&d, "heldout", 6000, 1, 12);
    let held = DataSource::open(&d.join("heldout.jsonl"), &LoadOptions::default()).unwrap();
    let held_problems = held.problems_in_split("all");
    for (i, target) in ["calls=0.15", "cost=0.25"].into_iter().enumerate() {
        let args = [
            "calibrate",
            "--export",
            "exp",
            "--data",
            "traffic.jsonl",
            "--target",
            target,
        ];
        let out = ok(&d, &args);
        assert!(
            out.contains("λ ") && out.contains("at threshold 0.5"),
            "{out}"
        );
        let m = calibration(&d.join("exp"));
        let c = &m["calibration"];
        let lam = c["lambda"].as_f64().unwrap();
        assert!((1e-4..=1e-2).contains(&lam), "{c}");
        let [lo, hi] = [
            c["ci95"][0].as_f64().unwrap(),
            c["ci95"][1].as_f64().unwrap(),
        ];
        let export = trim_router::Policy::load(&d.join("exp")).unwrap();
        let got = with_world!(&held, |w| measure_at(w, &held_problems, &export, 0.5, 0)).unwrap();
        assert!(
            lo <= got[i] && got[i] <= hi,
            "{target}: held-out {} outside the reported CI [{lo}, {hi}] at λ {lam}",
            got[i]
        );
    }
}
