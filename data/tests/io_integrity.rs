//! Regression tests of issue 8: integrity checksums, JSONL line discipline, format versions,
//! special files, and values the old readers dropped or changed without a word.

mod common;

use std::path::Path;

use common::{UNVERIFIED_OK, cand, sample, tmpdir};
use polars::prelude::*;
use trim_data::{
    DatasetBuilder, Integrity, LoadOptions, Meta, ProblemInfo, io, load, load_forest, load_with,
};
use trim_env::Action;

fn err(path: &Path) -> String {
    match load(path) {
        Ok(_) => panic!("{} should be rejected", path.display()),
        Err(e) => e.to_string(),
    }
}

fn has_all(e: &str, needles: &[&str]) {
    for n in needles {
        assert!(e.contains(n), "error `{e}` lacks `{n}`");
    }
}

/// The sample as JSONL text (meta line, two problem lines, checksum line).
fn sample_jsonl(d: &Path) -> String {
    let p = d.join("ok.jsonl");
    io::write_dataset(&p, &sample()).unwrap();
    std::fs::read_to_string(&p).unwrap()
}

#[test]
fn written_files_verify_and_a_changed_value_is_caught() {
    let d = tmpdir("checksum");
    for name in ["s.parquet", "s.jsonl"] {
        let p = d.join(name);
        io::write_dataset(&p, &sample()).unwrap();
        let l = load_forest(&p, &LoadOptions::default()).unwrap();
        assert!(matches!(l.integrity, Integrity::Verified(_)), "{name}");
    }
    // A plausible edit (0.9 → 0.1) still parses and validates; only the checksum sees it.
    let text = sample_jsonl(&d);
    let p = d.join("edited.jsonl");
    std::fs::write(&p, text.replacen("\"prm\":0.9", "\"prm\":0.1", 1)).unwrap();
    let e = err(&p);
    has_all(
        &e,
        &["edited.jsonl", "integrity check failed", "trim_checksum"],
    );
    let e = load_with(&p, &UNVERIFIED_OK).err().unwrap().to_string();
    assert!(
        e.contains("integrity check failed"),
        "a mismatch is never waved through: {e}"
    );
    // Without its checksum line it is a hand-edited file: refused unless unverified is allowed.
    let cut = text.replacen("\"prm\":0.9", "\"prm\":0.1", 1);
    let cut = &cut[..cut.rfind("{\"trim_checksum\"").unwrap()];
    std::fs::write(&p, cut).unwrap();
    has_all(
        &err(&p),
        &[
            "no integrity checksum",
            "--allow-unverified",
            "TRIM_ALLOW_UNVERIFIED=1",
        ],
    );
    let l = load_with(&p, &UNVERIFIED_OK).unwrap();
    assert_eq!(l.ds.rows[0].weak.prm, 0.1);
}

#[test]
fn parquet_without_checksum_needs_an_explicit_choice() {
    let d = tmpdir("foreign");
    let p = d.join("ok.parquet");
    io::write_dataset(&p, &sample()).unwrap();
    let mut df = ParquetReader::new(std::fs::File::open(&p).unwrap())
        .finish()
        .unwrap();
    let foreign = d.join("foreign.parquet");
    ParquetWriter::new(std::fs::File::create(&foreign).unwrap())
        .finish(&mut df)
        .unwrap();
    has_all(
        &err(&foreign),
        &[
            "foreign.parquet",
            "no integrity checksum",
            "--allow-unverified",
        ],
    );
    let l = load_forest(&foreign, &UNVERIFIED_OK).unwrap();
    assert_eq!(l.integrity, Integrity::Unverified);
    assert_eq!(l.forest.n_nodes(), 5);
    // Converting it (what `trim data convert --allow-unverified` does) gives a verified file
    // with the same content.
    let fixed = d.join("fixed.parquet");
    io::write_dataset(&fixed, &load_with(&foreign, &UNVERIFIED_OK).unwrap().ds).unwrap();
    let back = load(&fixed).unwrap().ds;
    assert_eq!(
        (back.problems, back.rows),
        (sample().problems, sample().rows)
    );
}

#[test]
fn jsonl_two_objects_on_one_line_and_trailing_text_are_errors() {
    let d = tmpdir("oneline");
    let text = sample_jsonl(&d);
    let lines: Vec<&str> = text.lines().collect();
    // Problem lines 2 and 3 glued into one line: the second problem used to vanish.
    let glued = format!("{}\n{}{}\n{}\n", lines[0], lines[1], lines[2], lines[3]);
    let p = d.join("glued.jsonl");
    std::fs::write(&p, glued).unwrap();
    has_all(
        &err(&p),
        &[
            "glued.jsonl: line 2",
            "trailing text",
            "one object per line",
        ],
    );
    let p = d.join("tail.jsonl");
    std::fs::write(&p, text.replacen("\n", " oops\n", 2)).unwrap();
    has_all(&err(&p), &["tail.jsonl: line 1", "trailing text"]);
}

#[test]
fn jsonl_duplicate_problem_id_names_both_lines() {
    let d = tmpdir("dupid");
    let text = sample_jsonl(&d);
    let lines: Vec<&str> = text.lines().collect();
    // Problem `c` again, as a second sample tree (tree index 1): used to be merged silently.
    let again = lines[2].replace("\"tree\":0", "\"tree\":1");
    let p = d.join("dup.jsonl");
    let body = [lines[0], lines[1], lines[2], &again].join("\n");
    std::fs::write(&p, body + "\n").unwrap();
    has_all(
        &load_with(&p, &UNVERIFIED_OK).err().unwrap().to_string(),
        &[
            "dup.jsonl: line 4",
            "problem_id",
            "problem `c` is also on line 3",
        ],
    );
}

