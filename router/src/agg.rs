//! The TRIM-Agg actor-critic as plain arrays: the acting network of training rollouts and
//! greedy evaluation, and the network a deployed router runs. Exactly the release's shape:
//!
//! ```text
//! obs [5] ─ Linear 5→h ─ LN ─ tanh ─ Linear h→h ─ LN ─ tanh ─┬─ actor  ─ Linear h→h ─ LN ─ tanh ─ Linear h→2 ─ logits
//!                          shared trunk                       └─ critic ─ Linear h→h ─ LN ─ tanh ─ Linear h→1 ─ value
//! ```
//!
//! Parameters are named as in PyTorch (`trunk1.weight` `[out, in]`, LayerNorm γ/β as
//! `weight`/`bias`); exports are written from and rebuilt into that list
//! ([`AggNet::named_params`], [`AggNet::from_named_params`]).

use trim_env::{AGG_DIM, Action, Rng};

use crate::mlp::{Dense, Norm, masked_log_softmax};

/// Number of actions: 0 = continue, 1 = regenerate.
pub const N_ACTIONS: usize = 2;
/// Largest hidden width: the forward pass works in stack buffers of this size (no allocation
/// per decision). Networks are refused at construction above it.
pub const MAX_HIDDEN: usize = 1024;
/// Widest input row: the 5 TRIM-Agg features plus conditioning inputs (λ: 1, or the
/// remaining budget: 2).
pub const MAX_INPUT: usize = AGG_DIM + 2;
/// `architecture.kind` of TRIM-Agg exports.
pub const KIND: &str = "trim-agg-actor-critic";

/// Names of the dense layers, in forward order (PyTorch module names).
pub const DENSE_NAMES: [&str; 6] = [
    "trunk1",
    "trunk2",
    "actor1",
    "actor_out",
    "critic1",
    "critic_out",
];
/// Names of the LayerNorms, in forward order.
pub const NORM_NAMES: [&str; 4] = ["trunk_ln1", "trunk_ln2", "actor_ln", "critic_ln"];

// Indices into `AggNet::dense` / `AggNet::norm`, following the name tables.
pub(crate) const TRUNK1: usize = 0;
pub(crate) const TRUNK2: usize = 1;
pub(crate) const ACTOR1: usize = 2;
pub(crate) const ACTOR_OUT: usize = 3;
pub(crate) const CRITIC1: usize = 4;
pub(crate) const CRITIC_OUT: usize = 5;
pub(crate) const TRUNK_LN1: usize = 0;
pub(crate) const TRUNK_LN2: usize = 1;
pub(crate) const ACTOR_LN: usize = 2;
pub(crate) const CRITIC_LN: usize = 3;

/// `(d_in, d_out)` of each dense layer of a TRIM-Agg network, in [`DENSE_NAMES`] order.
pub fn dense_dims(input_dim: usize, hidden: usize) -> [(usize, usize); 6] {
    [
        (input_dim, hidden),
        (hidden, hidden),
        (hidden, hidden),
        (hidden, N_ACTIONS),
        (hidden, hidden),
        (hidden, 1),
    ]
}

/// The TRIM-Agg network's weights: a `Send + Sync` policy, eval mode (no dropout).
#[derive(Clone, Debug, PartialEq)]
pub struct AggNet {
    /// Named by [`DENSE_NAMES`].
    pub(crate) dense: [Dense; 6],
    /// Named by [`NORM_NAMES`].
    pub(crate) norm: [Norm; 4],
}

