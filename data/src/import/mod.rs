//! Importers: real third-party data turned into rollout trees, with provenance in the metadata.

pub mod gsm8k;
pub mod paths;
pub mod processbench;
