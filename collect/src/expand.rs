//! Which branches of a problem's tree are generated, and generating them.
//!
//! * `full`: waves by depth. Each wave generates, concurrently, the weak candidate of every
//!   pending node and — while the path has fewer than `max_regens` regenerations — its strong
//!   candidate; the next wave holds each unfinished candidate's child. So the tree holds the
//!   all-weak path, the strong candidate at every node and the weak continuation after each
//!   regenerate, up to K per path.
//! * `policy`: `episodes` episodes of a policy (`threshold:K` or an export) with
//!   ε-exploration; only the nodes they visit are generated.
//!
//! Budget: checked before each wave (or episode). Once spent, no new strong candidates or
//! regenerate branches are opened, and the paths already open are finished by the weak model,
//! so every node keeps an action that leads somewhere (the format forbids dead ends).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use trim_env::{Action, Rng};
use trim_router::{Policy, StepObservation};

use crate::config::{CollectConfig, Strategy};
use crate::error::{CollectError, Result};
use crate::grade_cmd::Grader;
use crate::http::fnv;
use crate::judge::Judge;
use crate::models::{Generator, StepScorer};
use crate::problems::Problem;
use crate::tree::{Cand, Context, Tree};

/// What collecting cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub weak_tokens: u64,
    pub strong_tokens: u64,
    /// Generation requests (degenerate splices included).
    pub gen_requests: u64,
    pub prm_requests: u64,
    /// Judge requests (one per weak candidate when a judge is configured); not written when
    /// zero, so records of runs without a judge are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub judge_requests: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Spend {
    /// Add `o` to this.
    pub fn add(&mut self, o: Spend) {
        self.weak_tokens += o.weak_tokens;
        self.strong_tokens += o.strong_tokens;
        self.gen_requests += o.gen_requests;
        self.prm_requests += o.prm_requests;
        self.judge_requests += o.judge_requests;
    }

    /// Generated tokens of both models.
    pub fn tokens(&self) -> u64 {
        self.weak_tokens + self.strong_tokens
    }

    /// Requests of every kind (what `budget.max_requests` limits).
    pub fn requests(&self) -> u64 {
        self.gen_requests + self.prm_requests + self.judge_requests
    }
}

/// The policy of guided expansion.
pub enum Guide {
    /// Regenerate when the weak step's PRM score is below this.
    Threshold(f32),
    /// An exported policy of any family.
    Export(Box<Policy>),
}

impl Guide {
    /// Parse `threshold:K` or load an export directory.
    pub fn parse(spec: &str) -> Result<Guide> {
        if let Some(k) = spec.strip_prefix("threshold:") {
            let k: f32 = k
                .parse()
                .ok()
                .filter(|k: &f32| (0.0..=1.0).contains(k))
                .ok_or_else(|| {
                    CollectError::config("expand.policy", format!("`{spec}`: K must be in [0, 1]"))
                })?;
            return Ok(Guide::Threshold(k));
        }
        let p = Policy::load(std::path::Path::new(spec))
            .map_err(|e| CollectError::config("expand.policy", e.to_string()))?;
        // A guide decides from the steps alone: a λ-conditioned export needs a calibrated λ,
        // and a budget-aware one a budget the collector does not have.
        let needs = match &p {
            Policy::Agg(r) if r.budget_input() => Some("a request budget"),
            Policy::Agg(r) if r.lambda_range().is_some() && r.default_lambda().is_none() => {
                Some("a λ (calibrate one with `trim calibrate`)")
            }
            Policy::Seq(r, _) if r.lambda_range().is_some() && r.default_lambda().is_none() => {
                Some("a λ (calibrate one with `trim calibrate`)")
            }
            _ => None,
        };
        if let Some(what) = needs {
            return Err(CollectError::config(
                "expand.policy",
                format!("`{spec}`: this export needs {what} at every decision"),
            ));
        }
        Ok(Guide::Export(Box::new(p)))
    }

    fn regenerate(&self, obs: &StepObservation) -> Result<bool> {
        match self {
            Guide::Threshold(k) => Ok(obs.prm < *k),
            Guide::Export(p) => (p.decide_step(obs))
                .map(|d| d.regenerate())
                .map_err(|e| CollectError::config("expand.policy", e)),
        }
    }
}

/// Everything a problem's collection needs.
pub struct Ctx {
    pub cfg: CollectConfig,
    pub weak: Generator,
    pub strong: Generator,
    pub prm: Box<dyn StepScorer>,
    /// Rates every weak candidate, when configured.
    pub judge: Option<Judge>,
    pub grader: Grader,
    pub guide: Option<Guide>,
    /// Tokens generated so far by the weak and the strong model (progress display).
    pub live_tokens: [AtomicU64; 2],
}