#[test]
fn unknown_format_versions_and_names_are_refused() {
    let d = tmpdir("version");
    let mut ds = sample();
    ds.meta.format_version = 99;
    for name in ["v.jsonl", "v.parquet"] {
        let p = d.join(name);
        io::write_dataset(&p, &ds).unwrap();
        has_all(
            &err(&p),
            &[name, "format_version", "unsupported format version 99"],
        );
    }
    ds.meta.format_version = 1;
    ds.meta.format = "something-else".into();
    let p = d.join("f.parquet");
    io::write_dataset(&p, &ds).unwrap();
    has_all(&err(&p), &["field `format`", "something-else"]);
}

#[test]
fn special_files_are_named_not_read() {
    let d = tmpdir("special");
    has_all(
        &err(Path::new("/dev/zero")),
        &["/dev/zero", "not a regular file (a character device)"],
    );
    let dir = d.join("dir.parquet");
    std::fs::create_dir_all(&dir).unwrap();
    has_all(&err(&dir), &["not a regular file (a directory)"]);
    let fifo = d.join("pipe.jsonl");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        // Must answer at once (a FIFO with no writer would block a reader forever).
        has_all(&err(&fifo), &["pipe.jsonl", "not a regular file (a FIFO)"]);
    }
}

#[test]
fn strong_fields_without_a_strong_candidate_are_errors_not_dropped() {
    let d = tmpdir("strongstate");
    let p = d.join("ok.parquet");
    io::write_dataset(&p, &sample()).unwrap();
    let mut df = ParquetReader::new(std::fs::File::open(&p).unwrap())
        .finish()
        .unwrap();
    // Row 2 has no strong candidate; give it a strong_state anyway.
    let mut v: Vec<Option<u8>> = df
        .column("strong_state")
        .unwrap()
        .u8()
        .unwrap()
        .iter()
        .collect();
    v[2] = Some(1);
    df.replace("strong_state", Column::new("strong_state".into(), v))
        .unwrap();
    let bad = d.join("bad.parquet");
    ParquetWriter::new(std::fs::File::create(&bad).unwrap())
        .finish(&mut df)
        .unwrap();
    let e = load_with(&bad, &UNVERIFIED_OK).err().unwrap().to_string();
    has_all(
        &e,
        &["bad.parquet: row 2", "strong_state", "no strong candidate"],
    );
}

#[test]
fn strong_token_totals_do_not_wrap_at_u32() {
    // One tree whose all-strong path regenerates twice at 3e9 tokens each: 6e9 > u32::MAX.
    let mut b = DatasetBuilder::new(Meta::new("big"));
    let p = b.add_problem(ProblemInfo {
        problem_id: "p".into(),
        dataset: "unit".into(),
        split: "test".into(),
        weak_model: "w".into(),
        strong_model: "s".into(),
        prm_model: "prm".into(),
    });
    {
        let mut t = b.tree(p);
        let big = 3_000_000_000;
        let r = t.root(cand(1, 0.5, true, None), Some(cand(big, 0.5, false, None)));
        t.set_outcome(r, Action::Continue, false);
        let n = t.child(
            r,
            Action::Regenerate,
            cand(1, 0.5, true, None),
            Some(cand(big, 0.5, true, None)),
        );
        t.set_outcome(n, Action::Continue, false);
        t.set_outcome(n, Action::Regenerate, true);
    }
    let d = tmpdir("bigtokens");
    let path = d.join("big.parquet");
    io::write_dataset(&path, &b.finish()).unwrap();
    let l = load_forest(&path, &LoadOptions::default()).unwrap();
    let s = trim_data::stats::compute(&l);
    assert_eq!(s.always_strong.strong_tokens_per_problem, 6e9);
    assert_eq!(s.always_strong.accuracy, 1.0);
    assert_eq!(s.mean_strong_step_tokens, 3e9);
}

#[test]
fn lean_and_full_loads_build_the_same_forest() {
    let d = tmpdir("lean");
    for name in ["s.parquet", "s.jsonl"] {
        let p = d.join(name);
        io::write_dataset(&p, &sample()).unwrap();
        let lean = load_forest(&p, &LoadOptions::default()).unwrap();
        let full = load(&p).unwrap();
        assert_eq!(lean.forest_row, full.forest_row, "{name}");
        assert_eq!(lean.problems, full.ds.problems);
        for node in 0..full.forest.n_nodes() as u32 {
            let row = &full.ds.rows[full.forest_row[node as usize] as usize];
            assert_eq!(lean.forest.weak(node), full.forest.weak(node));
            assert_eq!(
                lean.forest.branch(node, Action::Regenerate),
                full.forest.branch(node, Action::Regenerate)
            );
            assert_eq!(
                lean.states[node as usize].weak,
                row.weak.state.map(|s| s as u8)
            );
        }
    }
}

/// The forest is laid out depth-first with the continue child first, so a run of `continue`
/// steps reads consecutive nodes (the replay benchmark depends on it).
#[test]
fn continue_children_follow_their_parent_in_the_forest() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("sets/synth-math.parquet");
    let f = load_forest(&p, &LoadOptions::default()).unwrap().forest;
    let (mut followed, mut regen_later) = (0usize, 0usize);
    for node in 0..f.n_nodes() as u32 {
        if let trim_env::Branch::Node(c) = f.branch(node, Action::Continue) {
            assert_eq!(c, node + 1, "continue child of node {node}");
            followed += 1;
        }
        if let trim_env::Branch::Node(r) = f.branch(node, Action::Regenerate) {
            assert!(r > node, "regenerate child {r} of node {node} precedes it");
            regen_later += 1;
        }
    }
    assert!(
        followed > 100_000 && regen_later > 10_000,
        "{followed} {regen_later}"
    );
}
