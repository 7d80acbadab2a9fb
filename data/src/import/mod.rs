//! Importers: real third-party data turned into rollout trees, with provenance in the metadata.
//! One module per source; they build on [`crate::synth`] (latent and observation models), never
//! the other way round.

pub mod gsm8k;
pub mod paths;
pub mod processbench;

/// A fresh, empty temp directory `trim-<tag>-<name>-<pid>` for an importer's tests.
#[cfg(test)]
pub(crate) fn tmpdir(tag: &str, name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("trim-{tag}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
