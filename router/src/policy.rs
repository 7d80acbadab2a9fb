//! Any exported policy behind one interface: `Policy::load(dir)` reads the export's manifest
//! kind and loads a TRIM-Agg network, a TRIM-POMDP table or a TRIM-Seq network, each verified;
//! all decide from the per-step inputs ([`StepObservation`]; TRIM-Seq also reads the kept
//! steps' token counts and regenerated flags).

use std::path::Path;

use serde::Serialize;

use crate::error::RouterError;
use crate::load::read_manifest_head;
use crate::manifest::MANIFEST;
use crate::pomdp::{PomdpDecision, PomdpRouter};
use crate::pomdp_export::{POMDP_KIND, PomdpManifest};
use crate::router::{Decision, Router, StepObservation};
use crate::seq_export::{SEQ_EXPORT_KIND, SeqManifest, load_seq_dir};
use crate::seq_router::SeqRouter;

/// A loaded, verified export of either family.
#[derive(Clone, Debug)]
pub enum Policy {
    /// A TRIM-Agg network (`trim export --checkpoint`).
    Agg(Box<Router>),
    /// A TRIM-POMDP table (`trim export --pomdp`).
    Pomdp(Box<PomdpRouter>, Box<PomdpManifest>),
    /// A TRIM-Seq network (`trim export --checkpoint` of a `policy = seq` run).
    Seq(Box<SeqRouter>, Box<SeqManifest>),
}

/// One decision of any family, with what each can say about it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PolicyDecision {
    /// A network's decision (TRIM-Agg or TRIM-Seq): probability and logits.
    Agg(Decision),
    Pomdp(PomdpDecision),
}

impl PolicyDecision {
    /// True: regenerate this step with the strong model.
    pub fn regenerate(&self) -> bool {
        match self {
            PolicyDecision::Agg(d) => d.regenerate,
            PolicyDecision::Pomdp(d) => d.regenerate,
        }
    }
}

impl Policy {
    /// Load the export in `dir`, whatever its kind, verifying everything before use.
    pub fn load(dir: &Path) -> Result<Self, RouterError> {
        let (_, kind) = read_manifest_head(&dir.join(MANIFEST))?;
        match kind.as_deref() {
            None => Ok(Policy::Agg(Box::new(Router::load(dir)?))),
            Some(POMDP_KIND) => {
                let (r, m) = PomdpRouter::load_export(dir)?;
                Ok(Policy::Pomdp(Box::new(r), Box::new(m)))
            }
            Some(SEQ_EXPORT_KIND) => {
                let (r, m) = load_seq_dir(dir)?;
                Ok(Policy::Seq(Box::new(r), Box::new(m)))
            }
            Some(other) => Err(RouterError::invalid(
                dir.join(MANIFEST),
                format!(
                    "kind {other:?} is not one this router serves (TRIM-Agg, {POMDP_KIND}, \
                     {SEQ_EXPORT_KIND})"
                ),
            )),
        }
    }

    /// Cost per strong token the policy was trained or solved for.
    pub fn lambda(&self) -> Option<f64> {
        match self {
            Policy::Agg(r) => r.manifest().map(|m| m.lambda),
            Policy::Pomdp(r, _) => Some(r.lambda()),
            Policy::Seq(_, m) => Some(m.lambda),
        }
    }

    /// Decide on the current weak step from the raw per-step inputs.
    pub fn decide_step(&self, step: &StepObservation) -> Result<PolicyDecision, String> {
        Ok(match self {
            Policy::Agg(r) => PolicyDecision::Agg(r.decide_step(step)?),
            Policy::Pomdp(r, _) => PolicyDecision::Pomdp(r.decide_step(step)?),
            Policy::Seq(r, _) => PolicyDecision::Agg(r.decide_step(step)?),
        })
    }
}
