//! Global gradient-norm clipping and Adam over [`AggParams`], with burn's arithmetic (the
//! trainer's `crate::ppo::update`): L2 weight decay added to the gradient as `torch.optim.Adam`
//! does, then `p −= lr · m·(√bc₂/bc₁) / (√v + ε·√bc₂)` with bias corrections `bc = 1 − βᵗ`.

use super::mlp::AggParams;

/// Adam's state for one network.
#[derive(Clone, Debug)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    m: AggParams,
    v: AggParams,
    /// Steps taken.
    t: i32,
}

impl Adam {
    /// Fresh state for a network shaped like `p` (β = 0.9 / 0.999, as the trainer's).
    pub fn new(p: &AggParams, eps: f32, weight_decay: f32) -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps,
            weight_decay,
            m: p.zeros_like(),
            v: p.zeros_like(),
            t: 0,
        }
    }

    /// One step of `p` along gradient `g` with learning rate `lr`.
    pub fn step(&mut self, p: &mut AggParams, g: &AggParams, lr: f32) {
        self.t += 1;
        let bc2_sqrt = (1.0 - self.beta2.powi(self.t)).sqrt();
        let factor = bc2_sqrt / (1.0 - self.beta1.powi(self.t));
        let (b1, b2, wd) = (self.beta1, self.beta2, self.weight_decay);
        let eps = self.eps * bc2_sqrt;
        let tensors = (p.tensors_mut().into_iter())
            .zip(g.tensors())
            .zip(self.m.tensors_mut().into_iter().zip(self.v.tensors_mut()));
        for ((pt, gt), (mt, vt)) in tensors {
            for i in 0..pt.len() {
                let gi = gt[i] + wd * pt[i];
                mt[i] = mt[i] * b1 + gi * (1.0 - b1);
                vt[i] = vt[i] * b2 + gi * gi * (1.0 - b2);
                pt[i] -= lr * (mt[i] * factor / (vt[i].sqrt() + eps));
            }
        }
    }
}

/// Global L2 norm of `g`, and `g` scaled so the norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`: coefficient `max_norm / (norm + 1e-6)` when below 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(g: &mut AggParams, max_norm: f32) -> f32 {
    let mut sq = 0.0f32;
    for t in g.tensors() {
        sq += t.iter().map(|x| x * x).sum::<f32>();
    }
    let norm = sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        g.for_each_mut(|t| t.iter_mut().for_each(|x| *x *= coef));
    }
    norm
}