impl AggNet {
    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.dense[TRUNK1].d_out()
    }

    /// Width of an input row: `AGG_DIM`, or `AGG_DIM + 1` for a λ-conditioned network.
    pub fn input_dim(&self) -> usize {
        self.dense[TRUNK1].d_in
    }

    /// Raw (unmasked) logits and value of one observation (`input_dim()` wide): what every
    /// rollout step asks for. Scratch sized to the width class, as in [`logits`](Self::logits):
    /// zeroing three `MAX_HIDDEN` arrays per row cost more than a 64-wide layer.
    #[inline]
    pub fn forward(&self, obs: &[f32]) -> ([f32; N_ACTIONS], f32) {
        match self.hidden() {
            h if h <= 64 => self.forward_buf::<64>(obs),
            h if h <= 256 => self.forward_buf::<256>(obs),
            _ => self.forward_buf::<MAX_HIDDEN>(obs),
        }
    }

    #[inline(always)]
    fn forward_buf<const N: usize>(&self, obs: &[f32]) -> ([f32; N_ACTIONS], f32) {
        let h = self.hidden();
        let mut a = [0.0f32; N];
        let mut b = [0.0f32; N];
        let mut c = [0.0f32; N];
        let logits = self.trunk_actor(obs, &mut a, &mut b);
        // critic, from the trunk output left in `b`
        self.dense[CRITIC1].forward(&b[..h], &mut c[..h]);
        self.norm[CRITIC_LN].forward_tanh(&mut c[..h]);
        let mut v = [0.0f32; 1];
        self.dense[CRITIC_OUT].forward(&c[..h], &mut v);
        (logits, v[0])
    }

    /// Shared trunk then actor head, in caller-provided scratch (`a`, `b` at least `hidden`
    /// wide). Leaves the trunk output in `b` so [`forward`](Self::forward) can run the critic.
    #[inline(always)]
    fn trunk_actor(&self, obs: &[f32], a: &mut [f32], b: &mut [f32]) -> [f32; N_ACTIONS] {
        debug_assert_eq!(obs.len(), self.input_dim());
        let h = self.hidden();
        self.dense[TRUNK1].forward(obs, &mut a[..h]);
        self.norm[TRUNK_LN1].forward_tanh(&mut a[..h]);
        self.dense[TRUNK2].forward(&a[..h], &mut b[..h]);
        self.norm[TRUNK_LN2].forward_tanh(&mut b[..h]);
        self.dense[ACTOR1].forward(&b[..h], &mut a[..h]);
        self.norm[ACTOR_LN].forward_tanh(&mut a[..h]);
        let mut logits = [0.0f32; N_ACTIONS];
        self.dense[ACTOR_OUT].forward(&a[..h], &mut logits);
        logits
    }

    /// Actor logits only (the critic is skipped): what a router needs per decision. The scratch
    /// buffers are sized to the width class of the network, since zeroing two `MAX_HIDDEN`
    /// arrays would cost more than the 64-wide matrix products themselves.
    #[inline]
    pub fn logits(&self, obs: &[f32]) -> [f32; N_ACTIONS] {
        match self.hidden() {
            h if h <= 64 => self.logits_buf::<64>(obs),
            h if h <= 256 => self.logits_buf::<256>(obs),
            _ => self.logits_buf::<MAX_HIDDEN>(obs),
        }
    }

    #[inline(always)]
    fn logits_buf<const N: usize>(&self, obs: &[f32]) -> [f32; N_ACTIONS] {
        let mut a = [0.0f32; N];
        let mut b = [0.0f32; N];
        self.trunk_actor(obs, &mut a, &mut b)
    }

    /// Masked action log-probabilities `[log p(continue), log p(regenerate)]` and the value;
    /// a masked action gets `log p = −∞`-equivalent and `p = 0`.
    pub fn log_probs(&self, obs: &[f32], mask: [bool; 2]) -> ([f32; N_ACTIONS], f32) {
        let (logits, v) = self.forward(obs);
        (masked_log_softmax(logits, mask), v)
    }

    /// Every parameter with its PyTorch name and shape, in forward order (each layer's weight
    /// then bias).
    pub fn named_params(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out = Vec::with_capacity(20);
        for (name, l) in DENSE_NAMES.iter().zip(&self.dense) {
            out.push((format!("{name}.weight"), vec![l.d_out, l.d_in], &l.w[..]));
            out.push((format!("{name}.bias"), vec![l.d_out], &l.b[..]));
        }
        for (name, l) in NORM_NAMES.iter().zip(&self.norm) {
            out.push((format!("{name}.weight"), vec![l.gamma.len()], &l.gamma[..]));
            out.push((format!("{name}.bias"), vec![l.beta.len()], &l.beta[..]));
        }
        let order = |n: &str| PARAM_ORDER.iter().position(|p| n.starts_with(p));
        out.sort_by_key(|(n, _, _)| (order(n), !n.ends_with("weight")));
        out
    }

    /// Rebuild from parameters named and shaped as [`named_params`](Self::named_params) gives
    /// them, for a network taking `input_dim` inputs with width `hidden`. `get(name, shape)`
    /// returns the row-major values of that parameter or an error (missing, wrong shape), passed
    /// through; a width outside `1..=MAX_HIDDEN` or an input width outside
    /// `AGG_DIM..=MAX_INPUT` is refused with `too_wide`'s error.
    pub fn from_named_params<E>(
        input_dim: usize,
        hidden: usize,
        too_wide: impl FnOnce(String) -> E,
        mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f32>, E>,
    ) -> Result<Self, E> {
        if hidden == 0 || hidden > MAX_HIDDEN {
            return Err(too_wide(format!(
                "hidden width {hidden} is not in 1..={MAX_HIDDEN}"
            )));
        }
        if !(AGG_DIM..=MAX_INPUT).contains(&input_dim) {
            return Err(too_wide(format!(
                "input width {input_dim} is not in {AGG_DIM}..={MAX_INPUT}"
            )));
        }
        let dims = dense_dims(input_dim, hidden);
        let mut dense = Vec::with_capacity(6);
        for (name, (d_in, d_out)) in DENSE_NAMES.iter().zip(dims) {
            let w = get(&format!("{name}.weight"), &[d_out, d_in])?;
            let b = get(&format!("{name}.bias"), &[d_out])?;
            // `get` returned the requested shapes, so the sizes agree.
            dense.push(Dense { d_in, d_out, w, b });
        }
        let mut norm = Vec::with_capacity(4);
        for name in NORM_NAMES {
            norm.push(Norm {
                gamma: get(&format!("{name}.weight"), &[hidden])?,
                beta: get(&format!("{name}.bias"), &[hidden])?,
            });
        }
        let (Ok(dense), Ok(norm)) = (dense.try_into(), norm.try_into()) else {
            unreachable!("six dense layers and four norms were pushed");
        };
        Ok(AggNet { dense, norm })
    }
}

