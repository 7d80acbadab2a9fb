//! Damaged-file corpus: a small valid dataset written as parquet and as JSONL, then damaged
//! many deterministic ways (single-bit flips, truncations, zeroed ranges, appended garbage, and
//! for JSONL duplicated / merged lines). Every copy must either load to exactly the original
//! content or fail with a `DataError` — never panic, never load changed values.
//!
//! Uses only `io::write_dataset`, `load` and the builder, so it runs unchanged against older
//! versions of the crate.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use trim_data::{
    CandidateRec, Dataset, DatasetBuilder, Meta, ProblemInfo, StepState, TreeWriter, io, load,
};
use trim_env::{Action, Rng};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trim-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn candidate(rng: &mut Rng, finished: bool, audit: bool) -> CandidateRec {
    let text = audit.then(|| format!("step {}", rng.below(1000)));
    CandidateRec {
        tokens: 1 + rng.below(300) as u32,
        prm: rng.f32(),
        finished,
        state: (rng.f32() < 0.8).then(|| StepState::ALL[rng.below(3) as usize]),
        hash: text.as_deref().map(io::text_hash),
        // The optional signal columns, on every candidate (a weak column must cover every
        // node), so damage to them is covered too.
        judge_score: Some(rng.below(10) as f32 / 9.0),
        mean_logprob: Some(-2.0 * rng.f32()),
        text,
    }
}

/// One random tree: every unfinished weak step has a continue child; strong candidates appear
/// at 60 % of nodes and sometimes lead on.
fn grow(w: &mut TreeWriter<'_>, rng: &mut Rng, audit: bool) {
    let max_depth = 1 + rng.below(5) as u16;
    let mut open = vec![];
    let fin = |rng: &mut Rng, depth: u16| depth >= max_depth || rng.f32() < 0.25;
    let (wf, sf) = (fin(rng, 0), fin(rng, 0));
    let strong_audit = audit && rng.f32() < 0.5;
    let strong = (rng.f32() < 0.6).then(|| candidate(rng, sf, strong_audit));
    let root = w.root(candidate(rng, wf, audit), strong);
    open.push(root);
    while let Some(node) = open.pop() {
        let (depth, weak_fin) = (w.row(node).depth, w.row(node).weak.finished);
        let strong = w.row(node).strong.as_ref().map(|s| s.finished);
        if weak_fin {
            w.set_outcome(node, Action::Continue, rng.f32() < 0.5);
        } else {
            let f = fin(rng, depth + 1);
            let sf = fin(rng, depth + 1);
            let s = (rng.f32() < 0.6).then(|| candidate(rng, sf, false));
            open.push(w.child(node, Action::Continue, candidate(rng, f, audit), s));
        }
        match strong {
            Some(true) => w.set_outcome(node, Action::Regenerate, rng.f32() < 0.7),
            Some(false) if rng.f32() < 0.5 => {
                let f = fin(rng, depth + 1);
                open.push(w.child(node, Action::Regenerate, candidate(rng, f, false), None));
            }
            _ => {}
        }
    }
}

/// 30 problems, 1–2 sample trees each, some audit text.
fn corpus_dataset() -> Dataset {
    let mut meta = Meta::new("fuzz");
    meta.description = "damaged-file corpus".into();
    meta.params = serde_json::json!({"seed": 8, "rate": 0.25});
    let mut b = DatasetBuilder::new(meta);
    let mut rng = Rng::new(8);
    for k in 0..30 {
        let p = b.add_problem(ProblemInfo {
            problem_id: format!("fuzz-{k:03}"),
            dataset: "fuzz".into(),
            split: if k % 3 == 0 { "test" } else { "train" }.into(),
            weak_model: "w".into(),
            strong_model: "s".into(),
            prm_model: "prm".into(),
        });
        for _ in 0..1 + rng.below(2) {
            let audit = k % 4 == 0;
            grow(&mut b.tree(p), &mut rng, audit);
        }
    }
    b.finish()
}

