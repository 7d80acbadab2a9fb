//! TRIM-Seq: a small causal transformer over the episode's step history (trim-paper.md §2.2),
//! in plain Rust — the acting copy that PPO rollouts, greedy evaluation and serving run.
//!
//! **Observation.** A sequence of tokens, one per step already kept and one for the current
//! weak candidate, [`TOKEN_DIM`] numbers each:
//!
//! | index | kept step `i < t` | current candidate (step `t`) |
//! |---|---|---|
//! | 0 | PRM score of the kept step (strong's if regenerated) | PRM score of the weak step |
//! | 1 | its tokens / 300 | its tokens / 300 |
//! | 2 | 1 if it was regenerated | 0 |
//! | 3 | i / 30 | t / 30 |
//! | 4 | 0 | 1 (marks the candidate) |
//!
//! At most [`SEQ_LEN`] tokens: the candidate and the last `SEQ_LEN − 1` kept steps (the step
//! feature keeps their absolute position). A flat row of [`SEQ_OBS_DIM`] floats carries them
//! left-aligned, zero-padded, with the token count last ([`write_row`]).
//!
//! **Network** (pre-LN transformer, no positional embedding: the step feature is the position):
//!
//! ```text
//! x [n, 5] ─ embed 5→d ─┬─ × layers: h += O·attn(LN1 h) (causal, `heads` heads); h += W2·relu(W1·LN2 h)
//!                       └─ LN_f(h[n−1]) ─┬─ actor:  tanh(actor1) ─ actor_out → logits [2]
//!                                        └─ critic: tanh(critic1) ─ critic_out → value
//! ```
//!
//! Causal attention makes each position depend only on the ones before it, so the padding after
//! the last token changes nothing and a serving loop can keep the kept steps' keys and values
//! from one step to the next.

use trim_env::features::{STEP_SCALE, TOKEN_SCALE};
use trim_env::{Candidate, HistStep};

use crate::mlp::{Dense, Norm, masked_log_softmax, tanh_f32};

/// Most tokens one decision sees (the candidate and up to `SEQ_LEN − 1` kept steps).
pub const SEQ_LEN: usize = 32;
/// Numbers per token.
pub const TOKEN_DIM: usize = 5;
/// Width of a flat observation row: the tokens, then their count (then, for a λ-conditioned
/// network, the λ input: [`SeqShape::lambda_input`]).
pub const SEQ_OBS_DIM: usize = SEQ_LEN * TOKEN_DIM + 1;
/// Largest model width the stack buffers hold.
pub const MAX_SEQ_DIM: usize = 128;
/// `architecture.kind` of a TRIM-Seq export.
pub const SEQ_KIND: &str = "trim-seq-transformer";

/// The sizes of a TRIM-Seq network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeqShape {
    /// Model width d.
    pub dim: usize,
    /// Attention heads (divides `dim`).
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// λ-conditioned: the heads also read the scaled log λ
    /// (`trim_env::features::lambda_feature`), appended to the final representation and to
    /// the observation row (after the token count). The transformer and its tokens are
    /// unchanged, so a serving loop's key/value cache does not depend on λ.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lambda_input: bool,
}

impl SeqShape {
    /// Check the sizes the plain-Rust network can run.
    pub fn check(&self) -> Result<(), String> {
        let s = self;
        if s.dim == 0 || s.dim > MAX_SEQ_DIM || s.ff == 0 || s.ff > 4 * MAX_SEQ_DIM {
            return Err(format!(
                "TRIM-Seq width {} / feed-forward {} outside 1..={MAX_SEQ_DIM} / 1..={}",
                s.dim,
                s.ff,
                4 * MAX_SEQ_DIM
            ));
        }
        if s.heads == 0 || !s.dim.is_multiple_of(s.heads) {
            return Err(format!("{} heads do not divide width {}", s.heads, s.dim));
        }
        if s.layers == 0 || s.layers > 8 {
            return Err(format!("{} layers outside 1..=8", s.layers));
        }
        Ok(())
    }
}

/// The token of a kept step `i` (0-based): its PRM score, tokens, whether it was regenerated.
#[inline]
pub fn kept_token(prm: f32, tokens: u32, regenerated: bool, i: usize) -> [f32; TOKEN_DIM] {
    // The same expression as the environment's history record, so the values are identical.
    kept_token_scaled(prm, tokens as f32 / TOKEN_SCALE, regenerated, i)
}

/// [`kept_token`] from a token count already divided by `TOKEN_SCALE`.
#[inline]
fn kept_token_scaled(prm: f32, scaled: f32, regenerated: bool, i: usize) -> [f32; TOKEN_DIM] {
    [
        prm,
        scaled,
        f32::from(u8::from(regenerated)),
        i as f32 / STEP_SCALE,
        0.0,
    ]
}

