//! Exact finite-horizon backward induction over the belief grid, for a list of λ.
//!
//! Decisions happen at steps k = 1 … S − 1 (S = `max_steps`); after the decision at step k the
//! next step is the last with probability h(k + 1) and its decision ends the episode (see
//! [`PomdpModel`]). With `F` the tokens charged per future regeneration,
//!
//! ```text
//! V_final(b) = max( b0 , p_s·(b0 + b2) − λ·F )
//! C_k(b, a)  = Σ_o P(o | pred(b, a)) · [ h(k+1)·V_final(b'_o) + (1 − h(k+1))·V_{k+1}(b'_o) ]
//! V_k(b)     = max( C_k(b, continue), C_k(b, regenerate) − λ·F )
//! ```
//!
//! where `pred` is the transition and `b'_o` the Bayes posterior after observing bin `o`.
//! `V_final` is exact; `V_{k+1}` is interpolated on the grid. [`Solution`] keeps `C_k` at every
//! grid point, so the decision at run time charges the current step's *real* token count:
//! regenerate iff `C_k(b, regenerate) − λ·tokens > C_k(b, continue)`.

use rayon::prelude::*;
use trim_env::Action;

use crate::grid::{Corners, SimplexGrid};
use crate::model::{Belief, ModelError, PomdpModel};

/// The solved POMDP for one λ.
#[derive(Clone, Debug)]
pub struct Solution {
    /// Cost per strong token.
    pub lambda: f64,
    grid: SimplexGrid,
    /// `cont[(k − 1) · points + g]` = `[C_k(g, continue), C_k(g, regenerate)]` for k = 1 … S − 1.
    cont: Vec<[f64; 2]>,
    /// `V_1` at every grid point (the value of a fresh episode's first decision, F tokens).
    first_values: Vec<f64>,
    p_s: f64,
    future_tokens: f64,
}

/// Grid divisions for a grid step (0.025 → 40); a step that does not divide 1 is refused.
pub fn divisions_for_step(step: f64) -> Result<usize, ModelError> {
    let n = (1.0 / step).round();
    if !(step > 0.0 && step <= 1.0) || ((1.0 / step) - n).abs() > 1e-9 || n > 2000.0 {
        return Err(ModelError::Bad {
            field: "grid step".into(),
            reason: format!("{step} does not divide 1 into at most 2000 parts"),
        });
    }
    Ok(n as usize)
}

/// Solve `model` on a grid of `divisions` per side for every λ in `lambdas` (all λ in one
/// backward pass, in parallel over grid points).
pub fn solve(
    model: &PomdpModel,
    divisions: usize,
    lambdas: &[f64],
) -> Result<Vec<Solution>, ModelError> {
    model.validate()?;
    if divisions == 0 {
        return Err(ModelError::Bad {
            field: "grid".into(),
            reason: "needs at least one division".into(),
        });
    }
    if let Some(l) = lambdas.iter().find(|l| !(l.is_finite() && **l >= 0.0)) {
        return Err(ModelError::Bad {
            field: "lambda".into(),
            reason: format!("{l}: λ must be finite and ≥ 0"),
        });
    }
    let grid = SimplexGrid::new(divisions);
    let obs = Observations::of(model);
    Ok(solve_all(model, &grid, &obs, lambdas))
}

/// The observation bins that any state can emit, with their likelihood vectors.
struct Observations {
    likelihoods: Vec<[f64; 3]>,
}

impl Observations {
    fn of(m: &PomdpModel) -> Self {
        let likelihoods = (0..m.bins * m.bins)
            .map(|o| m.likelihood(o))
            .filter(|l| l.iter().sum::<f64>() > 0.0)
            .collect();
        Observations { likelihoods }
    }
}

