//! Tests of the trace-log importer: merging, the walk → log → import round trip, and one test
//! per kind of bad input (`bad_input.rs`).

mod bad_input;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use trim_env::{Action, Branch, EvalOptions, Policy, RefPolicy, Rng, evaluate};

use super::*;
use crate::build::DatasetBuilder;
use crate::error::Details;
use crate::schema::{CandidateRec, Dataset, Meta, ProblemInfo, StepState};
use crate::validate::validate;

fn tmpdir(name: &str) -> PathBuf {
    crate::import::tmpdir("paths", name)
}

fn write_lines(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let p = dir.join(name);
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&p, text).expect("write");
    p
}

fn row(trace: &str, step: u32, action: &str, weak: (u32, f64, bool)) -> Value {
    json!({
        "trace_id": trace, "problem_id": "p", "step": step, "action": action,
        "weak_tokens": weak.0, "weak_prm": weak.1, "weak_finished": weak.2,
    })
}

fn with_strong(mut v: Value, strong: (u32, f64, bool)) -> Value {
    v["strong_tokens"] = json!(strong.0);
    v["strong_prm"] = json!(strong.1);
    v["strong_finished"] = json!(strong.2);
    v
}

fn with_correct(mut v: Value, c: bool) -> Value {
    v["correct"] = json!(c);
    v
}

const W0: (u32, f64, bool) = (10, 0.9, false);
const S0: (u32, f64, bool) = (12, 0.95, false);

/// Trace `a`: continue, then a finished weak step (wrong). Trace `b`: regenerate at the root
/// (it recorded the strong candidate `a` did not), then a finished weak step (right).
fn two_agreeing() -> Vec<Value> {
    vec![
        row("a", 0, "continue", W0),
        with_correct(row("a", 1, "continue", (20, 0.3, true)), false),
        with_strong(row("b", 0, "regenerate", W0), S0),
        with_correct(row("b", 1, "continue", (7, 0.8, true)), true),
    ]
}

fn import_lines(name: &str, lines: &[Value]) -> Result<(Dataset, Report)> {
    let d = tmpdir(name);
    import(&write_lines(&d, "log.jsonl", lines), &Options::default())
}

fn bad(name: &str, lines: &[Value]) -> Details {
    match import_lines(name, lines) {
        Ok(_) => panic!("{name}: bad input accepted"),
        Err(e) => e.details().clone(),
    }
}

fn bad_text(name: &str, text: &str) -> Details {
    let d = tmpdir(name);
    let p = d.join("log.jsonl");
    std::fs::write(&p, text).expect("write");
    match import(&p, &Options::default()) {
        Ok(_) => panic!("{name}: bad input accepted"),
        Err(e) => e.details().clone(),
    }
}

#[test]
fn agreeing_traces_merge_into_one_tree() {
    let (ds, rep) = import_lines("merge", &two_agreeing()).expect("import");
    assert_eq!(
        (rep.traces, rep.problems, rep.trees, rep.nodes),
        (2, 1, 1, 3)
    );
    let root = &ds.rows[0];
    assert_eq!(root.parent, None);
    // `a` did not generate the strong candidate; `b`'s fills it in.
    assert_eq!(root.strong.as_ref().map(|s| s.tokens), Some(12));
    assert_eq!(ds.problems[0].split, "train");
    let l = validate(Path::new("mem"), ds).expect("valid");
    let f = &l.forest;
    let r = f.root(0);
    assert_eq!(f.mask(r), [true, true]);
    let all = [0u32];
    let run = |p: RefPolicy| evaluate(f, &all, &p, EvalOptions::default()).expect("run")[0];
    assert_eq!(run(RefPolicy::Weak).accuracy, 0.0);
    let s = run(RefPolicy::Strong);
    // Regenerate at the root, then only continue is available (never executed otherwise).
    assert_eq!((s.accuracy, s.strong_tokens, s.steps), (1.0, 12.0, 2.0));
}

#[test]
fn disagreeing_traces_split_into_sample_trees() {
    let mut lines = two_agreeing();
    // `c`: another weak root step → its own tree.
    lines.push(with_correct(row("c", 0, "continue", (11, 0.9, true)), true));
    // `d`: same weak root, different strong candidate → its own tree.
    lines.push(with_strong(
        row("d", 0, "regenerate", W0),
        (13, 0.95, false),
    ));
    lines.push(with_correct(row("d", 1, "continue", (7, 0.8, true)), true));
    // `e`: same path as `b` but the opposite outcome: cannot share the terminal branch.
    lines.push(with_strong(row("e", 0, "regenerate", W0), S0));
    lines.push(with_correct(row("e", 1, "continue", (7, 0.8, true)), false));
    // `f`: consistent with tree 0 (walks `a`'s path, stops at a new branch there).
    lines.push(row("f", 0, "continue", W0));
    lines.push(with_correct(
        with_strong(row("f", 1, "regenerate", (20, 0.3, true)), (9, 0.7, true)),
        true,
    ));
    let (ds, rep) = import_lines("split", &lines).expect("import");
    assert_eq!((rep.traces, rep.trees), (6, 4));
    let nodes_of = |t: u32| ds.rows.iter().filter(|r| r.tree == t).count();
    assert_eq!(
        (nodes_of(0), nodes_of(1), nodes_of(2), nodes_of(3)),
        (3, 1, 2, 2)
    );
    let l = validate(Path::new("mem"), ds).expect("valid");
    // In tree 0 the node after `continue` now offers both actions, each with its outcome.
    let f = &l.forest;
    let Branch::Node(n1) = f.branch(f.root(0), Action::Continue) else {
        panic!("continue child");
    };
    assert_eq!(f.branch(n1, Action::Continue), Branch::Outcome(false));
    assert_eq!(f.branch(n1, Action::Regenerate), Branch::Outcome(true));
}

