//! `collect.toml`: what to collect from which endpoints, and how. Every field but the problem
//! file, the output and the three model names has a default (the release's settings); command
//! line flags override the file by dotted key (`weak.model=…`), so one file serves many runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CollectError, Result};
use crate::judge::{JudgeConfig, SignalsConfig};
use crate::prompt::PromptConfig;

/// A whole collection run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectConfig {
    /// Problem file (JSONL or parquet: id, question, answer, optional split and dataset).
    pub problems: PathBuf,
    /// Output dataset (`.parquet` or `.jsonl`); the resumable work directory is `<out>.collect/`.
    pub out: PathBuf,
    /// Dataset name in the metadata (default: the output file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Seed of every request's sampling seed and of policy-guided exploration.
    #[serde(default)]
    pub seed: u64,
    pub weak: GeneratorConfig,
    pub strong: GeneratorConfig,
    pub prm: PrmConfig,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(default)]
    pub prompt: PromptConfig,
    #[serde(default)]
    pub expand: ExpandConfig,
    #[serde(default)]
    pub budget: Budget,
    /// External grader command (a JSON-lines process, see `grade_cmd`); the built-in LaTeX
    /// normaliser when absent.
    #[serde(default)]
    pub grader: Option<String>,
    #[serde(default)]
    pub run: RunConfig,
    /// Per-step signals asked of the generators (`mean_logprob`). Left out of the serialised
    /// config when off, so a run without signals pins the same `run.json` as before them.
    #[serde(default, skip_serializing_if = "SignalsConfig::is_off")]
    pub signals: SignalsConfig,
    /// A judge rating every weak step (`judge_score`); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeConfig>,
}

/// Which generation API a generator speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `/v1/completions` with the prompt rendered client-side (`prompt.format`).
    Completions,
    /// `/v1/chat/completions`; the server applies the chat template.
    Chat,
}

/// One OpenAI-compatible generator (vLLM, SGLang, TGI or a hosted API).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Model name sent in every request (and recorded in the dataset).
    pub model: String,
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub url: String,
    #[serde(default = "default_api")]
    pub api: Api,
    /// Send vLLM's extra sampling fields (`top_k`, `continue_final_message`, …); switch off for
    /// hosted APIs that refuse unknown fields.
    #[serde(default = "yes")]
    pub vllm_extensions: bool,
    /// Environment variable holding the API key (sent as a bearer token, never recorded).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Price in US dollars per million generated tokens, for the spend shown while collecting.
    #[serde(default)]
    pub usd_per_mtok: Option<f64>,
    /// Extra JSON fields merged into every request body (e.g. `chat_template_kwargs`).
    #[serde(default)]
    pub extra: Option<toml::Table>,
    #[serde(default)]
    pub limits: EndpointLimits,
}

/// How the PRM receives the solution so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrmInput {
    /// Chat messages (system = instruction, user = question, assistant = tagged steps); the
    /// server applies the PRM's chat template.
    Messages,
    /// One string rendered client-side in ChatML.
    Text,
}

/// The step-reward endpoint (vLLM `/pooling` serving e.g. Qwen2.5-Math-PRM-7B).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrmConfig {
    pub model: String,
    /// Base URL of the server (the `/pooling` route is appended), e.g. `http://127.0.0.1:8002`.
    pub url: String,
    #[serde(default = "default_prm_input")]
    pub input: PrmInput,
    /// The tag after every step whose pooled output is that step's score.
    #[serde(default = "default_step_tag")]
    pub step_tag: String,
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra JSON fields merged into every request body (e.g. `task`, `truncate_prompt_tokens`).
    #[serde(default)]
    pub extra: Option<toml::Table>,
    #[serde(default)]
    pub limits: EndpointLimits,
}

/// Concurrency, timeout and retry policy of one endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointLimits {
    /// Requests in flight at once.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Seconds before a request is abandoned (and retried).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Retries after the first attempt, on 5xx/429, timeouts, dropped connections and
    /// malformed bodies.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First backoff in milliseconds; doubles per retry (capped at 30 s).
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        EndpointLimits {
            max_in_flight: default_in_flight(),
            timeout_s: default_timeout(),
            retries: default_retries(),
            backoff_ms: default_backoff(),
        }
    }
}

/// Sampling of every step (the release's settings by default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    #[serde(default = "default_top_p")]
    pub top_p: f64,
    /// Sent only with `vllm_extensions`.
    #[serde(default = "default_top_k")]
    pub top_k: u32,
    /// Tokens per step.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// The servers' context length (vLLM's `--max-model-len`): a step may use at most what is
    /// left after the prompt, and a solution that fills it is finished. 0 = no limit.
    #[serde(default = "default_context_len")]
    pub context_len: u32,
    /// A solution unfinished after this many steps is graded as it stands.
    #[serde(default = "default_max_steps")]
    pub max_steps: u16,
    /// Degenerate steps (empty, or only punctuation/markdown) are spliced out by asking the
    /// same model for one more step, at most this many times per step.
    #[serde(default = "default_splices")]
    pub max_splices: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: default_temperature(),
            top_p: default_top_p(),
            top_k: default_top_k(),
            max_tokens: default_max_tokens(),
            context_len: default_context_len(),
            max_steps: default_max_steps(),
            max_splices: default_splices(),
        }
    }
}

