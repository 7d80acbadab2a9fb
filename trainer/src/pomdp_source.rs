//! Where `trim pomdp` and the evaluation suite get their TRIM-POMDP models, each with its
//! provenance: (a) the official release's artifacts, (b) a fit on a dataset's state labels,
//! (c) a synthetic world's Bayes reference (a fit on fresh problems of its generator), or a
//! model file written by `trim pomdp fit --out`.

use std::path::{Path, PathBuf};

use trim_data::DataSource;
use trim_pomdp::PomdpModel;
use trim_pomdp::model_file::{ModelSource, model_from_json};

use crate::pomdp_fit::{fit_lazy, fit_stored, reference_model};

/// Seed of the random-router episodes a fit simulates.
const FIT_SEED: u64 = 1;

/// A `--model` / `--source` argument.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// The release's math-train artifacts.
    Official,
    /// Fitted on the state labels of `--data`.
    Fit,
    /// Fitted on fresh problems of the `--data` synth world's generator.
    Reference,
    /// A model file (`trim pomdp fit --out`).
    File(PathBuf),
}

impl ModelSpec {
    /// `official`, `fit`, `reference`, or a path to a model file.
    pub fn parse(s: &str) -> Self {
        match s {
            "official" => ModelSpec::Official,
            "fit" => ModelSpec::Fit,
            "reference" => ModelSpec::Reference,
            path => ModelSpec::File(PathBuf::from(path)),
        }
    }
}

/// The dataset a model is fitted on: its name as given, the opened source and the split.
pub struct FitData<'a> {
    pub path: &'a Path,
    pub source: &'a DataSource,
    pub split: &'a str,
}

/// The model `spec` names, with its provenance (`bins` per observation axis for fits).
pub fn resolve(
    spec: &ModelSpec,
    data: Option<&FitData<'_>>,
    bins: usize,
) -> anyhow::Result<(PomdpModel, ModelSource)> {
    match (spec, data) {
        (ModelSpec::Official, _) => crate::pomdp_models::official_math_train(),
        (ModelSpec::File(p), _) => read_model_file(p),
        (ModelSpec::Fit, Some(d)) => fit_on(d, bins),
        (ModelSpec::Reference, Some(d)) => match d.source {
            DataSource::Lazy(z) => Ok((
                reference_model(z)?,
                ModelSource {
                    name: "reference".into(),
                    description: format!(
                        "Bayes reference: fitted on {} fresh problems of the generator of {} \
                         (random-router episodes, 20×20 bins of 0.05)",
                        crate::pomdp_fit::REFERENCE_PROBLEMS,
                        z.spec.spec
                    ),
                    data: Some(z.spec.spec.clone()),
                    data_fingerprint: Some(z.fingerprint.clone()),
                    split: None,
                },
            )),
            DataSource::Stored(_) => anyhow::bail!(
                "the reference model needs a synth world (`--data 'synth:…'`), not the stored \
                 file {}: its generator is unknown",
                d.path.display()
            ),
        },
        (ModelSpec::Fit | ModelSpec::Reference, None) => {
            anyhow::bail!("fitting a model needs --data (a labelled dataset or a synth spec)")
        }
    }
}

/// Fit on the state labels of `d`'s split (source (b)).
pub fn fit_on(d: &FitData<'_>, bins: usize) -> anyhow::Result<(PomdpModel, ModelSource)> {
    let model = match d.source {
        DataSource::Stored(l) => fit_stored(l, d.split, bins, FIT_SEED)?,
        DataSource::Lazy(z) => {
            let problems = z.world.problems_in_split(d.split);
            anyhow::ensure!(
                !problems.is_empty(),
                "{}: no problems in split `{}` to fit on",
                d.path.display(),
                d.split
            );
            fit_lazy(&z.world, &problems, bins, FIT_SEED)?
        }
    };
    let source = ModelSource {
        name: "fit".into(),
        description: format!(
            "fitted on the state labels of {} (split {}): 4 random-router episodes per tree, \
             {bins}×{bins} observation bins of {:.3} with add-constant smoothing, p_w/p_s along \
             correct paths, hazard per step",
            d.path.display(),
            d.split,
            1.0 / bins as f64
        ),
        data: Some(d.path.display().to_string()),
        data_fingerprint: Some(d.source.fingerprint(d.path)?),
        split: Some(d.split.into()),
    };
    Ok((model, source))
}

/// Read and verify a model file (format, checksum, every value), naming the file on error.
pub fn read_model_file(path: &Path) -> anyhow::Result<(PomdpModel, ModelSource)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read model file {}: {e}", path.display()))?;
    model_from_json(&text).map_err(|e| anyhow::anyhow!("model file {}: {e}", path.display()))
}
