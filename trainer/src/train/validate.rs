//! Greedy evaluation during and after training: the problems of an evaluation split
//! ([`EvalSet`]), the TRIM-Thr threshold baselines and the periodic validation record.

use trim_data::{DataSource, with_world};
use trim_env::{
    EvalOptions, Policy, ProblemOutcome, RefPolicy, World, evaluate, evaluate_budgeted, summarize,
};

use super::{Trainer, threshold_cache};
use crate::checkpoint::EvalRecord;
use crate::error::Result;
use crate::family::rows::{NetRule, evaluate_net};
use crate::family::{Family, GreedyOf};
use crate::run_summary::{Scores, ThresholdScores};

/// TRIM-Thr thresholds compared against: 0, 0.01, …, 1.
const THRESHOLD_STEPS: u32 = 100;

/// Threshold `i` of the sweep.
fn threshold_at(i: u32) -> f32 {
    i as f32 / THRESHOLD_STEPS as f32
}

/// Name of the validation hold-out in reports.
pub const VALIDATION: &str = "validation";

/// Which of the run's data an evaluation set's problems index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SetData {
    /// The training data (validation hold-out, or a test split of the same data).
    Training,
    /// The separate test data (`test_data`).
    Test,
}

/// Problems of one evaluation split with always-strong's token count (the cost-fraction unit).
pub(super) struct EvalSet {
    pub name: String,
    pub problems: Vec<u32>,
    pub on: SetData,
    strong_ref: f64,
}

impl EvalSet {
    /// The split `name` over `problems` of `forest`, or None when there are no problems.
    pub fn new<W: World>(
        forest: &W,
        name: &str,
        problems: Vec<u32>,
        on: SetData,
    ) -> Result<Option<Self>> {
        if problems.is_empty() {
            return Ok(None);
        }
        let s = evaluate(
            forest,
            &problems,
            &RefPolicy::Strong,
            EvalOptions::default(),
        )?;
        Ok(Some(EvalSet {
            name: name.into(),
            on,
            strong_ref: summarize(&s, 0.0, 0.0).strong_tokens,
            problems,
        }))
    }

    pub fn score<W: World, P: Policy + ?Sized>(
        &self,
        forest: &W,
        p: &P,
        lambda: f64,
    ) -> Result<Scores> {
        self.score_budgeted(forest, p, lambda, None)
    }

    /// [`score`](Self::score) with every episode under a hard budget of `budget` strong tokens.
    pub fn score_budgeted<W: World, P: Policy + ?Sized>(
        &self,
        forest: &W,
        p: &P,
        lambda: f64,
        budget: Option<u64>,
    ) -> Result<Scores> {
        let o = evaluate_budgeted(forest, &self.problems, p, EvalOptions::default(), budget)?;
        Ok(summarize(&o, self.strong_ref, lambda).into())
    }

    /// [`score_budgeted`](Self::score_budgeted) for a network policy, on blocks of episodes
    /// where it can (`family::rows`: the same outcomes, faster).
    pub fn score_net<W: World, R: NetRule>(
        &self,
        forest: &W,
        rule: &R,
        lambda: f64,
        budget: Option<u64>,
    ) -> Result<Scores> {
        let o = evaluate_net(forest, &self.problems, rule, EvalOptions::default(), budget)?;
        Ok(summarize(&o, self.strong_ref, lambda).into())
    }

    /// Every problem's outcome under each threshold 0, 0.01, …, 1 (independent of λ).
    pub fn threshold_outcomes<W: World>(&self, forest: &W) -> Result<Vec<Vec<ProblemOutcome>>> {
        (0..=THRESHOLD_STEPS)
            .map(|i| {
                let policy = RefPolicy::Threshold(threshold_at(i));
                Ok(evaluate(
                    forest,
                    &self.problems,
                    &policy,
                    EvalOptions::default(),
                )?)
            })
            .collect()
    }

    /// [`Self::threshold_outcomes`] scored at `lambda`.
    pub fn thresholds_from(
        &self,
        outcomes: &[Vec<ProblemOutcome>],
        lambda: f64,
    ) -> Vec<ThresholdScores> {
        (outcomes.iter().enumerate())
            .map(|(i, o)| ThresholdScores {
                threshold: threshold_at(i as u32),
                scores: summarize(o, self.strong_ref, lambda).into(),
            })
            .collect()
    }
}

/// The best-rewarded threshold; ties go to the lower (cheaper) one. None for no thresholds.
pub(super) fn best_of(ts: &[ThresholdScores]) -> Option<ThresholdScores> {
    ts.iter().copied().fold(None, |b, t| match b {
        Some(b) if b.scores.reward >= t.scores.reward => Some(b),
        _ => Some(t),
    })
}

