//! Reading and writing datasets: parquet (canonical) and JSONL (accepted as input, and for
//! hand-written or streamed data). Every write is atomic: temp file in the same directory,
//! fsync, rename — a crash never leaves a half-written dataset behind.

mod jsonl;
mod parquet;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{DataError, Result};
use crate::schema::Dataset;

pub use jsonl::{read_jsonl, write_jsonl};
pub use parquet::{read_parquet, write_parquet};

/// File formats by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Jsonl,
}

impl Format {
    /// Format from the file extension (`.parquet`, `.jsonl`/`.json`).
    pub fn of(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") | Some("pq") => Ok(Format::Parquet),
            Some("jsonl") | Some("json") | Some("ndjson") => Ok(Format::Jsonl),
            _ => Err(DataError::file(
                path,
                "unknown dataset format: use a .parquet or .jsonl file name",
            )),
        }
    }
}

/// Read a dataset (rows and metadata, not yet validated).
pub fn read_dataset(path: &Path) -> Result<Dataset> {
    let meta =
        std::fs::metadata(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    if meta.len() == 0 {
        return Err(DataError::file(path, "empty file"));
    }
    match Format::of(path)? {
        Format::Parquet => read_parquet(path),
        Format::Jsonl => read_jsonl(path),
    }
}

/// Write a dataset atomically in the format its extension names.
pub fn write_dataset(path: &Path, ds: &Dataset) -> Result<()> {
    match Format::of(path)? {
        Format::Parquet => write_parquet(path, ds),
        Format::Jsonl => write_jsonl(path, ds),
    }
}

/// Write a file atomically: `fill` writes into a temp file next to `path`, which is synced and
/// renamed over `path` only if `fill` succeeded.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| DataError::file(path, format!("cannot create directory: {e}")))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| DataError::file(path, "not a file name"))?;
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp)
            .map_err(|e| DataError::file(path, format!("cannot create temp file: {e}")))?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        w.flush()
            .map_err(|e| DataError::file(path, format!("write failed: {e}")))?;
        let file = w
            .into_inner()
            .map_err(|e| DataError::file(path, format!("write failed: {e}")))?;
        file.sync_all()
            .map_err(|e| DataError::file(path, format!("sync failed: {e}")))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| DataError::file(path, format!("rename failed: {e}")))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// sha256 of a file's bytes, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes =
        std::fs::read(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// Short sha256 of a text (16 hex digits), for the audit `hash` columns.
pub fn text_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(text.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse a whole JSON document, naming the JSON path of the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = (field != ".").then_some(field);
        DataError::new(
            path,
            crate::error::Loc::File,
            field.as_deref(),
            e.into_inner().to_string(),
        )
    })
}

/// Write a text file atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(text.as_bytes())
            .map_err(|e| DataError::file(path, format!("write failed: {e}")))
    })
}
