//! `trim export`: write a checkpoint as `policy.safetensors` + `policy.json`, `policy.onnx`
//! and a parity fixture (see `trim::export`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use trim::export::{self, Format};

/// Arguments of `trim export`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).args(["checkpoint", "pomdp"])))]
pub struct ExportArgs {
    /// Checkpoint directory, e.g. checkpoints/<run>/best (TRIM-Agg).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// TRIM-POMDP run directory, e.g. solutions/lambda=8e-4 (`trim pomdp solve --out`).
    #[arg(long)]
    pub pomdp: Option<PathBuf>,
    /// Which files to write.
    #[arg(long, value_enum, default_value = "all")]
    pub format: Format,
    /// Output directory (created; files in it are replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let checkpoint = match (&a.checkpoint, &a.pomdp) {
        (Some(c), _) => c,
        (None, Some(run)) => return pomdp(run, &a),
        (None, None) => anyhow::bail!("name a policy: --checkpoint DIR or --pomdp RUN_DIR"),
    };
    let rep = export::export(checkpoint, a.format, &a.out)?;
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    for f in &rep.files {
        println!("wrote {}", f.display());
    }
    if let Some(d) = rep.safetensors_max_abs_diff {
        println!("safetensors parity vs burn: max |Δlogit| = {d:.3e}");
    }
    if let Some(d) = rep.onnx_max_abs_diff {
        println!("onnx parity vs burn (graph evaluated in Rust): max |Δ| = {d:.3e}");
    }
    Ok(())
}

/// `trim export --pomdp RUN_DIR`.
fn pomdp(run: &std::path::Path, a: &ExportArgs) -> Result<()> {
    anyhow::ensure!(
        a.format != Format::Onnx,
        "a TRIM-POMDP export has no ONNX graph (a table lookup after a belief update, not a \
         tensor program); its table is JSON: drop --format"
    );
    let rep = export::pomdp::export_pomdp(run, &a.out)?;
    for f in &rep.files {
        println!("wrote {}", f.display());
    }
    println!(
        "parity fixture: {} steps decided, {} regenerate; loaded back and verified",
        rep.fixture_steps, rep.fixture_regenerations
    );
    Ok(())
}