/// Collect every tree of `p`.
pub async fn collect_problem(ctx: &Ctx, p: &Problem) -> Result<(Vec<Tree>, Spend)> {
    let mut spend = Spend::default();
    let mut trees = vec![];
    for t in 0..ctx.cfg.expand.trees {
        if t > 0 && ctx.over_budget(&spend) {
            break;
        }
        let tree = match ctx.cfg.expand.strategy {
            Strategy::Full => full(ctx, p, t, &mut spend).await?,
            Strategy::Policy => guided(ctx, p, t, &mut spend).await?,
        };
        trees.push(tree);
    }
    Ok((trees, spend))
}

impl Ctx {
    fn over_budget(&self, s: &Spend) -> bool {
        let b = &self.cfg.budget;
        (b.max_tokens > 0 && s.tokens() >= b.max_tokens)
            || (b.max_requests > 0 && s.requests() >= b.max_requests)
    }

    /// The sampling seed of one candidate: a function of the run seed, the problem, the tree,
    /// the action history and the model, so a re-run asks exactly the same questions.
    fn seed(&self, p: &Problem, tree: u32, path: &str, role: Action) -> u64 {
        let key = format!("{}/{}/{tree}/{path}/{}", self.cfg.seed, p.id, role as u8);
        fnv(key.as_bytes()) >> 1
    }

    /// Generate, score and (if it ends the solution) grade one candidate after `prefix`.
    async fn candidate(
        &self,
        p: &Problem,
        c: &Context<'_>,
        role: Action,
        seed: u64,
    ) -> Result<(Cand, Spend)> {
        let (prefix, depth, prompt_est) = (&c.prefix[..], c.depth, c.prompt);
        let g = match role {
            Action::Continue => &self.weak,
            Action::Regenerate => &self.strong,
        };
        let step = g.step(&p.question, prefix, seed, prompt_est).await?;
        self.live_tokens[role as usize].fetch_add(u64::from(step.tokens), Ordering::Relaxed);
        let mut all = prefix.to_vec();
        all.push(&step.text);
        // The PRM and the judge read the same step independently: ask both at once.
        let judged = self.judge_step(p, prefix, &step.text, role);
        let (scores, judge_score) = tokio::join!(self.prm.score(&p.question, &all), judged);
        let (scores, judge_score) = (scores?, judge_score?);
        let prm = *scores.last().expect("one score per step, checked");
        let ctx_len = self.cfg.sampling.context_len;
        let context_full = ctx_len > 0 && step.prompt_tokens + step.tokens + 2 >= ctx_len;
        let finished = step.finish == crate::api::Finish::Length
            || step.text.contains("boxed{")
            || depth + 1 >= self.cfg.sampling.max_steps
            || context_full;
        let (correct, answer) = if finished {
            let g = self
                .grader
                .grade(&all.join(crate::prompt::STEP_SEP), &p.answer)
                .await?;
            (Some(g.correct), g.answer)
        } else {
            (None, None)
        };
        let mut spend = Spend {
            gen_requests: u64::from(step.requests),
            prm_requests: 1,
            judge_requests: u64::from(judge_score.is_some()),
            ..Spend::default()
        };
        match role {
            Action::Continue => spend.weak_tokens = u64::from(step.tokens),
            Action::Regenerate => spend.strong_tokens = u64::from(step.tokens),
        }
        let cand = Cand {
            text: step.text,
            tokens: step.tokens,
            prm,
            finished,
            correct,
            answer,
            prompt_tokens: step.prompt_tokens,
            judge_score,
            mean_logprob: step.mean_logprob,
        };
        Ok((cand, spend))
    }

    /// The judge's rating of a weak step (None without a judge, and for strong steps: the
    /// routing rules judge the weak model's proposal, the strong one is the fallback).
    async fn judge_step(
        &self,
        p: &Problem,
        prefix: &[&str],
        step: &str,
        role: Action,
    ) -> Result<Option<f32>> {
        match (&self.judge, role) {
            (Some(j), Action::Continue) => j.rate(&p.question, prefix, step).await.map(Some),
            _ => Ok(None),
        }
    }
}

/// A node to create: below `parent` by `action`, or the root.
struct Pending {
    parent: Option<(u32, Action)>,
    /// Generate its strong candidate too.
    strong: bool,
}

/// The `full` strategy.
async fn full(ctx: &Ctx, p: &Problem, t: u32, spend: &mut Spend) -> Result<Tree> {
    let k = ctx.cfg.expand.max_regens;
    let mut tree = Tree::default();
    let mut pending = vec![Pending {
        parent: None,
        strong: k > 0,
    }];
    while !pending.is_empty() {
        let exhausted = !tree.nodes.is_empty() && ctx.over_budget(spend);
        if exhausted {
            // Finish open paths weak-only: drop new regenerate branches and strong candidates.
            pending.retain(|q| !matches!(q.parent, Some((_, Action::Regenerate))));
            pending.iter_mut().for_each(|q| q.strong = false);
        }
        let jobs: Vec<_> = (pending.iter())
            .map(|q| node_job(ctx, p, t, tree.below(q.parent), q.strong))
            .collect();
        let results = join_all(jobs).await;
        let mut next = vec![];
        for (q, r) in pending.iter().zip(results) {
            let (weak, strong, s) = r?;
            spend.add(s);
            let id = tree.push(q.parent, weak);
            tree.nodes[id as usize].strong = strong;
            let n = &tree.nodes[id as usize];
            if !n.weak.finished {
                next.push(Pending {
                    parent: Some((id, Action::Continue)),
                    strong: n.regens < k,
                });
            }
            if n.strong.as_ref().is_some_and(|s| !s.finished) {
                next.push(Pending {
                    parent: Some((id, Action::Regenerate)),
                    strong: n.regens + 1 < k,
                });
            }
        }
        pending = next;
    }
    Ok(tree)
}

