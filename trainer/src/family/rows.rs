//! Network policies evaluated on blocks of episodes ([`trim_env::evaluate_rows`]): the acting
//! network runs on rows ([`ActingNet::log_probs_rows`], TRIM-Agg's 32-row blocks), with every
//! row's log-probabilities bit-identical to the one-row path, so the outcomes are exactly those
//! of [`trim_env::evaluate`] — only faster. Several rules over one network (a checkpoint's
//! greedy policy and its probability thresholds, [`evaluate_nets`]) are played together and
//! share the rows of the nodes they share.

use trim_env::{
    Action, EvalOptions, Policy, ProblemOutcome, RowsPolicy, StepError, StepView, World,
    evaluate_budgeted, evaluate_rows,
};
use trim_router::agg_rows::RowsScratch;

use super::{ActingNet, Family, GreedyOf, MAX_OBS_DIM};

/// A network policy as a block policy: how it observes, and its action from its
/// log-probabilities. It is also a [`Policy`] (the one-episode path), acting the same way.
pub trait NetRule: Policy + Sync {
    /// The family whose network it runs.
    type F: Family;
    /// The acting network.
    fn acting(&self) -> &<Self::F as Family>::Acting;
    /// The row of one running episode (the λ override of a conditioned policy included).
    fn observe(&self, view: &StepView<'_>, row: &mut [f32]);
    /// The action from the row's log-probabilities `[continue, regenerate]`.
    fn decide(&self, log_probs: [f32; 2]) -> Action;
}

/// A rule's action for one episode alone: its [`Policy::act`]. Observes and decides through
/// the same two functions as the block path, so both paths act alike.
pub fn act_alone<R: NetRule + ?Sized>(rule: &R, view: &StepView<'_>, mask: [bool; 2]) -> Action {
    const { assert!(<R::F as Family>::OBS_DIM <= MAX_OBS_DIM) };
    let mut obs = [0.0f32; MAX_OBS_DIM];
    let row = &mut obs[..<R::F as Family>::OBS_DIM];
    rule.observe(view, row);
    let (lp, _) = rule.acting().log_probs(row, mask);
    rule.decide(lp)
}

/// Rules of family `F` over one network for [`evaluate_rows`]: every rule observes like the
/// first and acts through the same acting network (callers pass rules built on one network);
/// rule `r` decides from the shared log-probabilities.
pub struct Rows<'a, F: Family>(pub &'a [&'a dyn NetRule<F = F>]);

impl<F: Family> RowsPolicy for Rows<'_, F> {
    type Scratch = RowsScratch;
    /// Log-probabilities and value, as [`ActingNet::log_probs_rows`] gives them.
    type Out = ([f32; 2], f32);

    fn obs_dim(&self) -> usize {
        F::OBS_DIM
    }

    fn rules(&self) -> usize {
        self.0.len()
    }

    fn observe(&self, view: &StepView<'_>, row: &mut [f32]) {
        self.0[0].observe(view, row);
    }

    fn outputs(
        &self,
        obs: &[f32],
        mask: &[bool],
        wanted: &[bool],
        scratch: &mut RowsScratch,
        out: &mut Vec<([f32; 2], f32)>,
    ) {
        (self.0[0].acting()).log_probs_rows(obs, mask, wanted, scratch, out);
    }

    fn decide(&self, rule: usize, &(lp, _): &([f32; 2], f32)) -> Action {
        self.0[rule].decide(lp)
    }
}

impl<'a, F: Family> NetRule for GreedyOf<'a, F> {
    type F = F;

    fn acting(&self) -> &F::Acting {
        self.acting
    }

    fn observe(&self, view: &StepView<'_>, row: &mut [f32]) {
        match self.lambda {
            Some(lambda) => {
                let mut v = *view;
                v.cond.lambda = lambda;
                F::observe(&v, row)
            }
            None => F::observe(view, row),
        }
    }

