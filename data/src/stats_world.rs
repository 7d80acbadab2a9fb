//! Statistics of a lazy synthetic world (`trim data stats synth:…`): what `trim data stats`
//! reports for a file, measured by replaying the world (it has no stored nodes to count).

use serde::Serialize;
use trim_env::{Action, Next, World};

use crate::source::LazySource;
use crate::stats::{AnchorStats, MaskedRegenerate, PrmStats, anchor, masked_regenerate, prm_stats};
use crate::synth::lazy::LazyWorld;

/// Everything `trim data stats` reports for a lazy world.
#[derive(Clone, Debug, Serialize)]
pub struct WorldStats {
    pub name: String,
    pub spec: String,
    /// sha256 of the resolved config and its inputs (what runs record).
    pub fingerprint: String,
    pub problems: usize,
    pub trees: usize,
    /// The regeneration cap, if the spec sets one (none: both actions everywhere).
    pub cap: Option<u32>,
    pub splits: Vec<(String, usize)>,
    pub always_weak: AnchorStats,
    pub always_strong: AnchorStats,
    /// PRM quality over the candidates of both anchor paths (states are known).
    pub prm: PrmStats,
    pub masked_regenerate: MaskedRegenerate,
}

/// Replay `z`'s anchor paths and the masked-regenerate probe.
pub fn compute_world(z: &LazySource) -> WorldStats {
    let w = &z.world;
    WorldStats {
        name: z.spec.cfg.name.clone(),
        spec: z.spec.spec.clone(),
        fingerprint: z.fingerprint.clone(),
        problems: w.n_problems(),
        trees: (0..w.n_problems()).map(|p| w.trees_of(p).len()).sum(),
        cap: w.cap(),
        splits: w.splits(),
        always_weak: anchor(w, Action::Continue),
        always_strong: anchor(w, Action::Regenerate),
        prm: prm_stats(&anchor_scores(w)),
        masked_regenerate: masked_regenerate(w),
    }
}

/// PRM scores by state of the weak candidates on every all-weak path and the strong candidates
/// on every all-strong path, in tree order.
fn anchor_scores(w: &LazyWorld) -> [Vec<f64>; 3] {
    let mut by_state: [Vec<f64>; 3] = Default::default();
    let trees = (0..w.n_problems()).flat_map(|p| w.trees_of(p));
    for tree in trees {
        for a in [Action::Continue, Action::Regenerate] {
            let mut node = w.root(tree);
            loop {
                let c = match a {
                    Action::Continue => Some(node.weak),
                    Action::Regenerate => w.strong_candidate(&node),
                };
                let Some(c) = c else { break };
                by_state[c.state.index()].push(f64::from(c.prm));
                match w.next(&node, a) {
                    Next::Node(n) => node = n,
                    _ => break,
                }
            }
        }
    }
    by_state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncapped_world_never_masks_and_its_anchors_match_the_calibration() {
        let z = LazySource::open("synth:math-train?problems=3000").unwrap();
        let s = compute_world(&z);
        assert_eq!(s.masked_regenerate.worst.1, 0.0);
        // Calibrated to MATH-train's 37.6 % / 77.1 % (expected values; 3000 problems).
        assert!((s.always_weak.accuracy - 0.376).abs() < 0.03, "{s:?}");
        assert!((s.always_strong.accuracy - 0.771).abs() < 0.03, "{s:?}");
        assert!(s.prm.auroc_correct_vs_first_error.unwrap() > 0.8);
        let capped = LazySource::open("synth:math-train?problems=300&cap=1").unwrap();
        assert!(compute_world(&capped).masked_regenerate.worst.1 > 0.05);
    }
}
