//! Where replayed trees come from: a dataset file, or a synthetic world generated on demand.
//!
//! Every command that takes `--data` accepts either a file (`.parquet` / `.jsonl`, loaded into a
//! [`Forest`](trim_env::Forest)) or a **synth spec** naming a lazy world:
//!
//! ```text
//! synth:math-train                          # the shipped MATH-train profile, uncapped
//! synth:math500?problems=2000&seed=7        # the MATH-500 profile, 2000 problems
//! synth:my-world.toml?cap=4                 # a synth config; mask as a --max-regens 4 file
//! synth:math500?latent.flag_s2=0.6          # any config key (fitting scripts use this)
//! ```
//!
//! Overrides are `key=value` pairs joined by `&`: `cap` (a regeneration cap, default none), or
//! any key of the synth config (`problems`, `seed`, `trees`, `test_fraction`,
//! `latent.<name>`), values written as in TOML. The world's fingerprint (recorded by runs and
//! checked on resume, like a file's sha256) is the sha256 of the resolved config — without the
//! optional step signals (`latent.signals`), which change no tree — and the sha256s of its
//! calibration inputs.

use std::path::{Path, PathBuf};

use trim_env::checksum::sha256_hex;

use crate::error::{DataError, Result};
use crate::io::LoadOptions;
use crate::synth::config::SynthConfig;
use crate::synth::lazy::LazyWorld;
use crate::validate::{LoadedForest, load_forest};

/// Prefix of a synth spec.
pub const SYNTH_SCHEME: &str = "synth:";

/// Shipped profiles: name, where the TOML lives in the repository, its text.
pub const PROFILES: [(&str, &str, &str); 2] = [
    (
        "math-train",
        "data/synth/math-qwen2.5.toml",
        include_str!("../synth/math-qwen2.5.toml"),
    ),
    (
        "math500",
        "data/synth/math500-qwen2.5.toml",
        include_str!("../synth/math500-qwen2.5.toml"),
    ),
];

/// Whether `data` names a synthetic world rather than a file.
pub fn is_synth_spec(data: &Path) -> bool {
    data.to_str().is_some_and(|s| s.starts_with(SYNTH_SCHEME))
}

/// A parsed synth spec: the resolved config and the optional regeneration cap.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSpec {
    /// The spec as written.
    pub spec: String,
    pub cfg: SynthConfig,
    pub cap: Option<u32>,
}

impl SynthSpec {
    /// Parse `synth:PROFILE[?key=value&...]` (see the module docs).
    pub fn parse(spec: &str) -> Result<Self> {
        let err = |reason: String| DataError::file(Path::new(spec), reason);
        let body = spec
            .strip_prefix(SYNTH_SCHEME)
            .ok_or_else(|| err(format!("a synth spec starts with `{SYNTH_SCHEME}`")))?;
        let (profile, query) = body.split_once('?').unwrap_or((body, ""));
        let (path, text) = profile_text(profile).map_err(err)?;
        let mut doc: toml::Table = toml::from_str(&text)
            .map_err(|e| DataError::file(&path, format!("bad synth config: {e}")))?;
        let mut cap = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| err(format!("`{pair}` is not key=value")))?;
            if key == "cap" {
                let k = value
                    .parse::<u32>()
                    .map_err(|_| err(format!("cap `{value}` is not a whole number")))?;
                cap = Some(k);
                continue;
            }
            set_key(&mut doc, key, value).map_err(err)?;
        }
        let text = toml::to_string(&doc).map_err(|e| err(format!("cannot re-encode: {e}")))?;
        let cfg = SynthConfig::from_toml(Path::new(spec), &text)?;
        Ok(SynthSpec {
            spec: spec.to_string(),
            cfg,
            cap,
        })
    }
}

/// The TOML text of a shipped profile name or a config path.
fn profile_text(profile: &str) -> std::result::Result<(PathBuf, String), String> {
    if let Some((_, path, text)) = PROFILES.iter().find(|(n, _, _)| *n == profile) {
        return Ok((PathBuf::from(path), text.to_string()));
    }
    if profile.ends_with(".toml") {
        let text = std::fs::read_to_string(profile)
            .map_err(|e| format!("cannot read synth config {profile}: {e}"))?;
        return Ok((PathBuf::from(profile), text));
    }
    let names: Vec<&str> = PROFILES.iter().map(|p| p.0).collect();
    Err(format!(
        "unknown synth profile `{profile}` (shipped: {}; or a path ending in .toml)",
        names.join(", ")
    ))
}

