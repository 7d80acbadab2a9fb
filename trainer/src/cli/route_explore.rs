//! `trim route --explore-epsilon E | --explore-temperature T`: randomised decisions with their
//! propensities, for logs that `trim ope` can evaluate other policies on.

use serde_json::json;
use trim_env::Rng;
use trim_router::{Decision, Exploration};

/// The exploring state of one `trim route` process.
pub struct Explorer {
    pub exploration: Exploration,
    pub rng: Rng,
    /// Logged with every decision (the export's directory name unless given).
    pub policy_id: String,
}

impl Explorer {
    /// The answer for a network policy's decision `d`: the action drawn, its propensity, the
    /// policy's own (greedy) action and probability, and the policy id.
    pub fn answer(&mut self, d: &Decision) -> serde_json::Value {
        let (regen, propensity) = self.exploration.draw(d, [true, true], &mut self.rng);
        let name = |r: bool| if r { "regenerate" } else { "continue" };
        json!({
            "action": name(regen),
            "propensity": propensity,
            "policy_id": self.policy_id,
            "greedy_action": name(d.regenerate),
            "p_regenerate": d.p_regenerate,
            "logits": d.logits,
        })
    }
}
