//! Off-policy evaluation from serving logs: the value (`correct − λ·strong tokens` per
//! request) of a policy that did not route the logged traffic, from the logging router's
//! recorded propensities (`trim data import paths` trace format, `propensity` column).
//!
//! Estimators, each with a 95 % bootstrap CI over trajectories: trajectory-wise self-normalised
//! importance sampling (SNIS), per-decision weighted importance sampling (PDWIS) and weighted
//! doubly robust with a fitted-Q critic ([`crate::ope_dr`]; the bootstrap keeps the critic
//! fitted on all the logs), with the effective sample size of the trajectory weights. The target policy is deterministic (a
//! threshold or an export at its threshold), so a trajectory's weight is the product of
//! `1[target would take the logged action] / propensity`.
//!
//! A propensity of 1 means the logger had no choice (the other action was unavailable: a
//! masked branch, a spent budget), so the target had none either and the step's ratio is 1.
//! A router that logs 1 for a deterministic choice therefore yields logs this cannot use: logs
//! whose propensities are all 1 are refused, and the effective sample size shows how much of
//! the logs supports the target.

use std::collections::BTreeMap;

use trim_data::import::paths::TraceRow;
use trim_env::features::{FeatureState, HistStep, TOKEN_SCALE};
use trim_env::metrics::bootstrap_ratio_ci;
use trim_env::{Action, Candidate, Conditions, Policy, Rng, StepView, resolve};

/// Bootstrap resamples of the CIs.
const RESAMPLES: u32 = 1000;

/// One logged decision, as the target policy sees it.
#[derive(Clone, Debug)]
struct Step {
    features: FeatureState,
    weak: Candidate,
    /// The weak candidate's logged signals (NaN where the log has none).
    signals: trim_env::Signals,
    action: Action,
    propensity: f64,
    /// Strong tokens paid at this step (the regenerated step's tokens, else 0).
    strong_tokens: u32,
}

/// One logged request.
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub id: String,
    steps: Vec<Step>,
    /// One record per step; step `k` sees `history[..k]`.
    history: Vec<HistStep>,
    correct: bool,
}

/// The step signals `needed` that some logged step lacks (by name), so a target reading them
/// is refused rather than evaluated on missing values.
pub fn missing_signals(trajs: &[Trajectory], needed: trim_env::SignalKinds) -> Vec<&'static str> {
    let steps = || trajs.iter().flat_map(|t| &t.steps);
    let mut out = vec![];
    if needed.judge_score && steps().any(|s| s.signals.judge_score.is_nan()) {
        out.push("weak_judge_score");
    }
    if needed.mean_logprob && steps().any(|s| s.signals.mean_logprob.is_nan()) {
        out.push("weak_mean_logprob");
    }
    out
}

/// Group trace rows into trajectories (steps 0, 1, … of each `trace_id`; the final answer's
/// correctness on one of its rows; a propensity on every row). Errors name the trace.
pub fn trajectories(rows: &[TraceRow]) -> Result<Vec<Trajectory>, String> {
    if !rows.is_empty() && rows.iter().all(|r| r.propensity.is_some_and(|p| p >= 1.0)) {
        return Err(
            "every logged propensity is 1: the logger never explored, so no other \
                    policy can be evaluated from these logs (log an ε-greedy router)"
                .into(),
        );
    }
    let mut by_trace: BTreeMap<&str, Vec<&TraceRow>> = BTreeMap::new();
    for r in rows {
        by_trace.entry(&r.trace_id).or_default().push(r);
    }
    by_trace
        .into_iter()
        .map(|(id, mut rs)| {
            rs.sort_by_key(|r| r.step);
            trajectory(id, &rs)
        })
        .collect()
}