    fn decide(&self, lp: [f32; 2]) -> Action {
        // Ties go to `continue`, like `torch.argmax`.
        if lp[1] > lp[0] {
            Action::Regenerate
        } else {
            Action::Continue
        }
    }
}

/// Evaluate a network policy: on blocks of episodes when it is deterministic and reads no
/// history (one episode per sample tree), else one episode at a time. The outcomes are the
/// same either way (tested).
pub fn evaluate_net<W: World, R: NetRule>(
    forest: &W,
    problems: &[u32],
    rule: &R,
    opts: EvalOptions,
    budget: Option<u64>,
) -> Result<Vec<ProblemOutcome>, StepError> {
    let mut all = evaluate_nets::<W, R::F>(forest, problems, &[rule], opts, budget)?;
    Ok(all.swap_remove(0))
}

/// [`evaluate_net`] of several rules over one network (see [`Rows`]), played together where
/// they can: `out[r]` is rule `r`'s outcomes, exactly as if it were evaluated alone.
pub fn evaluate_nets<W: World, F: Family>(
    forest: &W,
    problems: &[u32],
    rules: &[&dyn NetRule<F = F>],
    opts: EvalOptions,
    budget: Option<u64>,
) -> Result<Vec<Vec<ProblemOutcome>>, StepError> {
    let Some(first) = rules.first() else {
        return Ok(vec![]);
    };
    debug_assert!(
        rules
            .iter()
            .all(|r| std::ptr::eq(r.acting(), first.acting()))
    );
    if first.wants_history() || first.wants_signals() || opts.repeats > 1 {
        return (rules.iter())
            .map(|&r| evaluate_budgeted(forest, problems, r, opts, budget))
            .collect();
    }
    evaluate_rows(forest, problems, &Rows(rules), budget)
}

#[cfg(test)]
mod tests {
    use trim_env::{Rng, evaluate};

    use super::*;
    use crate::config::TrainConfig;
    use crate::eval::checkpoints::RegenAbove;
    use crate::family::agg::Agg;
    use crate::family::agg_lambda::AggLambda;

    /// A freshly initialised network of family `F` whose actor output weights are scaled up and
    /// whose regenerate logit is raised, so it takes both actions (the initialisation keeps
    /// the logits near equal; scaled alone, p(regenerate) spans about 0.01–0.5).
    fn acting<F: Family<Net = crate::model::ActorCritic>>(
        cfg: &TrainConfig,
        seed: u64,
    ) -> F::Acting {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let mut p =
            crate::fused::params_of(&F::init(cfg, &mut Rng::new(seed), &dev).unwrap()).unwrap();
        let actor_out = trim_router::agg::DENSE_NAMES
            .iter()
            .position(|&n| n == "actor_out");
        let head = &mut p.dense[actor_out.unwrap()];
        head.w.iter_mut().for_each(|w| *w *= 300.0);
        head.b[1] += 2.0;
        F::acting_from_fused(&p).unwrap().unwrap()
    }

    /// Greedy TRIM-Agg, its regenerate-probability thresholds, a λ-conditioned policy and a
    /// budgeted run, on blocks of episodes and one episode at a time: the same outcomes, on a
    /// world of two sample trees per problem.
    #[test]
    fn block_evaluation_gives_the_one_episode_outcomes_to_the_bit() {
        let z = trim_data::LazySource::open("synth:math500?problems=300&trees=2").unwrap();
        let (w, problems) = (&z.world, z.world.problems_in_split("all"));
        let det = EvalOptions::default();
        let cfg = TrainConfig::default();
        let agg = acting::<Agg>(&cfg, 3);
        let same = |rows: Vec<ProblemOutcome>, one: Vec<ProblemOutcome>| {
            assert_eq!(rows, one);
            rows
        };
        let greedy = GreedyOf::<Agg>::new(&agg);
        let o = same(
            evaluate_net(w, &problems, &greedy, det, None).unwrap(),
            evaluate(w, &problems, &greedy, det).unwrap(),
        );
        // The untrained network takes both actions (so the comparison can fail).
        let calls = o.iter().map(|p| p.strong_calls).sum::<f64>() / o.len() as f64;
        let steps = o.iter().map(|p| p.steps).sum::<f64>() / o.len() as f64;
        assert!(calls > 0.1 && calls < steps - 0.1, "{calls} of {steps}");
        // Thresholds played together over the one network: each its own outcomes.
        let rules: Vec<RegenAbove<'_, Agg>> = (1..10)
            .map(|i| RegenAbove {
                weights: &agg,
                threshold: i as f32 / 10.0,
            })
            .collect();
        let refs: Vec<&dyn NetRule<F = Agg>> = rules.iter().map(|r| r as _).collect();
        let together = evaluate_nets(w, &problems, &refs, det, None).unwrap();
        assert_eq!(together.len(), rules.len());
        for (p, o) in rules.iter().zip(together) {
            same(o, evaluate(w, &problems, p, det).unwrap());
        }
        same(
            evaluate_net(w, &problems, &greedy, det, Some(150)).unwrap(),
            evaluate_budgeted(w, &problems, &greedy, det, Some(150)).unwrap(),
        );
        let cond = acting::<AggLambda>(&cfg, 4);
        let at = GreedyOf::<AggLambda>::new(&cond).at_lambda(2e-3);
        same(
            evaluate_net(w, &problems, &at, det, None).unwrap(),
            evaluate(w, &problems, &at, det).unwrap(),
        );
    }
}
