//! Shared fixtures of the data integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use trim_data::{CandidateRec, Dataset, DatasetBuilder, LoadOptions, Meta, ProblemInfo, StepState};
use trim_env::Action;

/// `ds` written as parquet by trim, read back by polars, changed by `edit` and rewritten by
/// polars as `<dir>/bad.parquet` (so without a trim checksum): a file with one planted fault.
pub fn edited_parquet(
    dir: &std::path::Path,
    ds: &Dataset,
    edit: impl FnOnce(&mut polars::prelude::DataFrame),
) -> PathBuf {
    use polars::prelude::*;
    let p = dir.join("base.parquet");
    trim_data::io::write_dataset(&p, ds).unwrap();
    let mut df = ParquetReader::new(std::fs::File::open(&p).unwrap())
        .finish()
        .unwrap();
    edit(&mut df);
    let bad = dir.join("bad.parquet");
    ParquetWriter::new(std::fs::File::create(&bad).unwrap())
        .finish(&mut df)
        .unwrap();
    bad
}

/// Options that accept files without a checksum (hand-written, or rewritten by polars).
pub const UNVERIFIED_OK: LoadOptions = LoadOptions {
    allow_unverified: true,
};

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trim-io-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn cand(tokens: u32, prm: f32, finished: bool, state: Option<u8>) -> CandidateRec {
    CandidateRec {
        tokens,
        prm,
        finished,
        state: state.and_then(StepState::from_u8),
        text: None,
        hash: None,
        judge_score: None,
        mean_logprob: None,
    }
}

/// Two problems; the first has two sample trees. Tree shape of problem a / tree 0:
/// root → continue → n1 (weak finishes wrong, strong finishes right), root → regenerate → n2
/// (weak finishes right, no strong).
pub fn sample() -> Dataset {
    let mut b = DatasetBuilder::new(Meta::new("sample"));
    let info = |id: &str, split: &str| ProblemInfo {
        problem_id: id.into(),
        dataset: "unit".into(),
        split: split.into(),
        weak_model: "w".into(),
        strong_model: "s".into(),
        prm_model: "prm".into(),
    };
    let a = b.add_problem(info("a", "train"));
    let c = b.add_problem(info("c", "test"));
    {
        let mut t = b.tree(a);
        let r = t.root(
            cand(10, 0.9, false, Some(0)),
            Some(cand(12, 0.95, false, Some(0))),
        );
        let n1 = t.child(
            r,
            Action::Continue,
            cand(20, 0.3, true, Some(2)),
            Some(cand(25, 0.8, true, Some(0))),
        );
        t.set_outcome(n1, Action::Continue, false);
        t.set_outcome(n1, Action::Regenerate, true);
        let n2 = t.child(r, Action::Regenerate, cand(7, 0.7, true, None), None);
        t.set_outcome(n2, Action::Continue, true);
    }
    {
        let mut t = b.tree(a);
        let r = t.root(cand(5, 0.5, true, None), Some(cand(6, 0.6, true, None)));
        t.set_outcome(r, Action::Continue, true);
        t.set_outcome(r, Action::Regenerate, true);
    }
    {
        let mut t = b.tree(c);
        let r = t.root(cand(3, 0.2, true, Some(2)), None);
        t.set_outcome(r, Action::Continue, false);
    }
    b.finish()
}