fn trajectory(id: &str, rs: &[&TraceRow]) -> Result<Trajectory, String> {
    let mut features = FeatureState::new();
    let (mut history, mut steps) = (vec![], vec![]);
    let mut correct = None;
    for (k, r) in rs.iter().enumerate() {
        if r.step as usize != k {
            return Err(format!(
                "trace {id}: step {} where step {k} was expected",
                r.step
            ));
        }
        let propensity = r.propensity.ok_or_else(|| {
            format!("trace {id} step {k}: no propensity logged (off-policy evaluation needs it)")
        })?;
        let weak = Candidate {
            tokens: r.weak.tokens,
            prm: r.weak.prm,
        };
        let kept = r.kept();
        let regen = r.action == Action::Regenerate;
        steps.push(Step {
            features,
            weak,
            signals: trim_env::Signals {
                judge_score: r.weak.judge_score.unwrap_or(f32::NAN),
                mean_logprob: r.weak.mean_logprob.unwrap_or(f32::NAN),
            },
            action: r.action,
            propensity,
            strong_tokens: if regen { kept.tokens } else { 0 },
        });
        let strong_scaled = r
            .strong
            .as_ref()
            .map_or(0.0, |s| s.tokens as f32 / TOKEN_SCALE);
        history.push([
            kept.prm,
            weak.prm,
            weak.tokens as f32 / TOKEN_SCALE,
            f32::from(u8::from(regen)),
            if regen { strong_scaled } else { 0.0 },
        ]);
        features.push(kept.prm);
        correct = correct.or(r.correct);
    }
    let correct =
        correct.ok_or_else(|| format!("trace {id}: no row says whether it ended correct"))?;
    Ok(Trajectory {
        id: id.to_string(),
        steps,
        history,
        correct,
    })
}

/// An estimate with its 95 % bootstrap CI.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub ci95: (f64, f64),
}

/// What [`evaluate`] reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpeReport {
    pub trajectories: usize,
    pub snis: Option<Estimate>,
    pub pdwis: Option<Estimate>,
    pub dr: Option<Estimate>,
    /// `(Σw)² / Σw²` of the trajectory weights.
    pub ess: f64,
    /// The logging policy's own value (the logged returns' mean).
    pub logged_value: f64,
    /// Decisions the logger had no choice at (propensity 1): ratio 1.
    pub forced_decisions: usize,
    /// Trajectories the target agrees with at every choice (nonzero weight).
    pub supported_trajectories: usize,
}

/// One step as the estimators see it.
struct Scored {
    /// `1[target = logged] / propensity` (1 where the logger had no choice).
    rho: f64,
    reward: f64,
    /// The target's action (the logged one where it was forced).
    target: Action,
    logged: Action,
    phi: [f64; crate::ope_dr::PHI],
}

/// Every step of trajectory `t` scored for `target`, and the number of forced steps.
fn score_steps<P: Policy + ?Sized>(
    t: &Trajectory,
    target: &P,
    lambda: f64,
) -> (Vec<Scored>, usize) {
    let mut rng = Rng::new(0);
    let (mut out, mut forced) = (vec![], 0);
    let last = t.steps.len().saturating_sub(1);
    for (k, s) in t.steps.iter().enumerate() {
        let view = StepView {
            signals: s.signals,
            features: s.features,
            weak: s.weak,
            history: &t.history[..k],
            cond: Conditions::NONE,
        };
        let (rho, a) = if s.propensity >= 1.0 {
            forced += 1;
            (1.0, s.action)
        } else {
            let a = resolve(target.act(&view, [true, true], &mut rng), [true, true]);
            (f64::from(u8::from(a == s.action)) / s.propensity, a)
        };
        let end = if k == last {
            f64::from(u8::from(t.correct))
        } else {
            0.0
        };
        let agg = view.agg();
        out.push(Scored {
            rho,
            reward: end - lambda * f64::from(s.strong_tokens),
            target: a,
            logged: s.action,
            phi: std::array::from_fn(|j| agg.get(j).map_or(1.0, |&x| f64::from(x))),
        });
    }
    (out, forced)
}

/// Per-decision weighted IS over `idx` (trajectories, with repetition for the bootstrap).
fn pdwis(idx: &[usize], w: &[Vec<f64>], r: &[Vec<f64>]) -> Option<f64> {
    let horizon = idx.iter().map(|&i| w[i].len()).max().unwrap_or(0);
    let mut v = 0.0;
    for t in 0..horizon {
        let (mut num, mut den) = (0.0, 0.0);
        for &i in idx {
            let Some(&last) = w[i].last() else { continue };
            let wt = w[i].get(t).copied().unwrap_or(last);
            den += wt;
            num += wt * r[i].get(t).copied().unwrap_or(0.0);
        }
        if den <= 0.0 {
            return None;
        }
        v += num / den;
    }
    Some(v)
}

