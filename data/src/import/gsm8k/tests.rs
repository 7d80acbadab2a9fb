//! Tests of the GSM8K paired import on three upstream-format problems.

use std::path::{Path, PathBuf};

use serde_json::Value;
use trim_env::{Action, EvalOptions, RefPolicy, evaluate};

use super::*;
use crate::io::text_hash;
use crate::schema::StepState;
use crate::validate::validate;

fn tmpdir(name: &str) -> PathBuf {
    crate::import::tmpdir("gsm8k", name)
}

fn sol(text: &str, ok: bool) -> Value {
    serde_json::json!({ "is_correct": ok, "solution": text })
}

/// Three upstream-format problems: (weak wrong, strong right), (weak right, strong wrong),
/// and a one-line strong solution.
fn sample_lines() -> Vec<Value> {
    let gt1 = "She has 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\nA: 18";
    let gt2 = "It takes 2/2=<<2/2=1>>1 bolt\nSo 2+1=<<2+1=3>>3 bolts\nA: 3";
    let gt3 = "He has 5+5=<<5+5=10>>10 apples\nA: 10";
    let q = |s: &str| serde_json::Value::String(s.into());
    vec![
        serde_json::json!({
            "question": q("Janet's ducks lay 16 eggs per day ..."),
            "ground_truth": gt1,
            "6b_finetuning": sol("She has 16 - 3 = <<16-3=13>>13 eggs left\nShe makes 13 * 2 = $<<13*2=26>>26\nA: 26", false),
            "175b_finetuning": sol("She uses 3 + 4 = <<3+4=7>>7 eggs\n16 - 7 = <<16-7=9>>9 are for sale\nShe makes 2 * 9 = $<<2*9=18>>18\nA: 18", true),
            "6b_verification": sol("A: 18", true),
            "175b_verification": sol("A: 18", true),
        }),
        serde_json::json!({
            "question": q("A robe takes 2 bolts of blue fiber ..."),
            "ground_truth": gt2,
            "6b_finetuning": sol("It takes 2*1/2=<<2*1/2=1.0>>1 bolt\nSo 2+1=<<2+1=3>>3 bolts\nA: 3", true),
            "175b_finetuning": sol("It takes 2/2 = <<2/2=1.0>>1 bolt\nA bolt is 100/2 = <<100/2=50.0>>50 meters\nSo 2*100 = <<2*100=200>>200\nA: 250", false),
            "6b_verification": sol("A: 3", true),
            "175b_verification": sol("A: 3", true),
        }),
        serde_json::json!({
            "question": q("John has 5 apples and buys 5 more ..."),
            "ground_truth": gt3,
            "6b_finetuning": sol("He buys 5 apples\nHe has 5*5=<<5*5=25>>25 apples\nA: 25", false),
            "175b_finetuning": sol("A: 10", true),
            "6b_verification": sol("A: 10", true),
            "175b_verification": sol("A: 10", true),
        }),
    ]
}

fn write_sample(name: &str) -> PathBuf {
    let d = tmpdir(name);
    let text: String = sample_lines().iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(d.join(SOLUTIONS_FILE), text).expect("write sample");
    d
}

fn tokens(text: &str) -> u32 {
    TokenCounter::new().count(text)
}

