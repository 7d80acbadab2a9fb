//! Reading and writing datasets: parquet (canonical) and JSONL (accepted as input, and for
//! hand-written or streamed data). Every write is atomic: temp file in the same directory,
//! fsync, rename — a crash never leaves a half-written dataset behind. Every write records a
//! content checksum and every read verifies it ([`checksum`]); polars decoder panics are
//! contained ([`contain`]).

pub mod checksum;
pub mod columns;
pub mod contain;
mod jsonl;
mod parquet;
mod parquet_read;
mod strings;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{DataError, Loc, Result};
use crate::schema::{AuditColumns, Dataset, Meta, NodeRow, NodeTable, ProblemInfo};

pub use checksum::{ALLOW_UNVERIFIED_ENV, CHECKSUM_KEY, Integrity, LoadOptions};
pub use columns::ParquetColumns;
pub use jsonl::write_jsonl;
pub use parquet::{col, write_parquet};
pub use parquet_read::{read_parquet, read_parquet_with};
pub use strings::{StringTable, read_string_columns, write_string_columns};

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

/// A dataset file decoded column-wise and checked against its checksum, not yet validated.
pub struct Decoded {
    pub meta: Meta,
    /// Problems in file order.
    pub problems: Vec<ProblemInfo>,
    pub table: NodeTable,
    /// Audit strings (parquet, when asked for).
    pub audit: AuditColumns,
    /// The rows, when the format produced them anyway (JSONL).
    pub rows: Option<Vec<NodeRow>>,
    /// JSONL line of each row.
    pub lines: Option<Vec<u32>>,
    /// What checking the content against the recorded checksum needs.
    pub check: ContentCheck,
}

/// The parts of a file the checksum covers besides the problems and the node table.
pub struct ContentCheck {
    /// The metadata text exactly as stored.
    pub meta_text: Option<String>,
    /// The checksum the file records.
    pub recorded: Option<String>,
    /// Digests of the audit columns.
    pub audit: [String; 4],
}

impl Decoded {
    /// Check the decoded content against the recorded checksum (`opts` decides about a file
    /// without one). Separate from decoding so it can run beside validation.
    pub fn verify(&self, path: &Path, opts: &LoadOptions) -> Result<Integrity> {
        checksum::verify(path, opts, self.check.recorded.as_deref(), || {
            checksum::content_sha256(checksum::Content {
                meta_text: self.check.meta_text.as_deref(),
                problems: self.problems.iter(),
                table: &self.table,
                audit: self.check.audit.clone(),
            })
        })
    }

    /// The rows form (the exchange form of importers and `convert`).
    pub fn into_dataset(self) -> Dataset {
        let rows = match self.rows {
            Some(rows) => rows,
            None => self.table.into_rows(self.audit),
        };
        Dataset {
            meta: self.meta,
            problems: self.problems,
            rows,
            lines: self.lines,
        }
    }
}

/// Refuse anything but a non-empty regular file before opening it (a FIFO or a device would
/// block or never end), saying what it is.
fn check_regular_file(path: &Path) -> Result<()> {
    let meta =
        std::fs::metadata(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else {
            special_kind(&ft)
        };
        return Err(DataError::file(
            path,
            format!("not a regular file ({what}): a dataset must be a .parquet or .jsonl file"),
        ));
    }
    if meta.len() == 0 {
        return Err(DataError::file(path, "empty file"));
    }
    Ok(())
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Decode a dataset file column-wise; a file without a checksum is refused here unless `opts`
/// allows it, and the checksum itself is checked by [`Decoded::verify`]. With `keep_audit` the
/// audit strings are kept (for [`Decoded::into_dataset`]).
pub fn read_decoded(path: &Path, opts: &LoadOptions, keep_audit: bool) -> Result<Decoded> {
    check_regular_file(path)?;
    match Format::of(path)? {
        Format::Parquet => parquet_read::read_parquet_decoded(path, opts, keep_audit),
        Format::Jsonl => decode_jsonl(path, opts),
    }
}

fn decode_jsonl(path: &Path, opts: &LoadOptions) -> Result<Decoded> {
    let f = jsonl::read_jsonl_file(path)?;
    if f.recorded.is_none() {
        checksum::verify(path, opts, None, String::new)?;
    }
    let ds = f.ds;
    let table = NodeTable::from_rows(ds.rows.iter(), |r| r.problem);
    let check = ContentCheck {
        meta_text: f.meta_text,
        recorded: f.recorded,
        audit: parquet::audit_digests(&ds.rows),
    };
    Ok(Decoded {
        meta: ds.meta,
        problems: ds.problems,
        table,
        audit: AuditColumns::default(),
        rows: Some(ds.rows),
        lines: ds.lines,
        check,
    })
}

/// Read a dataset (rows and metadata; checksum verified under `opts`; tree invariants not yet
/// validated).
pub fn read_dataset_with(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let d = read_decoded(path, opts, true)?;
    d.verify(path, opts)?;
    Ok(d.into_dataset())
}

/// [`read_dataset_with`] with options from the environment ([`LoadOptions::from_env`]).
pub fn read_dataset(path: &Path) -> Result<Dataset> {
    read_dataset_with(path, &LoadOptions::from_env())
}

/// Read a JSONL dataset (checksum verified under `opts`).
pub fn read_jsonl_with(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    check_regular_file(path)?;
    let d = decode_jsonl(path, opts)?;
    d.verify(path, opts)?;
    Ok(d.into_dataset())
}

/// [`read_jsonl_with`] with options from the environment.
pub fn read_jsonl(path: &Path) -> Result<Dataset> {
    read_jsonl_with(path, &LoadOptions::from_env())
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

/// sha256 of a file's bytes, hex (streamed, so a large file is not held in memory).
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let err = |e: std::io::Error| DataError::file(path, format!("cannot read: {e}"));
    let mut f = File::open(path).map_err(err)?;
    let mut h = trim_env::checksum::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish_hex())
}

/// Short sha256 of a text (16 hex digits), for the audit `hash` columns.
pub fn text_hash(text: &str) -> String {
    let mut hex = trim_env::checksum::sha256_hex(text.as_bytes());
    hex.truncate(16);
    hex
}

/// Parse a whole JSON document, naming the JSON path of the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let field = (field != ".").then_some(field);
        DataError::new(
            path,
            Loc::File,
            field.as_deref(),
            e.into_inner().to_string(),
        )
    })?;
    de.end().map_err(|e| {
        DataError::new(
            path,
            Loc::File,
            None,
            format!("trailing text after the JSON document: {e}"),
        )
    })?;
    Ok(value)
}

/// Write a text file atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(text.as_bytes())
            .map_err(|e| DataError::file(path, format!("write failed: {e}")))
    })
}
