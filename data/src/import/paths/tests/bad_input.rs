//! One test per kind of bad input: each names the file, the line or row, and the field.

use polars::prelude::*;
use serde_json::json;
use trim_env::Action;

use super::super::read_jsonl::mark_non_finite;
use super::*;

#[test]
fn bad_empty_file() {
    let d = bad_text("empty", "");
    assert_eq!(d.loc, Loc::File);
    assert!(d.reason.contains("empty"), "{}", d.reason);
    let d = bad_text("blank", "\n\n");
    assert!(d.reason.contains("no trace rows"), "{}", d.reason);
}

#[test]
fn bad_missing_column() {
    let mut lines = two_agreeing();
    lines[2].as_object_mut().expect("obj").remove("weak_prm");
    let d = bad("missing", &lines);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(3), Some("weak_prm"))
    );
    // Parquet: a required column absent from the file.
    let dir = tmpdir("missing-pq");
    let p = dir.join("log.parquet");
    let mut df = DataFrame::new(
        1,
        vec![
            Column::new(col::TRACE_ID.into(), ["a"]),
            Column::new(col::PROBLEM_ID.into(), ["p"]),
            Column::new(col::STEP.into(), [0u32]),
            Column::new(col::ACTION.into(), [0u8]),
            Column::new(col::WEAK_TOKENS.into(), [3u32]),
            Column::new(col::WEAK_FINISHED.into(), [true]),
            Column::new(col::CORRECT.into(), [true]),
        ],
    )
    .expect("df");
    let f = std::fs::File::create(&p).expect("create");
    ParquetWriter::new(f).finish(&mut df).expect("write");
    let e = import(&p, &Options::default()).expect_err("missing column");
    assert_eq!(e.details().loc, Loc::File);
    assert_eq!(e.details().field.as_deref(), Some("weak_prm"));
    // A strong candidate with only some of its fields.
    let mut lines = two_agreeing();
    lines[2].as_object_mut().expect("obj").remove("strong_prm");
    let d = bad("partial-strong", &lines);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(3), Some("strong_prm"))
    );
}

#[test]
fn bad_wrong_type() {
    let mut lines = two_agreeing();
    lines[1]["weak_tokens"] = json!("20");
    let d = bad("type", &lines);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(2), Some("weak_tokens"))
    );
    let mut lines = two_agreeing();
    lines[0]["weak_finished"] = json!(0);
    let d = bad("type-bool", &lines);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(1), Some("weak_finished"))
    );
    let d = bad_text("not-object", "[1, 2]\n");
    assert_eq!(d.loc, Loc::Line(1));
    // Parquet: a float column where an integer is required.
    let dir = tmpdir("type-pq");
    let p = dir.join("log.parquet");
    let mut df = DataFrame::new(
        1,
        vec![
            Column::new(col::TRACE_ID.into(), ["a"]),
            Column::new(col::PROBLEM_ID.into(), ["p"]),
            Column::new(col::STEP.into(), [0.0f64]),
            Column::new(col::ACTION.into(), [0u8]),
            Column::new(col::WEAK_TOKENS.into(), [3u32]),
            Column::new(col::WEAK_PRM.into(), [0.5f32]),
            Column::new(col::WEAK_FINISHED.into(), [true]),
            Column::new(col::CORRECT.into(), [true]),
        ],
    )
    .expect("df");
    let f = std::fs::File::create(&p).expect("create");
    ParquetWriter::new(f).finish(&mut df).expect("write");
    let e = import(&p, &Options::default()).expect_err("wrong type");
    assert_eq!(e.details().field.as_deref(), Some("step"));
}

#[test]
fn bad_nan() {
    // Python's json.dumps writes a bare NaN: the error still names line and field.
    let lines = two_agreeing();
    let mut text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    text = text.replacen("\"weak_prm\":0.3", "\"weak_prm\":NaN", 1);
    assert!(text.contains("NaN"));
    let d = bad_text("nan", &text);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(2), Some("weak_prm"))
    );
    assert!(d.reason.contains("NaN"), "{}", d.reason);
    // NaN inside a string value is just text.
    assert_eq!(mark_non_finite("{\"a\":\"NaN\"}"), "{\"a\":\"NaN\"}");
    // Parquet NaN.
    let log = vec![TraceRow {
        trace_id: "a".into(),
        problem_id: "p".into(),
        step: 0,
        action: Action::Continue,
        weak: CandidateRec {
            tokens: 3,
            prm: f32::NAN,
            finished: true,
            state: None,
            text: None,
            hash: None,
            judge_score: None,
            mean_logprob: None,
        },
        strong: None,
        correct: Some(true),
        info: Default::default(),
        propensity: None,
        policy_id: None,
    }];
    let dir = tmpdir("nan-pq");
    let p = dir.join("log.parquet");
    write_traces(&p, &log).expect("write");
    let e = import(&p, &Options::default()).expect_err("NaN");
    assert_eq!(e.details().loc, Loc::Row(0));
    assert_eq!(e.details().field.as_deref(), Some("weak_prm"));
}

