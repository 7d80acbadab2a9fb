//! [`PolicyKind`]: which policy family a run trains (`--policy agg|seq`, `policy = "seq"`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The policy family of a run; recorded in the run's config and every checkpoint, so resume,
/// evaluation and export pick the same family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PolicyKind {
    /// TRIM-Agg: the MLP over five aggregated features.
    #[default]
    Agg,
    /// TRIM-Seq: the causal transformer over the per-step history.
    Seq,
}

impl PolicyKind {
    /// The family's name (`crate::family::Family::NAME`).
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Agg => "agg",
            PolicyKind::Seq => "seq",
        }
    }

    /// The family's name in reports.
    pub fn display_name(self) -> &'static str {
        match self {
            PolicyKind::Agg => "TRIM-Agg",
            PolicyKind::Seq => "TRIM-Seq",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "agg" => Ok(PolicyKind::Agg),
            "seq" => Ok(PolicyKind::Seq),
            other => Err(format!("policy `{other}` is not one of: agg, seq")),
        }
    }
}

impl From<PolicyKind> for String {
    fn from(p: PolicyKind) -> String {
        p.name().into()
    }
}

impl TryFrom<String> for PolicyKind {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_families_are_named() {
        for p in [PolicyKind::Agg, PolicyKind::Seq] {
            assert_eq!(p.name().parse::<PolicyKind>().unwrap(), p);
        }
        let e = "transformer".parse::<PolicyKind>().unwrap_err();
        assert!(e.contains("transformer") && e.contains("agg, seq"), "{e}");
        let e = toml::from_str::<crate::config::ConfigOverrides>("policy = \"mlp\"").unwrap_err();
        assert!(e.to_string().contains("mlp"), "{e}");
    }
}
