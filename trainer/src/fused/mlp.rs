//! The TRIM-Agg actor-critic over flat arrays: parameters, a forward pass that keeps what the
//! backward pass needs, and the backward pass.
//!
//! ```text
//! x ─ D0 ─ LN0 ─ tanh ─ D1 ─ LN1 ─ tanh ─┬─ D2 ─ LN2 ─ tanh ─ D3 ─ logits [n,2]
//!                                       └─ D4 ─ LN3 ─ tanh ─ D5 ─ value  [n]
//! ```

use crate::model::N_ACTIONS;
use trim_router::agg::{DENSE_NAMES, NORM_NAMES, dense_dims};

use super::dense::{
    dense_backward, dense_backward_add, dense_forward, dense_weight_grads, transpose_into,
};
use super::norm::{NormCache, norm_tanh_backward, norm_tanh_forward};

/// One dense layer: `y = x Wᵀ + b`, `w` row-major `[d_out, d_in]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseP {
    pub d_in: usize,
    pub d_out: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// One LayerNorm's affine parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct NormP {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// Every parameter of the network (or, with the same shapes, every gradient).
#[derive(Clone, Debug, PartialEq)]
pub struct AggParams {
    /// In [`DENSE_NAMES`] order.
    pub dense: [DenseP; 6],
    /// In [`NORM_NAMES`] order.
    pub norm: [NormP; 4],
}

impl AggParams {
    /// Parameters by PyTorch name (`<layer>.weight`, `<layer>.bias`) from `get`, which is asked
    /// for each tensor with its shape.
    pub fn from_named(
        input_dim: usize,
        hidden: usize,
        mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f32>, String>,
    ) -> Result<Self, String> {
        let dims = dense_dims(input_dim, hidden);
        let mut dense = vec![];
        for (name, (d_in, d_out)) in DENSE_NAMES.iter().zip(dims) {
            let w = get(&format!("{name}.weight"), &[d_out, d_in])?;
            let b = get(&format!("{name}.bias"), &[d_out])?;
            if w.len() != d_in * d_out || b.len() != d_out {
                return Err(format!("{name}: wrong parameter sizes"));
            }
            dense.push(DenseP { d_in, d_out, w, b });
        }
        let mut norm = vec![];
        for name in NORM_NAMES {
            let gamma = get(&format!("{name}.weight"), &[hidden])?;
            let beta = get(&format!("{name}.bias"), &[hidden])?;
            if gamma.len() != hidden || beta.len() != hidden {
                return Err(format!("{name}: wrong parameter sizes"));
            }
            norm.push(NormP { gamma, beta });
        }
        Ok(AggParams {
            dense: dense
                .try_into()
                .map_err(|_| "six dense layers".to_string())?,
            norm: norm.try_into().map_err(|_| "four norms".to_string())?,
        })
    }

    /// Zeros of the same shapes (a gradient accumulator).
    pub fn zeros_like(&self) -> Self {
        let mut z = self.clone();
        z.for_each_mut(|v| v.fill(0.0));
        z
    }

    /// Every tensor, named, in a fixed order (dense weight, bias per layer, then γ, β per norm).
    pub fn named(&self) -> Vec<(String, &[f32])> {
        let mut out = vec![];
        for (name, d) in DENSE_NAMES.iter().zip(&self.dense) {
            out.push((format!("{name}.weight"), d.w.as_slice()));
            out.push((format!("{name}.bias"), d.b.as_slice()));
        }
        for (name, n) in NORM_NAMES.iter().zip(&self.norm) {
            out.push((format!("{name}.weight"), n.gamma.as_slice()));
            out.push((format!("{name}.bias"), n.beta.as_slice()));
        }
        out
    }

    /// Apply `f` to every tensor, in [`Self::named`] order.
    pub fn for_each_mut(&mut self, f: impl FnMut(&mut [f32])) {
        self.tensors_mut().into_iter().for_each(f);
    }

