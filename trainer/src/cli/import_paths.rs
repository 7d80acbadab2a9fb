//! `trim data import paths`: logged serving traces (one row per executed step) → rollout trees.
//! With `--emit-example` it does the serving side instead: walks a tree dataset with reference
//! policies and writes their traces as a log (how `data/examples/paths-example.jsonl` is made).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use trim_data::import::paths::{self, DEFAULT_MAX_STEPS, Options};
use trim_env::{EpsGreedy, Policy, Propensity, RefPolicy};

/// Arguments of `trim data import paths`.
#[derive(Args)]
pub struct PathsArgs {
    /// Trace log (.jsonl or .parquet), one row per executed step (data/docs/paths-schema.md).
    #[arg(long, required_unless_present = "emit_example")]
    pub input: Option<PathBuf>,
    /// Output: the merged dataset (.parquet or .jsonl); with --emit-example, the trace log.
    #[arg(long)]
    pub out: PathBuf,
    /// Step cap: a trace may end with an unfinished step only at step max_steps − 1.
    #[arg(long, default_value_t = DEFAULT_MAX_STEPS)]
    pub max_steps: u16,
    /// Dataset name in the metadata (default: the input file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Instead of importing, walk the tree dataset --from with --policies and write their traces.
    #[arg(long, requires = "from", conflicts_with = "input")]
    pub emit_example: bool,
    /// Tree dataset walked by --emit-example.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Policies logged by --emit-example (weak, strong, threshold:K, random:P).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "weak,strong,threshold:0.3,threshold:0.6,threshold:0.9"
    )]
    pub policies: Vec<String>,
    /// Number of problems logged by --emit-example (the first ones of --split).
    #[arg(long, default_value_t = 4)]
    pub problems: usize,
    /// Split whose problems --emit-example logs (`all` for every problem).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Problems logged by --emit-example, by id (overrides --problems and --split).
    #[arg(long, value_delimiter = ',')]
    pub problem_ids: Vec<String>,
    /// Seed of the policies' RNG streams (--emit-example).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// With --emit-example: log as an exploring router would — each policy ε-greedy with this
    /// ε (RNG drawn per decision), and every row's `propensity` and `policy_id` recorded (what
    /// `trim ope` needs). Deterministic policies only (not random:P).
    #[arg(long)]
    pub explore: Option<f64>,
}

pub fn run(a: PathsArgs) -> anyhow::Result<()> {
    if a.emit_example {
        return emit_example(&a);
    }
    let input = a
        .input
        .as_ref()
        .context("--input is required unless --emit-example is given")?;
    let opts = Options {
        max_steps: a.max_steps,
        name: a.name.clone(),
        command: super::command_line(),
    };
    let (ds, rep) = paths::import(input, &opts)?;
    // Validate before writing: a dataset that would not load is never written.
    let loaded = trim_data::validate(input, ds)?;
    trim_data::io::write_dataset(&a.out, &loaded.ds)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "{} -> {}: {} rows, {} traces, {} problems, {} sample trees, {} nodes",
        input.display(),
        a.out.display(),
        rep.rows,
        rep.traces,
        rep.problems,
        rep.trees,
        rep.nodes
    );
    Ok(())
}

fn emit_example(a: &PathsArgs) -> anyhow::Result<()> {
    let from = a.from.as_ref().context("--emit-example needs --from")?;
    let loaded = trim_data::load(from)?;
    let pols: Vec<RefPolicy> = a
        .policies
        .iter()
        .map(|s| s.parse::<RefPolicy>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    let named: Vec<(String, &dyn Policy)> = pols
        .iter()
        .map(|p| (p.to_string(), p as &dyn Policy))
        .collect();
    let problems: Vec<u32> = if a.problem_ids.is_empty() {
        let mut ps = loaded.problems_in_split(&a.split);
        if ps.is_empty() {
            anyhow::bail!("{} has no problem in split `{}`", from.display(), a.split);
        }
        ps.truncate(a.problems);
        ps
    } else {
        a.problem_ids
            .iter()
            .map(|id| {
                let p = loaded.ds.problems.iter().position(|p| &p.problem_id == id);
                p.map(|p| p as u32)
                    .with_context(|| format!("{} has no problem `{id}`", from.display()))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let rows = match a.explore {
        None => paths::log_traces(&loaded, &problems, &named, a.seed)?,
        Some(eps) => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&eps),
                "--explore {eps}: ε is a probability in [0, 1]"
            );
            anyhow::ensure!(
                !pols.iter().any(|p| matches!(p, RefPolicy::Random(_))),
                "--explore wraps deterministic policies; random:P draws its own actions"
            );
            let explorers: Vec<EpsGreedy<RefPolicy>> = (pols.iter())
                .map(|&inner| EpsGreedy {
                    inner,
                    epsilon: eps,
                })
                .collect();
            let named: Vec<(String, &dyn Propensity)> = (pols.iter().zip(&explorers))
                .map(|(p, e)| (format!("{p}+eps{eps}"), e as &dyn Propensity))
                .collect();
            paths::log_explored(&loaded, &problems, &named, a.seed)?
        }
    };
    paths::write_traces(&a.out, &rows)?;
    println!(
        "{}: {} rows ({} policies × {} problems of {})",
        a.out.display(),
        rows.len(),
        named.len(),
        problems.len(),
        from.display()
    );
    Ok(())
}
