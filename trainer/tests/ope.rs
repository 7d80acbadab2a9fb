//! Off-policy evaluation validated on trees: logs simulated from an ε-greedy TRIM-Thr router on
//! the shipped synthetic trees, a different threshold policy estimated from them, and the
//! estimate's 95 % CI checked against the target's exact value by replay, over seeds.

use std::path::Path;

use trim::ope::{evaluate, trajectories};
use trim_data::import::paths::log_explored;
use trim_env::{EpsGreedy, EvalOptions, Propensity, RefPolicy, summarize};

const LAMBDA: f64 = 8e-4;

#[test]
fn snis_and_pdwis_cover_the_exact_value_over_seeds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sets/synth-math.parquet");
    let l = trim_data::load(&path).unwrap();
    let problems: Vec<u32> = (0..l.ds.problems.len() as u32).collect();
    let logger = EpsGreedy {
        inner: RefPolicy::Threshold(0.5),
        epsilon: 0.3,
    };
    let named: Vec<(String, &dyn Propensity)> = vec![("eps".into(), &logger)];
    let seeds = 20u64;
    for k in [0.3f32, 0.7] {
        let target = RefPolicy::Threshold(k);
        let exact = summarize(
            &trim_env::evaluate(&l.forest, &problems, &target, EvalOptions::default()).unwrap(),
            1.0,
            LAMBDA,
        )
        .reward;
        let (mut covered, mut pd_covered, mut bias) = (0, 0, 0.0);
        for seed in 0..seeds {
            let rows = log_explored(&l, &problems, &named, seed).unwrap();
            let trajs = trajectories(&rows).unwrap();
            let r = evaluate(&trajs, &target, LAMBDA, seed);
            let s = r.snis.expect("supported");
            let p = r.pdwis.expect("supported");
            covered += usize::from(s.ci95.0 <= exact && exact <= s.ci95.1);
            pd_covered += usize::from(p.ci95.0 <= exact && exact <= p.ci95.1);
            bias += (s.value - exact) / seeds as f64;
            assert!(r.ess > 50.0, "threshold {k} seed {seed}: ESS {}", r.ess);
        }
        eprintln!(
            "threshold {k}: exact {exact:.4}, SNIS mean bias {bias:+.4}, coverage SNIS {covered}/{seeds}, PDWIS {pd_covered}/{seeds}"
        );
        assert!(
            covered >= 17,
            "threshold {k}: SNIS CI covered {covered}/{seeds}"
        );
        assert!(
            pd_covered >= 17,
            "threshold {k}: PDWIS CI covered {pd_covered}/{seeds}"
        );
        assert!(bias.abs() < 0.02, "threshold {k}: mean bias {bias}");
    }
}

#[test]
fn logs_without_propensities_or_exploration_are_refused() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sets/synth-math.parquet");
    let l = trim_data::load(&path).unwrap();
    let greedy = EpsGreedy {
        inner: RefPolicy::Threshold(0.5),
        epsilon: 0.0,
    };
    let named: Vec<(String, &dyn Propensity)> = vec![("greedy".into(), &greedy)];
    let rows = log_explored(&l, &[0, 1, 2], &named, 0).unwrap();
    let e = trajectories(&rows).unwrap_err();
    assert!(e.contains("never explored"), "{e}");
    let mut rows = log_explored(
        &l,
        &[0, 1, 2],
        &[(
            "x".into(),
            &EpsGreedy {
                epsilon: 0.5,
                ..greedy
            } as &dyn Propensity,
        )],
        0,
    )
    .unwrap();
    rows[1].propensity = None;
    let e = trajectories(&rows).unwrap_err();
    assert!(e.contains("no propensity logged"), "{e}");
}

/// Propensities and policy ids survive a write and read in both log formats, and `trim ope`
/// runs on an emitted exploring log through the binary, next to the exact value.
#[test]
fn propensity_logs_round_trip_and_trim_ope_runs_through_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let l = trim_data::load(&root.join("data/sets/synth-math.parquet")).unwrap();
    let eps = EpsGreedy {
        inner: RefPolicy::Threshold(0.5),
        epsilon: 0.25,
    };
    let named: Vec<(String, &dyn Propensity)> = vec![("eps".into(), &eps)];
    let rows = log_explored(&l, &[0, 1, 2, 3], &named, 9).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.propensity.is_some() && r.policy_id.as_deref() == Some("eps"))
    );
    let dir = std::env::temp_dir().join(format!("trim-ope-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["log.jsonl", "log.parquet"] {
        let p = dir.join(name);
        trim_data::import::paths::write_traces(&p, &rows).unwrap();
        let back: Vec<_> = trim_data::import::paths::read_traces(&p, 30)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(back, rows, "{name}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trim"))
        .current_dir(&root)
        .args(["data", "import", "paths", "--emit-example", "--from"])
        .arg("data/sets/synth-math.parquet")
        .args([
            "--policies",
            "threshold:0.5",
            "--problems",
            "400",
            "--split",
            "all",
        ])
        .args(["--explore", "0.3", "--out"])
        .arg(dir.join("emitted.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trim"))
        .current_dir(&root)
        .args(["ope", "--logs"])
        .arg(dir.join("emitted.jsonl"))
        .args([
            "--target",
            "threshold:0.7",
            "--exact",
            "data/sets/synth-math.parquet",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "400 logged trajectories",
        "SNIS (trajectory-wise)",
        "PDWIS",
        "effective sample size",
        "exact value by replay",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // A log without propensities is refused, naming the trace.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trim"))
        .current_dir(&root)
        .args([
            "ope",
            "--logs",
            "data/examples/paths-example.jsonl",
            "--target",
            "weak",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no propensity logged"),
        "{err}"
    );
}
