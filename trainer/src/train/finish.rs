//! The end of a session: `final/`, the evaluation of baselines and trained policies on the
//! validation and test problems, and `summary.json` (also for a failed run).

use std::time::Instant;

use trim_env::RefPolicy;

use super::Trainer;
use super::validate::{EvalSet, best_of};
use crate::error::{Result, TrainError};
use crate::family::Family;
use crate::run_summary::{
    BudgetScores, LambdaScores, RunStatus, RunSummary, SplitReport, ThresholdScores, Timing,
};

impl<F: Family> Trainer<F> {
    /// After the loop: `final/` when the schedule is done, the reports, `summary.json`.
    pub(super) fn finish(
        &mut self,
        val_thresholds: Option<Vec<ThresholdScores>>,
        start: Instant,
        timing: &mut Timing,
    ) -> Result<RunSummary> {
        let finished = self.state.updates_done >= self.state.total_updates;
        if finished {
            let t = Instant::now();
            let dir = self.run_dir.join("final");
            self.save_checkpoint(&dir)?;
            timing.io_s += t.elapsed().as_secs_f64();
        }
        timing.finish(start.elapsed().as_secs_f64());
        let status = if finished {
            RunStatus::Finished
        } else {
            RunStatus::Stopped
        };
        let mut summary = self.summary(status, timing.clone());
        summary.val = self.val_report(val_thresholds.as_deref())?;
        summary.test = self.test_report(val_thresholds.as_deref())?;
        summary.write()?;
        Ok(summary)
    }

    /// The summary of a run stopped by `error` (no evaluation: the weights may be unusable).
    pub(super) fn failed_summary(&self, error: &TrainError, timing: Timing) -> RunSummary {
        RunSummary {
            error: Some(error.to_string()),
            ..self.summary(RunStatus::Failed, timing)
        }
    }

    /// The summary's counters and records, without the split reports.
    fn summary(&self, status: RunStatus, timing: Timing) -> RunSummary {
        RunSummary {
            run_name: self.state.run_name.clone(),
            run_dir: self.run_dir.clone(),
            status,
            error: None,
            dataset: self.cfg.data.clone(),
            lambda: self.cfg.lambda,
            seed: self.cfg.seed,
            backend: self.opts.backend,
            updates_done: self.state.updates_done,
            total_updates: self.state.total_updates,
            env_steps: self.state.env_steps,
            episodes: self.state.episodes,
            train_problems: self.train.len(),
            best: self.state.best,
            last_val: self.state.last_val,
            val: None,
            test: None,
            timing,
        }
    }

    fn val_report(&self, thresholds: Option<&[ThresholdScores]>) -> Result<Option<SplitReport>> {
        match (&self.val, thresholds) {
            (Some(v), Some(ts)) => match best_of(ts) {
                Some(k) => Ok(Some(self.report(v, k, ts)?)),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// The test split with the threshold chosen on validation (or, without validation
    /// problems, the test oracle: all there is).
    fn test_report(&self, val: Option<&[ThresholdScores]>) -> Result<Option<SplitReport>> {
        let Some(t) = &self.test else {
            return Ok(None);
        };
        let all = self.thresholds(t)?;
        let Some(k) = val.and_then(best_of).or_else(|| best_of(&all)) else {
            return Ok(None);
        };
        let chosen = ThresholdScores {
            threshold: k.threshold,
            scores: self.score(t, &RefPolicy::Threshold(k.threshold))?,
        };
        Ok(Some(self.report(t, chosen, &all)?))
    }

    fn report(
        &self,
        set: &EvalSet,
        chosen: ThresholdScores,
        all: &[ThresholdScores],
    ) -> Result<SplitReport> {
        let best_policy = match &self.best_weights {
            Some(w) => Some(self.score_policy(set, w)?),
            None => None,
        };
        Ok(SplitReport {
            split: set.name.clone(),
            problems: set.problems.len(),
            always_weak: self.score(set, &RefPolicy::Weak)?,
            always_strong: self.score(set, &RefPolicy::Strong)?,
            best_threshold: chosen,
            oracle_threshold: best_of(all).unwrap_or(chosen),
            best_policy,
            final_policy: Some(self.score_policy(set, &self.weights)?),
            lambda_curve: self.lambda_curve(set)?,
            budget_curve: self.budget_curve(set)?,
        })
    }

    /// The `best/` policy of a budget-aware run under each budget of its grid (empty otherwise).
    fn budget_curve(&self, set: &EvalSet) -> Result<Vec<BudgetScores>> {
        let Some(w) = self.best_weights.as_ref().filter(|_| F::BUDGETED) else {
            return Ok(vec![]);
        };
        let scores = self.score_budgets(set, w)?;
        Ok((self.budget_grid().into_iter().zip(scores))
            .map(|(budget, scores)| BudgetScores { budget, scores })
            .collect())
    }

    /// The `best/` policy of a conditioned run at each λ of its grid (empty otherwise).
    fn lambda_curve(&self, set: &EvalSet) -> Result<Vec<LambdaScores>> {
        let Some(w) = self.best_weights.as_ref().filter(|_| F::CONDITIONED) else {
            return Ok(vec![]);
        };
        (self.lambda_grid().into_iter())
            .map(|lambda| {
                let p = crate::family::GreedyOf::<F>::new(w).at_lambda(lambda);
                Ok(LambdaScores {
                    lambda,
                    scores: self.score_at(set, &p, lambda)?,
                })
            })
            .collect()
    }
}
