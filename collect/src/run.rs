//! A collection run: read the problems, open the work directory, collect the problems not yet
//! committed (many at once, each a tokio task), commit them in shards, show progress, and at
//! the end write the dataset in problem-file order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::config::CollectConfig;
use crate::error::{CollectError, Result};
use crate::expand::{Ctx, Guide, Spend, collect_problem};
use crate::grade_cmd::Grader;
use crate::http::{Endpoint, EndpointStats};
use crate::judge::Judge;
use crate::models::{Generator, PoolingPrm};
use crate::problems::{Problem, read_problems};
use crate::shard::{ProblemRecord, RunIdentity, WorkDir, file_sha256};

/// How the run is driven (not part of what is collected).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The command line, for the dataset's metadata.
    pub command: String,
    /// Write the dataset even if some problems failed (they are then absent).
    pub allow_partial: bool,
}

/// Counters of one endpoint.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EndpointSummary {
    pub url: String,
    pub ok: u64,
    pub retries: u64,
    pub failed: u64,
}

/// What a run did (also written to `<work>/summary.json`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub problems: usize,
    pub already_committed: usize,
    pub collected: usize,
    pub failed: Vec<Failure>,
    /// Cost of the problems collected by this run.
    pub spend: Spend,
    pub weak: EndpointSummary,
    pub strong: EndpointSummary,
    pub prm: EndpointSummary,
    /// The judge's counters, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<EndpointSummary>,
    pub shards_written: usize,
    pub wall_s: f64,
    /// The dataset written, if it was.
    pub out: Option<String>,
}

/// A problem that failed (nothing of it was written).
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub id: String,
    pub error: String,
}

/// Run a collection to the end (blocking; starts its own tokio runtime).
pub fn run(cfg: CollectConfig, opts: RunOptions) -> Result<Summary> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CollectError::Incomplete(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(run_async(cfg, opts))
}

/// The configuration fields that shape the data (what `run.json` pins).
fn identity_config(cfg: &CollectConfig) -> Value {
    let mut v = serde_json::to_value(cfg).expect("serialisable");
    if let Value::Object(m) = &mut v {
        for k in ["out", "name", "run", "problems"] {
            m.remove(k);
        }
        for role in ["weak", "strong", "prm", "judge"] {
            if let Some(Value::Object(r)) = m.get_mut(role) {
                for k in ["url", "limits", "api_key_env", "usd_per_mtok"] {
                    r.remove(k);
                }
            }
        }
    }
    v
}

async fn run_async(cfg: CollectConfig, opts: RunOptions) -> Result<Summary> {
    let start = Instant::now();
    let problems = read_problems(&cfg.problems)?;
    if cfg.out.exists() {
        return Err(CollectError::file(
            &cfg.out,
            "already exists; trim collect never overwrites a dataset (choose another --out, \
             or move it away to rebuild it from the committed shards)",
        ));
    }
    let id = RunIdentity::new(
        identity_config(&cfg),
        file_sha256(&cfg.problems)?,
        problems.len(),
    );
    let work = WorkDir::open(&cfg.work_dir(), &id)?;
    let mut done = work.load()?;
    let ctx = Arc::new(build_ctx(&cfg)?);
    let mut summary = Summary {
        problems: problems.len(),
        already_committed: done.len(),
        ..Summary::default()
    };
    let rx = spawn_problems(&cfg, &ctx, &problems, &done);
    let bar = progress_bar(opts.progress, problems.len(), done.len());
    let driver = Driver {
        cfg: &cfg,
        ctx: &ctx,
        work: &work,
        bar: &bar,
        start,
    };
    drive(&driver, rx, &mut done, &mut summary).await?;
    bar.finish_and_clear();
    fill_endpoints(&mut summary, &ctx);
    summary.wall_s = start.elapsed().as_secs_f64();
    if summary.failed.is_empty() || opts.allow_partial {
        let ds = crate::output::dataset(&cfg, &ctx, &problems, &done, &opts.command)?;
        // Every tree invariant, before anything is written (a bug or a lying server must not
        // leave an invalid dataset behind).
        trim_data::validate(&cfg.out, ds.clone())?;
        trim_data::io::write_dataset(&cfg.out, &ds)?;
        summary.out = Some(cfg.out.display().to_string());
    }
    let text = serde_json::to_vec_pretty(&summary).expect("serialisable");
    work.write("summary.json", &text)?;
    if !summary.failed.is_empty() && !opts.allow_partial {
        return Err(incomplete(&summary, &work));
    }
    Ok(summary)
}

