//! The evaluation suite on a tiny dataset: the checkpoint-threshold policy, Lagrangian optimality
//! of the hindsight-optimal family against every other family, and the report files.

mod train_support;

use train_support::{make_dataset, tmpdir};
use trim::backend::Backend;
use trim::eval::report::{family_metrics, points_csv, write_report};
use trim::eval::{Extras, Kind, RegenAbove, SuiteOptions, names, run_suite};
use trim::family::{GreedyOf, agg::Agg};
use trim::model::ActorCritic;
use trim_env::{EvalOptions, RefPolicy, Rng, evaluate};

/// A tiny dataset in a directory of its own (tests run in parallel).
fn tiny(test: &str) -> (std::path::PathBuf, trim_data::Loaded) {
    let dir = tmpdir(test);
    let data = make_dataset(&dir, "tiny", 60, 2, 7);
    let l = trim_data::load(&data).unwrap();
    (data, l)
}

#[test]
fn probability_threshold_policy_spans_weak_greedy_and_strong() {
    let (_, l) = tiny("eval-regen-above");
    let problems = l.problems_in_split("all");
    let device = Backend::Flex.device().unwrap();
    let w = ActorCritic::new(16, &mut Rng::new(3), &device).weights();
    let opts = EvalOptions::default();
    let at = |t: f32| {
        let p = RegenAbove::<Agg> {
            weights: &w,
            threshold: t,
        };
        evaluate(&l.forest, &problems, &p, opts).unwrap()
    };
    // p(regenerate) ≤ 1 is never above 1: always continue, i.e. always-weak.
    assert_eq!(
        at(1.0),
        evaluate(&l.forest, &problems, &RefPolicy::Weak, opts).unwrap()
    );
    // An untrained network gives p(regenerate) strictly inside (0, 1): threshold 0 regenerates
    // everywhere, i.e. always-strong.
    assert_eq!(
        at(0.0),
        evaluate(&l.forest, &problems, &RefPolicy::Strong, opts).unwrap()
    );
    // Threshold 0.5 is the greedy argmax.
    assert_eq!(
        at(0.5),
        evaluate(&l.forest, &problems, &GreedyOf::<Agg>::new(&w), opts).unwrap()
    );
}

#[test]
fn hindsight_optimal_is_lagrangian_optimal_against_every_family() {
    let (data, l) = tiny("eval-lagrangian");
    let problems = l.problems_in_split("test");
    let s = run_suite(
        &l.forest,
        Extras {
            stored: Some(&l.forest),
            reference: None,
            fitted: None,
        },
        &data,
        "test",
        &problems,
        &[],
        &SuiteOptions::default(),
    )
    .unwrap();
    let o = SuiteOptions::default();
    let hs = s.family(names::HINDSIGHT).unwrap();
    assert_eq!(hs.points.len(), o.oracle_lambdas.len());
    for (h, &lambda) in hs.points.iter().zip(&o.oracle_lambdas) {
        let r = |acc: f64, tok: f64| acc - lambda * tok;
        let best = r(h.accuracy, h.strong_tokens_per_problem);
        for f in &s.families {
            for p in &f.points {
                assert!(
                    r(p.accuracy, p.strong_tokens_per_problem) <= best + 1e-9,
                    "{} {} beats the hindsight optimum at λ = {lambda}",
                    f.name,
                    p.label
                );
            }
        }
    }
    // Anchors are the cost scale: weak costs 0, strong costs 1.
    let weak = &s.family(names::WEAK).unwrap().points[0];
    let strong = &s.family(names::STRONG).unwrap().points[0];
    assert_eq!((weak.cost_fraction, strong.cost_fraction), (0.0, 1.0));
    assert!(weak.accuracy_ci.0 <= weak.accuracy && weak.accuracy <= weak.accuracy_ci.1);
    // The hindsight frontier recovers the whole gap at some cost ≤ 1; its gap to itself is 0.
    let m = family_metrics(&s);
    let hm = m.iter().find(|f| f.family == names::HINDSIGHT).unwrap();
    assert!(hm.cpt95.is_some_and(|c| c <= 1.0));
    assert!(hm.gap_to_frontier.unwrap().1.abs() < 1e-12);
    // Always-weak never recovers any of the gap.
    let wm = m.iter().find(|f| f.family == names::WEAK).unwrap();
    assert_eq!(wm.cpt50, None);
}

