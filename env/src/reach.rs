//! How far routing policies can go in a world before it runs out: a materialised synthetic world
//! generates regenerations only up to a cap (K per path), so a policy may want to regenerate
//! where the tree has no strong branch. Results measured in such a world are only as good as
//! that never happening for the policies one studies; this module measures how often it does.

use rayon::prelude::*;

use crate::episode::Episode;
use crate::forest::Action;
use crate::world::World;

/// The strong-call budget of the probe policies (the "up to 4 strong calls").
pub const PROBE_MAX_CALLS: u16 = 4;

/// TRIM-Thr at threshold `k` that stops asking for the strong model after `max_calls` strong
/// calls: the fraction of episodes (one per sample tree of `problems`, averaged per problem
/// and then over problems) in which it wanted to regenerate a step whose regenerate branch is
/// absent. Where that happens the probe continues with the weak step and counts the episode.
pub fn masked_regenerate_rate<W: World>(
    forest: &W,
    problems: &[u32],
    k: f32,
    max_calls: u16,
) -> f64 {
    if problems.is_empty() {
        return 0.0;
    }
    let per_problem: f64 = (problems.par_iter().with_min_len(64))
        .map(|&p| {
            let trees = forest.trees_of(p as usize);
            let n = trees.len().max(1) as f64;
            let hit: usize = trees
                .map(|t| usize::from(meets_mask(forest, t, k, max_calls)))
                .sum();
            hit as f64 / n
        })
        .sum();
    per_problem / problems.len() as f64
}

/// Play one episode of the budgeted threshold policy; true when it met a masked regenerate.
fn meets_mask<W: World>(forest: &W, tree: usize, k: f32, max_calls: u16) -> bool {
    let mut ep = Episode::start(forest, tree);
    let mut met = false;
    while !ep.done() {
        let mask = ep.mask(forest);
        let wants = forest.weak(&ep.node()).prm < k && ep.outcome().strong_calls < max_calls;
        let a = if wants && mask[1] {
            Action::Regenerate
        } else {
            met |= wants;
            if mask[0] {
                Action::Continue
            } else {
                Action::Regenerate
            }
        };
        if ep.step(forest, a, 0.0).is_err() {
            // A node with neither branch cannot exist in a validated forest.
            return met;
        }
    }
    met
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::tests::small_forest;

    #[test]
    fn counts_episodes_that_want_a_missing_regeneration() {
        let f = small_forest();
        // n0 prm 0.9, n1 prm 0.4 (regenerate available), n3 prm 0.7 (no strong candidate).
        // k = 0.5: continue at n0, regenerate at n1, continue at n3: never masked.
        assert_eq!(masked_regenerate_rate(&f, &[0], 0.5, 4), 0.0);
        // k = 0.8: continue at n0, regenerate at n1, then n3 (0.7 < 0.8) has no strong branch.
        assert_eq!(masked_regenerate_rate(&f, &[0], 0.8, 4), 1.0);
        // With a budget of one call, the wish at n3 is not made.
        assert_eq!(masked_regenerate_rate(&f, &[0], 0.8, 1), 0.0);
        // k = 1: regenerate at n0 → n2 (both available), then the outcome: never masked.
        assert_eq!(masked_regenerate_rate(&f, &[0], 1.0, 4), 0.0);
        assert_eq!(masked_regenerate_rate(&f, &[], 1.0, 4), 0.0);
    }
}
