//! [`LambdaRange`]: the λ range of a λ-conditioned policy (`--lambda-range 1e-5:1e-2`), or
//! `off` for a policy trained at the one `lambda`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::MAX_LAMBDA;

/// Validation points of a conditioned run: the λ grid its greedy policy is scored on.
pub const VALIDATION_GRID: usize = 8;

/// Where the λ of each training episode comes from. A conditioned policy takes log λ as an
/// input; each episode draws λ log-uniformly from `[lo, hi]` and its reward uses that λ, so one
/// policy learns the whole accuracy–cost frontier of the range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum LambdaRange {
    /// Not conditioned: every episode uses the run's `lambda`.
    #[default]
    Off,
    /// Log-uniform over `[lo, hi]`, `0 < lo < hi <= MAX_LAMBDA`.
    LogUniform { lo: f64, hi: f64 },
}

impl LambdaRange {
    /// `(lo, hi)` of a conditioned range.
    pub fn bounds(self) -> Option<(f64, f64)> {
        match self {
            LambdaRange::Off => None,
            LambdaRange::LogUniform { lo, hi } => Some((lo, hi)),
        }
    }

    /// The λ at quantile `u ∈ [0, 1)` of the log-uniform distribution (`lo` when off).
    pub fn at(self, u: f64) -> f64 {
        match self {
            LambdaRange::Off => f64::NAN,
            LambdaRange::LogUniform { lo, hi } => (lo.ln() + u * (hi.ln() - lo.ln())).exp(),
        }
    }

    /// `n` log-spaced points from `lo` to `hi` inclusive (empty when off).
    pub fn grid(self, n: usize) -> Vec<f64> {
        match (self, n) {
            (LambdaRange::Off, _) | (_, 0) => vec![],
            (LambdaRange::LogUniform { lo, .. }, 1) => vec![lo],
            _ => (0..n).map(|i| self.at(i as f64 / (n - 1) as f64)).collect(),
        }
    }

    /// Whether `lambda` lies in the range (with a relative tolerance for printed values).
    pub fn contains(self, lambda: f64) -> bool {
        self.bounds()
            .is_some_and(|(lo, hi)| lambda >= lo * (1.0 - 1e-9) && lambda <= hi * (1.0 + 1e-9))
    }
}

impl fmt::Display for LambdaRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LambdaRange::Off => f.write_str("off"),
            LambdaRange::LogUniform { lo, hi } => write!(f, "{lo:e}:{hi:e}"),
        }
    }
}

impl FromStr for LambdaRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "off" {
            return Ok(LambdaRange::Off);
        }
        let Some((a, b)) = s.split_once(':') else {
            return Err(format!(
                "`{s}`: expected LO:HI (for example 1e-5:1e-2) or `off`"
            ));
        };
        let num = |v: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{v}` in `{s}` is not a number"))
        };
        let (lo, hi) = (num(a)?, num(b)?);
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < hi && hi <= MAX_LAMBDA) {
            return Err(format!(
                "`{s}`: need 0 < LO < HI <= {MAX_LAMBDA} (λ is drawn log-uniformly, so LO > 0)"
            ));
        }
        Ok(LambdaRange::LogUniform { lo, hi })
    }
}

impl TryFrom<String> for LambdaRange {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<LambdaRange> for String {
    fn from(r: LambdaRange) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_round_trip_and_bad_ranges_are_named() {
        let r: LambdaRange = "1e-5:1e-2".parse().unwrap();
        assert_eq!(r, LambdaRange::LogUniform { lo: 1e-5, hi: 1e-2 });
        assert_eq!(r.to_string().parse::<LambdaRange>().unwrap(), r);
        assert_eq!("off".parse::<LambdaRange>().unwrap(), LambdaRange::Off);
        for bad in [
            "",
            "1e-3",
            "0:1e-2",
            "1e-2:1e-3",
            "1e-3:2",
            "x:1",
            "1e-3:nan",
            "-1:1",
        ] {
            assert!(bad.parse::<LambdaRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn grid_is_log_spaced_and_inclusive() {
        let r: LambdaRange = "1e-4:1e-2".parse().unwrap();
        let g = r.grid(3);
        assert!((g[0] - 1e-4).abs() < 1e-12 && (g[1] - 1e-3).abs() < 1e-12);
        assert!((g[2] - 1e-2).abs() < 1e-12);
        assert!(r.contains(1e-3) && !r.contains(2e-2) && !r.contains(5e-5));
        assert!(LambdaRange::Off.grid(4).is_empty());
    }
}