type NodeResult = Result<(Cand, Option<Cand>, Spend)>;

/// Generate a node's weak candidate and, if asked, its strong one, concurrently.
fn node_job<'a>(
    ctx: &'a Ctx,
    p: &'a Problem,
    t: u32,
    c: Context<'a>,
    strong: bool,
) -> Pin<Box<dyn Future<Output = NodeResult> + Send + 'a>> {
    Box::pin(async move {
        let ws = ctx.seed(p, t, &c.path, Action::Continue);
        let ss = ctx.seed(p, t, &c.path, Action::Regenerate);
        let weak = ctx.candidate(p, &c, Action::Continue, ws);
        if strong {
            let strong = ctx.candidate(p, &c, Action::Regenerate, ss);
            let (w, s) = tokio::join!(weak, strong);
            let ((w, mut spend), (s, s_spend)) = (w?, s?);
            spend.add(s_spend);
            Ok((w, Some(s), spend))
        } else {
            let (w, spend) = weak.await?;
            Ok((w, None, spend))
        }
    })
}

/// The `policy` strategy.
async fn guided(ctx: &Ctx, p: &Problem, t: u32, spend: &mut Spend) -> Result<Tree> {
    let guide = ctx.guide.as_ref().expect("checked with the config");
    let eps = ctx.cfg.expand.epsilon;
    let mut rng = Rng::new(fnv(
        format!("{}/{}/{t}/guide", ctx.cfg.seed, p.id).as_bytes()
    ));
    let mut tree = Tree::default();
    for ep in 0..ctx.cfg.expand.episodes {
        if ep > 0 && ctx.over_budget(spend) {
            break;
        }
        let mut node = match tree.nodes.is_empty() {
            true => create(ctx, p, t, &mut tree, None, spend).await?,
            false => 0,
        };
        loop {
            let obs = observation(&tree, node);
            let mut regen = guide.regenerate(&obs)?;
            if eps > 0.0 && rng.bernoulli(eps) {
                regen = !regen;
            }
            let a = if regen {
                Action::Regenerate
            } else {
                Action::Continue
            };
            if regen && tree.nodes[node as usize].strong.is_none() {
                let c = tree.at(node);
                let seed = ctx.seed(p, t, &c.path, Action::Regenerate);
                let (s, sp) = ctx.candidate(p, &c, Action::Regenerate, seed).await?;
                spend.add(sp);
                tree.nodes[node as usize].strong = Some(s);
            }
            let n = &tree.nodes[node as usize];
            let kept = if regen {
                n.strong.as_ref().expect("made")
            } else {
                &n.weak
            };
            if kept.finished {
                break;
            }
            node = match n.children[a as usize] {
                Some(c) => c,
                None => create(ctx, p, t, &mut tree, Some((node, a)), spend).await?,
            };
        }
    }
    Ok(tree)
}

/// Create the node below `parent` (its weak candidate only).
async fn create(
    ctx: &Ctx,
    p: &Problem,
    t: u32,
    tree: &mut Tree,
    parent: Option<(u32, Action)>,
    spend: &mut Spend,
) -> Result<u32> {
    let c = tree.below(parent);
    let seed = ctx.seed(p, t, &c.path, Action::Continue);
    let (w, sp) = ctx.candidate(p, &c, Action::Continue, seed).await?;
    spend.add(sp);
    Ok(tree.push(parent, w))
}

/// What a serving loop would report at `node`: the kept steps' scores, tokens and who wrote
/// them, and the weak candidate.
fn observation(tree: &Tree, node: u32) -> StepObservation {
    let kept = tree.kept(node);
    let n = &tree.nodes[node as usize];
    StepObservation {
        id: None,
        prev_prm: kept.iter().map(|(c, _)| c.prm).collect(),
        prm: n.weak.prm,
        tokens: n.weak.tokens,
        prev_tokens: kept.iter().map(|(c, _)| c.tokens).collect(),
        prev_regenerated: kept.iter().map(|(_, r)| *r).collect(),
        lambda: None,
        budget: None,
        budget_left: None,
    }
}

/// Await every future, concurrently, in order (no `futures` crate needed for this one use).
async fn join_all<'a, T>(futs: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>) -> Vec<T> {
    let mut futs: Vec<_> = futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = (0..futs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *o = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}