/// Backward induction for every λ at once. A posterior, its final rewards and where it falls
/// on the grid depend on the grid point, the action and the observation only, so each is
/// computed once per step for all λ (the same terms, added in the same order, as a solve of
/// one λ alone — tested to the bit).
fn solve_all(
    m: &PomdpModel,
    grid: &SimplexGrid,
    obs: &Observations,
    lambdas: &[f64],
) -> Vec<Solution> {
    let (s, nl) = (m.max_steps() as usize, lambdas.len());
    if nl == 0 {
        return vec![];
    }
    let points = grid.points();
    let np = points.len();
    let costs: Vec<f64> = lambdas.iter().map(|l| l * m.future_tokens).collect();
    let mut cont = vec![vec![[0.0; 2]; (s - 1) * np]; nl];
    // V_{k+1} on the grid, point-major (`[g * nl + j]` for λ number j): the λ values of a
    // corner sit side by side. Unused for k = S − 1, where the next step is always the last.
    let mut next_v = vec![0.0; np * nl];
    // C_k at every grid point for every λ, point-major.
    let mut q = vec![[0.0; 2]; np * nl];
    for k in (1..s).rev() {
        let h = m.hazard[k + 1];
        (q.par_chunks_mut(nl).zip(&points))
            .with_min_len(16)
            .for_each(|(q, b)| continuation_at(m, grid, obs, (b, h), (&costs, &next_v), q));
        for (j, c) in cont.iter_mut().enumerate() {
            let row = &mut c[(k - 1) * np..k * np];
            for (g, r) in row.iter_mut().enumerate() {
                *r = q[g * nl + j];
                next_v[g * nl + j] = r[0].max(r[1] - costs[j]);
            }
        }
    }
    (lambdas.iter().zip(cont).enumerate())
        .map(|(j, (&lambda, cont))| Solution {
            lambda,
            grid: grid.clone(),
            cont,
            first_values: (0..np).map(|g| next_v[g * nl + j]).collect(),
            p_s: m.p_s,
            future_tokens: m.future_tokens,
        })
        .collect()
}

/// The probability of observing `l` (likelihoods per state) after the prediction `pred`, and
/// the Bayes posterior; None when the observation is impossible.
#[inline]
fn posterior(pred: &Belief, l: &[f64; 3]) -> Option<(f64, Belief)> {
    let w = [pred[0] * l[0], pred[1] * l[1], pred[2] * l[2]];
    let p = w[0] + w[1] + w[2];
    (p > 0.0).then(|| (p, [w[0] / p, w[1] / p, w[2] / p]))
}

/// `q[j] = [C_k(b, continue), C_k(b, regenerate)]` at grid belief `b` for λ number `j`, whose
/// regeneration charge is `costs[j]` and whose `V_{k+1}` at grid point `g` is
/// `next_v[g * costs.len() + j]`; `h` = h(k + 1).
fn continuation_at(
    m: &PomdpModel,
    grid: &SimplexGrid,
    obs: &Observations,
    (b, h): (&Belief, f64),
    (costs, next_v): (&[f64], &[f64]),
    q: &mut [[f64; 2]],
) {
    let nl = costs.len();
    let at_point = |g: usize| &next_v[g * nl..(g + 1) * nl];
    q.fill([0.0; 2]);
    for a in 0..2 {
        let pred = m.predict(b, a == 1);
        for l in &obs.likelihoods {
            let Some((p, post)) = posterior(&pred, l) else {
                continue;
            };
            let (keep, regen) = (m.final_reward(&post, false), m.final_reward(&post, true));
            // V_{k+1}(b') interpolated as `Corners::apply` does (w0·v0 + w1·v1 + w2·v2, left
            // to right), all λ at once.
            let term = Term {
                a,
                p,
                h,
                keep,
                regen,
            };
            match (h < 1.0).then(|| grid.corners(&post)) {
                None => term.add(q, costs, |_| 0.0),
                Some(Corners::Point(g)) => {
                    let v = at_point(g);
                    term.add(q, costs, |j| (1.0 - h) * v[j]);
                }
                Some(Corners::Triangle(g, w)) => {
                    let (v0, v1, v2) = (at_point(g[0]), at_point(g[1]), at_point(g[2]));
                    term.add(q, costs, |j| {
                        (1.0 - h) * (w[0] * v0[j] + w[1] * v1[j] + w[2] * v2[j])
                    });
                }
            }
        }
    }
}

