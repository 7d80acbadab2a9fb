//! The export of a TRIM-POMDP run (`trim export --pomdp RUN_DIR`): `policy.json` with
//! `"kind": "trim-pomdp"` (belief rule, inputs, actions, λ, the model's provenance, the solve
//! configuration and evaluation, the sha256 of every other file), `pomdp_solution.json` (model +
//! continuation table, itself checksummed) and `parity.json` (fixed step histories and the
//! decisions the exporter made on them). Defined here, beside the TRIM-Agg manifest, so the
//! writer and every reader share one schema.
//!
//! No ONNX graph: the policy is a table lookup after a belief update — a bin lookup in a 2-D
//! observation table, a division, a comparison (the closeness shortcut) and a barycentric
//! interpolation on a triangulated simplex — which is data-dependent indexing, not a tensor
//! program; the pure-Python reference router (`scripts/python/trim_pomdp_router.py`) is the
//! portable form, checked against the same parity fixture.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::Rng;
use trim_pomdp::{ModelSource, Solution};

use crate::error::RouterError;
use crate::load::{read_listed, read_manifest_head};
use crate::manifest::{ActionSpec, MANIFEST, PARITY};
use crate::pomdp::PomdpRouter;
use crate::router::StepObservation;

/// `kind` of a TRIM-POMDP export.
pub const POMDP_KIND: &str = "trim-pomdp";
/// The solution file of a TRIM-POMDP export.
pub const POMDP_SOLUTION: &str = "pomdp_solution.json";
/// Every file a TRIM-POMDP export lists besides the manifest.
pub const POMDP_FILES: [&str; 2] = [POMDP_SOLUTION, PARITY];

/// How the belief over the current step's state is formed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeliefRuleSpec {
    /// `release`: the only rule that needs no more than the per-step inputs.
    pub name: String,
    /// Keep the step without consulting the table when `max(b) − b[S2] ≥ closeness` (null: never).
    pub closeness: Option<f64>,
    pub description: String,
}

/// `policy.json` of a TRIM-POMDP export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PomdpManifest {
    pub format: String,
    pub format_version: u32,
    /// [`POMDP_KIND`].
    pub kind: String,
    /// The per-step inputs and how each is used.
    pub inputs: Vec<String>,
    pub belief_rule: BeliefRuleSpec,
    pub decision: String,
    pub actions: Vec<ActionSpec>,
    /// Cost per strong token the table was solved for.
    pub lambda: f64,
    pub grid_divisions: usize,
    /// Where the model came from.
    pub model_source: ModelSource,
    /// The run's `config.json` (how it was solved).
    pub solve: serde_json::Value,
    /// The run's `summary.json`, or null.
    pub evaluation: serde_json::Value,
    /// sha256 of every other file, by name.
    pub files: BTreeMap<String, String>,
}

/// `parity.json` of a TRIM-POMDP export: steps and the exporter's decisions on them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PomdpParity {
    pub steps: Vec<StepObservation>,
    pub regenerate: Vec<bool>,
}

/// `n` fixed step histories (0–14 kept steps; PRM scores clustered near 0 and 1 and spread
/// between, where shortcut and table both decide), deterministic in `seed`.
pub fn parity_steps(n: usize, seed: u64) -> Vec<StepObservation> {
    let mut rng = Rng::new(seed);
    let score = |rng: &mut Rng| match rng.below(3) {
        0 => rng.f32() * 0.1,
        1 => 0.9 + rng.f32() * 0.1,
        _ => rng.f32(),
    };
    (0..n)
        .map(|i| {
            let k = rng.below(15) as usize;
            let prev_prm = (0..k).map(|_| score(&mut rng)).collect();
            StepObservation {
                id: Some(serde_json::json!(i)),
                prev_prm,
                prm: score(&mut rng),
                tokens: 1 + rng.below(300) as u32,
                prev_tokens: vec![],
                prev_regenerated: vec![],
                lambda: None,
                budget: None,
                budget_left: None,
            }
        })
        .collect()
}

impl PomdpManifest {
    /// What a reader relies on beyond the schema: kind, a known belief rule with a closeness in
    /// [0, 1], a finite λ ≥ 0, only known files.
    pub fn check(&self) -> Result<(), String> {
        if self.kind != POMDP_KIND {
            return Err(format!("kind {:?} is not {POMDP_KIND:?}", self.kind));
        }
        let r = &self.belief_rule;
        if r.name != "release" || r.closeness.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
            return Err(format!(
                "belief_rule {:?} (closeness {:?}) is not one this router serves (release, closeness in [0, 1])",
                r.name, r.closeness
            ));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(format!("lambda {} is not a finite cost >= 0", self.lambda));
        }
        if let Some(f) = (self.files.keys()).find(|f| !POMDP_FILES.contains(&f.as_str())) {
            return Err(format!("files lists unknown file {f}"));
        }
        Ok(())
    }
}

/// Read and verify a TRIM-POMDP export: manifest, checksums, the solution file (its own
/// checksum, model, table shape), agreement of λ, and the parity fixture reproduced.
pub(crate) fn load_pomdp_dir(dir: &Path) -> Result<(PomdpRouter, PomdpManifest), RouterError> {
    let mpath = dir.join(MANIFEST);
    let (text, kind) = read_manifest_head(&mpath)?;
    if kind.as_deref() != Some(POMDP_KIND) {
        return Err(RouterError::invalid(
            &mpath,
            format!("kind {kind:?} is not {POMDP_KIND:?}: load it with trim_router::Policy::load"),
        ));
    }
    let m: PomdpManifest =
        serde_json::from_str(&text).map_err(|e| RouterError::invalid(&mpath, e))?;
    m.check().map_err(|e| RouterError::invalid(&mpath, e))?;
    let sol_path = dir.join(POMDP_SOLUTION);
    let bytes = read_listed(dir, &m.files, POMDP_SOLUTION)?;
    let text = String::from_utf8(bytes).map_err(|e| RouterError::invalid(&sol_path, e))?;
    let (solution, model) =
        Solution::from_json(&text).map_err(|e| RouterError::invalid(&sol_path, e))?;
    if solution.lambda != m.lambda || solution.grid().divisions() != m.grid_divisions {
        return Err(RouterError::invalid(
            &mpath,
            "lambda or grid_divisions differ from the solution's",
        ));
    }
    let router = PomdpRouter::new(model, solution, m.belief_rule.closeness);
    let ppath = dir.join(PARITY);
    let fixture: PomdpParity = serde_json::from_slice(&read_listed(dir, &m.files, PARITY)?)
        .map_err(|e| RouterError::invalid(&ppath, e))?;
    check_parity(&router, &fixture).map_err(|e| RouterError::invalid(&ppath, e))?;
    Ok((router, m))
}

/// The router must reproduce every decision of the fixture.
fn check_parity(router: &PomdpRouter, f: &PomdpParity) -> Result<(), String> {
    if f.steps.is_empty() || f.steps.len() != f.regenerate.len() {
        return Err("the fixture needs as many decisions as steps (and at least one)".into());
    }
    for (i, (s, &want)) in f.steps.iter().zip(&f.regenerate).enumerate() {
        let got = router
            .decide_step(s)
            .map_err(|e| format!("step {i}: {e}"))?;
        if got.regenerate != want {
            return Err(format!(
                "step {i}: the table decides regenerate = {}, the exporter decided {want}",
                got.regenerate
            ));
        }
    }
    Ok(())
}