/// Which branches of each problem's tree to generate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpandConfig {
    /// `full`: the all-weak path, the strong candidate at every node and the weak continuation
    /// after each regenerate, up to `max_regens` per path. `policy`: only what `policy` visits
    /// over `episodes` episodes.
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    #[serde(default = "default_max_regens")]
    pub max_regens: u16,
    /// Independent sample trees per problem.
    #[serde(default = "one")]
    pub trees: u32,
    /// `threshold:K` (regenerate when the step's PRM score is below K) or an export directory.
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default = "default_episodes")]
    pub episodes: u32,
    /// Probability of the other action at each decision of a guided episode.
    #[serde(default)]
    pub epsilon: f64,
}

impl Default for ExpandConfig {
    fn default() -> Self {
        ExpandConfig {
            strategy: default_strategy(),
            max_regens: default_max_regens(),
            trees: 1,
            policy: None,
            episodes: default_episodes(),
            epsilon: 0.0,
        }
    }
}

/// Tree expansion strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Full,
    Policy,
}

/// Per-problem spending limits (0 = none). Checked before each expansion wave, so a problem
/// may overshoot by one wave; branches not generated are absent (masked) in the dataset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Generated tokens (weak + strong, all trees).
    #[serde(default)]
    pub max_tokens: u64,
    /// Requests (generation + PRM, all trees).
    #[serde(default)]
    pub max_requests: u64,
}

/// How the run is driven.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Problems being collected at once (each keeps a few requests in flight).
    #[serde(default = "default_problems_in_flight")]
    pub problems_in_flight: usize,
    /// Problems per committed shard.
    #[serde(default = "default_shard_size")]
    pub shard_size: usize,
    /// Seconds after which a partly filled shard is committed anyway.
    #[serde(default = "default_flush")]
    pub flush_s: f64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            problems_in_flight: default_problems_in_flight(),
            shard_size: default_shard_size(),
            flush_s: default_flush(),
        }
    }
}

fn default_api() -> Api {
    Api::Completions
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_prm_input() -> PrmInput {
    PrmInput::Messages
}
fn default_step_tag() -> String {
    "<extra_0>".into()
}
fn default_in_flight() -> usize {
    64
}
fn default_timeout() -> f64 {
    300.0
}
fn default_retries() -> u32 {
    4
}
fn default_backoff() -> u64 {
    500
}
fn default_temperature() -> f64 {
    0.7
}
fn default_top_p() -> f64 {
    0.8
}
fn default_top_k() -> u32 {
    20
}
fn default_max_tokens() -> u32 {
    2048
}
fn default_context_len() -> u32 {
    4096
}
fn default_max_steps() -> u16 {
    30
}
fn default_splices() -> u32 {
    2
}
fn default_strategy() -> Strategy {
    Strategy::Full
}
fn default_max_regens() -> u16 {
    2
}
fn default_episodes() -> u32 {
    8
}
fn default_problems_in_flight() -> usize {
    64
}
fn default_shard_size() -> usize {
    16
}
fn default_flush() -> f64 {
    30.0
}

impl CollectConfig {
    /// Read `path` (if any), apply `overrides` (`key.sub=value`, value parsed as TOML, else
    /// taken as a string), and check every field. Errors name the file or flag and the field.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<CollectConfig> {
        let (mut table, origin) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| CollectError::file(p, format!("cannot read: {e}")))?;
                let t: toml::Table = toml::from_str(&text)
                    .map_err(|e| CollectError::file(p, format!("not valid TOML: {e}")))?;
                (t, p.display().to_string())
            }
            None => (toml::Table::new(), "command line".to_string()),
        };
        for o in overrides {
            set_dotted(&mut table, o)?;
        }
        let cfg: CollectConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let field = e.path().to_string();
                CollectError::config(&origin, format!("field `{field}`: {}", e.into_inner()))
            })?;
        cfg.check().map_err(|m| CollectError::config(&origin, m))?;
        Ok(cfg)
    }

    /// Range checks serde cannot express.
    fn check(&self) -> std::result::Result<(), String> {
        let s = &self.sampling;
        let bad = |f: &str, why: &str| Err(format!("field `{f}`: {why}"));
        if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
            return bad("sampling.temperature", "must be a finite number ≥ 0");
        }
        if !(s.top_p > 0.0 && s.top_p <= 1.0) {
            return bad("sampling.top_p", "must be in (0, 1]");
        }
        if s.max_tokens == 0 || s.max_steps == 0 {
            return bad("sampling.max_tokens/max_steps", "must be ≥ 1");
        }
        if self.expand.trees == 0 {
            return bad("expand.trees", "must be ≥ 1");
        }
        if !(0.0..=1.0).contains(&self.expand.epsilon) {
            return bad("expand.epsilon", "must be in [0, 1]");
        }
        if self.expand.strategy == Strategy::Policy && self.expand.policy.is_none() {
            return bad(
                "expand.policy",
                "strategy = \"policy\" needs a policy: threshold:K or an export directory",
            );
        }
        if self.expand.strategy == Strategy::Policy && self.expand.episodes == 0 {
            return bad("expand.episodes", "must be ≥ 1");
        }
        for (name, l) in [
            ("weak", &self.weak.limits),
            ("strong", &self.strong.limits),
            ("prm", &self.prm.limits),
        ] {
            if l.max_in_flight == 0 {
                return bad(&format!("{name}.limits.max_in_flight"), "must be ≥ 1");
            }
            if !(l.timeout_s > 0.0 && l.timeout_s.is_finite()) {
                return bad(&format!("{name}.limits.timeout_s"), "must be > 0");
            }
        }
        for (name, url) in [
            ("weak.url", &self.weak.url),
            ("strong.url", &self.strong.url),
            ("prm.url", &self.prm.url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(name, &format!("`{url}` is not an http:// or https:// URL"));
            }
        }
        if self.run.problems_in_flight == 0 || self.run.shard_size == 0 {
            return bad("run.problems_in_flight/shard_size", "must be ≥ 1");
        }
        if self.run.flush_s.is_nan() || self.run.flush_s <= 0.0 {
            return bad("run.flush_s", "must be > 0");
        }
        if self.prm.step_tag.is_empty() {
            return bad("prm.step_tag", "must not be empty");
        }
        self.judge.as_ref().map_or(Ok(()), JudgeConfig::check)
    }

    /// The dataset name: `name`, or the output file's stem.
    pub fn dataset_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            (self.out.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "collected".into())
        })
    }

    /// The resumable work directory: `<out>.collect/` beside the output.
    pub fn work_dir(&self) -> PathBuf {
        let mut name = self.out.as_os_str().to_owned();
        name.push(".collect");
        PathBuf::from(name)
    }
}

