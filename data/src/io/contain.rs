//! Containment of third-party decoder panics. polars can panic on damaged parquet bytes (a
//! flipped bit in a page header, a truncated dictionary); every polars call of this crate runs
//! inside [`contain`], which turns such a panic into a [`DataError`] naming the file.
//!
//! The default panic hook would still print a scary message and a backtrace hint for a panic we
//! handle. A process-wide hook, installed once, stays silent for panics raised while a contained
//! call is running on the panicking thread, or on a polars worker thread (named `polars-…`)
//! while any contained call is running; every other panic goes to the previous hook unchanged.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{DataError, Result};

static HOOK: Once = Once::new();
/// Contained calls running in the process (for panics on polars' worker threads).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Contained calls running on this thread.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let here = DEPTH.with(Cell::get) > 0;
            let polars_worker = ACTIVE.load(Ordering::SeqCst) > 0
                && std::thread::current()
                    .name()
                    .is_some_and(|n| n.starts_with("polars-"));
            if !(here || polars_worker) {
                previous(info);
            }
        }));
    });
}

/// Decrements the counters even when the contained call unwinds.
struct Guard;

impl Guard {
    fn enter() -> Guard {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        DEPTH.with(|d| d.set(d.get() + 1));
        Guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Run a decoder call on `path`; a panic inside it becomes an error saying the file is damaged.
/// `what` names the step (e.g. "reading column `weak_prm`").
pub fn contain<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_hook();
    let result = {
        let _guard = Guard::enter();
        catch_unwind(AssertUnwindSafe(f))
    };
    result.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(DataError::file(
            path,
            format!(
                "damaged file: not readable parquet (the decoder failed while {what}: {msg}); \
                 restore it from a backup or regenerate it"
            ),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_file() {
        let e = contain(Path::new("x.parquet"), "testing", || -> Result<()> {
            panic!("boom")
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.parquet: damaged file"), "{e}");
        assert!(e.contains("boom") && e.contains("testing"), "{e}");
        // Nested and repeated calls keep working, and ordinary results pass through.
        assert_eq!(contain(Path::new("y"), "ok", || Ok(3)).unwrap(), 3);
        assert_eq!(DEPTH.with(Cell::get), 0);
    }
}
