//! Serving a solved TRIM-POMDP (`trim pomdp solve --out`): the same per-step inputs as TRIM-Agg
//! ([`StepObservation`]: kept PRM scores so far, the current weak step's PRM and tokens), decided
//! through the release's belief rule (uniform prior on the current PRM pair, closeness shortcut)
//! and the solution's action values. The decision goes through `trim_pomdp::PomdpPolicy`, the
//! very code that acts in the replay environment.

use std::path::Path;

use serde::Serialize;
use trim_env::features::FeatureState;
use trim_env::{Action, Candidate, StepView};
use trim_pomdp::{BeliefRule, CLOSENESS_DEFAULT, PomdpModel, PomdpPolicy, Solution};

use crate::error::RouterError;
use crate::pomdp_export::PomdpManifest;
use crate::router::{EpisodeFeatures, StepObservation};

/// A verified TRIM-POMDP solution ready to decide.
#[derive(Clone, Debug)]
pub struct PomdpRouter {
    model: PomdpModel,
    solution: Solution,
    rule: BeliefRule,
}

/// One POMDP routing decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PomdpDecision {
    /// True: regenerate this step with the strong model.
    pub regenerate: bool,
    /// The belief `[P(S0), P(S1), P(S2)]` over the current step's state.
    pub belief: [f64; 3],
    /// The closeness shortcut kept the step without consulting the solution.
    pub shortcut: bool,
}

impl PomdpRouter {
    /// A router over a solution and its model, through the release's belief rule with this
    /// closeness shortcut (None: no shortcut).
    pub fn new(model: PomdpModel, solution: Solution, closeness: Option<f64>) -> Self {
        PomdpRouter {
            model,
            solution,
            rule: BeliefRule::Release { closeness },
        }
    }

    /// Load and verify a solution file (format, sha256 of its content, model, table shape);
    /// decide with the release's closeness shortcut (0.4).
    pub fn load(path: &Path) -> Result<Self, RouterError> {
        let text = std::fs::read_to_string(path).map_err(|e| RouterError::io(path, e))?;
        let (solution, model) =
            Solution::from_json(&text).map_err(|e| RouterError::invalid(path, e))?;
        Ok(Self::new(model, solution, Some(CLOSENESS_DEFAULT)))
    }

    /// Load and verify a `trim export --pomdp` directory (manifest, checksums, solution,
    /// parity fixture); see [`crate::pomdp_export`].
    pub fn load_export(dir: &Path) -> Result<(Self, PomdpManifest), RouterError> {
        crate::pomdp_export::load_pomdp_dir(dir)
    }

    /// The closeness of the belief rule's shortcut (None: no shortcut).
    pub fn closeness(&self) -> Option<f64> {
        match self.rule {
            BeliefRule::Release { closeness } => closeness,
            BeliefRule::Bayes => None,
        }
    }

    /// The cost per strong token the solution was solved for.
    pub fn lambda(&self) -> f64 {
        self.solution.lambda
    }

    /// Decide on the current weak step from the raw per-step inputs.
    pub fn decide_step(&self, step: &StepObservation) -> Result<PomdpDecision, String> {
        if let Some(l) = step.lambda {
            return Err(crate::router::no_lambda_input(l, Some(self.lambda())));
        }
        step.budget_state(false)?;
        // The same input checks as TRIM-Agg serving.
        EpisodeFeatures::from_history(&step.prev_prm)?.observe(step.prm, step.tokens)?;
        let mut features = FeatureState::new();
        for &p in &step.prev_prm {
            features.push(p);
        }
        let view = StepView {
            signals: trim_env::Signals::NONE,
            features,
            weak: Candidate {
                tokens: step.tokens,
                prm: step.prm,
            },
            history: &[],
            cond: trim_env::Conditions::NONE,
        };
        let policy = PomdpPolicy {
            model: &self.model,
            solution: &self.solution,
            rule: self.rule,
        };
        let (action, belief, shortcut) = policy.decide(&view);
        Ok(PomdpDecision {
            regenerate: action == Action::Regenerate,
            belief,
            shortcut,
        })
    }
}
