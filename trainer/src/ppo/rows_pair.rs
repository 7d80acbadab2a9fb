//! A rollout's acting-network rows on two cores.
//!
//! Why: a rollout alternates a batched forward pass of the acting network (one row per live
//! episode, ~80 % of its time) with work that must stay in order (sampling every action from
//! the run's one random stream, stepping the env). In a single run the second core had
//! nothing to do during rollouts: the gradient steps that split over both cores come after
//! them. So each env step's rows are cut in two, the second part is handed to the helper
//! spinning on the other core ([`crate::spin_pair`]), and the rows come back in order. Every
//! row's result has the bits it has alone ([`ActingNet::log_probs_rows`]'s contract), so the
//! rollout — actions, log-probabilities, values — is the same whatever the cut and whether
//! the helper ever ran. In a sweep (one-thread pools: the other core trains another run)
//! there is no helper and the rows are never cut. (Cutting the env step's slots the same way
//! was measured and not kept: rollouts 0.44 → 0.42–0.43 s, within the run-to-run spread.)

use trim_router::agg_rows::{RowOutput, RowsScratch};

use crate::family::ActingNet;
use crate::spin_pair::{SpinPair, join};

/// The scratch of the two parts and the second part's outputs, reused by every step.
#[derive(Default)]
pub struct RowsPair {
    scratch: [RowsScratch; 2],
    tail: Vec<RowOutput>,
}

impl RowsPair {
    /// [`ActingNet::log_probs_rows`] of all rows into `out`. With a helper, and when a cut
    /// saves time by the policy's [`ActingNet::rows_cost`] ([`cut_at`]), the rows from the
    /// cut on are computed as the second part of a [`SpinPair::join`].
    ///
    /// # Shapes
    /// `obs`: `[rows, d]`; `mask`: `[rows, 2]`; `alive`: `[rows]`; `out`: `rows` entries.
    pub fn compute<A: ActingNet>(
        &mut self,
        pair: Option<&SpinPair>,
        policy: &A,
        (obs, mask, alive): (&[f32], &[bool], &[bool]),
        out: &mut Vec<RowOutput>,
    ) {
        let [first, second] = &mut self.scratch;
        let Some(m) = pair.and_then(|_| cut_at(alive, |k| policy.rows_cost(k))) else {
            policy.log_probs_rows(obs, mask, alive, first, out);
            return;
        };
        let d = obs.len() / alive.len();
        let (obs, mask, alive) = (obs.split_at(m * d), mask.split_at(2 * m), alive.split_at(m));
        let tail = &mut self.tail;
        join(
            pair,
            || policy.log_probs_rows(obs.0, mask.0, alive.0, first, out),
            || policy.log_probs_rows(obs.1, mask.1, alive.1, second, tail),
        );
        out.extend_from_slice(tail);
    }
}

/// The row where a step's rows are cut in two, or `None` when the two parts side by side
/// would not beat one call by at least a row (the hand-over costs about that much). The cut
/// puts `a` live rows first, `a` minimising the slower part's cost.
pub fn cut_at(alive: &[bool], cost: impl Fn(usize) -> usize) -> Option<usize> {
    let live = alive.iter().filter(|&&x| x).count();
    let best = (1..live).map(|a| (cost(a).max(cost(live - a)), a)).min()?;
    if best.0 + 1 >= cost(live) {
        return None;
    }
    let mut seen = 0;
    alive.iter().position(|&x| {
        seen += usize::from(x);
        seen > best.1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use trim_router::agg_rows::{ONE_BY_ONE_BELOW, rows_cost};

    fn rows(live: usize) -> Vec<bool> {
        (0..64).map(|i| i < live).collect()
    }

    /// TRIM-Agg's network: blocks of 32 rows, fewer than 12 rows one at a time.
    #[test]
    fn a_cut_of_blocked_rows_is_made_only_where_it_saves_time() {
        let cut = |live| cut_at(&rows(live), rows_cost);
        // 64 live rows: two blocks in one call, one block per part.
        assert_eq!(cut(64), Some(32));
        // 33–64 live rows cost two blocks in one call; cut, each part costs at most one.
        let at = cut(40).expect("a cut");
        assert_eq!(rows_cost(at).max(rows_cost(40 - at)), ONE_BY_ONE_BELOW);
        // One block (12–32 live rows): two parts of ≥ 12 rows are a block each; no gain
        // unless both parts drop below the one-row threshold.
        assert_eq!(cut(32), None);
        assert_eq!(cut(24), None);
        assert!(cut(14).is_some());
        // Single rows: halves. One row alone is never cut.
        assert_eq!(cut(6), Some(3));
        assert_eq!(cut(1), None);
        assert_eq!(cut(0), None);
    }

    /// Rows played one at a time (TRIM-Seq): halves, the smaller one first.
    #[test]
    fn rows_of_linear_cost_are_cut_in_halves() {
        let cut = |live| cut_at(&rows(live), |k| k);
        assert_eq!(cut(64), Some(32));
        assert_eq!(cut(40), Some(20));
        assert_eq!(cut(7), Some(3));
        // Two or three rows: the parts would save at most a row — not worth the hand-over.
        assert_eq!(cut(2), None);
        assert_eq!(cut(3), None);
        assert_eq!(cut(4), Some(2));
    }

    #[test]
    fn the_cut_counts_live_rows_only() {
        // Live rows at 1, 3, 5, …: the part before the cut holds three of the six, rows 0–6.
        let alive: Vec<bool> = (0..12).map(|i| i % 2 == 1).collect();
        assert_eq!(cut_at(&alive, |k| k), Some(7));
    }
}
