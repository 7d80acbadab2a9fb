//! Parameter sources of TRIM-POMDP models (issue 10, source (a)): the official release's
//! artifacts, vendored in `data/calibration/trim_official/`.

use std::path::Path;

use serde::Deserialize;
use trim_data::StepState;
use trim_data::synth::hazard::Hazard;
use trim_data::synth::inputs::{STRONG_TRANSITIONS_JSON, WEAK_TRANSITIONS_JSON};
use trim_data::synth::obs_model::ObsModel;
use trim_pomdp::PomdpModel;
use trim_pomdp::model_file::ModelSource;

/// Tokens the release charges per future regeneration.
pub const RELEASE_FUTURE_TOKENS: f64 = 60.0;

#[derive(Deserialize)]
struct Transitions {
    accuracy: f64,
}

/// The release's math-train model: the Qwen2.5-Math-PRM-7B observation distributions fitted on
/// ProcessBench (20×20 bins of 0.05), next-step accuracies p_w = 0.8660 (Qwen2.5-1.5B-Instruct)
/// and p_s = 0.9704 (Qwen2.5-7B-Instruct) on MATH-train, the weak model's termination hazard
/// (the release's solver uses it), 60 tokens per future regeneration.
pub fn official_math_train() -> anyhow::Result<(PomdpModel, ModelSource)> {
    let obs = ObsModel::math_train();
    let table = |s: StepState| {
        let t = obs.joint(s);
        let total: f64 = t.iter().sum();
        t.iter().map(|p| p / total).collect::<Vec<f64>>()
    };
    let acc = |text: &str, name: &str| -> anyhow::Result<f64> {
        let t: Transitions = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("vendored {name} transition parameters: {e}"))?;
        Ok(t.accuracy)
    };
    let hazard = Hazard::weak_math_train();
    let mut h = hazard.values().to_vec();
    if let Some(last) = h.last_mut() {
        *last = 1.0;
    }
    let model = PomdpModel {
        bins: obs.bins(),
        obs: [
            table(StepState::S0),
            table(StepState::S1),
            table(StepState::S2),
        ],
        p_w: acc(WEAK_TRANSITIONS_JSON, "weak")?,
        p_s: acc(STRONG_TRANSITIONS_JSON, "strong")?,
        hazard: h,
        future_tokens: RELEASE_FUTURE_TOKENS,
    };
    model
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", Path::new("<official model>").display()))?;
    let source = ModelSource {
        name: "official".into(),
        description: format!(
            "TRIM release 5ec6323: math-train obs distributions (bin 0.05), p_w {:.4}, p_s {:.4}, \
             weak terminal predictor, {RELEASE_FUTURE_TOKENS} future tokens",
            model.p_w, model.p_s
        ),
        data: None,
        data_fingerprint: None,
        split: None,
    };
    Ok((model, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_model_has_the_release_figures() {
        let (m, _) = official_math_train().unwrap();
        assert_eq!(m.bins, 20);
        assert!((m.p_w - 0.8660).abs() < 1e-4 && (m.p_s - 0.9704).abs() < 1e-4);
        assert_eq!(m.max_steps(), 30);
        // trim-paper.md §2.4: weak hazard for k = 2..4 is 0.028, 0.049, 0.092.
        assert!((m.hazard[2] - 0.028).abs() < 1e-3 && (m.hazard[4] - 0.092).abs() < 1e-3);
        // E[current] per state: S0 0.934, S1 0.614, S2 0.297 (bin centres).
        let mean_current = |s: usize| {
            (0..400)
                .map(|o| m.obs[s][o] * ((o % 20) as f64 + 0.5) * 0.05)
                .sum::<f64>()
        };
        assert!((mean_current(0) - 0.934).abs() < 0.01);
        assert!((mean_current(1) - 0.614).abs() < 0.01);
        assert!((mean_current(2) - 0.297).abs() < 0.01);
    }
}