#[test]
fn trees_have_suffix_switch_structure() {
    let d = write_sample("structure");
    let (ds, rep) = import(&d, &Options::default()).expect("import");
    assert_eq!(rep.problems, 3);
    assert_eq!(ds.problems.len(), 3);
    // Problem 0: Lw = 3, Ls = 4. j(t) = 0, 1, 2; suffix nodes 3 + 2 + 1; total 3 + 6 = 9.
    // Problem 1: Lw = 3, Ls = 4 → 9 nodes. Problem 2: Lw = 3, Ls = 1 → 3 nodes.
    let count = |p: u32| ds.rows.iter().filter(|r| r.problem == p).count();
    assert_eq!((count(0), count(1), count(2)), (9, 9, 3));
    assert_eq!(rep.nodes, 21);
    let rows0: Vec<_> = ds.rows.iter().filter(|r| r.problem == 0).collect();
    // Post-switch nodes offer only regenerate: their weak stand-in is unfinished and they
    // have no continue child.
    for r in &rows0 {
        if r.action == Some(Action::Regenerate) {
            assert!(!r.weak.finished);
            assert!(r.continue_correct.is_none());
            assert!(
                rows0
                    .iter()
                    .all(|c| c.parent != Some(r.node) || c.action == Some(Action::Regenerate))
            );
        }
    }
    // Weak chain states: step 0 off-chain (13 not in {9, 18}) = S2, then S1.
    let chain: Vec<_> = rows0
        .iter()
        .filter(|r| r.action != Some(Action::Regenerate))
        .collect();
    assert_eq!(chain.len(), 3);
    let st: Vec<_> = chain.iter().map(|r| r.weak.state).collect();
    assert_eq!(
        st,
        vec![
            Some(StepState::S2),
            Some(StepState::S1),
            Some(StepState::S1)
        ]
    );
    assert_eq!(
        chain[0].weak.tokens,
        tokens("She has 16 - 3 = <<16-3=13>>13 eggs left")
    );
    assert_eq!(
        chain[0].weak.hash.as_deref(),
        Some(text_hash("She has 16 - 3 = <<16-3=13>>13 eggs left").as_str())
    );
    assert!(chain[0].weak.text.is_none());
    // Switch outcomes: at t = 0 the prefix is empty → 175B correct; at t ≥ 1 the prefix
    // holds an off-chain step and the 6B answer is wrong → conservative rule gives wrong.
    let l = validate(Path::new("mem"), ds.clone()).expect("valid trees");
    let f = &l.forest;
    let root = f.root(0);
    assert_eq!(f.mask(root), [true, true]);
    let mut tr = vec![];
    for first_switch in 0..3u16 {
        let mut node = root;
        let mut depth = 0u16;
        let correct = loop {
            let a = if depth >= first_switch {
                Action::Regenerate
            } else {
                Action::Continue
            };
            match f.branch(node, a) {
                trim_env::Branch::Node(n) => node = n,
                trim_env::Branch::Outcome(c) => break c,
                trim_env::Branch::Absent => panic!("absent branch"),
            }
            if depth >= first_switch {
                assert_eq!(
                    f.mask(node),
                    [false, true],
                    "post-switch node must be forced"
                );
            }
            depth += 1;
        };
        tr.push(correct);
    }
    assert_eq!(tr, vec![true, false, false]);
}

#[test]
fn anchors_equal_upstream_solutions() {
    let d = write_sample("anchors");
    let opts = Options {
        with_text: true,
        ..Options::default()
    };
    let (ds, rep) = import(&d, &opts).expect("import");
    let l = validate(Path::new("mem"), ds).expect("valid trees");
    let all: Vec<u32> = (0..3).collect();
    let run =
        |p: RefPolicy| evaluate(&l.forest, &all, &p, EvalOptions::default()).expect("masks obeyed");
    let weak = run(RefPolicy::Weak);
    let strong = run(RefPolicy::Strong);
    let acc = |o: &[trim_env::ProblemOutcome]| o.iter().map(|x| x.accuracy).collect::<Vec<_>>();
    assert_eq!(acc(&weak), vec![0.0, 1.0, 0.0]);
    assert_eq!(acc(&strong), vec![1.0, 0.0, 1.0]);
    assert!(weak.iter().all(|o| o.strong_tokens == 0.0));
    // Always-strong pays every 175B step, and takes exactly Ls steps.
    let lines = sample_lines();
    for (p, v) in lines.iter().enumerate() {
        let text = v["175b_finetuning"]["solution"].as_str().expect("str");
        let want: u32 = text.lines().map(tokens).sum();
        assert_eq!(strong[p].strong_tokens, f64::from(want), "problem {p}");
        assert_eq!(strong[p].steps, text.lines().count() as f64);
        assert_eq!(strong[p].strong_calls, strong[p].steps);
    }
    assert_eq!(
        rep.strong_tokens as f64,
        strong.iter().map(|o| o.strong_tokens).sum::<f64>()
    );
    // --with-text keeps the real lines on the chosen candidates.
    let root = &l.ds.rows[l.forest_row[l.forest.root(0) as usize] as usize];
    assert_eq!(
        root.weak.text.as_deref(),
        Some("She has 16 - 3 = <<16-3=13>>13 eggs left")
    );
    assert_eq!(
        root.strong.as_ref().and_then(|s| s.text.as_deref()),
        Some("She uses 3 + 4 = <<3+4=7>>7 eggs")
    );
}