    /// Every tensor, in [`Self::named`] order.
    pub fn tensors(&self) -> [&[f32]; 20] {
        let d = &self.dense;
        let n = &self.norm;
        [
            &d[0].w,
            &d[0].b,
            &d[1].w,
            &d[1].b,
            &d[2].w,
            &d[2].b,
            &d[3].w,
            &d[3].b,
            &d[4].w,
            &d[4].b,
            &d[5].w,
            &d[5].b,
            &n[0].gamma,
            &n[0].beta,
            &n[1].gamma,
            &n[1].beta,
            &n[2].gamma,
            &n[2].beta,
            &n[3].gamma,
            &n[3].beta,
        ]
    }

    /// Every tensor, mutably, in [`Self::named`] order.
    pub fn tensors_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> = Vec::with_capacity(20);
        for d in self.dense.iter_mut() {
            out.push(&mut d.w);
            out.push(&mut d.b);
        }
        for n in self.norm.iter_mut() {
            out.push(&mut n.gamma);
            out.push(&mut n.beta);
        }
        out
    }

    pub fn input_dim(&self) -> usize {
        self.dense[0].d_in
    }

    /// The plain-Rust acting network with these parameters (exact: the same f32 values).
    pub fn acting(&self) -> Result<trim_router::AggNet, String> {
        let named = self.named();
        let get = |name: &str, _: &[usize]| {
            (named.iter().find(|(n, _)| n == name))
                .map(|(_, t)| t.to_vec())
                .ok_or_else(|| format!("no parameter {name}"))
        };
        trim_router::AggNet::from_named_params(self.input_dim(), self.hidden(), |e| e, get)
    }

    pub fn hidden(&self) -> usize {
        self.dense[0].d_out
    }
}

/// Activations of one forward pass and scratch for the backward pass, reused across steps.
#[derive(Default)]
pub struct Workspace {
    n: usize,
    /// Blocks in [`NORM_NAMES`] order: trunk 1, trunk 2, actor, critic.
    blocks: [NormCache; 4],
    /// `[n, 2]` raw logits and `[n]` values.
    pub logits: Vec<f32>,
    pub values: Vec<f32>,
    /// Backward scratch: gradients w.r.t. a block's output and pre-norm input, `[n, h]`.
    d_out: Vec<f32>,
    d_pre: Vec<f32>,
    d_trunk: Vec<f32>,
    /// Transposed weights of the last forward pass (`[d_in, d_out]` per layer).
    wt: [Vec<f32>; 6],
}

