//! The two defects of issue 8 on the shipped default dataset: a flipped bit in
//! `sets/synth-math.parquet` used to panic inside polars (exit 101) or load changed values that
//! validated "ok". Each damaged copy must now load identically or fail with an error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use trim_data::{LoadOptions, LoadedForest, load_forest};
use trim_env::{Action, Rng};

/// Everything a load produces, compared field by field (forest nodes through its accessors).
fn same(a: &LoadedForest, b: &LoadedForest) -> bool {
    let (fa, fb) = (&a.forest, &b.forest);
    let nodes_equal = (0..fa.n_nodes() as u32).all(|n| {
        fa.weak(n) == fb.weak(n)
            && fa.strong(n).map(|c| (c.tokens, c.prm.to_bits()))
                == fb.strong(n).map(|c| (c.tokens, c.prm.to_bits()))
            && fa.depth(n) == fb.depth(n)
            && fa.branch(n, Action::Continue) == fb.branch(n, Action::Continue)
            && fa.branch(n, Action::Regenerate) == fb.branch(n, Action::Regenerate)
    });
    a.meta == b.meta
        && a.problems == b.problems
        && (fa.n_problems(), fa.n_trees(), fa.n_nodes())
            == (fb.n_problems(), fb.n_trees(), fb.n_nodes())
        && a.states == b.states
        && a.forest_row == b.forest_row
        && nodes_equal
}

#[test]
fn flipped_bits_in_the_shipped_default_dataset_are_caught() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sets/synth-math.parquet");
    let opts = LoadOptions::default();
    let original = load_forest(&path, &opts).expect("shipped file is valid and verified");
    let bytes = std::fs::read(&path).unwrap();
    let dir = std::env::temp_dir().join(format!("trim-shipped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let damaged = dir.join("synth-math.parquet");
    // The reproduction (bit 6 of byte 1,820,426), then deterministic random flips.
    let mut flips = vec![(1_820_426usize, 6u32)];
    let mut rng = Rng::new(26);
    flips.extend((0..24).map(|_| (rng.below(bytes.len() as u64) as usize, rng.below(8) as u32)));
    let (mut identical, mut refused) = (0, 0);
    for (at, bit) in flips {
        let mut b = bytes.clone();
        let n = b.len();
        b[at % n] ^= 1 << bit;
        std::fs::write(&damaged, &b).unwrap();
        match catch_unwind(AssertUnwindSafe(|| load_forest(&damaged, &opts))) {
            Err(_) => panic!("byte {at} bit {bit}: panicked"),
            Ok(Err(_)) => refused += 1,
            Ok(Ok(l)) => {
                assert!(
                    same(&l, &original),
                    "byte {at} bit {bit}: changed values loaded"
                );
                identical += 1;
            }
        }
    }
    println!("{identical} identical, {refused} refused");
    assert!(refused > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
