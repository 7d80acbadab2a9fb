//! Collections against the fake server on 127.0.0.1: the trees have the properties the fake
//! world implies, faults are retried or reported, and nothing half-done is ever written.

mod common;

use std::path::Path;

use common::{config, load, tmpdir};
use trim_collect::config::CollectConfig;
use trim_collect::fake::{FakeServer, FakeWorld, Faults};
use trim_collect::{RunOptions, run};

#[test]
fn full_trees_have_the_fake_worlds_properties() {
    let d = tmpdir("full");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let cfg = config(&d, &srv, 12, &["expand.max_regens=1"]);
    let s = run(cfg.clone(), RunOptions::default()).unwrap();
    assert_eq!((s.problems, s.collected, s.failed.len()), (12, 12, 0));
    assert_eq!(s.shards_written, 4);
    let ds = load(&cfg.out).ds;
    assert_eq!(ds.problems.len(), 12);
    let (mut weak_ok, mut weak_n, mut strong_ok, mut strong_n) = (0, 0, 0, 0);
    for r in &ds.rows {
        // All-weak path exists at every node: continue leads to a node or an outcome.
        if let Some(c) = r.continue_correct {
            weak_n += 1;
            weak_ok += usize::from(c);
        }
        if let Some(c) = r.regenerate_correct {
            strong_n += 1;
            strong_ok += usize::from(c);
        }
        assert!(
            r.weak
                .text
                .as_deref()
                .is_some_and(|t| t.starts_with("Step")),
            "{r:?}"
        );
    }
    assert!(weak_n > 12 && strong_n > 0);
    // At most one regeneration per path: no regenerate child below a regenerate edge has a
    // strong candidate, and every regenerate child has depth ≥ 1.
    let by_id = |p: u32, t: u32, n: u32| {
        ds.rows
            .iter()
            .find(|r| r.problem == p && r.tree == t && r.node == n)
            .unwrap()
    };
    for r in &ds.rows {
        if r.action == Some(trim_env::Action::Regenerate) {
            assert!(
                r.strong.is_none(),
                "a second regeneration below a regenerate: {r:?}"
            );
            let parent = by_id(r.problem, r.tree, r.parent.unwrap());
            assert!(parent.strong.is_some());
        }
    }
    let meta = &ds.meta.params;
    assert_eq!(meta["weak"]["model"], "fake-weak");
    assert_eq!(meta["counts"]["problems"], 12);
    assert!(meta["cost"]["strong_tokens"].as_u64().unwrap() > 0);
    assert!(!serde_json::to_string(meta).unwrap().contains("api_key"));
    // The strong model errs less, so keeping its finished step is right more often.
    let rate = |ok: usize, n: usize| ok as f64 / n as f64;
    assert!(
        rate(strong_ok, strong_n) > rate(weak_ok, weak_n) + 0.1,
        "strong {strong_ok}/{strong_n} vs weak {weak_ok}/{weak_n}"
    );
    // A second run refuses to overwrite the dataset.
    let e = run(cfg.clone(), RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn faults_are_retried_and_the_result_is_unchanged() {
    let d = tmpdir("faults");
    let clean = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let cfg = config(&d, &clean, 6, &[]);
    run(cfg.clone(), RunOptions::default()).unwrap();
    let want = load(&cfg.out).ds;
    let faults = Faults {
        http_500: 0.08,
        slow: 0.02,
        slow_ms: 2500,
        truncated: 0.05,
        dropped: 0.05,
        wrong_count: 0.05,
        always_wrong_for: None,
        latency_ms: 0,
        no_logprobs_for: None,
        no_digit_for: None,
    };
    let noisy = FakeServer::start(FakeWorld::default(), faults).unwrap();
    let d2 = d.join("noisy");
    std::fs::create_dir_all(&d2).unwrap();
    let cfg2 = config(&d2, &noisy, 6, &[]);
    let s = run(cfg2.clone(), RunOptions::default()).unwrap();
    let got = load(&cfg2.out).ds;
    assert_eq!(got.rows, want.rows, "faults changed the collected trees");
    assert_eq!(got.problems, want.problems);
    let retries = s.weak.retries + s.strong.retries + s.prm.retries;
    assert!(retries > 0, "no fault was injected: {s:?}");
    assert!(
        noisy
            .stats
            .faults
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_problem_that_keeps_failing_is_reported_and_nothing_of_it_is_written() {
    let d = tmpdir("fatal");
    let faults = Faults {
        always_wrong_for: Some("number 2.".into()),
        ..Faults::default()
    };
    let srv = FakeServer::start(FakeWorld::default(), faults).unwrap();
    let cfg = config(&d, &srv, 5, &["prm.limits.retries=2"]);
    let e = run(cfg.clone(), RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 of 5 problems failed") && e.contains("fake-2"),
        "{e}"
    );
    assert!(
        e.contains("3 step scores for") || e.contains("step scores for"),
        "{e}"
    );
    assert!(
        !cfg.out.exists(),
        "a dataset was written despite the failure"
    );
    // The other four are committed; --allow-partial writes them.
    let opts = RunOptions {
        allow_partial: true,
        ..RunOptions::default()
    };
    let s = run(cfg.clone(), opts).unwrap();
    assert_eq!((s.already_committed, s.failed.len()), (4, 1));
    let ds = load(&cfg.out).ds;
    let ids: Vec<&str> = ds.problems.iter().map(|p| p.problem_id.as_str()).collect();
    assert_eq!(ids, ["fake-0", "fake-1", "fake-3", "fake-4"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn policy_guided_collection_visits_only_what_the_policy_visits() {
    let d = tmpdir("guided");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let full_cfg = config(&d, &srv, 6, &["expand.max_regens=2"]);
    run(full_cfg.clone(), RunOptions::default()).unwrap();
    let full = load(&full_cfg.out).ds;
    let d2 = d.join("g");
    std::fs::create_dir_all(&d2).unwrap();
    let g = config(
        &d2,
        &srv,
        6,
        &[
            "expand.strategy=policy",
            "expand.policy=\"threshold:0.5\"",
            "expand.episodes=1",
        ],
    );
    run(g.clone(), RunOptions::default()).unwrap();
    let guided = load(&g.out).ds;
    assert!(guided.rows.len() < full.rows.len());
    // One greedy threshold episode = one path: each node has at most one child, and it
    // regenerates exactly where the weak step scored below 0.5.
    for r in &guided.rows {
        let kids: Vec<_> = (guided.rows.iter())
            .filter(|c| c.problem == r.problem && c.parent == Some(r.node))
            .collect();
        assert!(kids.len() <= 1);
        assert_eq!(r.strong.is_some(), r.weak.prm < 0.5, "{r:?}");
    }
    // Its candidates are the full tree's (same seeds, same prompts).
    for (a, b) in guided.rows.iter().zip(&full.rows).take(1) {
        assert_eq!(a.weak, b.weak);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_token_budget_cuts_branches_but_never_leaves_a_dead_end() {
    let d = tmpdir("budget");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let big = config(&d, &srv, 4, &["expand.max_regens=3"]);
    run(big.clone(), RunOptions::default()).unwrap();
    let d2 = d.join("b");
    std::fs::create_dir_all(&d2).unwrap();
    let small = config(
        &d2,
        &srv,
        4,
        &["expand.max_regens=3", "budget.max_tokens=60"],
    );
    run(small.clone(), RunOptions::default()).unwrap();
    let (a, b) = (load(&big.out), load(&small.out));
    assert!(b.ds.rows.len() < a.ds.rows.len());
    std::fs::remove_dir_all(&d).unwrap();
}

fn grader_script() -> String {
    let p = format!(
        "{}/../scripts/python/math_verify_grader.py",
        env!("CARGO_MANIFEST_DIR")
    );
    format!("grader=\"python3 {p} --exact\"")
}

#[test]
fn an_external_grader_gives_the_same_grades_on_plain_answers() {
    let d = tmpdir("grader");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let built_in = config(&d, &srv, 5, &[]);
    run(built_in.clone(), RunOptions::default()).unwrap();
    let d2 = d.join("ext");
    std::fs::create_dir_all(&d2).unwrap();
    let g = grader_script();
    let ext = config(&d2, &srv, 5, &[g.as_str()]);
    run(ext.clone(), RunOptions::default()).unwrap();
    let (a, b) = (load(&built_in.out).ds, load(&ext.out).ds);
    assert_eq!(a.rows, b.rows);
    assert!(
        b.meta.params["grader"]
            .as_str()
            .unwrap()
            .contains("external")
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_broken_grader_is_reported_by_name() {
    let d = tmpdir("badgrader");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    for (cmd, want) in [
        ("grader=\"true\"", "exit"),
        ("grader=\"yes nonsense\"", "is not {\"correct\""),
    ] {
        let _ = std::fs::remove_dir_all(d.join("out.parquet.collect"));
        let cfg = config(&d, &srv, 2, &[cmd]);
        let e = run(cfg.clone(), RunOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("grader") && e.contains(want), "{cmd}: {e}");
        assert!(!cfg.out.exists());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn parquet_problem_files_are_read() {
    let d = tmpdir("pq");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let cfg = config(&d, &srv, 3, &[]);
    let pq = d.join("problems.parquet");
    trim_data::io::write_string_columns(
        &pq,
        &[
            ("id", vec!["a".into(), "b".into()]),
            (
                "question",
                vec![
                    "Compute the value of expression number 0.".into(),
                    "Compute the value of expression number 1.".into(),
                ],
            ),
            (
                "answer",
                vec![
                    trim_collect::fake::world::answer("Compute the value of expression number 0."),
                    trim_collect::fake::world::answer("Compute the value of expression number 1."),
                ],
            ),
        ],
    )
    .unwrap();
    let p = trim_collect::problems::read_problems(&pq).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!((p[1].id.as_str(), p[1].split.as_str()), ("b", "train"));
    let cfg = CollectConfig {
        problems: pq.clone(),
        ..cfg
    };
    let s = run(cfg, RunOptions::default()).unwrap();
    assert_eq!(s.collected, 2);
    // A parquet file without the `answer` column is refused, naming it.
    trim_data::io::write_string_columns(&pq, &[("id", vec!["a".into()])]).unwrap();
    let e = trim_collect::problems::read_problems(&pq)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("problems.parquet") && e.contains("question"),
        "{e}"
    );
    // Damaged bytes are an error naming the file, never a panic.
    write_pq(&pq);
    let good = std::fs::read(&pq).unwrap();
    for i in (0..good.len()).step_by(good.len() / 40 + 1) {
        let mut bad = good.clone();
        bad[i] ^= 0xff;
        std::fs::write(&pq, &bad).unwrap();
        if let Err(e) = trim_collect::problems::read_problems(&pq) {
            assert!(e.to_string().contains("problems.parquet"), "{e}");
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

fn write_pq(p: &Path) {
    trim_data::io::write_string_columns(
        p,
        &[
            ("id", vec!["a".into()]),
            ("question", vec!["q".into()]),
            ("answer", vec!["1".into()]),
        ],
    )
    .unwrap();
}

#[test]
fn a_refused_request_stops_the_run_at_once() {
    let d = tmpdir("refused");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let cfg = config(&d, &srv, 30, &["strong.model=fake-strnog"]);
    let e = run(cfg.clone(), RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("strong endpoint") && e.contains("refused") && e.contains("404"),
        "{e}"
    );
    assert!(
        e.contains("fake-strnog"),
        "the server's words are shown: {e}"
    );
    // Stopped early: far fewer requests than a full collection of 30 problems would send.
    let served = srv
        .stats
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(served < 400, "{served} requests after the refusal");
    assert!(!cfg.out.exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_full_context_finishes_the_solution() {
    let d = tmpdir("context");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    // The fake server counts a prompt as len/4 tokens: ~60 for the first step, so a context
    // of 80 ends every solution after a step or two.
    let cfg = config(&d, &srv, 6, &["sampling.context_len=80"]);
    run(cfg.clone(), RunOptions::default()).unwrap();
    let ds = load(&cfg.out).ds;
    assert!(
        ds.rows.iter().all(|r| r.depth <= 2),
        "a solution outgrew the context"
    );
    let cut = (ds.rows.iter())
        .filter(|r| r.weak.finished && !r.weak.text.as_deref().unwrap().contains("boxed"))
        .count();
    assert!(cut > 0, "no solution was cut by the context limit");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_seed_decides_the_samples() {
    let d = tmpdir("seed");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let rows = |sub: &str, seed: &str| {
        let dd = d.join(sub);
        std::fs::create_dir_all(&dd).unwrap();
        let cfg = config(&dd, &srv, 4, &[seed, "run.problems_in_flight=3"]);
        run(cfg.clone(), RunOptions::default()).unwrap();
        load(&cfg.out).ds.rows
    };
    let a = rows("a", "seed=1");
    assert_eq!(a, rows("b", "seed=1"), "same seed, different trees");
    assert_ne!(a, rows("c", "seed=2"), "the seed changes nothing");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn several_sample_trees_per_problem_are_independent_samples() {
    let d = tmpdir("trees");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let cfg = config(&d, &srv, 3, &["expand.trees=3", "expand.max_regens=1"]);
    run(cfg.clone(), RunOptions::default()).unwrap();
    let ds = load(&cfg.out).ds;
    for p in 0..3u32 {
        let roots: Vec<_> = (ds.rows.iter())
            .filter(|r| r.problem == p && r.parent.is_none())
            .collect();
        assert_eq!(roots.len(), 3, "problem {p}");
        assert_eq!(roots.iter().map(|r| r.tree).collect::<Vec<_>>(), [0, 1, 2]);
        // Different seeds: the trees' first steps are not all the same text.
        let texts: std::collections::BTreeSet<_> =
            roots.iter().map(|r| r.weak.text.clone()).collect();
        assert!(texts.len() > 1, "problem {p}: three identical samples");
    }
    assert_eq!(ds.meta.params["counts"]["trees"], 9);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_hosted_style_chat_config_collects_the_same_kind_of_trees() {
    let d = tmpdir("hosted");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let cfg = config(
        &d,
        &srv,
        4,
        &[
            "weak.api=chat",
            "strong.api=chat",
            "weak.vllm_extensions=false",
            "strong.vllm_extensions=false",
            "prompt.prefill=user",
            "prm.input=text",
        ],
    );
    run(cfg.clone(), RunOptions::default()).unwrap();
    let ds = load(&cfg.out).ds;
    assert_eq!(ds.problems.len(), 4);
    assert!(ds.rows.iter().any(|r| r.continue_correct == Some(true)));
    assert_eq!(ds.meta.params["prompt"]["prefill"], "user");
    std::fs::remove_dir_all(&d).unwrap();
}
