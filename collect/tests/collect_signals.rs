//! Per-step signals against the fake server: token log-probabilities (`[signals] logprobs`)
//! and a judge (`[judge]`) fill every weak candidate, track the fake world's hidden errors,
//! leave the trees themselves unchanged, and a server that omits them fails the problem after
//! the usual retries. Without them nothing new is stored.

mod common;

use std::path::Path;

use common::{config, load, tmpdir};
use trim_collect::config::CollectConfig;
use trim_collect::fake::world::ERROR_WORD;
use trim_collect::fake::{FakeServer, FakeWorld, Faults};
use trim_collect::{RunOptions, run};
use trim_data::NodeRow;

/// The overrides that switch both signals on, with fast judge retries.
fn signals_on(srv: &FakeServer, extra: &[&str]) -> Vec<String> {
    let mut o = srv.judge_overrides();
    o.extend(
        [
            "signals.logprobs=true",
            "judge.limits.backoff_ms=1",
            "judge.limits.timeout_s=2",
            "judge.limits.retries=8",
        ]
        .map(String::from),
    );
    o.extend(extra.iter().map(|s| s.to_string()));
    o
}

fn collect(dir: &Path, srv: &FakeServer, n: usize, extra: &[String]) -> CollectConfig {
    std::fs::create_dir_all(dir).unwrap();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let cfg = config(dir, srv, n, &extra);
    run(cfg.clone(), RunOptions::default()).unwrap();
    cfg
}

fn mean(xs: &[f32]) -> f32 {
    xs.iter().sum::<f32>() / xs.len().max(1) as f32
}

/// Judge scores and mean log-probabilities of the weak steps with and without the fake's
/// error marker.
fn by_error(rows: &[NodeRow]) -> [(Vec<f32>, Vec<f32>); 2] {
    let mut out: [(Vec<f32>, Vec<f32>); 2] = Default::default();
    for r in rows {
        let err = r.weak.text.as_deref().unwrap().contains(ERROR_WORD);
        let g = &mut out[usize::from(err)];
        g.0.push(r.weak.judge_score.unwrap());
        g.1.push(r.weak.mean_logprob.unwrap());
    }
    out
}

/// Every weak candidate has both signals, in range; strong ones a log-probability only.
fn assert_complete(rows: &[NodeRow]) {
    for r in rows {
        let j = r.weak.judge_score.expect("every weak candidate is judged");
        assert!((0.0..=1.0).contains(&j), "{r:?}");
        assert!(
            (j * 9.0 - (j * 9.0).round()).abs() < 1e-5,
            "a digit / 9: {j}"
        );
        let lp = r
            .weak
            .mean_logprob
            .expect("every weak candidate has a mean_logprob");
        assert!(lp.is_finite() && lp <= 0.0, "{r:?}");
        if let Some(s) = &r.strong {
            assert!(s.judge_score.is_none());
            assert!(s.mean_logprob.is_some_and(|x| x.is_finite() && x <= 0.0));
        }
    }
}

