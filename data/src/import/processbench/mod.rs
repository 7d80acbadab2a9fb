//! `trim data import processbench`: real ProcessBench solutions as the all-weak paths of
//! rollout trees, with latent-model regenerations around them.
//!
//! For every solution written by a small generator (≤ 8B parameters by default) the all-weak path
//! is the real solution: real steps (text hash, optional text), real cl100k token counts, real
//! human first-error labels as states (steps before the label S0, the labelled step S2, later
//! steps S1; label −1 all S0) and the real `final_answer_correct` as its outcome. PRM scores are
//! drawn from the TRIM observation model by state and running minimum. Strong candidates, and
//! every weak step after a regenerate, come from the calibrated latent model with the problem's
//! difficulty drawn from its posterior given the real path(s). Several small-generator solutions
//! of one problem become several sample trees of that problem. Problems of MATH-500 (matched by
//! the vendored normalised-text keys, `data/calibration/math500_keys.json`) form the `test`
//! split. See `data/docs/processbench.md`.
//!
//! Modules: [`solution`] (records and subset files), [`math500`] (the holdout keys), [`trees`]
//! (the import), [`step_tokens`] (the synth calibration's step lengths derived from ProcessBench).

pub mod math500;
pub mod solution;
pub mod step_tokens;
pub mod trees;

pub use math500::{
    MATH500_KEYS_JSON, MATH500_KEYS_PATH, MIN_PREFIX_KEY, Math500, Math500Key, Math500KeysFile,
    build_math500_keys, normalise, write_math500_keys,
};
pub use solution::{
    PROCESSBENCH_ORIGIN, SUBSETS, Solution, generator_size_b, read_subset, subset_path,
    subset_source,
};
pub use step_tokens::{
    STEP_TOKENS_STRONG_GENERATORS, STEP_TOKENS_SUBSETS, STEP_TOKENS_WEAK_GENERATORS,
    derive_step_tokens,
};
pub use trees::{ImportOptions, ImportReport, import_with_progress};
