//! Export a TRIM-POMDP run directory (`trim pomdp solve --out`) for serving: `policy.json`
//! ([`PomdpManifest`], `"kind": "trim-pomdp"`), `pomdp_solution.json` (the run's solution file,
//! byte for byte, with its own checksum line) and `parity.json` (fixed step histories and the
//! decisions made on them here). `policy.json` is written last and the export is loaded back
//! through `trim_router::Policy` before the command succeeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use trim_env::checksum::sha256_hex;
use trim_pomdp::CLOSENESS_DEFAULT;
use trim_router::manifest::{FORMAT, FORMAT_VERSION, MANIFEST, PARITY};
use trim_router::pomdp_export::{
    BeliefRuleSpec, POMDP_KIND, POMDP_SOLUTION, PomdpManifest, PomdpParity, parity_steps,
};
use trim_router::{Policy, PomdpRouter};

use super::{ExportError, write};
use crate::pomdp_run::{SOLUTION, read_run};

/// Steps in the parity fixture.
const PARITY_STEPS: usize = 400;
/// Seed of the parity fixture's histories.
const PARITY_SEED: u64 = 2026;

/// What [`export_pomdp`] wrote.
pub struct PomdpExportReport {
    pub files: Vec<PathBuf>,
    /// Steps in the parity fixture.
    pub fixture_steps: usize,
    /// Regenerate decisions among the fixture's steps (a fixture of one action checks little).
    pub fixture_regenerations: usize,
}

/// Export the run in `run_dir` into `out` (created; a directory holding another kind of export
/// is refused, a TRIM-POMDP export is replaced file by file, atomically).
pub fn export_pomdp(run_dir: &Path, out: &Path) -> Result<PomdpExportReport, ExportError> {
    let run = read_run(run_dir).map_err(|e| ExportError::invalid(run_dir, e))?;
    refuse_other_exports(out)?;
    let sol_path = run_dir.join(SOLUTION);
    let solution_bytes = std::fs::read(&sol_path).map_err(|e| ExportError::io(&sol_path, e))?;
    let closeness = Some(CLOSENESS_DEFAULT);
    let router = PomdpRouter::new(run.model.clone(), run.solution.clone(), closeness);
    let steps = parity_steps(PARITY_STEPS, PARITY_SEED);
    let regenerate = (steps.iter())
        .map(|s| router.decide_step(s).map(|d| d.regenerate))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ExportError::invalid(run_dir, e))?;
    let parity = serde_json::to_vec_pretty(&PomdpParity {
        steps,
        regenerate: regenerate.clone(),
    })
    .map_err(|e| ExportError::invalid(out, e))?;
    std::fs::create_dir_all(out).map_err(|e| ExportError::io(out, e))?;
    let mut files = BTreeMap::new();
    let mut written = vec![];
    for (name, bytes) in [(POMDP_SOLUTION, &solution_bytes), (PARITY, &parity)] {
        write(&out.join(name), bytes)?;
        files.insert(name.to_string(), sha256_hex(bytes));
        written.push(out.join(name));
    }
    let manifest = PomdpManifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        kind: POMDP_KIND.into(),
        inputs: inputs(),
        belief_rule: BeliefRuleSpec {
            name: "release".into(),
            closeness,
            description:
                "b ∝ (1/3, 1/3, 1/3) × P(bin(min prev kept PRM), bin(current PRM) | state) \
                          (uniform prior each step, the release's rule); keep the step when \
                          max(b) − b[S2] ≥ closeness, else consult the table"
                    .into(),
        },
        decision: "regenerate iff Q(b, regenerate) − λ·tokens > Q(b, continue), Q interpolated \
                   barycentrically on the belief grid at step t+1 (1-based); past the table's \
                   horizon, the terminal values"
            .into(),
        actions: super::actions(),
        lambda: run.solution.lambda,
        grid_divisions: run.config.grid_divisions,
        model_source: run.source.clone(),
        solve: serde_json::to_value(&run.config).map_err(|e| ExportError::invalid(out, e))?,
        evaluation: serde_json::to_value(&run.summary).map_err(|e| ExportError::invalid(out, e))?,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| ExportError::invalid(out, e))?;
    write(&out.join(MANIFEST), &text)?;
    written.push(out.join(MANIFEST));
    Policy::load(out)?;
    Ok(PomdpExportReport {
        files: written,
        fixture_steps: PARITY_STEPS,
        fixture_regenerations: regenerate.iter().filter(|&&r| r).count(),
    })
}

fn inputs() -> Vec<String> {
    [
        "prev_prm: PRM scores of the steps already kept (weak, or strong if regenerated); only their minimum is used (1.0 when empty); their count t gives the step index t+1",
        "prm: PRM score of the current weak candidate step",
        "tokens: token count of the current weak candidate step (the immediate cost λ·tokens of regenerating it)",
    ]
    .map(String::from)
    .to_vec()
}

