//! `trim export`: write a checkpoint as `policy.safetensors` + `policy.json`, `policy.onnx`
//! and a parity fixture (see `trim::export`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use trim::export::{self, Format};

/// Arguments of `trim export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Checkpoint directory, e.g. checkpoints/<run>/best.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Which files to write.
    #[arg(long, value_enum, default_value = "all")]
    pub format: Format,
    /// Output directory (created; files in it are replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let rep = export::export(&a.checkpoint, a.format, &a.out)?;
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
