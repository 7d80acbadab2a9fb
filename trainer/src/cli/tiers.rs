//! `trim data tiers`: TwinRouterBench-style step labels from the trees (gold tier by
//! downgrade-and-cascade with sequential locking, `trim_env::tiers`), written as that
//! benchmark's static-track JSONL rows, and its `scores_v2` for the baselines and any export.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;
use trim_data::{DataSource, LoadOptions, with_world};
use trim_env::{Action, RefPolicy, World};

use trim::eval::tier_scores::{Labelled, labelled, row, table};
use trim::operating_point::ExportAt;

/// Arguments of `trim data tiers`.
#[derive(Args)]
pub struct TiersArgs {
    /// Dataset file or synth spec.
    #[arg(long)]
    pub data: PathBuf,
    /// Split to label (`all` for every problem).
    #[arg(long, default_value = "all")]
    pub split: String,
    /// Write the labelled rows here (JSONL; an existing file is refused).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exported policies to score beside the baselines (repeatable).
    #[arg(long)]
    pub export: Vec<PathBuf>,
}

/// One static-track row per labelled step: the router-visible prefix (here the problem id and
/// the kept steps' numbers, since trees carry no text) and the gold tier, plus trim's own
/// step observation.
fn rows(name: &str, ids: &dyn Fn(u32) -> String, all: &[Labelled]) -> String {
    let mut s = String::new();
    for (p, t, l) in all {
        let instance = format!("{}#{t}", ids(*p));
        let kept = |k: usize| -> (f32, u32, bool) {
            let x = &l[k];
            let regen = x.locked == Action::Regenerate;
            let c = if regen {
                x.strong.unwrap_or(x.weak)
            } else {
                x.weak
            };
            (c.prm, c.tokens, regen)
        };
        for (k, step) in l.iter().enumerate() {
            let prev: Vec<(f32, u32, bool)> = (0..k).map(kept).collect();
            let history: Vec<String> = (prev.iter().enumerate())
                .map(|(i, (prm, tok, r))| {
                    let who = if *r { "strong" } else { "weak" };
                    format!("step {}: {who}, {tok} tokens, PRM {prm:.4}", i + 1)
                })
                .collect();
            let row = json!({
                "id": format!("{instance}/{}", k + 1),
                "benchmark": name,
                "instance_id": instance,
                "step_index": k + 1,
                "total_steps": l.len(),
                "messages": [
                    {"role": "user", "content": format!("problem {}", ids(*p))},
                    {"role": "assistant", "content": format!(
                        "{}\ncandidate step {}: weak, {} tokens, PRM {:.4}",
                        history.join("\n"), k + 1, step.weak.tokens, step.weak.prm)},
                ],
                "target_tier": step.gold.name(),
                "target_tier_id": step.gold as u8,
                "observation": {
                    "prev_prm": prev.iter().map(|x| x.0).collect::<Vec<_>>(),
                    "prev_tokens": prev.iter().map(|x| x.1).collect::<Vec<_>>(),
                    "prev_regenerated": prev.iter().map(|x| x.2).collect::<Vec<_>>(),
                    "prm": step.weak.prm,
                    "tokens": step.weak.tokens,
                },
            });
            s.push_str(&row.to_string());
            s.push('\n');
        }
    }
    s
}

/// The baselines and exports, scored: the anchors, TRIM-Thr 0.1 … 0.9 (0.7 is RSD's default
/// δ), each export at its threshold.
fn score_table<W: World>(w: &W, all: &[Labelled], exports: &[(String, trim_router::Policy)]) {
    let mut rows = vec![
        row(w, all, "always-weak (low)".into(), &RefPolicy::Weak),
        row(w, all, "always-strong (high)".into(), &RefPolicy::Strong),
    ];
    for k in 1..10 {
        let t = k as f32 / 10.0;
        let name = match k {
            7 => "TRIM-Thr 0.7 = RSD δ = 0.7".to_string(),
            _ => format!("TRIM-Thr {t:.1}"),
        };
        rows.push(row(w, all, name, &RefPolicy::Threshold(t)));
    }
    for (name, e) in exports {
        let threshold = match e {
            trim_router::Policy::Agg(r) => r.threshold(),
            trim_router::Policy::Seq(r, _) => r.threshold(),
            trim_router::Policy::Pomdp(..) => 0.5,
        };
        let p = ExportAt {
            export: e,
            threshold,
            lambda: None,
        };
        rows.push(row(w, all, name.clone(), &p));
    }
    print!("{}", table(&rows));
}

/// The id of problem `p` (a synthetic world's problems are numbered).
fn problem_id(src: &DataSource, p: u32) -> String {
    match src {
        DataSource::Stored(l) => l.problems[p as usize].problem_id.clone(),
        DataSource::Lazy(z) => format!("{}-{p}", z.spec.cfg.name),
    }
}

/// `trim data tiers`.
pub fn run(a: TiersArgs) -> Result<()> {
    if let Some(out) = &a.out {
        anyhow::ensure!(
            !out.exists(),
            "{} exists: trim does not overwrite it; name a new file",
            out.display()
        );
    }
    let src = DataSource::open(&a.data, &LoadOptions::from_env())?;
    let problems = src.problems_in_split(&a.split);
    anyhow::ensure!(!problems.is_empty(), "no problems in split `{}`", a.split);
    let exports = (a.export.iter())
        .map(|d| {
            let e = trim_router::Policy::load(d)?;
            trim::operating_point::check_actable(&e, None, false)
                .map_err(|err| anyhow::anyhow!("{}: {err}", d.display()))?;
            Ok((d.display().to_string(), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let (all, skipped) = with_world!(&src, |w| labelled(w, &problems));
    let n_rows: usize = all.iter().map(|x| x.2.len()).sum();
    let high: usize = (all.iter().flat_map(|x| x.2.iter()))
        .filter(|s| s.gold == trim_env::tiers::Tier::High)
        .count();
    println!(
        "{} trajectories labelled ({skipped} trees skipped: a cheaper-tier trajectory the tree \
         does not hold), {n_rows} steps, gold high on {:.1} %",
        all.len(),
        100.0 * high as f64 / n_rows.max(1) as f64
    );
    with_world!(&src, |w| score_table(w, &all, &exports));
    if let Some(out) = &a.out {
        let ids = |p: u32| problem_id(&src, p);
        trim_data::io::write_text_atomic(out, &rows(src.name(), &ids, &all))?;
        println!("wrote {} ({n_rows} rows)", out.display());
    }
    Ok(())
}
