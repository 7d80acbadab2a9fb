//! Integrity checksum of a dataset file: a sha256 over its canonical decoded content, written
//! at save time and verified at load, so a flipped bit that still decodes to a plausible value
//! (a PRM score of 0.93 read as 0.13) is an error instead of a silent change.
//!
//! What the digest covers (version 1, `data/README.md` § Integrity): the metadata text exactly
//! as stored (parquet `trim.meta` value / the JSONL first line), the problems in file order with
//! all six fields, and every node field in file order — each column hashed on its own as
//! fixed-width little-endian values (nullable fields with a presence byte), audit strings with
//! a presence byte and a length. Columns are hashed separately (and in parallel) and the column
//! digests are hashed together, so the digest does not depend on parquet row groups or pages.

use std::path::Path;

use rayon::prelude::*;
use trim_env::checksum::Hasher;

use crate::error::{DataError, Result};
use crate::schema::{NodeFlags as F, NodeTable, ProblemInfo};

/// Parquet footer key of the content checksum.
pub const CHECKSUM_KEY: &str = "trim.content_sha256";
/// Environment variable that accepts files without a checksum (`1`, `true` or `yes`).
pub const ALLOW_UNVERIFIED_ENV: &str = "TRIM_ALLOW_UNVERIFIED";
/// Tag of the canonical encoding; part of the digest.
const SCHEME: &[u8] = b"trim-content-v1\n";

/// How a dataset file is loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Accept a file without an integrity checksum (written by another tool or by hand). A file
    /// whose checksum does not match its content is refused regardless.
    pub allow_unverified: bool,
}

impl LoadOptions {
    /// Options from the environment: [`ALLOW_UNVERIFIED_ENV`] set to `1`, `true` or `yes`
    /// allows unverified files (for commands without an `--allow-unverified` flag).
    pub fn from_env() -> Self {
        let v = std::env::var(ALLOW_UNVERIFIED_ENV).unwrap_or_default();
        LoadOptions {
            allow_unverified: matches!(v.trim(), "1" | "true" | "yes"),
        }
    }
}

/// Whether a loaded file's content was checked against its checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The recorded checksum matched the content (the sha256, hex).
    Verified(String),
    /// No checksum was recorded; accepted because the caller allowed it.
    Unverified,
}

/// Check `recorded` against the content digest `compute` returns.
pub(crate) fn verify(
    path: &Path,
    opts: &LoadOptions,
    recorded: Option<&str>,
    compute: impl FnOnce() -> String,
) -> Result<Integrity> {
    let Some(recorded) = recorded else {
        if opts.allow_unverified {
            return Ok(Integrity::Unverified);
        }
        return Err(DataError::file(
            path,
            format!(
                "no integrity checksum: the file was written by another tool, by hand, or by \
                 trim before checksums, so damaged values cannot be detected. Load it anyway \
                 with --allow-unverified (or {ALLOW_UNVERIFIED_ENV}=1); \
                 `trim data convert --allow-unverified IN OUT` writes a copy with a checksum"
            ),
        ));
    };
    let well_formed = recorded.len() == 64
        && recorded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(DataError::file(
            path,
            format!("damaged file: malformed integrity checksum `{recorded}`"),
        ));
    }
    let actual = compute();
    if actual != recorded {
        return Err(DataError::file(
            path,
            format!(
                "integrity check failed: the content's sha256 is {actual} but the file records \
                 {recorded}; the file was damaged or edited after it was written. Restore or \
                 regenerate it (a deliberately hand-edited JSONL file: delete its last line, \
                 `{{\"trim_checksum\": …}}`, and load it with --allow-unverified)"
            ),
        ));
    }
    Ok(Integrity::Verified(actual))
}

/// Streaming digest of one string column (audit text), fed row by row.
pub(crate) struct StrColumnHasher {
    h: Hasher,
    buf: Vec<u8>,
}

const FLUSH: usize = 1 << 16;

impl StrColumnHasher {
    pub fn new() -> Self {
        StrColumnHasher {
            h: Hasher::new(),
            buf: Vec::with_capacity(FLUSH + 64),
        }
    }

