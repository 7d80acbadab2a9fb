//! Statistics of a lazy synthetic world (`trim data stats synth:…`): what `trim data stats`
//! reports for a file, measured by replaying the world (it has no stored nodes to count).

use serde::Serialize;
use trim_env::{Action, Next, World};

use crate::source::LazySource;
use crate::stats::{
    AnchorStats, MaskedRegenerate, PrmStats, SignalStats, anchor, masked_regenerate, prm_stats,
};
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
    /// The optional step signals' separation on the all-weak paths' weak candidates.
    pub signals: SignalStats,
    pub masked_regenerate: MaskedRegenerate,
}

/// Replay `z`'s anchor paths and the masked-regenerate probe.
pub fn compute_world(z: &LazySource) -> WorldStats {
    let w = &z.world;
    let (scores, signals) = anchor_scores(w);
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
        prm: prm_stats(&scores),
        signals,
        masked_regenerate: masked_regenerate(w),
    }
}

/// PRM scores by state of the weak candidates on every all-weak path and the strong candidates
/// on every all-strong path, in tree order; and, in the same walk, the weak candidates' step
/// signals (when the world draws them) per latent state.
fn anchor_scores(w: &LazyWorld) -> ([Vec<f64>; 3], SignalStats) {
    let kinds = w.signal_kinds();
    let with_signals = kinds.judge_score || kinds.mean_logprob;
    let mut by_state: [Vec<f64>; 3] = Default::default();
    let mut judge: [Vec<f64>; 3] = Default::default();
    let mut logprob: [Vec<f64>; 3] = Default::default();
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
                let k = c.state.index();
                by_state[k].push(f64::from(c.prm));
                if with_signals && a == Action::Continue {
                    let s = w.weak_signals(&node);
                    judge[k].push(f64::from(s.judge_score));
                    logprob[k].push(f64::from(s.mean_logprob));
                }
                match w.next(&node, a) {
                    Next::Node(n) => node = n,
                    _ => break,
                }
            }
        }
    }
    let signals = SignalStats::of(
        kinds.judge_score.then_some(judge),
        kinds.mean_logprob.then_some(logprob),
    );
    (by_state, signals)
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
        // The shipped profile's signals separate first errors, the judge better than the
        // log-probability (which mostly tracks the problem's difficulty).
        let judge = s.signals.judge_score.as_ref().unwrap();
        let lp = s.signals.mean_logprob.as_ref().unwrap();
        let (j, l) = (
            judge.auroc_correct_vs_first_error.unwrap(),
            lp.auroc_correct_vs_first_error.unwrap(),
        );
        assert!(j > 0.85 && (0.6..j).contains(&l), "{judge:?} {lp:?}");
        let capped = LazySource::open("synth:math-train?problems=300&cap=1").unwrap();
        assert!(compute_world(&capped).masked_regenerate.worst.1 > 0.05);
    }
}