#[test]
fn report_files_hold_every_point_and_family() {
    let (data, l) = tiny("eval-files");
    let problems = l.problems_in_split("test");
    let o = SuiteOptions {
        threshold_steps: 4,
        random_steps: 2,
        cascade_steps: 2,
        oracle_lambdas: vec![0.0, 1e-3, 1.0],
        repeats: 2,
        ..SuiteOptions::default()
    };
    let s = run_suite(
        &l.forest,
        Extras {
            stored: Some(&l.forest),
            reference: None,
            fitted: None,
        },
        &data,
        "test",
        &problems,
        &[],
        &o,
    )
    .unwrap();
    let n_points: usize = s.families.iter().map(|f| f.points.len()).sum();
    // weak + strong + random 3 + threshold 5 + cascade 3 + query oracle + hindsight 3 +
    // TRIM-POMDP (official) at the 7 default λ
    assert_eq!(n_points, 1 + 1 + 3 + 5 + 3 + 1 + 3 + 7);
    assert_eq!(s.family(names::POMDP).unwrap().points.len(), 7);
    assert!(
        s.family(names::REFERENCE).is_none(),
        "no generator to fit on a stored file"
    );
    let out = tmpdir("eval-report-files");
    let (w, m) = write_report(&out, &s).unwrap();
    let csv = std::fs::read_to_string(&w.points_csv).unwrap();
    assert_eq!(csv.lines().count(), n_points + 1);
    assert_eq!(csv, points_csv(&s));
    assert!(csv.lines().nth(1).unwrap().starts_with("always-weak,weak,"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&w.json).unwrap()).unwrap();
    assert_eq!(json["metrics"].as_array().unwrap().len(), s.families.len());
    assert_eq!(m.len(), s.families.len());
    // No trained family: the union frontier of trained runs is empty.
    assert!(json["trained_frontier"].as_array().unwrap().is_empty());
    let md = std::fs::read_to_string(&w.markdown).unwrap();
    for f in &s.families {
        assert!(
            md.contains(&format!("| {} |", f.name)),
            "{} missing",
            f.name
        );
    }
    assert!(
        md.contains("not reached"),
        "always-weak never reaches CPT(50%)"
    );
    let png = std::fs::read(&w.png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(&w.svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("hindsight-optimal"));
    assert!(svg.contains("accuracy") && svg.contains("cost fraction"));
    assert!(s.families.iter().all(|f| f.kind != Kind::Trained));
}

/// On a lazy world the suite runs every family but the hindsight-optimal one (unbounded trees),
/// says so, adds TRIM-POMDP (official, fitted on training data, and solved run directories) and
/// the world's Bayes reference and measures gaps to the latter; the plot files are written.
#[test]
fn the_report_on_a_lazy_world_omits_only_the_hindsight_frontier() {
    let dir = tmpdir("eval-lazy");
    let spec = std::path::Path::new("synth:math500?problems=300");
    let src = trim_data::DataSource::open(spec, &trim_data::LoadOptions::default()).unwrap();
    let problems = src.problems_in_split("test");
    assert_eq!(problems.len(), 300);
    let o = SuiteOptions {
        threshold_steps: 10,
        random_steps: 4,
        cascade_steps: 4,
        pomdp_lambdas: vec![4e-4, 3.2e-3],
        pomdp_fit_data: Some("synth:math-train?problems=200&test_fraction=0".into()),
        ..SuiteOptions::default()
    };
    // A solved run directory, as `trim pomdp solve --out` writes it.
    let (model, source) = trim::pomdp_models::official_math_train().unwrap();
    let sol = &trim_pomdp::solve(&model, 10, &[8e-4]).unwrap()[0];
    let config = trim::pomdp_run::SolveConfig {
        command: "test".into(),
        model: "official".into(),
        lambda: 8e-4,
        grid_step: 0.1,
        grid_divisions: 10,
        trim_version: "test".into(),
        git_revision: "test".into(),
        solve_seconds_per_lambda: 0.0,
    };
    let contents = trim::pomdp_run::RunContents {
        solution: sol,
        model: &model,
        source: &source,
        config: &config,
        summary: None,
    };
    let run = trim::pomdp_run::write_run(&dir.join("sols"), &contents).unwrap();
    assert!(trim::pomdp_run::write_run(&dir.join("sols"), &contents).is_err());
    let spec_run = trim::eval::CheckpointSpec {
        family: "ignored".into(),
        label: "lambda=8e-4".into(),
        dir: run,
    };
    let s = trim::eval::run_suite_on(&src, spec, "test", &problems, &[spec_run], &o).unwrap();
    assert!(s.family(names::POMDP_FITTED).is_some());
    let runs = s.family("TRIM-POMDP (official) runs").unwrap();
    assert_eq!(runs.points.len(), 1);
    assert!(s.family(names::HINDSIGHT).is_none());
    for n in [
        names::THRESHOLD,
        names::CASCADE,
        names::QUERY_ORACLE,
        names::RANDOM,
    ] {
        assert!(s.family(n).is_some(), "{n}");
    }
    let (w, m) = write_report(&dir.join("r"), &s).unwrap();
    let md = std::fs::read_to_string(&w.markdown).unwrap();
    assert!(
        md.contains("hindsight-optimal frontier is not computed"),
        "{md}"
    );
    assert!(!md.contains("| hindsight-optimal |"));
    // Gaps are measured to the Bayes reference instead.
    assert!(s.family(names::REFERENCE).is_some() && s.family(names::POMDP).is_some());
    let thr = m.iter().find(|f| f.family == names::THRESHOLD).unwrap();
    assert!(thr.gap_to_frontier.is_some());
    assert!(md.contains("Bayes reference"));
    assert!(w.png.exists() && w.svg.exists());
}
