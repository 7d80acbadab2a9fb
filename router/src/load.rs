//! Loading an export directory and verifying it before a single decision is made: manifest
//! format and version, the manifest's own consistency ([`Manifest::check`]), the sha256 of every
//! listed file, every tensor's name, shape and finiteness, and the parity fixture reproduced by
//! both the safetensors weights and the ONNX graph.

use std::path::Path;

use trim_env::checksum::sha256_hex;

use crate::agg::AggNet;
use crate::error::RouterError;
use crate::manifest::{FORMAT, FORMAT_VERSION, MANIFEST, Manifest, ONNX, PARITY, SAFETENSORS};
use crate::parity::{ParityFixture, max_abs_diff, onnx_max_abs_diff};
use crate::safetensors;

/// A verified export: its manifest and the network rebuilt from its safetensors.
pub(crate) struct Verified {
    pub manifest: Manifest,
    pub net: AggNet,
}

/// Rebuild the TRIM-Agg network from safetensors bytes, checking every name and shape, that
/// every value is finite, and that no tensor is left over.
pub fn weights_from_safetensors(
    bytes: &[u8],
    input_dim: usize,
    hidden: usize,
) -> Result<AggNet, String> {
    safetensors::rebuild(bytes, |get| {
        AggNet::from_named_params(input_dim, hidden, |e| e, get)
    })
}

/// Read and verify the export in `dir`.
pub(crate) fn load_dir(dir: &Path) -> Result<Verified, RouterError> {
    let mpath = dir.join(MANIFEST);
    let (text, kind) = read_manifest_head(&mpath)?;
    if let Some(kind) = kind {
        return Err(RouterError::invalid(
            &mpath,
            format!(
                "this is a `{kind}` export, not TRIM-Agg: load it with trim_router::Policy::load"
            ),
        ));
    }
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| RouterError::invalid(&mpath, e))?;
    manifest
        .check()
        .map_err(|e| RouterError::invalid(&mpath, e))?;
    if !manifest.files.contains_key(SAFETENSORS) {
        return Err(RouterError::invalid(
            dir,
            "no policy.safetensors in this export (ONNX-only exports are for onnxruntime; re-export with --format safetensors or all)",
        ));
    }
    let st = read_checked(dir, &manifest, SAFETENSORS)?;
    let arch = &manifest.architecture;
    let net = weights_from_safetensors(&st, arch.input_dim, arch.hidden)
        .map_err(|e| RouterError::invalid(dir.join(SAFETENSORS), e))?;
    let spec: Vec<_> = net
        .named_params()
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect();
    let listed: Vec<_> = (manifest.architecture.params.iter())
        .map(|p| (p.name.clone(), p.shape.clone()))
        .collect();
    if spec != listed {
        return Err(RouterError::invalid(
            &mpath,
            "architecture.params do not match the tensors of policy.safetensors",
        ));
    }
    let fixture: ParityFixture = serde_json::from_slice(&read_checked(dir, &manifest, PARITY)?)
        .map_err(|e| RouterError::invalid(dir.join(PARITY), e))?;
    check_parity(dir, &net, &fixture)?;
    if manifest.files.contains_key(ONNX) {
        let onnx = read_checked(dir, &manifest, ONNX)?;
        let d = onnx_max_abs_diff(&onnx, &fixture)
            .map_err(|e| RouterError::invalid(dir.join(ONNX), e))?;
        if d.is_nan() || d > fixture.tolerance {
            return Err(RouterError::invalid(
                dir.join(ONNX),
                format!("the graph reproduces the exported logits only within {d}"),
            ));
        }
    }
    Ok(Verified { manifest, net })
}

/// Read `policy.json` and check its format and version before any strict parse, so that a
/// newer export gets a version error rather than a schema error. Returns the text and the
/// export's `kind` (absent for TRIM-Agg exports, `trim-pomdp` for TRIM-POMDP ones).
pub(crate) fn read_manifest_head(mpath: &Path) -> Result<(String, Option<String>), RouterError> {
    let text = std::fs::read_to_string(mpath).map_err(|e| {
        RouterError::io(
            mpath,
            format!("cannot read ({e}); is this a `trim export` directory?"),
        )
    })?;
    let head: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| RouterError::invalid(mpath, e))?;
    let (f, v) = (head.get("format"), head.get("format_version"));
    if f.and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(RouterError::invalid(
            mpath,
            format!("format is {f:?}, expected \"{FORMAT}\""),
        ));
    }
    if v.and_then(|v| v.as_u64()) != Some(u64::from(FORMAT_VERSION)) {
        return Err(RouterError::invalid(
            mpath,
            format!(
                "format_version {v:?} is not supported (this trim reads {FORMAT_VERSION}); re-export with this version"
            ),
        ));
    }
    let kind = match head.get("kind") {
        None => None,
        Some(serde_json::Value::String(k)) => Some(k.clone()),
        Some(k) => {
            return Err(RouterError::invalid(
                mpath,
                format!("kind {k} is not a string"),
            ));
        }
    };
    Ok((text, kind))
}

/// The bytes of a listed file whose sha256 matches the manifest.
fn read_checked(dir: &Path, manifest: &Manifest, name: &str) -> Result<Vec<u8>, RouterError> {
    read_listed(dir, &manifest.files, name)
}

/// The bytes of the file `name` of `dir` whose sha256 matches its entry in `files`.
pub(crate) fn read_listed(
    dir: &Path,
    files: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Result<Vec<u8>, RouterError> {
    let p = dir.join(name);
    let want = files.get(name).ok_or_else(|| {
        RouterError::invalid(dir.join(MANIFEST), format!("{name} is not listed in files"))
    })?;
    let bytes = std::fs::read(&p).map_err(|e| RouterError::io(&p, e))?;
    let got = sha256_hex(&bytes);
    if &got != want {
        return Err(RouterError::invalid(
            &p,
            format!(
                "sha256 {got} does not match policy.json ({want}): the file is corrupted or from another export"
            ),
        ));
    }
    Ok(bytes)
}

fn check_parity(dir: &Path, net: &AggNet, fixture: &ParityFixture) -> Result<(), RouterError> {
    if !(fixture.tolerance.is_finite() && fixture.tolerance >= 0.0) || fixture.obs.is_empty() {
        return Err(RouterError::invalid(
            dir.join(PARITY),
            "the fixture needs observations and a finite tolerance",
        ));
    }
    if fixture.logits.len() != fixture.obs.len() || fixture.probs.len() != fixture.obs.len() {
        return Err(RouterError::invalid(
            dir.join(PARITY),
            "obs, logits and probs have different lengths",
        ));
    }
    if let Some(i) = fixture.obs.iter().position(|o| o.len() != net.input_dim()) {
        return Err(RouterError::invalid(
            dir.join(PARITY),
            format!(
                "obs[{i}] has {} values; the network takes {}",
                fixture.obs[i].len(),
                net.input_dim()
            ),
        ));
    }
    let diff = max_abs_diff(net, fixture);
    if diff.is_nan() || diff > fixture.tolerance {
        return Err(RouterError::invalid(
            dir,
            format!(
                "weights reproduce the exported logits only within {diff} (> {})",
                fixture.tolerance
            ),
        ));
    }
    Ok(())
}
