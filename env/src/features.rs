//! Observation features, exactly as the official TRIM-Agg rollout code builds them.

/// Dimension of the TRIM-Agg observation.
pub const AGG_DIM: usize = 5;
/// Token normaliser of the official code (`tokens / 300`).
pub const TOKEN_SCALE: f32 = 300.0;
/// Step normaliser of the official code (`t / 30`).
pub const STEP_SCALE: f32 = 30.0;

/// Names of the TRIM-Agg features, in the order the network receives them.
pub const AGG_FEATURES: [&str; AGG_DIM] = [
    "min_prev_prm",
    "prod_prev_prm",
    "current_weak_prm",
    "current_weak_tokens_over_300",
    "step_over_30",
];

/// The TRIM-Agg observation at a decision:
/// `[min PRM of chosen steps 1..t-1, product of those, PRM of the current weak candidate,
///   current weak tokens / 300, t / 30]`, with min and product equal to 1.0 at `t = 0`.
pub type AggObs = [f32; AGG_DIM];

/// Build the TRIM-Agg vector from its raw parts (the single definition used everywhere).
#[inline(always)]
pub fn agg_features(
    min_prev: f32,
    prod_prev: f32,
    cur_prm: f32,
    cur_tokens: u32,
    t: u16,
) -> AggObs {
    [
        min_prev,
        prod_prev,
        cur_prm,
        cur_tokens as f32 / TOKEN_SCALE,
        t as f32 / STEP_SCALE,
    ]
}

/// Dimension of one entry of the per-step history given to sequence policies.
pub const HIST_DIM: usize = 5;

/// Names of the per-step history features.
pub const HIST_FEATURES: [&str; HIST_DIM] = [
    "chosen_prm",
    "weak_prm",
    "weak_tokens_over_300",
    "regenerated",
    "strong_tokens_over_300",
];

/// One past step as a sequence policy sees it: the PRM of the step that was kept, the weak
/// candidate's PRM and length, whether it was regenerated, and the strong tokens spent (0 on
/// continue).
pub type HistStep = [f32; HIST_DIM];
