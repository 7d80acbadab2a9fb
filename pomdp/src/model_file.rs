//! A TRIM-POMDP model as a self-checking JSON file (`trim pomdp fit --out`): the model and where
//! it came from on the first line, `{"content_sha256": …}` of that line on the second — the same
//! layout as a solution file, so one reader verifies both.
//!
//! The provenance travels with the model into every solution run directory and export, so a
//! served table can always be traced back to the artifacts or the dataset it was fitted on.

use serde::{Deserialize, Serialize};

use crate::file::{FileError, verified_body, with_checksum};
use crate::model::PomdpModel;

/// The `format` field of a model file.
pub const MODEL_FORMAT: &str = "trim-pomdp-model/1";

/// Where a model came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSource {
    /// `official`, `fit`, `reference`, or a file's name for models read from disk.
    pub name: String,
    /// One line: the artifacts or data, the estimator, the bin size.
    pub description: String,
    /// The dataset or synth spec fitted on (none for the official artifacts).
    #[serde(default)]
    pub data: Option<String>,
    /// Its sha256 or world fingerprint.
    #[serde(default)]
    pub data_fingerprint: Option<String>,
    /// The split fitted on.
    #[serde(default)]
    pub split: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFileBody {
    format: String,
    source: ModelSource,
    model: PomdpModel,
}

/// A model and its provenance as checksummed JSON text.
pub fn model_to_json(model: &PomdpModel, source: &ModelSource) -> String {
    let body = ModelFileBody {
        format: MODEL_FORMAT.into(),
        source: source.clone(),
        model: model.clone(),
    };
    with_checksum(serde_json::to_string(&body).unwrap_or_default())
}

/// Read a model file: format and every model value are verified, and the checksum when the file
/// has one. A file whose last line is not a checksum line is a hand-written model (any JSON
/// layout): users bring their own estimates; it is validated all the same.
pub fn model_from_json(text: &str) -> Result<(PomdpModel, ModelSource), FileError> {
    let last = text.trim_end().lines().last().unwrap_or("");
    match last.trim_start().starts_with("{\"content_sha256\"") {
        true => model_from_body(verified_body(text, "the model")?),
        false => model_from_body(text),
    }
}

/// Parse and validate the JSON of a model file without its checksum line.
pub fn model_from_body(body: &str) -> Result<(PomdpModel, ModelSource), FileError> {
    let f: ModelFileBody =
        serde_json::from_str(body).map_err(|e| FileError::Parse(e.to_string()))?;
    if f.format != MODEL_FORMAT {
        return Err(FileError::Format(f.format, MODEL_FORMAT));
    }
    f.model
        .validate()
        .map_err(|e| FileError::Invalid(format!("model: {e}")))?;
    Ok((f.model, f.source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::tiny;

    fn source() -> ModelSource {
        ModelSource {
            name: "fit".into(),
            description: "test".into(),
            data: Some("synth:math500".into()),
            data_fingerprint: Some("abc".into()),
            split: Some("train".into()),
        }
    }

    #[test]
    fn a_model_file_round_trips_and_bad_values_are_named() {
        let m = tiny();
        let text = model_to_json(&m, &source());
        let (back, src) = model_from_json(&text).unwrap();
        assert!(back == m && src == source());
        let body = text.lines().next().unwrap();
        let cases = [
            ("\"p_w\":0.8", "\"p_w\":-0.2", "p_w"),
            ("\"p_w\":0.8", "\"p_w\":NaN", "expected value"),
            ("\"hazard\":[0.0,", "\"hazard\":[1.5,", "hazard"),
        ];
        for (from, to, named) in cases {
            assert!(body.contains(from), "{from}");
            let bad = body.replacen(from, to, 1);
            let e = model_from_body(&bad).unwrap_err().to_string();
            assert!(e.contains(named), "{from} → {to}: {e}");
            // With a recomputed checksum the value is still refused.
            let e = model_from_json(&with_checksum(bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains(named), "{e}");
        }
        // Observation table not summing to 1.
        let mut skew = m.clone();
        skew.obs[1][0] += 0.1;
        let e = model_from_body(model_to_json(&skew, &source()).lines().next().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("obs"), "{e}");
        // A hand-written (pretty, no checksum line) model loads and is validated.
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(body).unwrap())
                .unwrap();
        assert!(model_from_json(&pretty).unwrap().0 == m);
        let e = model_from_json(&pretty.replacen("\"p_s\": 0.95", "\"p_s\": 1.95", 1));
        assert!(e.unwrap_err().to_string().contains("p_s"));
        // Damage is refused by the checksum, a solution file by its format.
        let damaged = text.replacen("\"p_s\":0.9", "\"p_s\":0.8", 1);
        assert!(matches!(
            model_from_json(&damaged),
            Err(FileError::Checksum { .. })
        ));
        let sol = &crate::solve::solve(&m, 4, &[1e-3]).unwrap()[0];
        assert!(matches!(
            model_from_json(&sol.to_json(&m)),
            Err(FileError::Parse(_) | FileError::Format(..))
        ));
    }
}