/// The damaged variants of `bytes`, named.
fn damage(bytes: &[u8], seed: u64, flips: usize) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let n = bytes.len() as u64;
    let mut out = vec![];
    for _ in 0..flips {
        let (at, bit) = (rng.below(n) as usize, rng.below(8));
        let mut b = bytes.to_vec();
        b[at] ^= 1 << bit;
        out.push((format!("flip byte {at} bit {bit}"), b));
    }
    for k in 1..=60 {
        let len = (n as usize * k) / 61;
        out.push((format!("truncate to {len}"), bytes[..len].to_vec()));
    }
    for cut in 1..=8 {
        out.push((
            format!("drop last {cut}"),
            bytes[..bytes.len() - cut].to_vec(),
        ));
    }
    for _ in 0..40 {
        let at = rng.below(n) as usize;
        let len = (1 + rng.below(64) as usize).min(bytes.len() - at);
        let mut b = bytes.to_vec();
        b[at..at + len].fill(0);
        out.push((format!("zero {len} bytes at {at}"), b));
    }
    for _ in 0..10 {
        let mut b = bytes.to_vec();
        let extra = 1 + rng.below(100);
        b.extend((0..extra).map(|_| rng.below(256) as u8));
        out.push((format!("append {extra} garbage bytes"), b));
    }
    out
}

/// JSONL-specific damage: a line duplicated, two lines merged, a line dropped.
fn damage_lines(text: &str) -> Vec<(String, Vec<u8>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for i in 0..lines.len() {
        let mut v = lines.clone();
        v.insert(i, lines[i]);
        out.push((
            format!("line {} duplicated", i + 1),
            (v.join("\n") + "\n").into_bytes(),
        ));
        let mut v = lines.clone();
        v.remove(i);
        out.push((
            format!("line {} dropped", i + 1),
            (v.join("\n") + "\n").into_bytes(),
        ));
        if i + 1 < lines.len() {
            let mut v = lines.clone();
            let merged = format!("{}{}", v[i], v[i + 1]);
            v.splice(i..i + 2, [merged.as_str()]);
            out.push((
                format!("lines {} and {} merged", i + 1, i + 2),
                (v.join("\n") + "\n").into_bytes(),
            ));
        }
    }
    out
}

#[derive(Default, Debug)]
struct Tally {
    identical: usize,
    refused: usize,
    changed: Vec<String>,
    panicked: Vec<String>,
}

/// Load every variant; tally identical loads and refusals, record changes and panics.
fn run(dir: &Path, ext: &str, original: &Dataset, variants: Vec<(String, Vec<u8>)>) -> Tally {
    let mut t = Tally::default();
    let path = dir.join(format!("damaged.{ext}"));
    for (name, bytes) in variants {
        std::fs::write(&path, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| load(&path))) {
            Err(_) => t.panicked.push(name),
            Ok(Err(_)) => t.refused += 1,
            Ok(Ok(l)) => {
                let same = l.ds.meta == original.meta
                    && l.ds.problems == original.problems
                    && l.ds.rows == original.rows;
                if same {
                    t.identical += 1;
                } else {
                    t.changed.push(name);
                }
            }
        }
    }
    t
}

fn check(ext: &str, t: &Tally) {
    println!(
        "{ext}: {} identical, {} refused, {} changed, {} panicked",
        t.identical,
        t.refused,
        t.changed.len(),
        t.panicked.len()
    );
    assert!(t.panicked.is_empty(), "{ext}: panics on {:?}", t.panicked);
    assert!(
        t.changed.is_empty(),
        "{ext}: changed values loaded from {:?}",
        t.changed
    );
    assert!(t.refused > 0);
}

#[test]
fn damaged_parquet_loads_exactly_or_fails_cleanly() {
    let dir = tmpdir("parquet");
    let ds = corpus_dataset();
    let good = dir.join("good.parquet");
    io::write_dataset(&good, &ds).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let original = load(&good).unwrap().ds;
    assert_eq!(
        (&original.problems, &original.rows),
        (&ds.problems, &ds.rows)
    );
    let t = run(&dir, "parquet", &original, damage(&bytes, 1, 500));
    check("parquet", &t);
}

#[test]
fn damaged_jsonl_loads_exactly_or_fails_cleanly() {
    let dir = tmpdir("jsonl");
    let ds = corpus_dataset();
    let good = dir.join("good.jsonl");
    io::write_dataset(&good, &ds).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let original = load(&good).unwrap().ds;
    let mut variants = damage(&bytes, 2, 400);
    variants.extend(damage_lines(std::str::from_utf8(&bytes).unwrap()));
    let t = run(&dir, "jsonl", &original, variants);
    check("jsonl", &t);
}
