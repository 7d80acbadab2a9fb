//! The serving side, replayed: walk trees with policies and record the executed steps as a
//! serving system would log them (how `data/examples/paths-example.jsonl` is made, the round
//! trip the importer is tested on, and the logs off-policy evaluation is validated on).

use trim_env::{Action, Episode, Policy, Propensity, Rng, StepError, StepView, resolve};

use crate::validate::Loaded;

use super::schema::TraceRow;

/// Walk every sample tree of `problems` with each policy and record the executed steps as a
/// serving system would log them. Trace ids are `<problem>/tree<k>/<policy name>`; `correct` is
/// set on the last row only. The policy RNG is a stream of `(seed, tree, policy index)`.
pub fn log_traces(
    l: &Loaded,
    problems: &[u32],
    policies: &[(String, &dyn Policy)],
    seed: u64,
) -> std::result::Result<Vec<TraceRow>, StepError> {
    walk(l, problems, policies, seed, |_, _, _, _| None)
}

/// [`log_traces`] for policies that know their action probabilities: every row also records
/// the probability of the action taken (`propensity`) and the policy's name (`policy_id`).
pub fn log_explored(
    l: &Loaded,
    problems: &[u32],
    policies: &[(String, &dyn Propensity)],
    seed: u64,
) -> std::result::Result<Vec<TraceRow>, StepError> {
    walk(l, problems, policies, seed, |p, v, m, a| {
        Some(p.prob(v, m, a))
    })
}

/// The walk behind both: `prob` gives the propensity to log (None: not logged).
fn walk<P: Policy + ?Sized>(
    l: &Loaded,
    problems: &[u32],
    policies: &[(String, &P)],
    seed: u64,
    prob: impl Fn(&P, &StepView<'_>, [bool; 2], Action) -> Option<f64>,
) -> std::result::Result<Vec<TraceRow>, StepError> {
    let f = &l.forest;
    for (_, p) in policies {
        trim_env::check_signals(f, *p)?;
    }
    let mut out = vec![];
    for &p in problems {
        let info = &l.ds.problems[p as usize];
        for (k, tree) in f.trees_of(p as usize).enumerate() {
            for (pi, (name, policy)) in policies.iter().enumerate() {
                let mut rng = Rng::stream(seed, ((tree as u64) << 16) | pi as u64);
                let mut ep = Episode::start(f, tree);
                let signals = policy.wants_signals();
                let start = out.len();
                while !ep.done() {
                    let node = ep.node();
                    let mask = ep.mask(f);
                    let view = if signals {
                        ep.view_signals(f, &[])
                    } else {
                        ep.view(f)
                    };
                    let a = resolve(policy.act(&view, mask, &mut rng), mask);
                    let propensity = prob(*policy, &view, mask, a);
                    let row = &l.ds.rows[l.forest_row[node as usize] as usize];
                    out.push(TraceRow {
                        trace_id: format!("{}/tree{k}/{name}", info.problem_id),
                        problem_id: info.problem_id.clone(),
                        step: (out.len() - start) as u32,
                        action: a,
                        weak: row.weak.clone(),
                        strong: row.strong.clone(),
                        correct: None,
                        info: [
                            Some(info.dataset.clone()),
                            Some(info.split.clone()),
                            Some(info.weak_model.clone()),
                            Some(info.strong_model.clone()),
                            Some(info.prm_model.clone()),
                        ],
                        propensity,
                        policy_id: propensity.map(|_| name.clone()),
                    });
                    ep.step(f, a, 0.0)?;
                }
                if let Some(last) = out.last_mut() {
                    last.correct = Some(ep.outcome().correct);
                }
            }
        }
    }
    Ok(out)
}
