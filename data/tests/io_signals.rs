//! The optional signal columns (`judge_score`, `mean_logprob` per candidate): exact round trips
//! through parquet and JSONL, the forest serving them to the peer rules, and bad values refused
//! naming the file, the node and the column.

mod common;

use std::path::Path;

use common::{UNVERIFIED_OK, edited_parquet, sample, tmpdir};
use polars::prelude::*;
use trim_data::{Dataset, Integrity, io, load, load_forest, load_with};
use trim_env::{EvalOptions, RefPolicy, World, evaluate};

/// The sample with both signals on every weak candidate and on some strong ones.
fn with_signals() -> Dataset {
    let mut ds = sample();
    for (i, r) in ds.rows.iter_mut().enumerate() {
        r.weak.judge_score = Some((i % 10) as f32 / 9.0);
        r.weak.mean_logprob = Some(-0.1 * (i + 1) as f32);
        if let Some(s) = r.strong.as_mut().filter(|_| i % 2 == 0) {
            s.judge_score = Some(1.0);
            s.mean_logprob = Some(-0.05);
        }
    }
    ds
}

#[test]
fn signals_round_trip_exactly_and_reach_the_rules() {
    let d = tmpdir("signals-rt");
    let ds = with_signals();
    for name in ["s.parquet", "s.jsonl"] {
        let p = d.join(name);
        io::write_dataset(&p, &ds).unwrap();
        assert_eq!(io::read_dataset(&p).unwrap().rows, ds.rows, "{name}");
        let l = load(&p).unwrap();
        let f = &l.forest;
        assert!(f.signal_kinds().judge_score && f.signal_kinds().mean_logprob);
        for n in 0..f.n_nodes() as u32 {
            let row = &l.ds.rows[l.forest_row[n as usize] as usize];
            let s = f.weak_signals(&n);
            assert_eq!(Some(s.judge_score), row.weak.judge_score);
            assert_eq!(Some(s.mean_logprob), row.weak.mean_logprob);
        }
        // Judge 0 keeps every weak step, judge 1 regenerates wherever it can.
        let ev = |p: RefPolicy| evaluate(f, &[0], &p, EvalOptions::default()).unwrap()[0];
        assert_eq!(ev(RefPolicy::Judge(0.0)), ev(RefPolicy::Weak));
        assert_eq!(ev(RefPolicy::Confidence(-100.0)), ev(RefPolicy::Weak));
        assert_eq!(ev(RefPolicy::Judge(1.0)), ev(RefPolicy::Strong));
    }
    // A file without signals has none and keeps its old checksum (loads verified).
    let p = d.join("plain.parquet");
    io::write_dataset(&p, &sample()).unwrap();
    let l = load(&p).unwrap();
    assert_eq!(l.forest.signal_kinds(), Default::default());
    // The checksum covers the signals: the same rows with one value changed differ.
    let (a, b) = (d.join("a.parquet"), d.join("b.parquet"));
    let mut other = with_signals();
    other.rows[1].weak.mean_logprob = Some(-0.7);
    io::write_dataset(&a, &with_signals()).unwrap();
    io::write_dataset(&b, &other).unwrap();
    let digest = |p: &Path| match load_forest(p, &Default::default()).unwrap().integrity {
        Integrity::Verified(h) => h,
        Integrity::Unverified => panic!("{} has no checksum", p.display()),
    };
    assert_ne!(digest(&a), digest(&b));
    // Without signals the digest is the one the format had before they existed: the sample's
    // rows digest identically with the columns absent, whatever was set before.
    let mut stripped = with_signals();
    for r in &mut stripped.rows {
        r.weak.judge_score = None;
        r.weak.mean_logprob = None;
        if let Some(s) = r.strong.as_mut() {
            (s.judge_score, s.mean_logprob) = (None, None);
        }
    }
    let c = d.join("c.parquet");
    io::write_dataset(&c, &stripped).unwrap();
    assert_eq!(digest(&c), digest(&p));
}

fn expect_jsonl_err(name: &str, mutate: impl FnOnce(&mut Dataset), needles: &[&str]) {
    let d = tmpdir(name);
    let mut ds = with_signals();
    mutate(&mut ds);
    let p = d.join("bad.jsonl");
    io::write_dataset(&p, &ds).unwrap();
    let e = load(&p).err().expect("must be refused").to_string();
    for n in ["bad.jsonl"].iter().chain(needles) {
        assert!(e.contains(n), "error `{e}` lacks `{n}`");
    }
}

#[test]
fn bad_signal_values_name_the_node_and_column() {
    expect_jsonl_err(
        "sig-judge",
        |ds| ds.rows[1].weak.judge_score = Some(1.5),
        &["weak_judge_score", "1.5", "judge score in [0, 1]", "line"],
    );
    expect_jsonl_err(
        "sig-lp",
        |ds| ds.rows[2].weak.mean_logprob = Some(0.25),
        &["weak_mean_logprob", "0.25", "finite, ≤ 0"],
    );
    expect_jsonl_err(
        "sig-gap",
        |ds| ds.rows[3].weak.judge_score = None,
        &["weak_judge_score", "must be set on every node"],
    );
    expect_jsonl_err(
        "sig-strong",
        |ds| {
            let r = ds.rows.iter_mut().find(|r| r.strong.is_some()).unwrap();
            r.strong.as_mut().unwrap().judge_score = Some(-0.5);
        },
        &["strong_judge_score", "-0.5"],
    );
}

fn expect_parquet_err(name: &str, edit: impl FnOnce(&mut DataFrame), needles: &[&str]) {
    let bad = edited_parquet(&tmpdir(name), &with_signals(), edit);
    let e = load_with(&bad, &UNVERIFIED_OK)
        .err()
        .expect("must be refused")
        .to_string();
    for n in ["bad.parquet"].iter().chain(needles) {
        assert!(e.contains(n), "error `{e}` lacks `{n}`");
    }
}

fn replace(df: &mut DataFrame, name: &str, values: Vec<Option<f32>>) {
    df.replace(name, Column::new(name.into(), values)).unwrap();
}

#[test]
fn bad_signal_columns_in_parquet_are_refused() {
    let n = sample().rows.len();
    let mut nan = vec![Some(0.5f32); n];
    nan[2] = Some(f32::NAN);
    expect_parquet_err(
        "sigp-nan",
        |df| replace(df, "weak_judge_score", nan),
        &["weak_judge_score", "NaN", "row 2"],
    );
    let mut inf = vec![Some(-0.2f32); n];
    inf[0] = Some(f32::NEG_INFINITY);
    expect_parquet_err(
        "sigp-inf",
        |df| replace(df, "weak_mean_logprob", inf),
        &["weak_mean_logprob", "inf"],
    );
    expect_parquet_err(
        "sigp-type",
        |df| {
            let s = Column::new("weak_judge_score".into(), vec!["x"; n]);
            df.replace("weak_judge_score", s).unwrap();
        },
        &["weak_judge_score"],
    );
    // A strong signal where the node has no strong candidate (row 2: n2 has none).
    expect_parquet_err(
        "sigp-orphan",
        |df| replace(df, "strong_mean_logprob", vec![Some(-0.1); n]),
        &["strong_mean_logprob", "no strong candidate"],
    );
}

#[test]
fn a_file_without_signal_columns_reads_as_before() {
    let d = tmpdir("sig-none");
    let p = d.join("s.jsonl");
    io::write_dataset(&p, &sample()).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(!text.contains("judge_score") && !text.contains("mean_logprob"));
    assert!(load(Path::new(&p)).is_ok());
}
