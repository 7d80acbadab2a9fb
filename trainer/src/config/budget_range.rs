//! [`BudgetRange`]: the per-episode strong-token budgets of a budget-aware policy
//! (`--budget-range 100:800`), or `off`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Largest budget accepted: far above any episode's strong tokens (30 steps × 2048 tokens).
pub const MAX_BUDGET: u64 = 10_000_000;

/// Where each training episode's strong-token budget comes from. A budget-aware policy takes
/// the remaining budget as inputs; each episode draws its budget uniformly from `[lo, hi]` and
/// replays under it (`regenerate` masked once the strong step no longer fits), so one policy
/// learns to spend any budget in the range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum BudgetRange {
    /// No budgets.
    #[default]
    Off,
    /// Uniform over the integers `lo..=hi`, `lo < hi <= MAX_BUDGET`.
    Uniform { lo: u64, hi: u64 },
}

impl BudgetRange {
    /// `(lo, hi)` of a budget range.
    pub fn bounds(self) -> Option<(u64, u64)> {
        match self {
            BudgetRange::Off => None,
            BudgetRange::Uniform { lo, hi } => Some((lo, hi)),
        }
    }

    /// The budget at quantile `u ∈ [0, 1)` (`lo + ⌊u·(hi − lo + 1)⌋`).
    pub fn at(self, u: f64) -> u64 {
        match self {
            BudgetRange::Off => u64::MAX,
            BudgetRange::Uniform { lo, hi } => (lo + (u * (hi - lo + 1) as f64) as u64).min(hi),
        }
    }

    /// `n` evenly spaced budgets from `lo` to `hi` inclusive (empty when off).
    pub fn grid(self, n: usize) -> Vec<u64> {
        match (self, n) {
            (BudgetRange::Off, _) | (_, 0) => vec![],
            (BudgetRange::Uniform { lo, .. }, 1) => vec![lo],
            (BudgetRange::Uniform { lo, hi }, _) => (0..n)
                .map(|i| lo + ((hi - lo) as f64 * i as f64 / (n - 1) as f64).round() as u64)
                .collect(),
        }
    }
}

impl fmt::Display for BudgetRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetRange::Off => f.write_str("off"),
            BudgetRange::Uniform { lo, hi } => write!(f, "{lo}:{hi}"),
        }
    }
}

impl FromStr for BudgetRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "off" {
            return Ok(BudgetRange::Off);
        }
        let Some((a, b)) = s.split_once(':') else {
            return Err(format!(
                "`{s}`: expected LO:HI strong tokens (for example 100:800) or `off`"
            ));
        };
        let num = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{v}` in `{s}` is not a whole number of tokens"))
        };
        let (lo, hi) = (num(a)?, num(b)?);
        if lo >= hi || hi > MAX_BUDGET {
            return Err(format!("`{s}`: need LO < HI <= {MAX_BUDGET}"));
        }
        Ok(BudgetRange::Uniform { lo, hi })
    }
}

impl TryFrom<String> for BudgetRange {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<BudgetRange> for String {
    fn from(r: BudgetRange) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_draw_and_grid() {
        let r: BudgetRange = "100:800".parse().unwrap();
        assert_eq!(r.to_string().parse::<BudgetRange>().unwrap(), r);
        assert_eq!((r.at(0.0), r.at(0.999_999)), (100, 800));
        assert_eq!(r.grid(3), vec![100, 450, 800]);
        for bad in ["", "100", "800:100", "1:1", "-1:5", "1.5:9", "0:99999999"] {
            assert!(bad.parse::<BudgetRange>().is_err(), "{bad}");
        }
        assert!(BudgetRange::Off.grid(3).is_empty());
    }
}
