//! PPO, written like CleanRL's `ppo.py` and tested like Stable-Baselines3:
//! [`buffer`] (rollouts in plain arrays), [`gae`] (pure advantage function), [`loss`] (clipped
//! surrogate, clipped value loss, entropy), [`update`] (epochs × minibatches, global gradient
//! clip, Adam), [`stats`] (the update's diagnostics as a struct), [`guard`] (divergence checks
//! after every update and rollout step), [`schedule`] (linear learning-rate and entropy
//! annealing) and [`rows_pair`] (a rollout step's network rows on two cores).

pub mod buffer;
pub mod gae;
pub mod guard;
pub mod loss;
pub mod relabel;
pub mod rows_pair;
pub mod schedule;
pub mod stats;
pub mod update;

pub use buffer::{Minibatch, RolloutBuffer};
pub use gae::compute_gae;
pub use stats::LossStats;
pub use update::Learner;
