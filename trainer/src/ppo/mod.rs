//! PPO, written like CleanRL's `ppo.py` and tested like Stable-Baselines3:
//! [`buffer`] (rollouts in plain arrays), [`gae`] (pure advantage function), [`loss`] (clipped
//! surrogate, clipped value loss, entropy), [`update`] (epochs × minibatches, global gradient
//! clip, Adam) and [`schedule`] (linear learning-rate and entropy annealing).

pub mod buffer;
pub mod gae;
pub mod loss;
pub mod schedule;
pub mod update;

pub use buffer::{Minibatch, RolloutBuffer};
pub use gae::compute_gae;
pub use update::{Learner, UpdateStats};