/// Set `key` (dotted for tables, e.g. `latent.flag_s2`) to `value` parsed as a TOML value (a
/// bare word that is not one is taken as a string).
fn set_key(doc: &mut toml::Table, key: &str, value: &str) -> std::result::Result<(), String> {
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().filter(|l| !l.is_empty());
    let last = last.ok_or_else(|| format!("empty key in `{key}={value}`"))?;
    let mut table = doc;
    for p in parts {
        table = table
            .entry(p)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` in `{key}` is not a table"))?;
    }
    table.insert(last.to_string(), parsed);
    Ok(())
}

/// A lazy synthetic world with its spec and fingerprint.
pub struct LazySource {
    pub spec: SynthSpec,
    pub world: LazyWorld,
    /// sha256 of the resolved config and the calibration inputs' sha256s.
    pub fingerprint: String,
}

impl LazySource {
    /// Build the world a spec names.
    pub fn open(spec: &str) -> Result<Self> {
        let spec = SynthSpec::parse(spec)?;
        let path = Path::new(&spec.spec);
        let world = match spec.cap {
            Some(k) => LazyWorld::with_cap(&spec.cfg, path, k)?,
            None => LazyWorld::new(&spec.cfg, path)?,
        };
        // The trees a policy replays: every parameter except the optional step signals, which
        // no trained family reads and which change no candidate, score or outcome (their own key
        // streams; tested). So adding signals to a world does not stop its runs from resuming.
        let mut trees = spec.cfg.clone();
        trees.latent.signals = Default::default();
        let resolved = serde_json::json!({
            "config": trees,
            "cap": spec.cap,
            "inputs": world.sources().iter().map(|s| &s.sha256).collect::<Vec<_>>(),
        });
        let fingerprint = sha256_hex(resolved.to_string().as_bytes());
        Ok(LazySource {
            spec,
            world,
            fingerprint,
        })
    }
}

/// Trees to replay: a loaded dataset file or a lazy synthetic world.
pub enum DataSource {
    Stored(Box<LoadedForest>),
    Lazy(Box<LazySource>),
}

impl DataSource {
    /// Open `data`: a synth spec (see the module docs) or a dataset file.
    pub fn open(data: &Path, opts: &LoadOptions) -> Result<Self> {
        match data.to_str().filter(|_| is_synth_spec(data)) {
            Some(spec) => Ok(DataSource::Lazy(Box::new(LazySource::open(spec)?))),
            None => Ok(DataSource::Stored(Box::new(load_forest(data, opts)?))),
        }
    }

    /// Indices of the problems whose split is `split` (all problems for `"all"`).
    pub fn problems_in_split(&self, split: &str) -> Vec<u32> {
        match self {
            DataSource::Stored(l) => l.problems_in_split(split),
            DataSource::Lazy(z) => z.world.problems_in_split(split),
        }
    }

    /// Problems per split, sorted by name.
    pub fn splits(&self) -> Vec<(String, usize)> {
        match self {
            DataSource::Stored(l) => l.splits(),
            DataSource::Lazy(z) => z.world.splits(),
        }
    }

    /// The dataset's name (file metadata, or the synth config's name).
    pub fn name(&self) -> &str {
        match self {
            DataSource::Stored(l) => &l.meta.name,
            DataSource::Lazy(z) => &z.spec.cfg.name,
        }
    }

    /// The content fingerprint a run records: the file's sha256, or the world's.
    pub fn fingerprint(&self, data: &Path) -> Result<String> {
        match self {
            DataSource::Stored(_) => crate::io::sha256_file(data),
            DataSource::Lazy(z) => Ok(z.fingerprint.clone()),
        }
    }
}

/// Run `$body` with `$w` bound to the source's world (`&Forest` or `&LazyWorld`): the body is
/// compiled once per world type, so replay stays monomorphic.
#[macro_export]
macro_rules! with_world {
    ($source:expr, |$w:ident| $body:expr) => {
        match $source {
            $crate::source::DataSource::Stored(l) => {
                let $w = &l.forest;
                $body
            }
            $crate::source::DataSource::Lazy(z) => {
                let $w = &z.world;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use trim_env::World;

    #[test]
    fn specs_resolve_profiles_and_overrides() {
        let s =
            SynthSpec::parse("synth:math500?problems=30&seed=5&latent.flag_s2=0.6&cap=3").unwrap();
        assert_eq!(s.cfg.problems, 30);
        assert_eq!(s.cfg.seed, 5);
        assert_eq!(s.cfg.latent.flag_s2, 0.6);
        assert_eq!(s.cap, Some(3));
        assert_eq!(s.cfg.name, "synth-math500-qwen2.5");
        let t = SynthSpec::parse("synth:math-train").unwrap();
        assert_eq!(t.cfg, SynthConfig::shipped());
        assert_eq!(t.cap, None);
    }

    #[test]
    fn bad_specs_are_clear_errors() {
        for (spec, needle) in [
            ("synth:nope", "unknown synth profile `nope`"),
            ("synth:math500?problems", "is not key=value"),
            ("synth:math500?cap=x", "cap `x`"),
            ("synth:math500?problems=0", "problems"),
            ("synth:math500?latent.bogus=1", "bogus"),
            ("synth:math500?latent.flag_s2=2", "flag_s2"),
            (
                "synth:missing.toml",
                "cannot read synth config missing.toml",
            ),
            ("synth:math500?name.x=1", "not a table"),
        ] {
            let e = SynthSpec::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    /// Fuzz-style: random edits of valid specs are either valid specs or clean errors naming
    /// the spec, never panics.
    #[test]
    fn mangled_specs_never_panic() {
        let base = "synth:math500?problems=40&seed=3&latent.flag_s2=0.4&cap=2";
        let alphabet = b"synth:?&=.-_0123456789abcdefgmpz~\"' ";
        let mut rng = trim_env::Rng::new(99);
        for _ in 0..400 {
            let mut b = base.as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(b.len() as u64) as usize;
                match rng.below(3) {
                    0 => b[i] = alphabet[rng.below(alphabet.len() as u64) as usize],
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, alphabet[rng.below(alphabet.len() as u64) as usize]),
                }
            }
            let spec = String::from_utf8_lossy(&b).into_owned();
            let outcome =
                std::panic::catch_unwind(|| SynthSpec::parse(&spec).map(|s| s.cfg.problems));
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => assert!(!e.to_string().is_empty()),
                Err(_) => panic!("`{spec}` panicked"),
            }
        }
    }

    #[test]
    fn a_source_opens_lazily_with_a_stable_fingerprint() {
        let opts = LoadOptions::default();
        let a = DataSource::open(Path::new("synth:math-train?problems=20"), &opts).unwrap();
        let b = DataSource::open(Path::new("synth:math-train?problems=20"), &opts).unwrap();
        let c = DataSource::open(Path::new("synth:math-train?problems=21"), &opts).unwrap();
        let p = Path::new("x");
        assert_eq!(a.fingerprint(p).unwrap(), b.fingerprint(p).unwrap());
        assert_ne!(a.fingerprint(p).unwrap(), c.fingerprint(p).unwrap());
        // The step signals change no tree, so not the fingerprint either; a PRM knob does.
        let open = |s: &str| {
            DataSource::open(Path::new(s), &opts)
                .unwrap()
                .fingerprint(p)
                .unwrap()
        };
        let quiet =
            "synth:math-train?problems=20&latent.signals.judge=false&latent.signals.logprob=false";
        assert_eq!(open(quiet), a.fingerprint(p).unwrap());
        let knob = open("synth:math-train?problems=20&latent.flag_s2=0.3");
        assert_ne!(knob, a.fingerprint(p).unwrap());
        let n = with_world!(&a, |w| w.n_problems());
        assert_eq!(n, 20);
        let total: usize = a.splits().iter().map(|s| s.1).sum();
        assert_eq!(total, 20);
    }
}
