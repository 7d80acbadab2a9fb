//! [`Kernels`]: which arithmetic trains a run's network (`--kernels auto|fused|burn`).

use serde::{Deserialize, Serialize};

use super::PolicyKind;

/// How a run's PPO updates are computed. Recorded in the run's config and every checkpoint: a
/// fused run keeps its Adam moments in the fused form, so a run resumes with the kernels it
/// started with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Kernels {
    /// Fused for the MLP families (TRIM-Agg, λ-conditioned, budget-aware) without dropout;
    /// burn otherwise.
    #[default]
    Auto,
    /// The hand-written forward/backward/Adam of `crate::fused` (MLP families, no dropout):
    /// ~3× faster per gradient step than burn on CPU.
    Fused,
    /// burn's autodiff and optimiser (every family; the path of runs recorded before the fused
    /// kernels existed).
    Burn,
}

impl Kernels {
    /// Whether a run of `policy` with `dropout` trains with the fused kernels; an explicit
    /// `fused` the kernels cannot serve is an error naming why.
    pub fn fused_for(self, policy: PolicyKind, dropout: f64) -> Result<bool, String> {
        let why_not = match (policy, dropout > 0.0) {
            (PolicyKind::Seq, _) => Some("TRIM-Seq trains through burn's autodiff"),
            (_, true) => Some("the fused kernels have no dropout; set dropout = 0"),
            _ => None,
        };
        match (self, why_not) {
            (Kernels::Burn, _) => Ok(false),
            (Kernels::Auto, w) => Ok(w.is_none()),
            (Kernels::Fused, None) => Ok(true),
            (Kernels::Fused, Some(w)) => Err(format!("fused with policy = {policy}: {w}")),
        }
    }
}

word_enum!(Kernels, "kernels", [Auto => "auto", Fused => "fused", Burn => "burn"]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_fused_only_where_the_kernels_apply() {
        let k = Kernels::Auto;
        assert_eq!(k.fused_for(PolicyKind::Agg, 0.0), Ok(true));
        assert_eq!(k.fused_for(PolicyKind::Agg, 0.1), Ok(false));
        assert_eq!(k.fused_for(PolicyKind::Seq, 0.0), Ok(false));
        assert_eq!(Kernels::Burn.fused_for(PolicyKind::Agg, 0.0), Ok(false));
        let e = Kernels::Fused.fused_for(PolicyKind::Seq, 0.0).unwrap_err();
        assert!(e.contains("TRIM-Seq"), "{e}");
        let e = Kernels::Fused.fused_for(PolicyKind::Agg, 0.1).unwrap_err();
        assert!(e.contains("dropout"), "{e}");
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for k in [Kernels::Auto, Kernels::Fused, Kernels::Burn] {
            assert_eq!(k.name().parse::<Kernels>().unwrap(), k);
        }
        let e = toml::from_str::<crate::config::ConfigOverrides>("kernels = \"simd\"").unwrap_err();
        assert!(e.to_string().contains("simd"), "{e}");
    }
}