    /// Digest of a column of `n` nulls (an absent optional column).
    pub fn nulls(n: usize) -> String {
        // A null is one zero byte: feed them a block at a time.
        let zeros = [0u8; 4096];
        let mut h = Hasher::new();
        let mut left = n;
        while left > 0 {
            let k = left.min(zeros.len());
            h.update(&zeros[..k]);
            left -= k;
        }
        h.finish_hex()
    }

    pub fn push(&mut self, v: Option<&str>) {
        match v {
            None => self.buf.push(0),
            Some(s) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
                if s.len() > FLUSH {
                    self.h.update(&self.buf);
                    self.buf.clear();
                    self.h.update(s.as_bytes());
                } else {
                    self.buf.extend_from_slice(s.as_bytes());
                }
            }
        }
        if self.buf.len() >= FLUSH {
            self.h.update(&self.buf);
            self.buf.clear();
        }
    }

    pub fn finish(mut self) -> String {
        self.h.update(&self.buf);
        self.h.finish_hex()
    }
}

/// Digest of `n` fixed-width encodings `enc(i)`.
fn fixed<const W: usize>(n: usize, enc: impl Fn(usize) -> [u8; W]) -> String {
    let mut h = Hasher::new();
    let mut buf = Vec::with_capacity(FLUSH + W);
    for i in 0..n {
        buf.extend_from_slice(&enc(i));
        if buf.len() >= FLUSH {
            h.update(&buf);
            buf.clear();
        }
    }
    h.update(&buf);
    h.finish_hex()
}

/// A presence byte followed by the value (zero when absent).
#[inline(always)]
fn opt<const W: usize, const V: usize>(present: bool, value: [u8; V]) -> [u8; W] {
    let mut out = [0u8; W];
    out[0] = u8::from(present);
    if present {
        out[1..].copy_from_slice(&value);
    }
    out
}

type Job<'a> = (&'static str, Box<dyn Fn() -> String + Sync + 'a>);

/// The per-column digests of the node fields, named, computed in parallel.
fn node_columns(t: &NodeTable) -> Vec<(&'static str, String)> {
    let mut jobs = structure_jobs(t);
    jobs.extend(candidate_jobs(t));
    jobs.extend(signal_jobs(t));
    jobs.par_iter().map(|(name, job)| (*name, job())).collect()
}

/// The optional signal columns, each only when the table has it (a presence byte, then the
/// f32 bits): a file without them digests exactly as before they existed.
fn signal_jobs(t: &NodeTable) -> Vec<Job<'_>> {
    let n = t.len();
    t.signals
        .columns()
        .into_iter()
        .filter_map(|(col, values)| {
            let v = values?;
            let job: Job<'_> = (
                col.name,
                Box::new(move || {
                    fixed(n, |i| {
                        let x = v[i];
                        opt::<5, 4>(x.is_some(), x.unwrap_or(0.0).to_bits().to_le_bytes())
                    })
                }),
            );
            Some(job)
        })
        .collect()
}

/// Problem index, tree, node, parent, action, depth.
fn structure_jobs(t: &NodeTable) -> Vec<Job<'_>> {
    let n = t.len();
    let has = move |i: usize, b: u16| t.flags[i].has(b);
    vec![
        (
            "problem",
            Box::new(move || fixed(n, |i| t.problem[i].to_le_bytes())),
        ),
        (
            "tree",
            Box::new(move || fixed(n, |i| t.tree[i].to_le_bytes())),
        ),
        (
            "node",
            Box::new(move || fixed(n, |i| t.node[i].to_le_bytes())),
        ),
        (
            "parent",
            Box::new(move || {
                fixed(n, |i| {
                    opt::<5, 4>(has(i, F::PARENT), t.parent[i].to_le_bytes())
                })
            }),
        ),
        (
            "action",
            Box::new(move || fixed(n, |i| opt::<2, 1>(has(i, F::ACTION), [t.action[i]]))),
        ),
        (
            "depth",
            Box::new(move || fixed(n, |i| t.depth[i].to_le_bytes())),
        ),
    ]
}

