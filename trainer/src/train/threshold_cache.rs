//! TRIM-Thr's threshold sweep on a generated world, shared by the runs of one process.
//!
//! Every run scores the 101 TRIM-Thr thresholds on its validation problems (the baseline to
//! beat) and on its test problems. The runs of a sweep or population share the data and
//! usually the problem split, so without sharing each of them replays the same ~2 M steps.
//! The per-problem outcomes do not depend on λ (only the reward summary does), so one sweep
//! serves every member. Only generated worlds are shared: their fingerprint names their
//! content exactly and costs nothing, whereas a file could change between two runs.

use std::sync::{Arc, Mutex};

use trim_env::ProblemOutcome;

/// Per threshold, the outcome of every problem (in the set's order).
pub(super) type Outcomes = Arc<Vec<Vec<ProblemOutcome>>>;

/// A world's fingerprint and the problems swept on it.
type Key = (String, Vec<u32>);

/// A sweep being computed or done; its lock is held while it is computed, so concurrent
/// runs wait for the first instead of repeating it.
type Slot = Arc<Mutex<Option<Outcomes>>>;

/// How many sweeps a process keeps (a sweep of 2000 problems is ~8 MB).
const KEEP: usize = 8;

/// The sweeps of this process, most recently added last.
static SWEEPS: Mutex<Vec<(Key, Slot)>> = Mutex::new(Vec::new());

/// The sweep of `problems` on the world fingerprinted `world`, computed by `compute` unless
/// this process already has it. A failed computation is not kept (the next caller retries).
pub(super) fn shared<E>(
    world: &str,
    problems: &[u32],
    compute: impl FnOnce() -> Result<Vec<Vec<ProblemOutcome>>, E>,
) -> Result<Outcomes, E> {
    let slot = {
        let mut sweeps = SWEEPS.lock().unwrap_or_else(|e| e.into_inner());
        let found = sweeps
            .iter()
            .find(|((w, p), _)| w == world && p == problems)
            .map(|(_, s)| s.clone());
        found.unwrap_or_else(|| {
            if sweeps.len() == KEEP {
                sweeps.remove(0);
            }
            let slot = Slot::default();
            sweeps.push(((world.to_string(), problems.to_vec()), slot.clone()));
            slot
        })
    };
    let mut done = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(o) = done.as_ref() {
        return Ok(o.clone());
    }
    let o = Arc::new(compute()?);
    *done = Some(o.clone());
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(v: f64) -> Vec<Vec<ProblemOutcome>> {
        let o = ProblemOutcome {
            accuracy: v,
            ..ProblemOutcome::default()
        };
        vec![vec![o]]
    }

    #[test]
    fn one_computation_per_world_and_problems_and_failures_are_retried() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let count = |v: f64| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, String>(sweep(v))
        };
        let w = "threshold-cache-test-world";
        let a = shared(w, &[1, 2], || count(0.5)).unwrap();
        let b = shared(w, &[1, 2], || count(0.9)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b[0][0].accuracy, 0.5);
        // Other problems, or another world: computed anew.
        assert_eq!(
            shared(w, &[1, 3], || count(0.7)).unwrap()[0][0].accuracy,
            0.7
        );
        assert_eq!(
            shared("other", &[1, 2], || count(0.8)).unwrap()[0][0].accuracy,
            0.8
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        // A failure is returned and not kept.
        let failed = shared("failing", &[1], || Err::<Vec<Vec<ProblemOutcome>>, _>("no"));
        assert_eq!(failed.unwrap_err(), "no");
        assert_eq!(
            shared("failing", &[1], || count(0.1)).unwrap()[0][0].accuracy,
            0.1
        );
    }
}