/// Estimate the value of the deterministic `target` at cost `lambda` per strong token from
/// logged trajectories.
pub fn evaluate<P: Policy + ?Sized>(
    trajs: &[Trajectory],
    target: &P,
    lambda: f64,
    seed: u64,
) -> OpeReport {
    let n = trajs.len();
    let (mut cum, mut rewards, mut weight, mut ret) = (vec![], vec![], vec![], vec![]);
    let mut forced_decisions = 0;
    let mut scored = vec![];
    for t in trajs {
        let (steps, forced) = score_steps(t, target, lambda);
        forced_decisions += forced;
        let rho: Vec<f64> = steps.iter().map(|s| s.rho).collect();
        let rew: Vec<f64> = steps.iter().map(|s| s.reward).collect();
        scored.push(steps);
        let c: Vec<f64> = (rho.iter())
            .scan(1.0, |acc, r| {
                *acc *= r;
                Some(*acc)
            })
            .collect();
        weight.push(c.last().copied().unwrap_or(1.0));
        ret.push(rew.iter().sum::<f64>());
        cum.push(c);
        rewards.push(rew);
    }
    let sw: f64 = weight.iter().sum();
    let sw2: f64 = weight.iter().map(|w| w * w).sum();
    let num: Vec<f64> = weight.iter().zip(&ret).map(|(w, g)| w * g).collect();
    let snis = (sw > 0.0).then(|| Estimate {
        value: num.iter().sum::<f64>() / sw,
        ci95: bootstrap_ratio_ci(&num, &weight, RESAMPLES, seed).unwrap_or((f64::NAN, f64::NAN)),
    });
    let all: Vec<usize> = (0..n).collect();
    let pdwis = pdwis(&all, &cum, &rewards).map(|value| Estimate {
        value,
        ci95: bootstrap(n, seed, |idx| pdwis(idx, &cum, &rewards)),
    });
    let dr = doubly_robust(&scored, (&cum, &rewards), seed);
    OpeReport {
        trajectories: n,
        snis,
        pdwis,
        dr,
        ess: if sw2 > 0.0 { sw * sw / sw2 } else { 0.0 },
        logged_value: ret.iter().sum::<f64>() / n.max(1) as f64,
        forced_decisions,
        supported_trajectories: weight.iter().filter(|&&w| w > 0.0).count(),
    }
}

/// The weighted doubly robust estimate with the critic fitted on every logged step.
fn doubly_robust(
    scored: &[Vec<Scored>],
    (cum, rewards): (&[Vec<f64>], &[Vec<f64>]),
    seed: u64,
) -> Option<Estimate> {
    use crate::ope_dr::{CriticStep, fit, wdr};
    let mut steps = vec![];
    for traj in scored {
        let base = steps.len();
        for (k, s) in traj.iter().enumerate() {
            steps.push(CriticStep {
                phi: s.phi,
                action: s.logged,
                reward: s.reward,
                target: s.target,
                next: (k + 1 < traj.len()).then_some(base + k + 1),
            });
        }
    }
    let critic = fit(&steps, scored.iter().map(Vec::len).max().unwrap_or(0));
    let per_step = |f: &dyn Fn(&Scored) -> f64| -> Vec<Vec<f64>> {
        scored.iter().map(|t| t.iter().map(f).collect()).collect()
    };
    let q = per_step(&|s| critic.q(&s.phi, s.logged));
    let v = per_step(&|s| critic.q(&s.phi, s.target));
    let all: Vec<usize> = (0..scored.len()).collect();
    wdr(&all, cum, rewards, &q, &v).map(|value| Estimate {
        value,
        ci95: bootstrap(scored.len(), seed, |idx| wdr(idx, cum, rewards, &q, &v)),
    })
}

/// 95 % percentile bootstrap of `stat` over `n` resampled trajectory indices.
fn bootstrap(n: usize, seed: u64, stat: impl Fn(&[usize]) -> Option<f64>) -> (f64, f64) {
    let mut rng = Rng::new(seed);
    let mut idx = vec![0usize; n];
    let mut vals: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            for x in idx.iter_mut() {
                *x = rng.below(n as u64) as usize;
            }
            stat(&idx)
        })
        .collect();
    if vals.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    vals.sort_by(f64::total_cmp);
    let q = |p: f64| vals[((p * (vals.len() - 1) as f64).round() as usize).min(vals.len() - 1)];
    (q(0.025), q(0.975))
}