impl Workspace {
    /// Rows of the last forward pass.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Forward pass over `obs` (`[n, input_dim]`): fills `logits` and `values` and keeps the
    /// activations. Runs an AVX-512 or AVX2 build of the same loops when the CPU has it
    /// (run-time detection; the same operations in the same order, so the results are
    /// bit-identical).
    pub fn forward(&mut self, p: &AggParams, obs: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { self.forward_avx512(p, obs) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.forward_avx2(p, obs) };
        }
        self.forward_any::<1>(p, obs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_avx512(&mut self, p: &AggParams, obs: &[f32]) {
        self.forward_any::<4>(p, obs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_avx2(&mut self, p: &AggParams, obs: &[f32]) {
        self.forward_any::<1>(p, obs)
    }

    /// The forward pass with `R` rows per register block (see `dense`).
    #[inline(always)]
    pub(super) fn forward_any<const R: usize>(&mut self, p: &AggParams, obs: &[f32]) {
        let (h, n) = (p.hidden(), obs.len() / p.input_dim());
        self.n = n;
        for (d, wt) in p.dense.iter().zip(&mut self.wt) {
            transpose_into(d, wt);
        }
        let wt = std::mem::take(&mut self.wt);
        let mut z = std::mem::take(&mut self.d_pre);
        z.resize(n * h, 0.0);
        dense_forward::<R>(&p.dense[0], &wt[0], obs, &mut z);
        norm_tanh_forward(&p.norm[0], &z, &mut self.blocks[0]);
        dense_forward::<R>(&p.dense[1], &wt[1], &self.blocks[0].out, &mut z);
        norm_tanh_forward(&p.norm[1], &z, &mut self.blocks[1]);
        dense_forward::<R>(&p.dense[2], &wt[2], &self.blocks[1].out, &mut z);
        norm_tanh_forward(&p.norm[2], &z, &mut self.blocks[2]);
        dense_forward::<R>(&p.dense[4], &wt[4], &self.blocks[1].out, &mut z);
        norm_tanh_forward(&p.norm[3], &z, &mut self.blocks[3]);
        self.d_pre = z;
        self.logits.resize(n * N_ACTIONS, 0.0);
        self.values.resize(n, 0.0);
        dense_forward::<R>(&p.dense[3], &wt[3], &self.blocks[2].out, &mut self.logits);
        dense_forward::<R>(&p.dense[5], &wt[5], &self.blocks[3].out, &mut self.values);
        self.wt = wt;
    }

    /// Backward pass from `d_logits` (`[n, 2]`) and `d_values` (`[n]`), the gradients of the
    /// loss w.r.t. the last forward pass's outputs; gradients are **added** into `g`. AVX2
    /// build when available, as [`Self::forward`].
    pub fn backward(
        &mut self,
        p: &AggParams,
        obs: &[f32],
        d_logits: &[f32],
        d_values: &[f32],
        g: &mut AggParams,
    ) {
        let dy = (d_logits, d_values);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { self.backward_avx512(p, obs, dy, g) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.backward_avx2(p, obs, dy, g) };
        }
        self.backward_any::<1>(p, obs, dy, g)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn backward_avx512(
        &mut self,
        p: &AggParams,
        obs: &[f32],
        dy: (&[f32], &[f32]),
        g: &mut AggParams,
    ) {
        self.backward_any::<4>(p, obs, dy, g)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn backward_avx2(
        &mut self,
        p: &AggParams,
        obs: &[f32],
        dy: (&[f32], &[f32]),
        g: &mut AggParams,
    ) {
        self.backward_any::<1>(p, obs, dy, g)
    }

    /// The backward pass with `R` rows per register block (see `dense`).
    #[inline(always)]
    pub(super) fn backward_any<const R: usize>(
        &mut self,
        p: &AggParams,
        obs: &[f32],
        (d_logits, d_values): (&[f32], &[f32]),
        g: &mut AggParams,
    ) {
        let (h, n) = (p.hidden(), self.n);
        let mut d_out = std::mem::take(&mut self.d_out);
        let mut d_pre = std::mem::take(&mut self.d_pre);
        let mut d_trunk = std::mem::take(&mut self.d_trunk);
        d_out.resize(n * h, 0.0);
        d_pre.resize(n * h, 0.0);
        d_trunk.resize(n * h, 0.0);
        // Actor head into d_trunk, then the critic head added to it.
        d_trunk.fill(0.0);
        for (head, (out_layer, in_layer, block)) in [(3, 2, 2), (5, 4, 3)].into_iter().enumerate() {
            let dy = if head == 0 { d_logits } else { d_values };
            let x = &self.blocks[block].out;
            dense_backward::<R>(
                &p.dense[out_layer],
                x,
                dy,
                &mut g.dense[out_layer],
                &mut d_out,
            );
            norm_tanh_backward(
                &p.norm[block],
                &self.blocks[block],
                &d_out,
                &mut g.norm[block],
                &mut d_pre,
            );
            let trunk_out = &self.blocks[1].out;
            dense_backward_add::<R>(
                &p.dense[in_layer],
                trunk_out,
                &d_pre,
                &mut g.dense[in_layer],
                &mut d_trunk,
            );
        }
        // Trunk block 2, then block 1, then the input layer (no input gradient needed).
        norm_tanh_backward(
            &p.norm[1],
            &self.blocks[1],
            &d_trunk,
            &mut g.norm[1],
            &mut d_pre,
        );
        dense_backward::<R>(
            &p.dense[1],
            &self.blocks[0].out,
            &d_pre,
            &mut g.dense[1],
            &mut d_out,
        );
        norm_tanh_backward(
            &p.norm[0],
            &self.blocks[0],
            &d_out,
            &mut g.norm[0],
            &mut d_pre,
        );
        dense_weight_grads::<R>(&p.dense[0], obs, &d_pre, &mut g.dense[0]);
        (self.d_out, self.d_pre, self.d_trunk) = (d_out, d_pre, d_trunk);
    }
}