#[test]
fn bad_out_of_range() {
    for (field, value, line) in [
        ("weak_prm", json!(1.5), 2),
        ("strong_prm", json!(-0.1), 3),
        ("weak_tokens", json!(0), 1),
        ("action", json!(2), 1),
        ("action", json!("escalate"), 1),
        ("step", json!(-1), 1),
        ("step", json!(30), 1),
        ("weak_state", json!(3), 1),
        ("propensity", json!(0.0), 2),
        ("propensity", json!(1.5), 1),
        ("propensity", json!(-0.2), 3),
        ("propensity", json!("high"), 1),
        ("policy_id", json!(""), 2),
        ("policy_id", json!(true), 1),
        ("weak_judge_score", json!(1.5), 2),
        ("weak_judge_score", json!("high"), 1),
        ("weak_mean_logprob", json!(0.2), 1),
        ("strong_judge_score", json!(-0.1), 3),
        ("strong_mean_logprob", json!(0.5), 3),
    ] {
        let mut lines = two_agreeing();
        lines[line - 1][field] = value.clone();
        let d = bad(&format!("range-{field}"), &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(line), Some(field)),
            "{field} = {value}: {}",
            d.reason
        );
    }
}

#[test]
fn bad_non_contiguous_steps() {
    let mut lines = two_agreeing();
    lines[1]["step"] = json!(2);
    let d = bad("gap", &lines);
    assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(2), Some("step")));
    assert!(d.reason.contains("not contiguous"), "{}", d.reason);
    let mut lines = two_agreeing();
    lines[1]["step"] = json!(0);
    let d = bad("duplicate", &lines);
    assert!(d.reason.contains("duplicate step 0"), "{}", d.reason);
    let mut lines = two_agreeing();
    lines[0]["step"] = json!(2);
    let d = bad("start", &lines);
    assert!(d.reason.contains("starts at step 1"), "{}", d.reason);
    // Rows of a trace may come in any order.
    let mut lines = two_agreeing();
    lines.swap(0, 1);
    import_lines("unordered", &lines).expect("order is free");
}

#[test]
fn bad_trace_with_two_problems() {
    let mut lines = two_agreeing();
    lines[1]["problem_id"] = json!("other");
    let d = bad("two-problems", &lines);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(2), Some("problem_id"))
    );
    // Problem-level fields must agree across a problem's rows too.
    let mut lines = two_agreeing();
    lines[0]["split"] = json!("train");
    lines[3]["split"] = json!("test");
    let d = bad("two-splits", &lines);
    assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(4), Some("split")));
}

#[test]
fn bad_conflicting_outcomes() {
    let mut lines = two_agreeing();
    lines[0]["correct"] = json!(true);
    let d = bad("conflict", &lines);
    assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(2), Some("correct")));
    assert!(d.reason.contains("conflicting"), "{}", d.reason);
    let mut lines = two_agreeing();
    lines[1].as_object_mut().expect("obj").remove("correct");
    let d = bad("no-outcome", &lines);
    assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(2), Some("correct")));
}

#[test]
fn bad_regenerate_without_strong() {
    let mut lines = two_agreeing();
    lines[0]["action"] = json!(1);
    let d = bad("regen", &lines);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(1), Some("strong_tokens"))
    );
}

#[test]
fn bad_finish_in_the_middle() {
    let mut lines = two_agreeing();
    lines[0]["weak_finished"] = json!(true);
    let d = bad("mid-finish", &lines);
    assert_eq!(
        (d.loc, d.field.as_deref()),
        (Loc::Line(1), Some("weak_finished"))
    );
}

/// Damaged parquet bytes make polars panic, or decode to columns shorter than the table, at some
/// offsets: the import must come back with an error naming the file (or, where the damage is
/// harmless, succeed), never panic.
#[test]
fn bad_damaged_parquet_is_an_error_not_a_panic() {
    let l = validate(Path::new("mem"), tree_dataset()).expect("valid source");
    let pols = [
        RefPolicy::Weak,
        RefPolicy::Strong,
        RefPolicy::Threshold(0.6),
    ];
    let named: Vec<(String, &dyn Policy)> = pols
        .iter()
        .map(|p| (p.to_string(), p as &dyn Policy))
        .collect();
    let log = log_traces(&l, &[0, 1, 2], &named, 1).expect("walk");
    let dir = tmpdir("damaged-pq");
    let good = dir.join("log.parquet");
    write_traces(&good, &log).expect("write log");
    let bytes = std::fs::read(&good).expect("read back");
    let bad = dir.join("damaged.parquet");
    let mut errors = 0;
    // Every 8th offset of the body (the 4-byte magic at either end left intact).
    for off in (4..bytes.len() - 8).step_by(8) {
        for val in [0x00, 0xff] {
            let mut b = bytes.clone();
            b[off..(off + 4).min(bytes.len() - 8)].fill(val);
            std::fs::write(&bad, &b).expect("write damaged copy");
            if let Err(e) = import(&bad, &Options::default()) {
                assert_eq!(e.details().file, bad, "{e}");
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "no damage was detected at all");
}
