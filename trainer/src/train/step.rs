//! The loop of a run: steps 1–6 of the contract in [`super`], one update at a time.

use std::time::Instant;

use trim_data::with_world;
use trim_env::VecEnv;

use super::Trainer;
use super::progress::TrainEvent;
use crate::checkpoint::{self, EvalRecord};
use crate::error::{Result, TrainError};
use crate::family::Family;
use crate::metrics::{MetricsRow, RolloutScores};
use crate::ppo::schedule::{entropy_coef, learning_rate};
use crate::ppo::{LossStats, RolloutBuffer, guard};
use crate::run_summary::Timing;

/// Buffers reused by every update (allocated once per session).
#[derive(Default)]
struct Scratch {
    buf: RolloutBuffer,
    trees: Vec<u32>,
    /// Per-episode λ of a conditioned run.
    lambdas: Vec<f32>,
    /// Per-episode strong-token budgets of a budget-aware run.
    budgets: Vec<u64>,
}

/// What steps 3 and 4 produced, for the log.
struct Learned {
    stats: LossStats,
    lr: f64,
    ent_coef: f64,
    val: Option<EvalRecord>,
}

impl<F: Family> Trainer<F> {
    /// Updates until the schedule ends or `stop_after_updates`. An error is placed at the
    /// update it happened in (see [`crate::TrainError::at_update`]).
    pub(super) fn train_loop(
        &mut self,
        start: Instant,
        timing: &mut Timing,
        on_event: &mut dyn FnMut(TrainEvent<'_>),
    ) -> Result<()> {
        let total = self.state.total_updates;
        let stop = self.opts.stop_after_updates.unwrap_or(total).min(total);
        let mut s = Scratch::default();
        s.trees.reserve(self.cfg.batch_episodes);
        while self.state.updates_done < stop {
            self.update_once(&mut s, stop, start, timing, on_event)
                .map_err(|e| e.at_update(self.state.updates_done, self.last_checkpoint.clone()))?;
        }
        Ok(())
    }

    fn update_once(
        &mut self,
        s: &mut Scratch,
        stop: u64,
        start: Instant,
        timing: &mut Timing,
        on_event: &mut dyn FnMut(TrainEvent<'_>),
    ) -> Result<()> {
        let t0 = Instant::now();
        let batch_end = self.collect(s)?;
        s.buf.finish(
            self.cfg.gamma as f32,
            self.cfg.gae_lambda as f32,
            self.cfg.norm_adv,
        );
        let t1 = Instant::now();
        let (stats, lr, ent_coef) = self.learn(&s.buf, stop)?;
        let t2 = Instant::now();
        self.advance(&s.buf, batch_end, timing);
        let val = self.validate_and_keep_best(on_event)?;
        let t3 = Instant::now();
        let learned = Learned {
            stats,
            lr,
            ent_coef,
            val,
        };
        self.log(&s.buf, &learned, start, timing, on_event)?;
        self.checkpoint_if_due(stop)?;
        let t4 = Instant::now();
        timing.rollout_s += (t1 - t0).as_secs_f64();
        timing.update_s += (t2 - t1).as_secs_f64();
        timing.validation_s += (t3 - t2).as_secs_f64();
        timing.io_s += (t4 - t3).as_secs_f64();
        Ok(())
    }

    /// Step 1: the next batch of the pass, rolled out with the current weights. Returns the end
    /// of the batch in the pass order.
    fn collect(&mut self, s: &mut Scratch) -> Result<usize> {
        if self.state.pass_pos == 0 {
            let mut order = self.train.clone();
            self.rng.shuffle(&mut order);
            self.state.pass_order = order;
        }
        let lo = self.state.pass_pos;
        let hi = (lo + self.cfg.batch_episodes).min(self.state.pass_order.len());
        let batch = &self.state.pass_order[lo..hi];
        s.trees.resize(batch.len(), 0);
        let (lambda, weights, rng) = (self.cfg.lambda as f32, &self.weights, &mut self.rng);
        let (range, budgets) = (self.cfg.lambda_range, self.cfg.budget_range);
        with_world!(&self.data, |forest| {
            VecEnv::sample_trees(forest, batch, rng, &mut s.trees);
            let mut env = VecEnv::new(forest, batch.len(), lambda);
            if F::CONDITIONED {
                // Each episode's λ, log-uniform over the range (drawn only by conditioned
                // runs, so other runs' random streams are unchanged).
                s.lambdas.clear();
                s.lambdas
                    .extend((0..batch.len()).map(|_| range.at(rng.f64()) as f32));
                env.set_slot_lambdas(&s.lambdas);
            }
            if F::BUDGETED {
                // Each episode's budget, uniform over the range (budget-aware runs only).
                s.budgets.clear();
                s.budgets
                    .extend((0..batch.len()).map(|_| budgets.at(rng.f64())));
                env.set_slot_budgets(&s.budgets);
            }
            s.buf.collect::<F, _>(&mut env, &s.trees, weights, rng)
        })?;
        if let (true, true, Some((_, hi))) =
            (F::BUDGETED, self.cfg.budget_relabel, budgets.bounds())
        {
            let log = std::mem::take(&mut s.buf.budget_log);
            crate::ppo::relabel::relabel_budgets(&mut s.buf, &log, weights, hi, rng);
        }
        Ok(hi)
    }

    /// Step 3: the PPO epochs, then the divergence guard on their statistics and the new
    /// weights (re-scoring a probe of the batch, or all of it when this update validates or
    /// checkpoints, so nothing is written from weights that fail on it). Returns the
    /// statistics, learning rate and entropy coefficient used.
    fn learn(&mut self, buf: &RolloutBuffer, stop: u64) -> Result<(LossStats, f64, f64)> {
        let (u, total) = (self.state.updates_done, self.state.total_updates);
        let lr = learning_rate(self.cfg.lr, self.cfg.anneal_lr, u, total);
        let ent = entropy_coef(self.cfg.ent_coef_start, self.cfg.ent_coef_end, u, total);
        let stats = self.learner.update(buf, &self.cfg, lr, ent, &mut self.rng);
        let fused = self.learner.fused.as_ref();
        let weights = match fused.and_then(|f| F::acting_from_fused(f.params())) {
            Some(w) => w,
            None => {
                // burn's kernels (nothing to sync), or a family acting only through burn.
                self.learner.sync_model();
                F::acting(&self.learner.model)
            }
        }
        .map_err(TrainError::Config)?;
        let writes = self.validation_due(u + 1) || self.checkpoint_due(u + 1, stop);
        let probe = if writes {
            usize::MAX
        } else {
            guard::PROBE_STEPS
        };
        if let Some(d) = stats
            .first_non_finite()
            .or_else(|| guard::check_policy(&weights, buf.steps_view(), probe))
        {
            return Err(d.into());
        }
        self.weights = weights;
        Ok((stats, lr, ent))
    }

    /// The counters after an update whose batch ended at `batch_end` of the pass order.
    fn advance(&mut self, buf: &RolloutBuffer, batch_end: usize, timing: &mut Timing) {
        let steps = buf.steps() as u64;
        let st = &mut self.state;
        st.updates_done += 1;
        st.env_steps += steps;
        st.episodes += (buf.n - buf.relabelled) as u64;
        st.pass_pos = batch_end;
        if batch_end == st.pass_order.len() {
            st.pass += 1;
            st.pass_pos = 0;
        }
        timing.updates += 1;
        timing.env_steps += steps;
    }

    /// Step 4: validation when due; a new best writes `best/`.
    fn validate_and_keep_best(
        &mut self,
        on_event: &mut dyn FnMut(TrainEvent<'_>),
    ) -> Result<Option<EvalRecord>> {
        if !self.validation_due(self.state.updates_done) {
            return Ok(None);
        }
        let Some(r) = self.validate()? else {
            return Ok(None);
        };
        self.state.last_val = Some(r);
        let best = self.state.best.is_none_or(|b| r.reward > b.reward);
        if best {
            self.state.best = Some(r);
            self.best_weights = Some(self.weights.clone());
            let dir = self.run_dir.join("best");
            self.save_checkpoint(&dir)?;
        }
        on_event(TrainEvent::Validation { record: &r, best });
        Ok(Some(r))
    }

    /// Step 5: the `metrics.csv` row and the progress event.
    fn log(
        &mut self,
        buf: &RolloutBuffer,
        l: &Learned,
        start: Instant,
        timing: &Timing,
        on_event: &mut dyn FnMut(TrainEvent<'_>),
    ) -> Result<()> {
        let rollout = RolloutScores::of(buf);
        let elapsed = start.elapsed().as_secs_f64();
        let st = &self.state;
        let row = MetricsRow {
            update: st.updates_done,
            pass: st.pass,
            episodes: st.episodes,
            env_steps: st.env_steps,
            loss: l.stats,
            explained_variance: buf.explained_variance(),
            lr: l.lr,
            ent_coef: l.ent_coef,
            rollout,
            val: l.val,
            elapsed_s: elapsed,
            steps_per_s: if elapsed > 0.0 {
                timing.env_steps as f64 / elapsed
            } else {
                0.0
            },
        };
        self.metrics.row(&row)?;
        on_event(TrainEvent::Update {
            done: st.updates_done,
            total: st.total_updates,
            rollout: &rollout,
            best_val: st.best.map(|b| b.reward),
        });
        Ok(())
    }

    /// Step 6: a periodic checkpoint when due.
    fn checkpoint_if_due(&mut self, stop: u64) -> Result<()> {
        let done = self.state.updates_done;
        if self.checkpoint_due(done, stop) {
            let dir = self
                .run_dir
                .join("checkpoints")
                .join(checkpoint::periodic_name(done));
            self.save_checkpoint(&dir)?;
            self.last_checkpoint = Some(dir);
        }
        Ok(())
    }

    /// Whether the update that makes `done` updates validates.
    fn validation_due(&self, done: u64) -> bool {
        done.is_multiple_of(self.cfg.val_every) || done == self.state.total_updates
    }

    /// Whether the update that makes `done` updates writes a periodic checkpoint.
    fn checkpoint_due(&self, done: u64, stop: u64) -> bool {
        done.is_multiple_of(self.cfg.checkpoint_every)
            || done == self.state.total_updates
            || done == stop
    }

    /// Write a checkpoint of the current model, optimiser and state (with the RNG's state).
    pub(super) fn save_checkpoint(&mut self, dir: &std::path::Path) -> Result<()> {
        self.state.rng = self.rng.state();
        self.learner.sync_model();
        let l = &self.learner;
        let fused = l.fused_adam_bytes();
        checkpoint::save(dir, &l.model, &l.optim, fused.as_deref(), &self.state)
    }
}