/// Three problems of full binary trees of depth 3 (the second with two sample trees); scores
/// and outcomes from a seeded RNG so threshold policies take different paths.
fn tree_dataset() -> Dataset {
    let mut b = DatasetBuilder::new(Meta::new("unit-trees"));
    let mut rng = Rng::new(42);
    let cand = |rng: &mut Rng, finished: bool| CandidateRec {
        tokens: 1 + rng.below(60) as u32,
        prm: rng.f32(),
        finished,
        state: StepState::from_u8(rng.below(3) as u8),
        text: None,
        hash: Some(format!("{:016x}", rng.next_u64())),
        judge_score: Some(rng.below(10) as f32 / 9.0),
        mean_logprob: Some(-2.0 * rng.f32()),
    };
    for (pi, trees) in [1, 2, 1].into_iter().enumerate() {
        let p = b.add_problem(ProblemInfo {
            problem_id: format!("q{pi}"),
            dataset: "unit".into(),
            split: if pi == 2 {
                "test".into()
            } else {
                "train".into()
            },
            weak_model: "w".into(),
            strong_model: "s".into(),
            prm_model: "prm".into(),
        });
        for _ in 0..trees {
            let mut tw = b.tree(p);
            let (w, s) = (cand(&mut rng, false), cand(&mut rng, false));
            let mut frontier = vec![tw.root(w, Some(s))];
            for depth in 1..3 {
                let mut next = vec![];
                for &n in &frontier {
                    for a in Action::ALL {
                        let fin = depth == 2;
                        let (w, s) = (cand(&mut rng, fin), cand(&mut rng, fin));
                        let c = tw.child(n, a, w, Some(s));
                        if fin {
                            tw.set_outcome(c, Action::Continue, rng.bernoulli(0.5));
                            tw.set_outcome(c, Action::Regenerate, rng.bernoulli(0.5));
                        }
                        next.push(c);
                    }
                }
                frontier = next;
            }
        }
    }
    b.finish()
}

#[test]
fn round_trip_walk_log_import_gives_same_outcomes() {
    let l = validate(Path::new("mem"), tree_dataset()).expect("valid source");
    let pols = [
        RefPolicy::Weak,
        RefPolicy::Strong,
        RefPolicy::Threshold(0.3),
        RefPolicy::Threshold(0.6),
        RefPolicy::Threshold(0.9),
        RefPolicy::Judge(0.5),
        RefPolicy::Confidence(-0.7),
    ];
    let named: Vec<(String, &dyn Policy)> = pols
        .iter()
        .map(|p| (p.to_string(), p as &dyn Policy))
        .collect();
    let all: Vec<u32> = (0..3).collect();
    let log = log_traces(&l, &all, &named, 7).expect("walk");
    assert!(log.iter().filter(|r| r.correct.is_some()).count() == 4 * pols.len());
    let d = tmpdir("roundtrip");
    for file in ["log.jsonl", "log.parquet"] {
        let path = d.join(file);
        write_traces(&path, &log).expect("write log");
        let back = read_traces(&path, DEFAULT_MAX_STEPS).expect("read log");
        let back_rows: Vec<TraceRow> = back.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(
            back_rows, log,
            "{file}: rows survive the round trip exactly"
        );
        let (ds, rep) = merge(&path, &back, &Options::default()).expect("merge");
        assert_eq!(rep.problems, 3);
        assert_eq!(rep.trees, 4, "one merged tree per source sample tree");
        assert_eq!(ds.problems[2].split, "test");
        let imported = validate(&path, ds).expect("imported trees are valid");
        for p in &pols {
            let a = evaluate(&l.forest, &all, p, EvalOptions::default()).expect("src");
            let b = evaluate(&imported.forest, &all, p, EvalOptions::default()).expect("imp");
            assert_eq!(a, b, "{file}: policy {p}");
        }
    }
}

#[test]
fn unkept_finished_candidate_is_masked_and_step_cap_ends_traces() {
    // The strong candidate at step 1 is finished but was never kept: no outcome is known.
    let lines = vec![
        row("a", 0, "continue", W0),
        with_correct(
            with_strong(row("a", 1, "continue", (20, 0.3, true)), (9, 0.7, true)),
            true,
        ),
    ];
    let (ds, _) = import_lines("masked", &lines).expect("import");
    let n1 = &ds.rows[1];
    assert_eq!(n1.strong.as_ref().map(|s| s.finished), Some(false));
    assert_eq!(n1.regenerate_correct, None);
    let l = validate(Path::new("mem"), ds).expect("valid");
    let Branch::Node(n) = l.forest.branch(l.forest.root(0), Action::Continue) else {
        panic!("child");
    };
    assert_eq!(l.forest.mask(n), [true, false]);
    // With a cap of 2 steps, a trace may end unfinished at step 1.
    let d = tmpdir("cap");
    let lines = vec![
        row("a", 0, "continue", W0),
        with_correct(row("a", 1, "continue", (20, 0.3, false)), false),
    ];
    let p = write_lines(&d, "log.jsonl", &lines);
    let opts = Options {
        max_steps: 2,
        ..Options::default()
    };
    let (ds, _) = import(&p, &opts).expect("capped trace");
    assert!(ds.rows[1].weak.finished);
    validate(&p, ds).expect("valid");
    let e = import(&p, &Options::default()).expect_err("uncapped: must be finished");
    assert_eq!(e.details().field.as_deref(), Some("weak_finished"));
}

#[test]
fn shipped_example_imports() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paths-example.jsonl");
    let (ds, rep) = import(&p, &Options::default()).expect("example log imports");
    assert!(rep.traces > rep.trees, "several policies share trees");
    validate(&p, ds).expect("example trees are valid");
}
