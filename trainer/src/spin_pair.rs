//! Fork–join of two parts on two cores with a helper that spins between joins.
//!
//! Why: a single run's hot loops fork tiny parts thousands of times — every gradient step
//! (~0.3–0.5 ms) in two parts of a minibatch, every rollout step (~10–25 µs) in two parts of
//! its rows. Through rayon, the other worker goes to sleep between forks and each fork pays a
//! futex wake-up; for the rollout's parts that costs more than it saves. Here one helper job
//! occupies the other worker for a whole loop ([`with_helper`]) and spins on an atomic, so a
//! part is handed over in well under a microsecond.
//!
//! Correctness does not depend on the helper: each posted part is *claimed* by whichever
//! thread gets to it first, the caller included, so the caller never waits for a helper that
//! has not started (a busy pool, a helper woken late, a one-thread pool) — it then runs both
//! parts itself, in the same order of arithmetic. What a part computes never depends on which
//! thread ran it, so results are the same bits either way.
//!
//! Inside [`with_helper`]'s body nothing may wait on rayon work (`join`, parallel iterators
//! that split): a waiting worker runs queued jobs, and the queued helper would then spin on the
//! caller's own thread. The helper notices that case and returns at once, so it costs speed,
//! never progress.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;

/// Nothing posted.
const IDLE: u8 = 0;
/// A part is posted, waiting for a thread.
const POSTED: u8 = 1;
/// The helper is running the part.
const TAKEN: u8 = 2;
/// The caller took its own part back and is running it.
const MINE: u8 = 3;
/// The helper finished the part.
const DONE: u8 = 4;
/// The part panicked on the helper; the payload waits in `panic`.
const PANICKED: u8 = 5;

/// A posted part: a type-erased pointer to the caller's `Option<F>` and the function that
/// takes and runs it.
struct Task {
    slot: *mut (),
    run: unsafe fn(*mut ()),
}

/// Take the closure out of its slot and run it.
///
/// # Safety
/// `slot` points to a live `Option<F>` that no other thread touches meanwhile.
unsafe fn run_slot<F: FnOnce()>(slot: *mut ()) {
    // SAFETY: the caller's contract.
    let slot = unsafe { &mut *slot.cast::<Option<F>>() };
    if let Some(f) = slot.take() {
        f();
    }
}

/// The caller's side and the helper's side of one loop's forks. Aligned to its own pair of
/// cache lines: it lives on the caller's stack, and a helper spinning on a line shared with
/// the caller's locals would pull that line away from the caller at every write to them.
#[repr(align(128))]
pub struct SpinPair {
    state: AtomicU8,
    stop: AtomicBool,
    task: AtomicPtr<Task>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// The thread of [`with_helper`]'s body: a helper that finds itself there returns.
    owner: ThreadId,
}

/// Run `body` with a [`SpinPair`] whose helper spins on another worker of the current rayon
/// pool, or with `None` when the pool has one thread (a sweep worker's pool: the other cores
/// train other runs).
pub fn with_helper<R>(body: impl FnOnce(Option<&SpinPair>) -> R) -> R {
    if rayon::current_num_threads() < 2 {
        return body(None);
    }
    let pair = SpinPair::new();
    rayon::in_place_scope(|s| {
        s.spawn(|_| pair.help());
        // Raised however the body ends (an error, a panic), so the scope never waits on a
        // helper that spins.
        let _stop = StopOnDrop(&pair);
        body(Some(&pair))
    })
}

/// Run `a` here and `b` on the helper when there is one; `a` then `b` here without one.
pub fn join<RA>(pair: Option<&SpinPair>, a: impl FnOnce() -> RA, b: impl FnOnce() + Send) -> RA {
    match pair {
        Some(p) => p.join(a, b),
        None => {
            let ra = a();
            b();
            ra
        }
    }
}

impl SpinPair {
    fn new() -> Self {
        SpinPair {
            state: AtomicU8::new(IDLE),
            stop: AtomicBool::new(false),
            task: AtomicPtr::new(std::ptr::null_mut()),
            panic: Mutex::new(None),
            owner: std::thread::current().id(),
        }
    }

    /// `a` on this thread while the helper runs `b` (or this thread runs `b` after `a`, when
    /// the helper has not claimed it by then). Returns once both are done; a panic in `b`
    /// resumes here.
    pub fn join<RA, B: FnOnce() + Send>(&self, a: impl FnOnce() -> RA, b: B) -> RA {
        let mut slot = Some(b);
        let task = Task {
            slot: (&raw mut slot).cast(),
            run: run_slot::<B>,
        };
        self.task
            .store((&raw const task).cast_mut(), Ordering::Relaxed);
        // Release: the task and everything `b` reads are visible to the claimant.
        self.state.store(POSTED, Ordering::Release);
        // Until `b` is done or cancelled, `slot` and `task` must outlive the helper's use of
        // them, also when `a` or `b` panics here: the guard waits before they are dropped.
        let settle = Settle(self);
        let ra = a();
        if (self.state)
            .compare_exchange(POSTED, MINE, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: claimed by this thread; `slot` is alive and untouched by the helper.
            unsafe { (task.run)(task.slot) };
        }
        settle.wait();
        drop(settle);
        ra
    }

