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
}

pub fn run(a: BenchCollectArgs) -> Result<()> {
    let srv = FakeServer::start(FakeWorld::default(), Faults::default())?;
    let dir = std::env::temp_dir().join(format!("trim-bench-collect-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = collection(&a, &srv, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    bare_client(&a, &srv)
}

fn collection(a: &BenchCollectArgs, srv: &FakeServer, dir: &std::path::Path) -> Result<()> {
    let problems = dir.join("problems.jsonl");
    std::fs::write(&problems, problem_file(a.problems))?;
    let url = srv.url();
    let mut o = vec![
        format!("problems={:?}", problems.display().to_string()),
        format!("out={:?}", dir.join("out.parquet").display().to_string()),
        "weak.model=fake-weak".into(),
        format!("weak.url={url}/v1"),
        "strong.model=fake-strong".into(),
        format!("strong.url={url}/v1"),
        "prm.model=fake-prm".into(),
        format!("prm.url={url}"),
        format!("run.problems_in_flight={}", a.in_flight),
    ];
    for role in ["weak", "strong", "prm"] {
        o.push(format!("{role}.limits.max_in_flight={}", a.in_flight));
    }
    let cfg = CollectConfig::load(None, &o)?;
    let before = srv.stats.requests.load(Ordering::Relaxed);
    let t = Instant::now();
    let s = trim_collect::run(cfg, RunOptions::default())?;
    let wall = t.elapsed().as_secs_f64();
    let reqs = srv.stats.requests.load(Ordering::Relaxed) - before;
    let nodes = trim_data::load(&dir.join("out.parquet"))?.ds.rows.len();
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