#[test]
fn deterministic_by_seed_and_split_by_text() {
    let d = write_sample("determinism");
    let opts = Options::default();
    let (a, _) = import(&d, &opts).expect("import");
    let (b, _) = import(&d, &opts).expect("import");
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.problems, b.problems);
    let (c, _) = import(
        &d,
        &Options {
            seed: 1,
            ..opts.clone()
        },
    )
    .expect("import");
    assert_ne!(a.rows, c.rows, "another seed draws other PRM scores");
    // Only PRM scores move with the seed; the split does not.
    assert_eq!(a.problems, c.problems);
    let strip = |rows: &[crate::NodeRow]| {
        rows.iter()
            .map(|r| {
                (
                    r.node,
                    r.parent,
                    r.weak.tokens,
                    r.weak.state,
                    r.continue_correct,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a.rows), strip(&c.rows));
    let all_test = import(
        &d,
        &Options {
            test_fraction: 1.0,
            ..opts.clone()
        },
    )
    .expect("import")
    .0;
    assert!(all_test.problems.iter().all(|p| p.split == "test"));
    let none_test = import(
        &d,
        &Options {
            test_fraction: 0.0,
            ..opts
        },
    )
    .expect("import")
    .0;
    assert!(none_test.problems.iter().all(|p| p.split == "train"));
}

#[test]
fn bad_records_name_line_and_field() {
    let d = tmpdir("bad");
    let mut lines = sample_lines();
    lines[1]["175b_finetuning"]
        .as_object_mut()
        .expect("object")
        .remove("is_correct");
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(d.join(SOLUTIONS_FILE), text).expect("write");
    let e = import(&d, &Options::default()).expect_err("must fail");
    assert_eq!(e.details().loc, Loc::Line(2));
    assert_eq!(
        e.details().field.as_deref(),
        Some("175b_finetuning.is_correct")
    );
    let e = import(
        &d,
        &Options {
            test_fraction: 1.5,
            ..Options::default()
        },
    )
    .expect_err("must fail");
    assert_eq!(e.details().field.as_deref(), Some("test_fraction"));
}

/// The shipped dataset keeps the upstream anchors (SOURCE.md pairing counts, finetuning
/// variant): 6B right on 198 + 88 = 286 problems, 175B right on 260 + 198 = 458.
#[test]
fn shipped_dataset_keeps_upstream_anchors() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("sets/gsm8k-paired.parquet");
    let l = crate::load(&p).expect("shipped dataset loads");
    assert_eq!(l.forest.n_problems(), 1319);
    let all: Vec<u32> = (0..1319).collect();
    let correct = |p: RefPolicy| {
        evaluate(&l.forest, &all, &p, EvalOptions::default())
            .expect("masks obeyed")
            .iter()
            .map(|o| o.accuracy)
            .sum::<f64>()
    };
    assert_eq!(correct(RefPolicy::Weak), 286.0);
    assert_eq!(correct(RefPolicy::Strong), 458.0);
}