impl<F: Family> Trainer<F> {
    /// Greedy acting of `w`; a conditioned family acts at the run's `lambda`.
    pub(super) fn greedy<'a>(&self, w: &'a F::Acting) -> GreedyOf<'a, F> {
        let g = GreedyOf::new(w);
        if F::CONDITIONED {
            g.at_lambda(self.cfg.lambda)
        } else {
            g
        }
    }

    /// The trained policy `w` (greedy) on `set` at the run's λ; a budget-aware policy under
    /// the top budget of its range (it cannot act without a budget).
    pub(super) fn score_policy(&self, set: &EvalSet, w: &F::Acting) -> Result<Scores> {
        let top = self.cfg.budget_range.bounds().map(|(_, hi)| hi);
        let (p, lambda) = (self.greedy(w), self.cfg.lambda);
        with_world!(self.source_of(set), |x| set.score_net(x, &p, lambda, top))
    }

    /// The trained policy `w` (greedy) on `set` under each budget of [`Self::budget_grid`].
    pub(super) fn score_budgets(&self, set: &EvalSet, w: &F::Acting) -> Result<Vec<Scores>> {
        let (p, lambda) = (GreedyOf::<F>::new(w), self.cfg.lambda);
        (self.budget_grid().into_iter())
            .map(|b| {
                with_world!(self.source_of(set), |x| set.score_net(
                    x,
                    &p,
                    lambda,
                    Some(b)
                ))
            })
            .collect()
    }

    /// Greedy validation of the current weights (None without validation problems). A
    /// conditioned policy is scored at each λ of [`Self::lambda_grid`], each with its own
    /// reward, and a budget-aware one under each budget of [`Self::budget_grid`]; the record
    /// holds the means (what `best/` is chosen by).
    pub(super) fn validate(&self) -> Result<Option<EvalRecord>> {
        let Some(val) = &self.val else {
            return Ok(None);
        };
        let s = if F::CONDITIONED {
            let grid = self.lambda_grid();
            let each = (grid.iter())
                .map(|&l| {
                    self.score_net_at(val, &GreedyOf::<F>::new(&self.weights).at_lambda(l), l)
                })
                .collect::<Result<Vec<_>>>()?;
            Scores::mean(&each)
        } else if F::BUDGETED {
            Scores::mean(&self.score_budgets(val, &self.weights)?)
        } else {
            self.score_net_at(val, &GreedyOf::<F>::new(&self.weights), self.cfg.lambda)?
        };
        Ok(Some(EvalRecord {
            update: self.state.updates_done,
            reward: s.reward,
            accuracy: s.accuracy,
            strong_tokens: s.strong_tokens,
            strong_calls: s.strong_calls,
            cost_fraction: s.cost_fraction,
        }))
    }

    /// Every threshold on the validation problems (None without validation problems).
    pub(super) fn val_thresholds(&self) -> Result<Option<Vec<ThresholdScores>>> {
        match &self.val {
            Some(v) => Ok(Some(self.thresholds(v)?)),
            None => Ok(None),
        }
    }
}

impl<F: Family> Trainer<F> {
    /// The data `set`'s problems index.
    pub(super) fn source_of(&self, set: &EvalSet) -> &DataSource {
        match (set.on, &self.test_data) {
            (SetData::Test, Some(t)) => t,
            _ => &self.data,
        }
    }

    /// Score `policy` on `set` (reward at the run's λ).
    pub(super) fn score<P: Policy + ?Sized>(&self, set: &EvalSet, policy: &P) -> Result<Scores> {
        self.score_at(set, policy, self.cfg.lambda)
    }

    /// Score `policy` on `set` with the reward at `lambda`.
    pub(super) fn score_at<P: Policy + ?Sized>(
        &self,
        set: &EvalSet,
        policy: &P,
        lambda: f64,
    ) -> Result<Scores> {
        with_world!(self.source_of(set), |w| set.score(w, policy, lambda))
    }

    /// [`score_at`](Self::score_at) for a network policy (see [`EvalSet::score_net`]).
    pub(super) fn score_net_at<R: NetRule>(
        &self,
        set: &EvalSet,
        rule: &R,
        lambda: f64,
    ) -> Result<Scores> {
        with_world!(self.source_of(set), |w| set
            .score_net(w, rule, lambda, None))
    }

    /// The λ grid a conditioned run validates and reports on (empty when not conditioned).
    pub(super) fn lambda_grid(&self) -> Vec<f64> {
        self.cfg.lambda_range.grid(crate::config::VALIDATION_GRID)
    }

    /// The budget grid a budget-aware run validates and reports on (empty otherwise).
    pub(super) fn budget_grid(&self) -> Vec<u64> {
        self.cfg.budget_range.grid(crate::config::VALIDATION_GRID)
    }

    /// Every threshold on `set` (on a generated world, shared with this process's other
    /// runs: see `threshold_cache`).
    pub(super) fn thresholds(&self, set: &EvalSet) -> Result<Vec<ThresholdScores>> {
        let source = self.source_of(set);
        let compute = || with_world!(source, |w| set.threshold_outcomes(w));
        let outcomes = match source {
            DataSource::Lazy(z) => threshold_cache::shared(&z.fingerprint, &set.problems, compute)?,
            DataSource::Stored(_) => compute()?.into(),
        };
        Ok(set.thresholds_from(&outcomes, self.cfg.lambda))
    }
}
