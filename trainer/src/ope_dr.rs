//! The doubly robust estimate of [`crate::ope`]: a fitted-Q critic (FQE) for the target policy
//! over the logged steps, combined with the per-decision weights (weighted doubly robust,
//! Thomas & Brunskill 2016). The critic is linear in the TRIM-Agg features of the step, one
//! weight vector per action, refitted backward over the horizon: `Q(s, a) ← r + Q(s', π(s'))`
//! by ridge least squares over every logged step, as many sweeps as the longest trajectory.
//! With a good critic the estimate keeps IS's consistency and loses much of its variance.

use trim_env::Action;

/// Features of the critic: the 5 TRIM-Agg features and a constant.
pub const PHI: usize = 6;

/// A linear critic `Q(s, a) = θ_a · φ(s)`.
#[derive(Clone, Debug, Default)]
pub struct Critic {
    theta: [[f64; PHI]; 2],
}

impl Critic {
    /// `Q(s, a)`.
    pub fn q(&self, phi: &[f64; PHI], a: Action) -> f64 {
        self.theta[a as usize]
            .iter()
            .zip(phi)
            .map(|(t, x)| t * x)
            .sum()
    }
}

/// One logged step for the critic: its features, the logged action, the reward, the target's
/// action there, and the next step's index (None at the end).
pub struct CriticStep {
    pub phi: [f64; PHI],
    pub action: Action,
    pub reward: f64,
    pub target: Action,
    pub next: Option<usize>,
}

/// Fit the critic by `sweeps` backward refits (ridge `1e-3`).
pub fn fit(steps: &[CriticStep], sweeps: usize) -> Critic {
    let mut c = Critic::default();
    for _ in 0..sweeps {
        let y: Vec<f64> = (steps.iter())
            .map(|s| {
                let next = s.next.map_or(0.0, |j| c.q(&steps[j].phi, steps[j].target));
                s.reward + next
            })
            .collect();
        let mut next = Critic::default();
        for a in Action::ALL {
            let rows: Vec<usize> = (0..steps.len()).filter(|&i| steps[i].action == a).collect();
            next.theta[a as usize] = ridge(&rows, steps, &y);
        }
        c = next;
    }
    c
}

/// Ridge least squares of `y` on the features of `rows`.
fn ridge(rows: &[usize], steps: &[CriticStep], y: &[f64]) -> [f64; PHI] {
    let mut a = [[0.0f64; PHI]; PHI];
    let mut b = [0.0f64; PHI];
    for &i in rows {
        let x = &steps[i].phi;
        for r in 0..PHI {
            b[r] += x[r] * y[i];
            for c in 0..PHI {
                a[r][c] += x[r] * x[c];
            }
        }
    }
    for (r, row) in a.iter_mut().enumerate() {
        row[r] += 1e-3;
    }
    solve(a, b)
}

/// Solve `a x = b` by Gaussian elimination with partial pivoting (a is symmetric positive
/// definite after the ridge, so no pivot vanishes).
fn solve(mut a: [[f64; PHI]; PHI], mut b: [f64; PHI]) -> [f64; PHI] {
    for k in 0..PHI {
        let p = (k..PHI)
            .max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs()))
            .unwrap_or(k);
        a.swap(k, p);
        b.swap(k, p);
        let (pivot_row, pivot_b) = (a[k], b[k]);
        for (row, bi) in a.iter_mut().zip(b.iter_mut()).skip(k + 1) {
            let f = row[k] / pivot_row[k];
            for (x, p) in row.iter_mut().zip(&pivot_row).skip(k) {
                *x -= f * p;
            }
            *bi -= f * pivot_b;
        }
    }
    let mut x = [0.0f64; PHI];
    for k in (0..PHI).rev() {
        let s: f64 = (k + 1..PHI).map(|j| a[k][j] * x[j]).sum();
        x[k] = (b[k] - s) / a[k][k];
    }
    x
}

/// Weighted doubly robust value over trajectories `idx` (with repetition for the bootstrap):
/// `w[i][t]` cumulative weights, `r[i][t]` rewards, `q[i][t]` = Q̂(s, logged a), `v[i][t]` =
/// Q̂(s, target a).
pub fn wdr(
    idx: &[usize],
    w: &[Vec<f64>],
    r: &[Vec<f64>],
    q: &[Vec<f64>],
    v: &[Vec<f64>],
) -> Option<f64> {
    let horizon = idx.iter().map(|&i| w[i].len()).max().unwrap_or(0);
    let n = idx.len() as f64;
    // Direct-method baseline: the critic's value of the first state.
    let mut total: f64 = idx
        .iter()
        .map(|&i| v[i].first().copied().unwrap_or(0.0))
        .sum::<f64>()
        / n;
    for t in 0..horizon {
        // A finished trajectory stays in the normalisation with its final weight (it sits in
        // an absorbing state with no reward), as in per-decision weighted IS.
        let den: f64 = (idx.iter())
            .map(|&i| w[i].get(t).or(w[i].last()).copied().unwrap_or(0.0))
            .sum();
        if den <= 0.0 {
            return (t > 0).then_some(total);
        }
        for &i in idx {
            let Some(&wt) = w[i].get(t) else { continue };
            let wn = wt / den;
            let next_v = v[i].get(t + 1).copied().unwrap_or(0.0);
            total += wn * (r[i][t] + next_v - q[i][t]);
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_function_and_fqe_chains_rewards() {
        // y = 2 + 3·x0 − x4 exactly, on varied features.
        let mut steps = vec![];
        for i in 0..200 {
            let f = |k: usize| ((i * (k + 3)) % 17) as f64 / 17.0;
            let phi = [f(0), f(1), f(2), f(3), f(4), 1.0];
            steps.push(CriticStep {
                phi,
                action: Action::Continue,
                reward: 2.0 + 3.0 * phi[0] - phi[4],
                target: Action::Continue,
                next: None,
            });
        }
        let c = fit(&steps, 1);
        for s in &steps {
            assert!((c.q(&s.phi, Action::Continue) - s.reward).abs() < 1e-2);
        }
        // Two-step chains: the first step's Q is its reward plus the second's.
        let mut chain = vec![];
        for i in 0..100 {
            let x = i as f64 / 100.0;
            chain.push(CriticStep {
                phi: [x, 0.0, 0.0, 0.0, 0.0, 1.0],
                action: Action::Continue,
                reward: 0.0,
                target: Action::Continue,
                next: Some(chain.len() + 1),
            });
            chain.push(CriticStep {
                phi: [x, 1.0, 0.0, 0.0, 0.0, 1.0],
                action: Action::Continue,
                reward: x,
                target: Action::Continue,
                next: None,
            });
        }
        let c = fit(&chain, 2);
        let q0 = c.q(&[0.5, 0.0, 0.0, 0.0, 0.0, 1.0], Action::Continue);
        assert!((q0 - 0.5).abs() < 0.02, "{q0}");
    }
}