/// `out` must be absent, empty, or a TRIM-POMDP export (whose files are then replaced).
fn refuse_other_exports(out: &Path) -> Result<(), ExportError> {
    let Ok(mut entries) = std::fs::read_dir(out) else {
        return match out.exists() {
            true => Err(ExportError::invalid(out, "exists and is not a directory")),
            false => Ok(()),
        };
    };
    if entries.next().is_none() {
        return Ok(());
    }
    let head = std::fs::read_to_string(out.join(MANIFEST))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match head.as_ref().and_then(|h| h.get("kind")?.as_str()) {
        Some(POMDP_KIND) => Ok(()),
        _ => Err(ExportError::invalid(
            out,
            "holds files that are not a TRIM-POMDP export; export into an empty or new directory",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pomdp_run::{RunContents, SolveConfig, write_run};

    fn run_dir(dir: &Path) -> PathBuf {
        let (model, source) = crate::pomdp_models::official_math_train().unwrap();
        let sol = &trim_pomdp::solve(&model, 10, &[4e-4]).unwrap()[0];
        let config = SolveConfig {
            command: "test".into(),
            model: "official".into(),
            lambda: 4e-4,
            grid_step: 0.1,
            grid_divisions: 10,
            trim_version: "test".into(),
            git_revision: "test".into(),
            solve_seconds_per_lambda: 0.0,
        };
        let c = RunContents {
            solution: sol,
            model: &model,
            source: &source,
            config: &config,
            summary: None,
        };
        write_run(dir, &c).unwrap()
    }

    /// A fixture whose decisions the table does not reproduce is refused even when every
    /// checksum is consistent (e.g. a table swapped in by hand); so are a directory of another
    /// kind and loading a POMDP export as TRIM-Agg.
    #[test]
    fn inconsistent_exports_are_refused() {
        let dir = std::env::temp_dir().join(format!("trim-pomdp-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = run_dir(&dir.join("sols"));
        let out = dir.join("export");
        let rep = export_pomdp(&run, &out).unwrap();
        assert!(rep.fixture_regenerations > 0 && rep.fixture_regenerations < PARITY_STEPS);
        // Re-exporting into the same directory replaces it; Router::load names the right loader.
        export_pomdp(&run, &out).unwrap();
        let e = trim_router::Router::load(&out).unwrap_err().to_string();
        assert!(e.contains("Policy::load"), "{e}");
        // Flip one decision of the fixture and re-sign it in the manifest.
        let ppath = out.join(PARITY);
        let mut fixture: PomdpParity =
            serde_json::from_slice(&std::fs::read(&ppath).unwrap()).unwrap();
        fixture.regenerate[7] = !fixture.regenerate[7];
        let bytes = serde_json::to_vec(&fixture).unwrap();
        std::fs::write(&ppath, &bytes).unwrap();
        let mpath = out.join(MANIFEST);
        let mut m: PomdpManifest = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
        m.files.insert(PARITY.into(), sha256_hex(&bytes));
        std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
        let e = Policy::load(&out).unwrap_err().to_string();
        assert!(e.contains("step 7"), "{e}");
        // A closeness outside [0, 1] is refused by the manifest check.
        m.belief_rule.closeness = Some(1.5);
        std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(
            Policy::load(&out)
                .unwrap_err()
                .to_string()
                .contains("closeness")
        );
        // A directory holding something else is never written into.
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "mine").unwrap();
        assert!(export_pomdp(&run, &other).is_err());
        assert_eq!(
            std::fs::read_to_string(other.join("notes.txt")).unwrap(),
            "mine"
        );
    }

    /// Fuzz-style: a changed, removed or inserted byte in any file of a POMDP export is refused
    /// (never a panic) or, where it cannot matter, decides exactly as the original.
    #[test]
    fn random_byte_damage_to_a_pomdp_export_never_panics_or_changes_decisions() {
        let dir = std::env::temp_dir().join(format!("trim-pomdp-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.join("export");
        export_pomdp(&run_dir(&dir.join("sols")), &out).unwrap();
        let steps = parity_steps(60, 9);
        let decide = |p: &Policy| -> Vec<bool> {
            steps
                .iter()
                .map(|s| p.decide_step(s).unwrap().regenerate())
                .collect()
        };
        let want = decide(&Policy::load(&out).unwrap());
        let files = [MANIFEST, POMDP_SOLUTION, PARITY];
        let bytes: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(out.join(f)).unwrap())
            .collect();
        let bad = dir.join("fuzz");
        std::fs::create_dir_all(&bad).unwrap();
        let mut rng = trim_env::Rng::new(13);
        let mut refused = 0;
        for round in 0..150 {
            let k = round % files.len();
            for (f, b) in files.iter().zip(&bytes) {
                std::fs::write(bad.join(f), b).unwrap();
            }
            let mut b = bytes[k].clone();
            let i = rng.below(b.len() as u64) as usize;
            match rng.below(3) {
                0 => b[i] = b[i].wrapping_add(1 + rng.below(255) as u8),
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, b"0 {\"\n"[rng.below(5) as usize]),
            }
            std::fs::write(bad.join(files[k]), &b).unwrap();
            match std::panic::catch_unwind(|| Policy::load(&bad)) {
                Err(_) => panic!("{} byte {i} panicked", files[k]),
                Ok(Err(_)) => refused += 1,
                Ok(Ok(p)) => assert_eq!(decide(&p), want, "{} byte {i}", files[k]),
            }
        }
        assert!(refused > 120, "{refused} refused");
    }
}
