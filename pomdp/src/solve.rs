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

use crate::grid::SimplexGrid;
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

/// Solve `model` on a grid of `divisions` per side for every λ in `lambdas` (in parallel over λ).
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
    Ok(lambdas
        .par_iter()
        .map(|&l| solve_one(model, &grid, &obs, l))
        .collect())
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

fn solve_one(m: &PomdpModel, grid: &SimplexGrid, obs: &Observations, lambda: f64) -> Solution {
    let s = m.max_steps() as usize;
    let points = grid.points();
    let regen_cost = lambda * m.future_tokens;
    let v_final = |b: &Belief| {
        m.final_reward(b, false)
            .max(m.final_reward(b, true) - regen_cost)
    };
    let mut cont = vec![[0.0; 2]; (s - 1) * points.len()];
    // V_{k+1} on the grid; unused for k = S − 1, where the next step is always the last.
    let mut next_v = vec![0.0; points.len()];
    for k in (1..s).rev() {
        let h = m.hazard[k + 1];
        let row = &mut cont[(k - 1) * points.len()..k * points.len()];
        for (g, b) in points.iter().enumerate() {
            let mut q = [0.0; 2];
            for (a, qa) in q.iter_mut().enumerate() {
                let pred = m.predict(b, a == 1);
                for l in &obs.likelihoods {
                    let w = [pred[0] * l[0], pred[1] * l[1], pred[2] * l[2]];
                    let p = w[0] + w[1] + w[2];
                    if p <= 0.0 {
                        continue;
                    }
                    let post = [w[0] / p, w[1] / p, w[2] / p];
                    let later = if h < 1.0 {
                        (1.0 - h) * grid.interpolate(&next_v, &post)
                    } else {
                        0.0
                    };
                    *qa += p * (h * v_final(&post) + later);
                }
            }
            row[g] = q;
        }
        next_v = row.iter().map(|q| q[0].max(q[1] - regen_cost)).collect();
    }
    Solution {
        lambda,
        grid: grid.clone(),
        cont,
        first_values: next_v,
        p_s: m.p_s,
        future_tokens: m.future_tokens,
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