/// The token of the current weak candidate at step `t` (the number of kept steps).
#[inline]
pub fn candidate_token(prm: f32, tokens: u32, t: usize) -> [f32; TOKEN_DIM] {
    [
        prm,
        tokens as f32 / TOKEN_SCALE,
        0.0,
        t as f32 / STEP_SCALE,
        1.0,
    ]
}

/// Write the observation row of one decision: the kept steps of `history` (the env's per-step
/// records), then the current weak `candidate`.
pub fn write_row(history: &[HistStep], candidate: Candidate, out: &mut [f32]) {
    debug_assert_eq!(out.len(), SEQ_OBS_DIM);
    out.fill(0.0);
    let t = history.len();
    let first = t.saturating_sub(SEQ_LEN - 1);
    for (k, h) in history[first..].iter().enumerate() {
        // History records token counts already divided by TOKEN_SCALE.
        let regenerated = h[3] > 0.5;
        let scaled = if regenerated { h[4] } else { h[2] };
        let tok = kept_token_scaled(h[0], scaled, regenerated, first + k);
        out[k * TOKEN_DIM..(k + 1) * TOKEN_DIM].copy_from_slice(&tok);
    }
    let k = t - first;
    let tok = candidate_token(candidate.prm, candidate.tokens, t);
    out[k * TOKEN_DIM..(k + 1) * TOKEN_DIM].copy_from_slice(&tok);
    out[SEQ_OBS_DIM - 1] = (k + 1) as f32;
}

/// The tokens of a row and their count (clamped to `1..=SEQ_LEN`).
pub fn row_tokens(row: &[f32]) -> (&[f32], usize) {
    let n = (row[SEQ_OBS_DIM - 1] as usize).clamp(1, SEQ_LEN);
    (&row[..n * TOKEN_DIM], n)
}

/// One transformer block.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqBlock {
    pub(crate) ln1: Norm,
    pub(crate) q: Dense,
    pub(crate) k: Dense,
    pub(crate) v: Dense,
    pub(crate) o: Dense,
    pub(crate) ln2: Norm,
    pub(crate) ff1: Dense,
    pub(crate) ff2: Dense,
}

/// The TRIM-Seq network's weights, eval mode.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqNet {
    pub(crate) shape: SeqShape,
    pub(crate) embed: Dense,
    pub(crate) blocks: Vec<SeqBlock>,
    pub(crate) ln_f: Norm,
    pub(crate) actor1: Dense,
    pub(crate) actor_out: Dense,
    pub(crate) critic1: Dense,
    pub(crate) critic_out: Dense,
}

/// Per-position scratch: `SEQ_LEN` rows of `MAX_SEQ_DIM`.
type Rows = [[f32; MAX_SEQ_DIM]; SEQ_LEN];

impl SeqNet {
    /// The sizes.
    pub fn shape(&self) -> SeqShape {
        self.shape
    }

    /// Raw logits and value of a token sequence (`tokens.len() = n · TOKEN_DIM`, 1 ≤ n ≤
    /// `SEQ_LEN`): the output at the last token.
    pub fn forward_tokens(&self, tokens: &[f32], n: usize) -> ([f32; 2], f32) {
        self.forward_tokens_with(tokens, n, &[])
    }

    /// [`forward_tokens`](Self::forward_tokens) with the heads' extra inputs (`[λ input]` for a
    /// λ-conditioned network, empty otherwise).
    pub fn forward_tokens_with(&self, tokens: &[f32], n: usize, extra: &[f32]) -> ([f32; 2], f32) {
        let d = self.shape.dim;
        let mut h: Rows = [[0.0; MAX_SEQ_DIM]; SEQ_LEN];
        let mut a: Rows = [[0.0; MAX_SEQ_DIM]; SEQ_LEN];
        let mut k: Rows = [[0.0; MAX_SEQ_DIM]; SEQ_LEN];
        let mut v: Rows = [[0.0; MAX_SEQ_DIM]; SEQ_LEN];
        for i in 0..n {
            let x = &tokens[i * TOKEN_DIM..(i + 1) * TOKEN_DIM];
            self.embed.forward(x, &mut h[i][..d]);
        }
        for (l, b) in self.blocks.iter().enumerate() {
            // The last block only needs the last position's output.
            let from = if l + 1 == self.blocks.len() { n - 1 } else { 0 };
            self.block(b, n, from, (&mut h, &mut a, &mut k, &mut v));
        }
        let z = &mut a[0][..d];
        z.copy_from_slice(&h[n - 1][..d]);
        self.ln_f.forward(z);
        self.heads_of(z, extra)
    }

    /// Inputs the heads read besides the final representation (0, or 1 with the λ input).
    pub fn head_extra(&self) -> usize {
        usize::from(self.shape.lambda_input)
    }