/// Parameter order of [`AggNet::named_params`]: forward order, weight before bias.
const PARAM_ORDER: [&str; 10] = [
    "trunk1.",
    "trunk_ln1.",
    "trunk2.",
    "trunk_ln2.",
    "actor1.",
    "actor_ln.",
    "actor_out.",
    "critic1.",
    "critic_ln.",
    "critic_out.",
];

/// Draw an action from log-probabilities with one uniform number. A masked action has
/// probability exactly 0 and is never returned.
#[inline]
pub fn sample_action(log_probs: [f32; 2], rng: &mut Rng) -> Action {
    let p_regen = log_probs[1].exp();
    let u = rng.f32();
    if p_regen > 0.0 && u < p_regen {
        Action::Regenerate
    } else if log_probs[0].exp() > 0.0 {
        Action::Continue
    } else {
        Action::Regenerate
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A deterministic pseudo-random network of width `hidden` (tests only).
    pub fn random_net(hidden: usize, seed: u64) -> AggNet {
        random_net_in(AGG_DIM, hidden, seed)
    }

    /// [`random_net`] taking `input_dim` inputs.
    pub fn random_net_in(input_dim: usize, hidden: usize, seed: u64) -> AggNet {
        let mut rng = Rng::new(seed);
        AggNet::from_named_params(
            input_dim,
            hidden,
            |e| e,
            |_, shape| -> Result<Vec<f32>, String> {
                let n = shape.iter().product();
                Ok((0..n).map(|_| rng.f32() - 0.5).collect())
            },
        )
        .unwrap()
    }

    #[test]
    fn named_params_round_trip_in_forward_order() {
        let w = random_net(16, 3);
        let params = w.named_params();
        let names: Vec<&str> = params.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            &names[..4],
            &[
                "trunk1.weight",
                "trunk1.bias",
                "trunk_ln1.weight",
                "trunk_ln1.bias"
            ]
        );
        assert_eq!(names.len(), 20);
        let back = AggNet::from_named_params(
            AGG_DIM,
            16,
            |e| e,
            |name, shape| {
                let (_, s, v) = params.iter().find(|(n, _, _)| n == name).ok_or("missing")?;
                assert_eq!(s, shape);
                Ok::<_, String>(v.to_vec())
            },
        )
        .unwrap();
        assert_eq!(back, w);
        let o = [0.3, 0.1, 0.7, 0.4, 0.2];
        assert_eq!(w.logits(&o), w.forward(&o).0);
    }

    #[test]
    fn widths_beyond_the_buffers_are_refused_not_panicking() {
        for h in [0, MAX_HIDDEN + 1, 2048] {
            let e = AggNet::from_named_params(
                AGG_DIM,
                h,
                |e| e,
                |_, s| Ok(vec![0.0; s.iter().product()]),
            );
            assert!(e.unwrap_err().contains("hidden width"), "{h}");
        }
        for d in [0, 4, MAX_INPUT + 1] {
            let e =
                AggNet::from_named_params(d, 8, |e| e, |_, s| Ok(vec![0.0; s.iter().product()]));
            assert!(e.unwrap_err().contains("input width"), "{d}");
        }
    }

    #[test]
    fn sampling_never_picks_a_masked_action_and_follows_p() {
        let mut rng = Rng::new(0);
        let m = masked_log_softmax([5.0, -3.0], [false, true]);
        let c = masked_log_softmax([-9.0, 9.0], [true, false]);
        for _ in 0..1000 {
            assert_eq!(sample_action(m, &mut rng), Action::Regenerate);
            assert_eq!(sample_action(c, &mut rng), Action::Continue);
        }
        let lp = masked_log_softmax([0.0, (0.25f32 / 0.75).ln()], [true, true]);
        let n = (0..20_000)
            .filter(|_| sample_action(lp, &mut rng) == Action::Regenerate)
            .count();
        assert!((n as f64 / 20_000.0 - 0.25).abs() < 0.015, "{n}");
    }
}