/// Apply one `a.b.c=value` override.
fn set_dotted(table: &mut toml::Table, spec: &str) -> Result<()> {
    let (key, raw) = spec.split_once('=').ok_or_else(|| {
        CollectError::config("command line", format!("`{spec}` is not key=value"))
    })?;
    let value = parse_value(raw);
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(CollectError::config(
            "command line",
            format!("`{key}` is not a dotted field name"),
        ));
    }
    let mut t = table;
    for p in &parts[..parts.len() - 1] {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().ok_or_else(|| {
            CollectError::config("command line", format!("`{key}`: `{p}` is not a table"))
        })?;
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// A TOML value if `raw` parses as one (numbers, booleans, arrays, quoted strings), else the
/// raw text as a string — so `weak.model=Qwen/Qwen2.5-1.5B-Instruct` needs no quoting.
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Vec<String> {
        [
            "problems=p.jsonl",
            "out=o.parquet",
            "weak.model=w",
            "weak.url=http://127.0.0.1:1/v1",
            "strong.model=s",
            "strong.url=http://127.0.0.1:2/v1",
            "prm.model=p",
            "prm.url=http://127.0.0.1:3",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn flags_alone_make_a_config_with_the_release_defaults() {
        let c = CollectConfig::load(None, &minimal()).unwrap();
        assert_eq!((c.sampling.temperature, c.sampling.top_p), (0.7, 0.8));
        assert_eq!((c.sampling.top_k, c.sampling.max_tokens), (20, 2048));
        assert_eq!(c.sampling.max_steps, 30);
        assert_eq!(c.expand.strategy, Strategy::Full);
        assert_eq!(c.work_dir(), PathBuf::from("o.parquet.collect"));
        assert_eq!(c.dataset_name(), "o");
    }

    #[test]
    fn bad_fields_are_named() {
        let mut o = minimal();
        o.push("sampling.top_p=1.5".into());
        let e = CollectConfig::load(None, &o).unwrap_err().to_string();
        assert!(e.contains("sampling.top_p"), "{e}");
        let mut o = minimal();
        o.push("sampling.temprature=0.5".into());
        let e = CollectConfig::load(None, &o).unwrap_err().to_string();
        assert!(e.contains("temprature"), "{e}");
        let mut o = minimal();
        o.push("weak.url=localhost:8000".into());
        let e = CollectConfig::load(None, &o).unwrap_err().to_string();
        assert!(e.contains("weak.url"), "{e}");
        let e = CollectConfig::load(None, &minimal()[1..])
            .unwrap_err()
            .to_string();
        assert!(e.contains("problems"), "{e}");
        let mut o = minimal();
        o.push("expand.strategy=policy".into());
        let e = CollectConfig::load(None, &o).unwrap_err().to_string();
        assert!(e.contains("expand.policy"), "{e}");
    }

    #[test]
    fn a_file_is_read_and_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("trim-collect-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        let mut text = String::new();
        for kv in minimal() {
            let (k, v) = kv.split_once('=').unwrap();
            text.push_str(&format!("{k} = \"{v}\"\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let c = CollectConfig::load(Some(&p), &["expand.trees=3".into()]).unwrap();
        assert_eq!(c.expand.trees, 3);
        std::fs::write(&p, "problems = [").unwrap();
        let e = CollectConfig::load(Some(&p), &[]).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("TOML"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