/// One observation's share of `C_k(b, a)`: its probability `p`, the hazard `h` = h(k + 1)
/// and its posterior's final rewards without and with regeneration.
struct Term {
    a: usize,
    p: f64,
    h: f64,
    keep: f64,
    regen: f64,
}

impl Term {
    /// `q[j][a] += p·(h·V_final(b') + later(j))` for every λ number `j`, where
    /// V_final(b') = max(keep, regen − λ·F) and `later(j)` is (1 − h)·V_{k+1}(b') for λ `j`.
    #[inline(always)]
    fn add(&self, q: &mut [[f64; 2]], costs: &[f64], later: impl Fn(usize) -> f64) {
        let Term {
            a,
            p,
            h,
            keep,
            regen,
        } = *self;
        for (j, (qj, cost)) in q.iter_mut().zip(costs).enumerate() {
            qj[a] += p * (h * keep.max(regen - cost) + later(j));
        }
    }
}

impl Solution {
    /// Reassemble a solution from its tables (the file reader checks them first).
    pub(crate) fn from_parts(
        lambda: f64,
        grid: SimplexGrid,
        cont: Vec<[f64; 2]>,
        first_values: Vec<f64>,
        model: &PomdpModel,
    ) -> Self {
        Solution {
            lambda,
            grid,
            cont,
            first_values,
            p_s: model.p_s,
            future_tokens: model.future_tokens,
        }
    }

    /// The continuation table (step-major) and the first-step values.
    pub(crate) fn tables(&self) -> (&[[f64; 2]], &[f64]) {
        (&self.cont, &self.first_values)
    }

    /// The grid the solution lives on.
    pub fn grid(&self) -> &SimplexGrid {
        &self.grid
    }

    /// Decision steps covered (S − 1); later steps are decided as the last one.
    pub fn horizon(&self) -> usize {
        self.cont.len() / self.grid.len()
    }

    /// `[C_k(b, continue), C_k(b, regenerate)]` for the decision at step `k` (1-based).
    pub fn continuation(&self, k: usize, b: &Belief) -> [f64; 2] {
        let n = self.grid.len();
        let row = &self.cont[(k - 1) * n..k * n];
        let pick = |a: usize| self.grid.interpolate_by(|g| row[g][a], b);
        [pick(0), pick(1)]
    }

    /// The value of the decision at step `k` (1-based) from belief `b` when regenerating the
    /// current step costs `tokens` strong tokens. Steps beyond the horizon are valued as the last.
    pub fn value(&self, k: usize, b: &Belief, tokens: f64) -> f64 {
        let q = self.q(k, b, tokens);
        q[0].max(q[1])
    }

    /// `[continue, regenerate]` action values at step `k` with the current step's `tokens`.
    pub fn q(&self, k: usize, b: &Belief, tokens: f64) -> [f64; 2] {
        let cost = self.lambda * tokens;
        if k == 0 || k > self.horizon() {
            return [b[0], self.p_s * (b[0] + b[2]) - cost];
        }
        let c = self.continuation(k, b);
        [c[0], c[1] - cost]
    }

    /// The decision: regenerate only when it is strictly better.
    pub fn action(&self, k: usize, b: &Belief, tokens: f64) -> Action {
        let q = self.q(k, b, tokens);
        if q[1] > q[0] {
            Action::Regenerate
        } else {
            Action::Continue
        }
    }

    /// The value of a fresh episode's first decision from belief `b` (future-token cost).
    pub fn first_value(&self, b: &Belief) -> f64 {
        self.grid.interpolate(&self.first_values, b)
    }

    /// Tokens charged per future regeneration in this solution.
    pub fn future_tokens(&self) -> f64 {
        self.future_tokens
    }
}

#[cfg(test)]
mod tests;