    /// One block over positions `0..n`, updating the outputs of positions `from..n`.
    fn block(
        &self,
        b: &SeqBlock,
        n: usize,
        from: usize,
        (h, a, k, v): (&mut Rows, &mut Rows, &mut Rows, &mut Rows),
    ) {
        let d = self.shape.dim;
        for i in 0..n {
            a[i][..d].copy_from_slice(&h[i][..d]);
            b.ln1.forward(&mut a[i][..d]);
            b.k.forward(&a[i][..d], &mut k[i][..d]);
            b.v.forward(&a[i][..d], &mut v[i][..d]);
        }
        let mut q = [0.0f32; MAX_SEQ_DIM];
        let mut att = [0.0f32; MAX_SEQ_DIM];
        let mut o = [0.0f32; MAX_SEQ_DIM];
        for i in from..n {
            b.q.forward(&a[i][..d], &mut q[..d]);
            self.attend(&q[..d], &k[..=i], &v[..=i], &mut att[..d]);
            b.o.forward(&att[..d], &mut o[..d]);
            for (x, y) in h[i][..d].iter_mut().zip(&o[..d]) {
                *x += y;
            }
            self.feed_forward(b, &mut h[i][..d]);
        }
    }

    /// `h += W2·relu(W1·LN2(h) + b1) + b2`, in place (one position).
    pub(crate) fn feed_forward(&self, b: &SeqBlock, h: &mut [f32]) {
        let (d, ff) = (self.shape.dim, self.shape.ff);
        let mut c = [0.0f32; MAX_SEQ_DIM];
        c[..d].copy_from_slice(h);
        b.ln2.forward(&mut c[..d]);
        let mut f = [0.0f32; 4 * MAX_SEQ_DIM];
        b.ff1.forward(&c[..d], &mut f[..ff]);
        for x in &mut f[..ff] {
            *x = x.max(0.0);
        }
        let mut o = [0.0f32; MAX_SEQ_DIM];
        b.ff2.forward(&f[..ff], &mut o[..d]);
        for (x, y) in h.iter_mut().zip(&o[..d]) {
            *x += y;
        }
    }

    /// Multi-head attention of one query over keys/values `0..=i` (already causal).
    fn attend(
        &self,
        q: &[f32],
        k: &[[f32; MAX_SEQ_DIM]],
        v: &[[f32; MAX_SEQ_DIM]],
        out: &mut [f32],
    ) {
        let dh = self.shape.dim / self.shape.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut s = [0.0f32; SEQ_LEN];
        for hd in 0..self.shape.heads {
            let r = hd * dh..(hd + 1) * dh;
            let mut max = f32::NEG_INFINITY;
            for (j, kj) in k.iter().enumerate() {
                s[j] = crate::mlp::dot(&q[r.clone()], &kj[r.clone()]) * scale;
                max = max.max(s[j]);
            }
            let mut sum = 0.0f32;
            for x in &mut s[..k.len()] {
                *x = (*x - max).exp();
                sum += *x;
            }
            let out_h = &mut out[r.clone()];
            out_h.fill(0.0);
            for (j, vj) in v.iter().enumerate() {
                let p = s[j] / sum;
                for (o, x) in out_h.iter_mut().zip(&vj[r.clone()]) {
                    *o += p * x;
                }
            }
        }
    }

    /// Actor and critic heads on the final representation `z` followed by `extra` (the λ
    /// input of a conditioned network; missing values read as 0).
    pub(crate) fn heads_of(&self, z: &[f32], extra: &[f32]) -> ([f32; 2], f32) {
        let d = self.shape.dim;
        let e = self.head_extra();
        let mut zz = [0.0f32; MAX_SEQ_DIM + 1];
        zz[..d].copy_from_slice(z);
        let k = extra.len().min(e);
        zz[d..d + k].copy_from_slice(&extra[..k]);
        let z = &zz[..d + e];
        let mut t = [0.0f32; MAX_SEQ_DIM];
        self.actor1.forward(z, &mut t[..d]);
        t[..d].iter_mut().for_each(|x| *x = tanh_f32(*x));
        let mut logits = [0.0f32; 2];
        self.actor_out.forward(&t[..d], &mut logits);
        self.critic1.forward(z, &mut t[..d]);
        t[..d].iter_mut().for_each(|x| *x = tanh_f32(*x));
        let mut v = [0.0f32; 1];
        self.critic_out.forward(&t[..d], &mut v);
        (logits, v[0])
    }

    /// Raw logits and value of one flat observation row ([`write_row`]).
    pub fn forward(&self, row: &[f32]) -> ([f32; 2], f32) {
        let (tokens, n) = row_tokens(row);
        self.forward_tokens_with(tokens, n, &row[SEQ_OBS_DIM.min(row.len())..])
    }

    /// Masked action log-probabilities and the value of one observation row.
    pub fn log_probs(&self, row: &[f32], mask: [bool; 2]) -> ([f32; 2], f32) {
        let (logits, v) = self.forward(row);
        (masked_log_softmax(logits, mask), v)
    }
}
