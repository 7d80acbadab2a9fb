//! Progress events of long data operations (synthesis, imports). The library only reports them;
//! a front end (the `trim` CLI) decides whether and how to draw them.

/// One progress event. Why: drawing belongs to the front end, so long library calls take a
/// callback of these instead of knowing about terminals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Work of `total` units, named by `unit` (e.g. "problems"), begins.
    Start { total: u64, unit: &'static str },
    /// One more unit is done (reported from worker threads, in any order).
    Advance,
    /// All units are done.
    Finish,
}

/// Where progress events go. It is called from worker threads, hence `Sync`.
pub type OnProgress<'a> = &'a (dyn Fn(Progress) + Sync);

/// An [`OnProgress`] that ignores every event, for callers that show nothing.
pub fn quiet(_: Progress) {}
