//! [`PolicyKind`]: which policy family a run trains (`--policy agg|seq`, `policy = "seq"`).

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
    /// The family's name in reports.
    pub fn display_name(self) -> &'static str {
        match self {
            PolicyKind::Agg => "TRIM-Agg",
            PolicyKind::Seq => "TRIM-Seq",
        }
    }
}

// The words are the families' `crate::family::Family::NAME`s.
word_enum!(PolicyKind, "policy", [Agg => "agg", Seq => "seq"]);

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
