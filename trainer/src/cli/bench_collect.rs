//! `trim bench-collect`: the collector's throughput against the in-process fake server on
//! 127.0.0.1 (real HTTP over loopback): a whole collection (generation + PRM + grading +
//! shard commits) and the bare client (one endpoint, N requests in flight).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use trim_collect::config::{CollectConfig, EndpointLimits};
use trim_collect::fake::world::problem_file;
use trim_collect::fake::{FakeServer, FakeWorld, Faults};
use trim_collect::http::Endpoint;
use trim_collect::{RunOptions, api};

#[derive(Args)]
pub struct BenchCollectArgs {
    /// Fake problems to collect (full trees, max_regens 2).
    #[arg(long, default_value_t = 300)]
    pub problems: usize,
    /// Requests in flight per endpoint (and problems in flight).
    #[arg(long, default_value_t = 64)]
    pub in_flight: usize,
    /// Bare-client requests (completions) for the second measurement.
    #[arg(long, default_value_t = 20000)]
    pub raw_requests: usize,
    /// Instead: what each expansion strategy costs per problem, in a fake world shaped like
    /// Qwen2.5-1.5B → 7B on MATH (steps, step tokens, accuracies), over --problems problems.
    #[arg(long)]
    pub costs: bool,
}

pub fn run(a: BenchCollectArgs) -> Result<()> {
    let world = if a.costs {
        FakeWorld::math_like()
    } else {
        FakeWorld::default()
    };
    let srv = FakeServer::start(world, Faults::default())?;
    let dir = std::env::temp_dir().join(format!("trim-bench-collect-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = if a.costs {
        costs(&a, &srv, &dir)
    } else {
        collection(&a, &srv, &dir)
    };
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    if a.costs {
        return Ok(());
    }
    bare_client(&a, &srv)
}

/// The strategies of the cost table: (label, config overrides).
const STRATEGIES: [(&str, &[&str]); 7] = [
    ("full, K = 0 (all-weak path only)", &["expand.max_regens=0"]),
    ("full, K = 1", &["expand.max_regens=1"]),
    ("full, K = 2", &["expand.max_regens=2"]),
    ("full, K = 3", &["expand.max_regens=3"]),
    (
        "policy threshold:0.5, 1 episode",
        &[
            "expand.strategy=policy",
            "expand.policy='threshold:0.5'",
            "expand.episodes=1",
        ],
    ),
    (
        "policy threshold:0.5, 4 episodes, ε = 0.1",
        &[
            "expand.strategy=policy",
            "expand.policy='threshold:0.5'",
            "expand.episodes=4",
            "expand.epsilon=0.1",
        ],
    ),
    (
        "policy threshold:0.5, 16 episodes, ε = 0.1",
        &[
            "expand.strategy=policy",
            "expand.policy='threshold:0.5'",
            "expand.episodes=16",
            "expand.epsilon=0.1",
        ],
    ),
];

fn costs(a: &BenchCollectArgs, srv: &FakeServer, dir: &std::path::Path) -> Result<()> {
    println!(
        "| strategy | nodes | weak tokens | strong tokens | generation requests | PRM requests |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, (label, extra)) in STRATEGIES.iter().enumerate() {
        let sub = dir.join(format!("s{i}"));
        std::fs::create_dir_all(&sub)?;
        let (s, nodes, _) = collect_once(a, srv, &sub, extra)?;
        let n = s.collected.max(1) as f64;
        let sp = &s.spend;
        println!(
            "| {label} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} |",
            nodes as f64 / n,
            sp.weak_tokens as f64 / n,
            sp.strong_tokens as f64 / n,
            sp.gen_requests as f64 / n,
            sp.prm_requests as f64 / n
        );
    }
    println!(
        "(per problem, mean over {} problems, one tree each)",
        a.problems
    );
    Ok(())
}

fn collection(a: &BenchCollectArgs, srv: &FakeServer, dir: &std::path::Path) -> Result<()> {
    let before = srv.stats.requests.load(Ordering::Relaxed);
    let (s, nodes, wall) = collect_once(a, srv, dir, &[])?;
    let reqs = srv.stats.requests.load(Ordering::Relaxed) - before;
    println!(
        "collection: {} problems, {nodes} nodes, {reqs} requests in {wall:.2} s = {:.0} requests/s, \
         {:.1} problems/s, {:.0} generated tokens/s ({} in flight per endpoint)",
        s.collected,
        reqs as f64 / wall,
        s.collected as f64 / wall,
        s.spend.tokens() as f64 / wall,
        a.in_flight
    );
    Ok(())
}

/// One collection of `a.problems` fake problems into `dir`: (summary, nodes, wall seconds).
fn collect_once(
    a: &BenchCollectArgs,
    srv: &FakeServer,
    dir: &std::path::Path,
    extra: &[&str],
) -> Result<(trim_collect::Summary, usize, f64)> {
    let problems = dir.join("problems.jsonl");
    std::fs::write(&problems, problem_file(a.problems))?;
    let mut o = vec![
        format!("problems={:?}", problems.display().to_string()),
        format!("out={:?}", dir.join("out.parquet").display().to_string()),
        format!("run.problems_in_flight={}", a.in_flight),
    ];
    o.extend(srv.overrides());
    for role in ["weak", "strong", "prm"] {
        o.push(format!("{role}.limits.max_in_flight={}", a.in_flight));
    }
    o.extend(extra.iter().map(|s| s.to_string()));
    let cfg = CollectConfig::load(None, &o)?;
    let t = Instant::now();
    let s = trim_collect::run(cfg, RunOptions::default())?;
    let wall = t.elapsed().as_secs_f64();
    let nodes = trim_data::load(&dir.join("out.parquet"))?.ds.rows.len();
    Ok((s, nodes, wall))
}

fn bare_client(a: &BenchCollectArgs, srv: &FakeServer) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let limits = EndpointLimits {
        max_in_flight: a.in_flight,
        ..EndpointLimits::default()
    };
    let ep = Arc::new(Endpoint::new(
        "weak",
        &format!("{}/v1", srv.url()),
        None,
        &limits,
    )?);
    let body = json!({"model": "fake-weak", "prompt": "Question: What is 2+2?\n\nSolution:\n\n",
        "max_tokens": 64, "seed": 1});
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..a.raw_requests {
            let (ep, body) = (ep.clone(), body.clone());
            tasks.spawn(async move {
                ep.call("/completions", &body, |v| {
                    api::parse_generation(trim_collect::config::Api::Completions, v)
                })
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.context("task")??;
        }
        anyhow::Ok(())
    })?;
    let wall = t.elapsed().as_secs_f64();
    println!(
        "bare client: {} completion requests in {wall:.2} s = {:.0} requests/s ({} in flight)",
        a.raw_requests,
        a.raw_requests as f64 / wall,
        a.in_flight
    );
    Ok(())
}
