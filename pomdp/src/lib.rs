//! `trim-pomdp`: TRIM-POMDP (trim-paper.md §2.4), native and exact.
//!
//! The hidden state of a solution is the correctness of its current step — S0 (all correct so
//! far), S2 (the current step is the first error, still recoverable by regenerating it), S1
//! (derailed by an earlier error) — and the step index. The router observes the PRM pair
//! (minimum score of the previous kept steps, current weak step's score), whose distribution per
//! state is the observation model. Because the step index only increases and there are three
//! states, the POMDP is solved exactly by backward induction over a grid on the belief simplex
//! ([`solve()`](solve::solve)), for many λ at once, in well under a second each — where the official release ran
//! ~339k SARSOP solves per λ on 120 workers.
//!
//! Data flow: [`PomdpModel`] (observation model, per-step accuracies, termination hazard) →
//! [`solve()`](solve::solve) → [`Solution`] (continuation values per step and grid point) →
//! [`PomdpPolicy`] (a belief rule + the solution, acting in the replay environment).

pub mod belief;
pub mod file;
pub mod grid;
pub mod model;
pub mod model_file;
pub mod policy;
pub mod solve;

pub use belief::{BeliefRule, CLOSENESS_DEFAULT};
pub use file::{FileError, SOLUTION_FORMAT};
pub use grid::SimplexGrid;
pub use model::{Belief, ModelError, PomdpModel};
pub use model_file::{MODEL_FORMAT, ModelSource};
pub use policy::PomdpPolicy;
pub use solve::{Solution, solve};
