//! Linear schedules of the learning rate and the entropy coefficient, as functions of the
//! 0-based update index (so a resumed run recomputes them from its counter alone).

/// PyTorch `LinearLR(start_factor=1, end_factor=0, total_iters=total)` stepped once per update,
/// as the release does: `lr0 · (1 − u / total)`. The last update still learns (factor 1/total).
pub fn learning_rate(lr0: f64, anneal: bool, update: u64, total: u64) -> f64 {
    if !anneal || total == 0 {
        return lr0;
    }
    lr0 * (1.0 - (update.min(total) as f64) / total as f64)
}

/// Entropy coefficient from `start` at the first update to exactly `end` at the last.
pub fn entropy_coef(start: f64, end: f64, update: u64, total: u64) -> f64 {
    if total <= 1 {
        return start;
    }
    let frac = (update.min(total - 1) as f64) / (total - 1) as f64;
    start + (end - start) * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(learning_rate(3e-4, true, 0, 1060), 3e-4);
        assert!((learning_rate(3e-4, true, 530, 1060) - 1.5e-4).abs() < 1e-15);
        assert!(learning_rate(3e-4, true, 1059, 1060) > 0.0);
        assert_eq!(learning_rate(3e-4, false, 1059, 1060), 3e-4);
        assert_eq!(entropy_coef(0.01, 0.001, 0, 1060), 0.01);
        assert!((entropy_coef(0.01, 0.001, 1059, 1060) - 0.001).abs() < 1e-15);
    }
}