    /// The helper: claim and run posted parts until [`Self::stop`].
    fn help(&self) {
        if std::thread::current().id() == self.owner {
            return;
        }
        while !self.stop.load(Ordering::Acquire) {
            if self.state.load(Ordering::Relaxed) == POSTED
                && (self.state)
                    .compare_exchange(POSTED, TAKEN, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                let task = self.task.load(Ordering::Relaxed);
                // SAFETY: the claim gives this thread the task; its owner waits (`Settle`)
                // until the state leaves TAKEN before the task or its slot is dropped.
                let r = catch_unwind(AssertUnwindSafe(|| unsafe { ((*task).run)((*task).slot) }));
                let end = match r {
                    Ok(()) => DONE,
                    Err(p) => {
                        *self.panic.lock().unwrap_or_else(PoisonError::into_inner) = Some(p);
                        PANICKED
                    }
                };
                self.state.store(end, Ordering::Release);
            }
            std::hint::spin_loop();
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Waits out the helper's part of a [`SpinPair::join`] and resets the state for the next.
struct Settle<'a>(&'a SpinPair);

impl Settle<'_> {
    /// The normal end: wait for the helper's part, pass on its panic.
    fn wait(&self) {
        self.spin_while_taken();
        if self.0.state.load(Ordering::Acquire) == PANICKED {
            self.0.state.store(IDLE, Ordering::Relaxed);
            let p = self
                .0
                .panic
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            resume_unwind(p.unwrap_or_else(|| Box::new("a part on the helper panicked")));
        }
    }

    fn spin_while_taken(&self) {
        while self.0.state.load(Ordering::Acquire) == TAKEN {
            std::hint::spin_loop();
        }
    }
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        // Unwinding from `a` with the part still posted: cancel it; taken: wait for it.
        let _ = (self.0.state).compare_exchange(POSTED, IDLE, Ordering::Acquire, Ordering::Relaxed);
        self.spin_while_taken();
        self.0.state.store(IDLE, Ordering::Relaxed);
    }
}

/// Raises the stop flag when dropped.
struct StopOnDrop<'a>(&'a SpinPair);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn two_thread_pool() -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
    }

    #[test]
    fn every_part_runs_exactly_once_with_and_without_a_helper() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (mut a_sum, b_sum) = (0u64, AtomicUsize::new(0));
            pool.install(|| {
                with_helper(|pair| {
                    assert_eq!(pair.is_some(), threads == 2);
                    for i in 0..20_000u64 {
                        let b = &b_sum;
                        a_sum += join(
                            pair,
                            || i,
                            move || {
                                b.fetch_add(i as usize, Ordering::Relaxed);
                            },
                        );
                    }
                })
            });
            let want = (0..20_000u64).sum::<u64>();
            assert_eq!(a_sum, want);
            assert_eq!(b_sum.load(Ordering::Relaxed) as u64, want);
        }
    }

    #[test]
    fn the_helper_does_share_the_work() {
        // Each `b` waits briefly, so a spinning helper claims many of them; which thread ran
        // a part is recorded.
        let on_helper = AtomicUsize::new(0);
        let main = std::thread::current().id();
        two_thread_pool().install(|| {
            with_helper(|pair| {
                let pair = pair.expect("two threads");
                for _ in 0..2000 {
                    pair.join(
                        || std::thread::sleep(std::time::Duration::from_micros(20)),
                        || {
                            if std::thread::current().id() != main {
                                on_helper.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                    );
                }
            })
        });
        assert!(
            on_helper.load(Ordering::Relaxed) > 0,
            "the helper never ran a part"
        );
    }

    #[test]
    fn a_panic_in_either_part_reaches_the_caller_and_the_scope_ends() {
        for in_b in [false, true] {
            let r = catch_unwind(|| {
                two_thread_pool().install(|| {
                    with_helper(|pair| {
                        for i in 0..1000 {
                            join(
                                pair,
                                || assert!(in_b || i != 500, "a failed"),
                                move || assert!(!in_b || i != 500, "b failed"),
                            );
                        }
                    })
                })
            });
            let msg = r.expect_err("the panic propagates");
            let msg = msg.downcast_ref::<&str>().copied().unwrap_or("?");
            assert_eq!(msg, if in_b { "b failed" } else { "a failed" });
        }
    }

    #[test]
    fn a_helper_queued_on_the_callers_own_thread_returns() {
        // A rayon join inside the body lets the caller run queued jobs — possibly the helper.
        let n = two_thread_pool().install(|| {
            with_helper(|pair| {
                let (x, y) = rayon::join(|| 1, || 2);
                join(pair, || x, || ()) + y
            })
        });
        assert_eq!(n, 3);
    }
}