/// The weak and strong candidates and the outcomes.
fn candidate_jobs(t: &NodeTable) -> Vec<Job<'_>> {
    let n = t.len();
    let has = move |i: usize, b: u16| t.flags[i].has(b);
    let bit =
        move |set: u16, val: u16| move |i: usize| opt::<2, 1>(has(i, set), [u8::from(has(i, val))]);
    let bits = move |i: usize, b: u16| [u8::from(has(i, b))];
    vec![
        (
            "weak_tokens",
            Box::new(move || fixed(n, |i| t.weak_tokens[i].to_le_bytes())),
        ),
        (
            "weak_prm",
            Box::new(move || fixed(n, |i| t.weak_prm[i].to_bits().to_le_bytes())),
        ),
        (
            "weak_finished",
            Box::new(move || fixed(n, |i| bits(i, F::WEAK_FINISHED))),
        ),
        (
            "weak_state",
            Box::new(move || fixed(n, |i| opt::<2, 1>(has(i, F::WEAK_STATE), [t.weak_state[i]]))),
        ),
        (
            "strong_tokens",
            Box::new(move || {
                fixed(n, |i| {
                    opt::<5, 4>(has(i, F::STRONG), t.strong_tokens[i].to_le_bytes())
                })
            }),
        ),
        (
            "strong_prm",
            Box::new(move || {
                let prm = |i: usize| t.strong_prm[i].to_bits().to_le_bytes();
                fixed(n, |i| opt::<5, 4>(has(i, F::STRONG_PRM), prm(i)))
            }),
        ),
        (
            "strong_finished",
            Box::new(move || fixed(n, bit(F::STRONG_FINISHED_SET, F::STRONG_FINISHED))),
        ),
        (
            "strong_state",
            Box::new(move || {
                fixed(n, |i| {
                    opt::<2, 1>(has(i, F::STRONG_STATE), [t.strong_state[i]])
                })
            }),
        ),
        (
            "continue_correct",
            Box::new(move || fixed(n, bit(F::CONTINUE_SET, F::CONTINUE_CORRECT))),
        ),
        (
            "regenerate_correct",
            Box::new(move || fixed(n, bit(F::REGENERATE_SET, F::REGENERATE_CORRECT))),
        ),
    ]
}

/// Everything the digest covers.
pub(crate) struct Content<'a, P> {
    /// The metadata text exactly as stored (`None` when the file has none).
    pub meta_text: Option<&'a str>,
    /// Problems in file order.
    pub problems: P,
    pub table: &'a NodeTable,
    /// Digests of the audit columns weak_text, weak_hash, strong_text, strong_hash
    /// ([`StrColumnHasher::nulls`] for an absent column).
    pub audit: [String; 4],
}

/// The content sha256 (hex) of version 1 of the canonical encoding.
pub(crate) fn content_sha256<'a, P>(c: Content<'a, P>) -> String
where
    P: ExactSizeIterator<Item = &'a ProblemInfo>,
{
    let mut h = Hasher::new();
    let bytes = |h: &mut Hasher, b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    h.update(SCHEME);
    match c.meta_text {
        None => h.update(&[0]),
        Some(m) => {
            h.update(&[1]);
            bytes(&mut h, m.as_bytes());
        }
    }
    h.update(&(c.problems.len() as u64).to_le_bytes());
    for p in c.problems {
        for f in [
            &p.problem_id,
            &p.dataset,
            &p.split,
            &p.weak_model,
            &p.strong_model,
            &p.prm_model,
        ] {
            bytes(&mut h, f.as_bytes());
        }
    }
    h.update(&(c.table.len() as u64).to_le_bytes());
    let audit_names = ["weak_text", "weak_hash", "strong_text", "strong_hash"];
    let audit = audit_names
        .iter()
        .zip(&c.audit)
        .map(|(n, d)| (*n, d.clone()));
    for (name, digest) in node_columns(c.table).into_iter().chain(audit) {
        bytes(&mut h, name.as_bytes());
        h.update(digest.as_bytes());
    }
    h.finish_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_of_nulls_digests_like_pushed_nulls() {
        for n in [0, 1, 4095, 4096, 70_000] {
            let mut s = StrColumnHasher::new();
            (0..n).for_each(|_| s.push(None));
            assert_eq!(StrColumnHasher::nulls(n), s.finish(), "{n}");
        }
    }

    #[test]
    fn strings_are_length_prefixed() {
        // "ab" + "c" and "a" + "bc" must differ.
        let digest = |vals: &[&str]| {
            let mut s = StrColumnHasher::new();
            vals.iter().for_each(|v| s.push(Some(v)));
            s.finish()
        };
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
    }
}
