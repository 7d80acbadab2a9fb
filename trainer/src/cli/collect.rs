//! `trim collect`: build rollout trees from live models (see `trim_collect` and
//! docs/collect.md).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use trim_collect::{CollectConfig, RunOptions};

const AFTER: &str = "\
Generators are OpenAI-compatible endpoints (vLLM, SGLang, TGI, hosted APIs); the PRM is vLLM's \
/pooling (e.g. Qwen2.5-Math-PRM-7B). Problems are committed in shards under <out>.collect/; \
re-running the same command (also after kill -9) continues where it stopped. Any config field \
can be set with --set key.sub=value. Per-step signals: --set signals.logprobs=true records each \
step's mean token log-probability; --judge-url/--judge-model rate every weak step 0-9 (one \
request per weak step). See docs/collect.md.";

#[derive(Args)]
#[command(after_help = AFTER)]
pub struct CollectArgs {
    /// The collection config (collect.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Problem file (JSONL or parquet: id, question, answer, optional split, dataset).
    #[arg(long)]
    pub problems: Option<PathBuf>,
    /// Output dataset (.parquet or .jsonl).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub weak_url: Option<String>,
    #[arg(long)]
    pub weak_model: Option<String>,
    #[arg(long)]
    pub strong_url: Option<String>,
    #[arg(long)]
    pub strong_model: Option<String>,
    #[arg(long)]
    pub prm_url: Option<String>,
    #[arg(long)]
    pub prm_model: Option<String>,
    /// Judge endpoint (base URL up to /v1): every weak step gets a 0–9 rating (judge_score).
    #[arg(long)]
    pub judge_url: Option<String>,
    /// Judge model name (with --judge-url, or the config's [judge]).
    #[arg(long)]
    pub judge_model: Option<String>,
    /// Expansion strategy: full or policy.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Guide policy for --strategy policy: threshold:K or an export directory.
    #[arg(long)]
    pub policy: Option<String>,
    /// Independent sample trees per problem.
    #[arg(long)]
    pub trees: Option<u32>,
    /// Regenerations per path (full strategy).
    #[arg(long)]
    pub max_regens: Option<u16>,
    /// External grader command (JSON lines on stdin/stdout; see docs/collect.md).
    #[arg(long)]
    pub grader: Option<String>,
    /// Run seed: every request's sampling seed derives from it (and policy-guided exploration).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Requests in flight per endpoint.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Any config field: --set sampling.temperature=0.6 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Write the dataset even if some problems failed (they are left out).
    #[arg(long)]
    pub allow_partial: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl CollectArgs {
    /// Flags as dotted overrides, in a fixed order (explicit --set last, so it wins).
    fn overrides(&self) -> Vec<String> {
        let mut o = vec![];
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                o.push(format!("{k}={}", toml_string(&v)));
            }
        };
        put(
            "problems",
            self.problems.as_ref().map(|p| p.display().to_string()),
        );
        put("out", self.out.as_ref().map(|p| p.display().to_string()));
        put("weak.url", self.weak_url.clone());
        put("weak.model", self.weak_model.clone());
        put("strong.url", self.strong_url.clone());
        put("strong.model", self.strong_model.clone());
        put("prm.url", self.prm_url.clone());
        put("prm.model", self.prm_model.clone());
        put("judge.url", self.judge_url.clone());
        put("judge.model", self.judge_model.clone());
        put("expand.strategy", self.strategy.clone());
        put("expand.policy", self.policy.clone());
        put("grader", self.grader.clone());
        if let Some(t) = self.trees {
            o.push(format!("expand.trees={t}"));
        }
        if let Some(k) = self.max_regens {
            o.push(format!("expand.max_regens={k}"));
        }
        if let Some(s) = self.seed {
            o.push(format!("seed={s}"));
        }
        if let Some(n) = self.max_in_flight {
            for role in ["weak", "strong", "prm"] {
                o.push(format!("{role}.limits.max_in_flight={n}"));
            }
        }
        o.extend(self.set.iter().cloned());
        o
    }
}

/// A TOML string literal (so paths and names are never parsed as numbers or tables).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub fn run(a: CollectArgs) -> Result<()> {
    let cfg = CollectConfig::load(a.config.as_deref(), &a.overrides())?;
    let opts = RunOptions {
        progress: !a.quiet,
        command: super::command_line(),
        allow_partial: a.allow_partial,
    };
    let work = cfg.work_dir();
    let s = trim_collect::run(cfg, opts)?;
    let sp = &s.spend;
    println!(
        "collected {} problems ({} were already committed, {} failed) in {:.1} s",
        s.collected,
        s.already_committed,
        s.failed.len(),
        s.wall_s
    );
    println!(
        "  tokens: weak {} strong {}; requests: generation {} PRM {}",
        sp.weak_tokens, sp.strong_tokens, sp.gen_requests, sp.prm_requests
    );
    if sp.judge_requests > 0 {
        println!("  judge requests: {}", sp.judge_requests);
    }
    let judge = s.judge.as_ref().map(|j| ("judge", j));
    let endpoints = [("weak", &s.weak), ("strong", &s.strong), ("prm", &s.prm)];
    for (name, e) in endpoints.into_iter().chain(judge) {
        println!(
            "  {name:6} {}: {} ok, {} retries, {} failed",
            e.url, e.ok, e.retries, e.failed
        );
    }
    if let Some(out) = &s.out {
        println!("wrote {out} (work directory: {})", work.display());
    }
    Ok(())
}
