//! MATH-500 holdout keys (`data/calibration/math500_keys.json`): hashes of normalised problem
//! texts, so imports can put MATH-500 problems into the `test` split without shipping the texts.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::checksum::sha256_hex;

use crate::error::{DataError, Loc, Result};
use crate::io::{sha256_file, text_hash};
use crate::schema::SourceRef;
use crate::synth::compact_json::write_compact_json;

/// Vendored MATH-500 keys.
pub const MATH500_KEYS_JSON: &str = include_str!("../../../calibration/math500_keys.json");
/// Where the vendored keys live in the repository.
pub const MATH500_KEYS_PATH: &str = "data/calibration/math500_keys.json";
/// Prefix keys shorter than this (normalised characters) are refused: too generic to identify a
/// problem ("whatisthesmallestpositiveinteger…").
pub const MIN_PREFIX_KEY: usize = 48;

/// Lowercase ASCII letters and digits only: robust to LaTeX spacing, escapes and punctuation.
pub fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One MATH-500 problem's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Math500Key {
    /// Normalised characters covered by the hash.
    pub len: u32,
    /// The hash covers the whole normalised problem (else a prefix of it).
    pub complete: bool,
    /// `io::text_hash` of the first `len` normalised characters.
    pub hash: String,
}

/// `data/calibration/math500_keys.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Math500KeysFile {
    pub description: String,
    /// The file the keys were computed from, and its upstream.
    pub source: SourceRef,
    /// How problem texts are normalised and matched.
    pub normalisation: String,
    /// The command that regenerates the file.
    pub command: String,
    pub count: usize,
    pub entries: Vec<Math500Key>,
}

/// Matcher over the keys.
pub struct Math500 {
    pub file: Math500KeysFile,
    by_len: HashMap<(u32, bool), HashSet<String>>,
}

impl Math500 {
    /// Parse a keys file.
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let file: Math500KeysFile = crate::io::parse_json(path, text)?;
        let mut by_len: HashMap<(u32, bool), HashSet<String>> = HashMap::new();
        for k in &file.entries {
            by_len
                .entry((k.len, k.complete))
                .or_default()
                .insert(k.hash.clone());
        }
        Ok(Math500 { file, by_len })
    }

    /// The vendored keys.
    pub fn vendored() -> Self {
        Self::from_json(Path::new(MATH500_KEYS_PATH), MATH500_KEYS_JSON)
            .expect("embedded MATH-500 keys are valid")
    }

    /// Is `problem` a MATH-500 problem?
    pub fn contains(&self, problem: &str) -> bool {
        let n = normalise(problem);
        self.by_len.iter().any(|(&(len, complete), set)| {
            let len = len as usize;
            let fits = if complete {
                n.len() == len
            } else {
                n.len() >= len
            };
            fits && set.contains(&text_hash(&n[..len]))
        })
    }
}

impl Math500KeysFile {
    /// The keys file as a dataset source (sha256 of the embedded copy), naming where the keys
    /// were derived from.
    pub fn vendored_source(&self) -> SourceRef {
        SourceRef {
            name: MATH500_KEYS_PATH.into(),
            origin: format!(
                "keys derived from {} ({})",
                self.source.origin, self.source.name
            ),
            sha256: Some(sha256_hex(MATH500_KEYS_JSON.as_bytes())),
        }
    }
}