fn incomplete(summary: &Summary, work: &WorkDir) -> CollectError {
    let first = &summary.failed[0];
    CollectError::Incomplete(format!(
        "{} of {} problems failed and were not written (first: {}: {}); the others are \
         committed in {} — re-run the same command to retry the failed ones, or pass \
         --allow-partial to write the dataset without them",
        summary.failed.len(),
        summary.problems,
        first.id,
        first.error,
        work.dir.display()
    ))
}

/// What the receiving loop reads.
#[derive(Clone, Copy)]
struct Driver<'a> {
    cfg: &'a CollectConfig,
    ctx: &'a Ctx,
    work: &'a WorkDir,
    bar: &'a indicatif::ProgressBar,
    start: Instant,
}

/// A problem's outcome as its task reports it.
type Outcome = (String, Result<ProblemRecord>);

/// One task per problem not yet committed, at most `problems_in_flight` running at once.
fn spawn_problems(
    cfg: &CollectConfig,
    ctx: &Arc<Ctx>,
    problems: &[Problem],
    done: &BTreeMap<u32, ProblemRecord>,
) -> mpsc::Receiver<Outcome> {
    let (tx, rx) = mpsc::channel::<Outcome>(64);
    let gate = Arc::new(Semaphore::new(cfg.run.problems_in_flight));
    for (i, p) in problems.iter().enumerate() {
        let index = i as u32;
        if done.contains_key(&index) {
            continue;
        }
        let (ctx, tx, gate, p) = (ctx.clone(), tx.clone(), gate.clone(), p.clone());
        tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("never closed");
            let r = collect_problem(&ctx, &p)
                .await
                .map(|(trees, spend)| ProblemRecord {
                    index,
                    id: p.id.clone(),
                    trees,
                    spend,
                });
            let _ = tx.send((p.id, r)).await;
        });
    }
    rx
}

/// Receive outcomes until every task reported, committing a shard when it is full or its
/// oldest problem has waited `flush_s`.
async fn drive(
    d: &Driver<'_>,
    mut rx: mpsc::Receiver<Outcome>,
    done: &mut BTreeMap<u32, ProblemRecord>,
    summary: &mut Summary,
) -> Result<()> {
    let Driver {
        cfg,
        ctx,
        work,
        bar,
        start,
    } = *d;
    let flush_every = Duration::from_secs_f64(cfg.run.flush_s);
    let mut buffer: Vec<ProblemRecord> = vec![];
    let mut oldest: Option<Instant> = None;
    loop {
        let wait = oldest.map_or(flush_every, |t| flush_every.saturating_sub(t.elapsed()));
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(None) => break,
            Err(_) => {}
            Ok(Some((_, Ok(rec)))) => {
                summary.collected += 1;
                summary.spend.add(rec.spend);
                buffer.push(rec);
                oldest.get_or_insert_with(Instant::now);
                bar.inc(1);
            }
            Ok(Some((
                _,
                Err(e @ (CollectError::Refused { .. } | CollectError::Grader { .. })),
            ))) => {
                // Every other problem would fail the same way: stop now, keeping what is done.
                commit(work, &mut buffer, done, summary)?;
                return Err(e);
            }
            Ok(Some((id, Err(e)))) => {
                let error = e.to_string();
                summary.failed.push(Failure { id, error });
                bar.inc(1);
            }
        }
        let due = oldest.is_some_and(|t| t.elapsed() >= flush_every);
        if buffer.len() >= cfg.run.shard_size || (due && !buffer.is_empty()) {
            commit(work, &mut buffer, done, summary)?;
            oldest = None;
        }
        bar.set_message(live_message(ctx, cfg, start));
    }
    commit(work, &mut buffer, done, summary)
}

fn commit(
    work: &WorkDir,
    buffer: &mut Vec<ProblemRecord>,
    done: &mut BTreeMap<u32, ProblemRecord>,
    summary: &mut Summary,
) -> Result<()> {
    if buffer.is_empty() {
        return Ok(());
    }
    buffer.sort_by_key(|r| r.index);
    work.commit(buffer)?;
    summary.shards_written += 1;
    for r in buffer.drain(..) {
        done.insert(r.index, r);
    }
    Ok(())
}

