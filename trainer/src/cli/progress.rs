//! Progress bars for long data work: the library reports [`Progress`] events, this module draws
//! them (indicatif draws on stderr, and only on a terminal).

use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressStyle};
use trim_data::synth::Progress;

/// A bar over `len` items labelled `what`.
fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// Draws a library call's progress events: the bar appears at [`Progress::Start`] and is cleared
/// at [`Progress::Finish`] (or when this is dropped, e.g. after an error). Events may come from
/// worker threads.
#[derive(Default)]
pub struct Bar(OnceLock<ProgressBar>);

impl Bar {
    /// Handle one event.
    pub fn on(&self, e: Progress) {
        match e {
            Progress::Start { total, unit } => {
                let _ = self.0.set(bar(total, unit));
            }
            Progress::Advance => {
                if let Some(pb) = self.0.get() {
                    pb.inc(1);
                }
            }
            Progress::Finish => {
                if let Some(pb) = self.0.get() {
                    pb.finish_and_clear();
                }
            }
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(pb) = self.0.get()
            && !pb.is_finished()
        {
            pb.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_follows_the_events() {
        let b = Bar::default();
        b.on(Progress::Advance); // before Start: nothing to draw yet
        assert!(b.0.get().is_none());
        b.on(Progress::Start {
            total: 3,
            unit: "problems",
        });
        std::thread::scope(|s| {
            s.spawn(|| b.on(Progress::Advance));
            s.spawn(|| b.on(Progress::Advance));
        });
        let pb = b.0.get().expect("bar after Start");
        assert_eq!((pb.position(), pb.length()), (2, Some(3)));
        assert!(!pb.is_finished());
        b.on(Progress::Finish);
        assert!(pb.is_finished());
    }
}