/// Build the keys from `src`: a JSONL file of MATH-500 records with a `problem` field (e.g.
/// HuggingFaceH4/MATH-500 `test.jsonl`; every key then covers the whole problem), or a TSV
/// transcription whose lines are `F<TAB>full problem` or `T<TAB>prefix` (≥ 48 normalised
/// characters), with `# origin: …` naming the upstream file.
pub fn build_math500_keys(src: &Path, command: &str) -> Result<Math500KeysFile> {
    let text = std::fs::read_to_string(src)
        .map_err(|e| DataError::file(src, format!("cannot read: {e}")))?;
    let mut origin = String::new();
    let mut entries = vec![];
    let tsv = src.extension().and_then(|e| e.to_str()) == Some("tsv");
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(o) = rest.trim().strip_prefix("origin:") {
                origin = o.trim().to_string();
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        entries.push(key_of_line(src, Loc::Line(i + 1), line, tsv)?);
    }
    if entries.is_empty() {
        return Err(DataError::file(src, "no problems"));
    }
    Ok(Math500KeysFile {
        description: "MATH-500 (Lightman et al. 2023, the PRM800K test split of MATH) problem \
                      keys, in upstream order, for holding MATH-500 out of imported data"
            .into(),
        source: SourceRef {
            name: src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            origin: if origin.is_empty() {
                src.display().to_string()
            } else {
                origin
            },
            sha256: Some(sha256_file(src)?),
        },
        normalisation: format!(
            "keep ASCII letters and digits, lowercase; hash = 16-hex sha256 prefix of the first \
             `len` normalised characters; a problem matches a key if its normalised text has \
             exactly `len` characters (complete) or at least `len` (prefix, >= {MIN_PREFIX_KEY}) \
             and the hash of its first `len` characters is equal"
        ),
        command: command.to_string(),
        count: entries.len(),
        entries,
    })
}

/// The key of one problem line of a keys source (TSV `F`/`T` line or a JSONL record).
fn key_of_line(src: &Path, loc: Loc, line: &str, tsv: bool) -> Result<Math500Key> {
    if !tsv {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| DataError::new(src, loc.clone(), None, format!("bad JSON: {e}")))?;
        let p = v.get("problem").and_then(|p| p.as_str()).ok_or_else(|| {
            DataError::new(src, loc.clone(), Some("problem"), "missing string field")
        })?;
        return key(src, loc, true, p);
    }
    match line.split_once('\t') {
        Some(("F", p)) => key(src, loc, true, p),
        Some(("T", p)) => key(src, loc, false, p),
        _ => Err(DataError::new(
            src,
            loc,
            None,
            "expected `F<TAB>problem` or `T<TAB>prefix`",
        )),
    }
}

/// The key of `problem` (complete, or a prefix long enough to identify it).
fn key(src: &Path, loc: Loc, complete: bool, problem: &str) -> Result<Math500Key> {
    let n = normalise(problem);
    if n.is_empty() || (!complete && n.len() < MIN_PREFIX_KEY) {
        return Err(DataError::new(
            src,
            loc,
            Some("problem"),
            format!(
                "prefix has {} normalised characters; at least {MIN_PREFIX_KEY} are needed",
                n.len()
            ),
        ));
    }
    Ok(Math500Key {
        len: n.len() as u32,
        complete,
        hash: text_hash(&n),
    })
}

/// Write a keys file (atomically, compact JSON).
pub fn write_math500_keys(path: &Path, f: &Math500KeysFile) -> Result<()> {
    write_compact_json(path, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math500_keys_match_known_problems_only() {
        let m = Math500::vendored();
        assert_eq!(m.file.count, 500);
        assert!(m.contains(
            "What is the smallest positive perfect cube that can be written as the sum of three consecutive integers?"
        ));
        // Whitespace and escapes do not matter; a different problem with the same opening does.
        assert!(m.contains("Simplify  $\\sqrt{242}$ ."));
        assert!(!m.contains("Simplify $\\sqrt{243}$."));
        assert!(!m.contains("Compute $2+2$."));
    }

    #[test]
    fn key_builder_reads_jsonl_and_tsv_and_refuses_short_prefixes() {
        let d = crate::import::tmpdir("pb", "keys");
        let j = d.join("m.jsonl");
        std::fs::write(&j, "{\"problem\": \"Compute $2+2$.\"}\n").unwrap();
        let f = build_math500_keys(&j, "cmd").unwrap();
        assert_eq!(f.count, 1);
        assert!(f.entries[0].complete);
        let text = serde_json::to_string(&f).unwrap();
        let m = Math500::from_json(&j, &text).unwrap();
        assert!(m.contains("compute 2 + 2"));
        let t = d.join("m.tsv");
        std::fs::write(&t, "# origin: somewhere\nT\tCompute two plus two.\n").unwrap();
        let e = build_math500_keys(&t, "cmd").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        std::fs::write(&t, "X\tfoo\n").unwrap();
        assert!(build_math500_keys(&t, "cmd").is_err());
    }
}