fn build_ctx(cfg: &CollectConfig) -> Result<Ctx> {
    let gen_ep = |role, g: &crate::config::GeneratorConfig| {
        Endpoint::new(role, &g.url, g.api_key_env.as_deref(), &g.limits)
    };
    let weak = Generator {
        cfg: cfg.weak.clone(),
        sampling: cfg.sampling.clone(),
        prompt: cfg.prompt.clone(),
        endpoint: gen_ep("weak", &cfg.weak)?,
        logprobs: cfg.signals.logprobs,
    };
    let strong = Generator {
        cfg: cfg.strong.clone(),
        sampling: cfg.sampling.clone(),
        prompt: cfg.prompt.clone(),
        endpoint: gen_ep("strong", &cfg.strong)?,
        logprobs: cfg.signals.logprobs,
    };
    let prm = PoolingPrm {
        cfg: cfg.prm.clone(),
        prompt: cfg.prompt.clone(),
        endpoint: Endpoint::new(
            "prm",
            &cfg.prm.url,
            cfg.prm.api_key_env.as_deref(),
            &cfg.prm.limits,
        )?,
    };
    let guide = match (&cfg.expand.strategy, &cfg.expand.policy) {
        (crate::config::Strategy::Policy, Some(spec)) => Some(Guide::parse(spec)?),
        _ => None,
    };
    Ok(Ctx {
        cfg: cfg.clone(),
        weak,
        strong,
        prm: Box::new(prm),
        judge: cfg.judge.as_ref().map(Judge::new).transpose()?,
        grader: Grader::start(cfg.grader.as_deref())?,
        guide,
        live_tokens: Default::default(),
    })
}

fn endpoint_summary(e: &Endpoint) -> EndpointSummary {
    let s: &EndpointStats = &e.stats;
    EndpointSummary {
        url: e.public_url(),
        ok: s.ok.load(Ordering::Relaxed),
        retries: s.retries.load(Ordering::Relaxed),
        failed: s.failed.load(Ordering::Relaxed),
    }
}

fn fill_endpoints(s: &mut Summary, ctx: &Ctx) {
    s.weak = endpoint_summary(&ctx.weak.endpoint);
    s.strong = endpoint_summary(&ctx.strong.endpoint);
    if let Some(e) = ctx.prm.endpoint() {
        s.prm = endpoint_summary(e);
    }
    s.judge = ctx.judge.as_ref().map(|j| endpoint_summary(&j.endpoint));
}

fn progress_bar(show: bool, total: usize, done: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} problems (eta {eta}) {msg}",
    )
    .expect("valid template");
    bar.set_style(style);
    bar.set_position(done as u64);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Tokens so far, tokens/s and spend (when prices are configured).
fn live_message(ctx: &Ctx, cfg: &CollectConfig, start: Instant) -> String {
    let w = ctx.live_tokens[0].load(Ordering::Relaxed);
    let s = ctx.live_tokens[1].load(Ordering::Relaxed);
    let rate = (w + s) as f64 / start.elapsed().as_secs_f64().max(1e-3);
    let mut m = format!("weak {w} tok, strong {s} tok, {rate:.0} tok/s");
    let price = |p: Option<f64>, n: u64| p.map(|p| p * n as f64 / 1e6);
    if let (Some(a), Some(b)) = (
        price(cfg.weak.usd_per_mtok, w),
        price(cfg.strong.usd_per_mtok, s),
    ) {
        m.push_str(&format!(", ${:.2}", a + b));
    }
    let retries = ctx.weak.endpoint.stats.retries.load(Ordering::Relaxed)
        + ctx.strong.endpoint.stats.retries.load(Ordering::Relaxed)
        + ctx
            .prm
            .endpoint()
            .map_or(0, |e| e.stats.retries.load(Ordering::Relaxed))
        + (ctx.judge.as_ref()).map_or(0, |j| j.endpoint.stats.retries.load(Ordering::Relaxed));
    if retries > 0 {
        m.push_str(&format!(", {retries} retries"));
    }
    m
}

/// Provenance of an endpoint for the dataset metadata (no secrets).
pub fn endpoint_meta(e: &Endpoint, model: &str, extra: Value) -> Value {
    let mut v = json!({"model": model, "url": e.public_url()});
    if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
        a.extend(b);
    }
    v
}
