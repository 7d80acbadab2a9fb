//! Incremental TRIM-Seq inference for a serving loop: the keys and values of the kept steps
//! are computed once, when the step is kept, so a decision costs the candidate token's pass
//! through the blocks (attending to the cache) instead of the whole history's.
//!
//! Causal attention makes this exact: a kept step's representation at every layer depends only
//! on the kept steps before it, which do not change when later steps arrive. The one exception
//! is the context window: once [`SEQ_LEN`]` − 1` steps are kept, the oldest one leaves the
//! window and every cached representation is recomputed from the raw tokens (kept for that).

use crate::mlp::dot;
use crate::seq::{MAX_SEQ_DIM, SEQ_LEN, SeqBlock, SeqNet, TOKEN_DIM};

/// Most kept steps inside the window (the candidate takes the last slot).
const WINDOW: usize = SEQ_LEN - 1;

/// Per-layer keys and values of the kept steps in the window, and their raw tokens: about
/// `2 · layers · 31 · d` floats per episode (16 KB at the default sizes).
#[derive(Clone, Debug)]
pub struct SeqCache {
    /// Model width d (the stride of a position).
    dim: usize,
    /// `keys[(layer · WINDOW + position) · d + i]`, likewise `values`.
    keys: Vec<f32>,
    values: Vec<f32>,
    /// Raw tokens of the kept steps in the window, oldest first.
    tokens: [[f32; TOKEN_DIM]; WINDOW],
    /// Kept steps in the window.
    len: usize,
}

impl SeqCache {
    /// An empty cache for `net`.
    pub fn new(net: &SeqNet) -> Self {
        let (layers, dim) = (net.blocks.len(), net.shape.dim);
        SeqCache {
            dim,
            keys: vec![0.0; layers * WINDOW * dim],
            values: vec![0.0; layers * WINDOW * dim],
            tokens: [[0.0; TOKEN_DIM]; WINDOW],
            len: 0,
        }
    }

    /// Kept steps in the window.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first kept step.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw logits and value of the candidate token `x`, given the kept steps in the cache.
    pub fn decide(&self, net: &SeqNet, x: &[f32; TOKEN_DIM]) -> ([f32; 2], f32) {
        self.decide_with(net, x, &[])
    }

    /// [`decide`](Self::decide) with the heads' extra inputs (the λ input of a conditioned
    /// network).
    pub fn decide_with(
        &self,
        net: &SeqNet,
        x: &[f32; TOKEN_DIM],
        extra: &[f32],
    ) -> ([f32; 2], f32) {
        let d = net.shape.dim;
        let mut h = [0.0f32; MAX_SEQ_DIM];
        net.embed.forward(x, &mut h[..d]);
        let (mut k, mut v) = ([0.0f32; MAX_SEQ_DIM], [0.0f32; MAX_SEQ_DIM]);
        for (l, b) in net.blocks.iter().enumerate() {
            self.step(net, b, l, &mut h, (&mut k, &mut v));
        }
        net.ln_f.forward(&mut h[..d]);
        net.heads_of(&h[..d], extra)
    }

    /// Append a kept step's token: its keys and values at every layer join the cache (the
    /// window slides, and the cache is rebuilt, when it is full).
    pub fn push(&mut self, net: &SeqNet, x: &[f32; TOKEN_DIM]) {
        if self.len == WINDOW {
            let kept: Vec<[f32; TOKEN_DIM]> = self.tokens[1..].to_vec();
            self.len = 0;
            for t in &kept {
                self.append(net, t);
            }
        }
        self.append(net, x);
    }

    fn append(&mut self, net: &SeqNet, x: &[f32; TOKEN_DIM]) {
        let d = net.shape.dim;
        let mut h = [0.0f32; MAX_SEQ_DIM];
        net.embed.forward(x, &mut h[..d]);
        let (mut k, mut v) = ([0.0f32; MAX_SEQ_DIM], [0.0f32; MAX_SEQ_DIM]);
        let last = net.blocks.len() - 1;
        for (l, b) in net.blocks.iter().enumerate() {
            self.step(net, b, l, &mut h, (&mut k, &mut v));
            let at = (l * WINDOW + self.len) * d;
            self.keys[at..at + d].copy_from_slice(&k[..d]);
            self.values[at..at + d].copy_from_slice(&v[..d]);
            // The last block's output of a kept step is never read again.
            if l == last {
                break;
            }
        }
        self.tokens[self.len] = *x;
        self.len += 1;
    }

    /// One block for a new token `h` at position `self.len`: its key and value are left in
    /// `k`, `v`; `h` becomes the block's output.
    fn step(
        &self,
        net: &SeqNet,
        b: &SeqBlock,
        layer: usize,
        h: &mut [f32; MAX_SEQ_DIM],
        (k, v): (&mut [f32; MAX_SEQ_DIM], &mut [f32; MAX_SEQ_DIM]),
    ) {
        let d = net.shape.dim;
        let mut a = [0.0f32; MAX_SEQ_DIM];
        a[..d].copy_from_slice(&h[..d]);
        b.ln1.forward(&mut a[..d]);
        let mut q = [0.0f32; MAX_SEQ_DIM];
        b.q.forward(&a[..d], &mut q[..d]);
        b.k.forward(&a[..d], &mut k[..d]);
        b.v.forward(&a[..d], &mut v[..d]);
        let mut att = [0.0f32; MAX_SEQ_DIM];
        self.attend(net, layer, &q[..d], (&k[..d], &v[..d]), &mut att[..d]);
        let mut o = [0.0f32; MAX_SEQ_DIM];
        b.o.forward(&att[..d], &mut o[..d]);
        for (x, y) in h[..d].iter_mut().zip(&o[..d]) {
            *x += y;
        }
        net.feed_forward(b, &mut h[..d]);
    }

    /// Attention of `q` over the cached positions of `layer` and the new token's own `(k, v)`,
    /// in the order of [`SeqNet::forward_tokens`] (positions ascending, the new one last).
    fn attend(
        &self,
        net: &SeqNet,
        layer: usize,
        q: &[f32],
        (k_new, v_new): (&[f32], &[f32]),
        out: &mut [f32],
    ) {
        let (heads, n) = (net.shape.heads, self.len);
        let dh = net.shape.dim / heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut s = [0.0f32; SEQ_LEN];
        let d = self.dim;
        let base = layer * WINDOW * d;
        let key = |j: usize| &self.keys[base + j * d..base + (j + 1) * d];
        let value = |j: usize| &self.values[base + j * d..base + (j + 1) * d];
        for hd in 0..heads {
            let r = hd * dh..(hd + 1) * dh;
            let mut max = f32::NEG_INFINITY;
            for (j, sj) in s[..=n].iter_mut().enumerate() {
                let kj = if j < n {
                    &key(j)[r.clone()]
                } else {
                    &k_new[r.clone()]
                };
                *sj = dot(&q[r.clone()], kj) * scale;
                max = max.max(*sj);
            }
            let mut sum = 0.0f32;
            for x in &mut s[..=n] {
                *x = (*x - max).exp();
                sum += *x;
            }
            let out_h = &mut out[r.clone()];
            out_h.fill(0.0);
            for (j, &sj) in s[..=n].iter().enumerate() {
                let vj = if j < n {
                    &value(j)[r.clone()]
                } else {
                    &v_new[r.clone()]
                };
                let p = sj / sum;
                for (o, x) in out_h.iter_mut().zip(vj) {
                    *o += p * x;
                }
            }
        }
    }
}