#[test]
fn logprobs_and_a_judge_fill_every_weak_candidate() {
    let d = tmpdir("signals");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let base = ["expand.max_regens=1".to_string()];
    let off = collect(&d.join("off"), &srv, 10, &base);
    let on = collect(
        &d.join("on"),
        &srv,
        10,
        &signals_on(&srv, &["expand.max_regens=1"]),
    );
    let (off_ds, on_ds) = (load(&off.out).ds, load(&on.out).ds);
    assert_complete(&on_ds.rows);
    // Asking for signals changes nothing else: the same steps, scores and outcomes.
    let stripped: Vec<NodeRow> = (on_ds.rows.iter().cloned())
        .map(|mut r| {
            r.weak.judge_score = None;
            r.weak.mean_logprob = None;
            if let Some(s) = &mut r.strong {
                s.mean_logprob = None;
            }
            r
        })
        .collect();
    assert_eq!(stripped, off_ds.rows);
    // Both signals track the hidden errors: higher on correct steps than on erroneous ones.
    let [(ok_j, ok_lp), (err_j, err_lp)] = by_error(&on_ds.rows);
    assert!(!ok_j.is_empty() && !err_j.is_empty());
    assert!(mean(&ok_j) > mean(&err_j) + 0.3, "{ok_j:?} vs {err_j:?}");
    assert!(
        mean(&ok_lp) > mean(&err_lp) + 0.3,
        "{ok_lp:?} vs {err_lp:?}"
    );
    // Provenance and cost: one judge request per weak candidate.
    let p = &on_ds.meta.params;
    assert_eq!(p["signals"]["logprobs"], true);
    assert_eq!(p["signals"]["judge"], true);
    assert_eq!(p["judge"]["model"], "fake-judge");
    assert_eq!(p["judge"]["url"], format!("{}/v1", srv.url()));
    assert!(p["judge"]["prompt"].as_str().unwrap().contains("{step}"));
    assert_eq!(p["cost"]["judge_requests"], on_ds.rows.len());
    let judged = srv
        .stats
        .judgements
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(judged as usize, on_ds.rows.len());
    assert_eq!(off_ds.meta.params["signals"]["logprobs"], false);
    assert!(off_ds.meta.params["judge"].is_null());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn without_signals_nothing_new_is_stored() {
    let d = tmpdir("plain-run");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let cfg = collect(&d, &srv, 4, &[]);
    let rows = load(&cfg.out).ds.rows;
    assert!(rows.iter().all(|r| r.weak.judge_score.is_none()
        && r.weak.mean_logprob.is_none()
        && r.strong.as_ref().is_none_or(|s| s.mean_logprob.is_none())));
    for entry in std::fs::read_dir(cfg.work_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for word in ["judge", "logprob", "signals"] {
            assert!(
                !text.contains(word),
                "`{word}` in a work file of a run without signals"
            );
        }
    }
    assert_eq!(
        srv.stats
            .judgements
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn chat_generators_and_a_completions_judge() {
    let d = tmpdir("signals-chat");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let extra = ["weak.api=chat", "strong.api=chat", "judge.api=completions"];
    let cfg = collect(&d, &srv, 6, &signals_on(&srv, &extra));
    let rows = load(&cfg.out).ds.rows;
    assert_complete(&rows);
    let [(ok_j, ok_lp), (err_j, err_lp)] = by_error(&rows);
    assert!(mean(&ok_j) > mean(&err_j) && mean(&ok_lp) > mean(&err_lp));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Collect 5 problems where the fake misbehaves for problem 2 only; the run's error and its
/// summary.json.
fn failing_run(name: &str, faults: Faults, extra: &[&str]) -> (String, serde_json::Value) {
    let d = tmpdir(name);
    let srv = FakeServer::start(FakeWorld::default(), faults).unwrap();
    let cfg = config(
        &d,
        &srv,
        5,
        &signals_on(&srv, extra)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let e = run(cfg.clone(), RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        !cfg.out.exists(),
        "a dataset was written despite the failure"
    );
    let summary = std::fs::read_to_string(cfg.work_dir().join("summary.json")).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
    (e, serde_json::from_str(&summary).unwrap())
}

#[test]
fn a_generator_that_omits_logprobs_fails_the_problem_after_retries() {
    let faults = Faults {
        no_logprobs_for: Some("number 2.".into()),
        ..Faults::default()
    };
    let (e, s) = failing_run(
        "nologprobs",
        faults,
        &["weak.limits.retries=2", "strong.limits.retries=2"],
    );
    assert!(
        e.contains("1 of 5 problems failed") && e.contains("fake-2"),
        "{e}"
    );
    assert!(
        e.contains("choices[0].logprobs") && e.contains("after 3 attempts"),
        "{e}"
    );
    let retries = s["weak"]["retries"].as_u64().unwrap() + s["strong"]["retries"].as_u64().unwrap();
    assert!(retries >= 2, "{s}");
}

#[test]
fn a_judge_reply_without_a_digit_fails_the_problem_after_retries() {
    let faults = Faults {
        no_digit_for: Some("number 2.".into()),
        ..Faults::default()
    };
    let (e, s) = failing_run("nodigit", faults, &["judge.limits.retries=1"]);
    assert!(
        e.contains("1 of 5 problems failed") && e.contains("fake-2"),
        "{e}"
    );
    assert!(
        e.contains("judge endpoint") && e.contains("no digit"),
        "{e}"
    );
    assert!(s["judge"]["retries"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["judge"]["failed"].as_u64().unwrap() >= 1, "{s}");
}

#[test]
fn judge_settings_are_checked_by_name() {
    let d = tmpdir("judgecfg");
    let srv = FakeServer::start(FakeWorld::default(), Faults::default()).unwrap();
    let base: Vec<String> = {
        let cfg = config(&d, &srv, 1, &[]);
        let mut o = srv.overrides();
        o.push(format!("problems={}", cfg.problems.display()));
        o.push(format!("out={}", cfg.out.display()));
        o
    };
    let load = |extra: &[&str]| {
        let mut o = base.clone();
        o.extend(extra.iter().map(|s| s.to_string()));
        CollectConfig::load(None, &o)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = load(&["judge.url=http://127.0.0.1:1/v1"]);
    assert!(e.contains("judge") && e.contains("model"), "{e}");
    let e = load(&[
        "judge.model=j",
        "judge.url=http://h/v1",
        "judge.prompt=\"rate it\"",
    ]);
    assert!(e.contains("judge.prompt") && e.contains("{step}"), "{e}");
    let e = load(&["signals.logprob=true"]);
    assert!(e.contains("logprob"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}
