//! `trim route`: decisions for JSON lines of step observations.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use trim_router::{Exploration, Policy, PomdpRouter, Router, SeqRouter, StepObservation};

/// Arguments of `trim route`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).args(["export", "pomdp"])))]
pub struct RouteArgs {
    /// Export directory written by `trim export` (TRIM-Agg, TRIM-Seq or TRIM-POMDP).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// A TRIM-POMDP solution file written by `trim pomdp solve --out` (decided through the
    /// release's belief rule).
    #[arg(long)]
    pub pomdp: Option<PathBuf>,
    /// JSON-lines input, one step per line:
    /// {"id": …, "prev_prm": [kept PRM scores of earlier steps], "prm": 0.42, "tokens": 120}.
    /// Default: stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Threshold on p(regenerate) of a TRIM-Agg or TRIM-Seq export (default: the export's, 0.5).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Stop at the first malformed line with an error (exit 1), for batch use. Default (serving):
    /// answer a malformed line with `{"id": …, "error": "…", "line": N}` and go on.
    #[arg(long)]
    pub strict: bool,
    /// Stateful mode (TRIM-Agg and TRIM-Seq exports): lines name an episode and carry only the
    /// new numbers — `{"session": S, "prm": p, "tokens": n}` to decide, `{"session": S, "kept":
    /// {"prm": p, "tokens": n, "regenerated": b}}` after acting, `{"session": S, "end": true}`.
    #[arg(long, requires = "export")]
    pub sessions: bool,
    /// Most episodes open at once in --sessions mode.
    #[arg(long, default_value_t = 100_000)]
    pub max_sessions: usize,
    /// The cost per strong token to act at, for a λ-conditioned export: used by lines without
    /// their own `lambda` (and by every session). Refused for exports without a λ input.
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Explore ε-greedily (TRIM-Agg / TRIM-Seq exports, stateless lines): answers carry the
    /// action drawn, its `propensity`, the policy's `greedy_action` and a `policy_id`, which a
    /// serving log records so that `trim ope` can evaluate other policies on it.
    #[arg(long, conflicts_with_all = ["explore_temperature", "sessions"])]
    pub explore_epsilon: Option<f64>,
    /// Explore by sampling regenerate with p(regenerate) sharpened by a temperature (1: the
    /// policy's own probability); answers as with --explore-epsilon.
    #[arg(long, conflicts_with = "sessions")]
    pub explore_temperature: Option<f64>,
    /// Seed of the exploration draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The `policy_id` answers carry when exploring (default: the export directory's name).
    #[arg(long)]
    pub policy_id: Option<String>,
}

impl RouteArgs {
    /// The exploring state the flags ask for (None: decide greedily).
    fn explorer(&self, router: &Decider) -> Result<Option<super::route_explore::Explorer>> {
        let x = match (self.explore_epsilon, self.explore_temperature) {
            (Some(e), _) => Exploration::Epsilon(e),
            (None, Some(t)) => Exploration::Temperature(t),
            (None, None) => return Ok(None),
        };
        let x = x.check().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            !matches!(router, Decider::Pomdp(_)),
            "exploration needs a network export (TRIM-Agg or TRIM-Seq) with p(regenerate)"
        );
        let policy_id = self.policy_id.clone().unwrap_or_else(|| {
            (self.export.as_ref().and_then(|e| e.file_name()))
                .map_or("policy".into(), |n| n.to_string_lossy().into())
        });
        Ok(Some(super::route_explore::Explorer {
            exploration: x,
            rng: trim_env::Rng::new(self.seed),
            policy_id,
        }))
    }
}

/// Load any export (`trim_router::Policy`); `--threshold` applies to TRIM-Agg only.
fn load(export: &std::path::Path, threshold: Option<f32>) -> Result<Decider> {
    Ok(match (Policy::load(export)?, threshold) {
        (Policy::Agg(r), Some(t)) => {
            Decider::Agg(Box::new(r.with_threshold(t).map_err(anyhow::Error::msg)?))
        }
        (Policy::Agg(r), None) => Decider::Agg(r),
        (Policy::Pomdp(..), Some(_)) => {
            anyhow::bail!(
                "--threshold applies to TRIM-Agg exports only ({} is TRIM-POMDP)",
                export.display()
            )
        }
        (Policy::Pomdp(r, _), None) => Decider::Pomdp(r),
        (Policy::Seq(r, _), Some(t)) => {
            Decider::Seq(Box::new(r.with_threshold(t).map_err(anyhow::Error::msg)?))
        }
        (Policy::Seq(r, _), None) => Decider::Seq(r),
    })
}

/// The policy answering the steps.
enum Decider {
    Agg(Box<Router>),
    Pomdp(Box<PomdpRouter>),
    Seq(Box<SeqRouter>),
}

impl Decider {
    /// Check `--lambda` against the policy: only a λ-conditioned export takes one.
    fn check_lambda(&self, lambda: Option<f64>) -> Result<()> {
        let conditioned = match self {
            Decider::Agg(r) => r.lambda_range().is_some(),
            Decider::Seq(r) => r.lambda_range().is_some(),
            Decider::Pomdp(_) => false,
        };
        match (lambda, conditioned) {
            (Some(l), false) => anyhow::bail!(
                "--lambda {l:e}: this export has no λ input (it is not λ-conditioned); drop it"
            ),
            (Some(l), true) => {
                let step = StepObservation {
                    id: None,
                    prev_prm: vec![],
                    prm: 0.5,
                    tokens: 1,
                    prev_tokens: vec![],
                    prev_regenerated: vec![],
                    lambda: Some(l),
                    budget: None,
                    budget_left: None,
                };
                self.decide(&step)
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("--lambda: {e}"))
            }
            (None, _) => Ok(()),
        }
    }

    /// A network policy's decision (None for TRIM-POMDP).
    fn network(
        &self,
        step: &StepObservation,
    ) -> std::result::Result<Option<trim_router::Decision>, String> {
        Ok(match self {
            Decider::Agg(r) => Some(r.decide_step(step)?),
            Decider::Seq(r) => Some(r.decide_step(step)?),
            Decider::Pomdp(_) => None,
        })
    }

    /// The answer object for one valid step, or the reason it cannot be decided.
    fn decide(&self, step: &StepObservation) -> std::result::Result<serde_json::Value, String> {
        let action = |r: bool| if r { "regenerate" } else { "continue" };
        let net = |d: trim_router::Decision| {
            serde_json::json!({
                "action": action(d.regenerate),
                "p_regenerate": d.p_regenerate,
                "logits": d.logits,
            })
        };
        Ok(match self {
            Decider::Agg(r) => net(r.decide_step(step)?),
            Decider::Seq(r) => net(r.decide_step(step)?),
            Decider::Pomdp(r) => {
                let d = r.decide_step(step)?;
                serde_json::json!({
                    "action": action(d.regenerate),
                    "belief": d.belief,
                    "shortcut": d.shortcut,
                })
            }
        })
    }
}

pub fn run(a: RouteArgs) -> Result<()> {
    let router = match (&a.export, &a.pomdp) {
        (Some(e), _) => load(e, a.threshold)?,
        (None, Some(p)) => {
            anyhow::ensure!(
                a.threshold.is_none(),
                "--threshold applies to TRIM-Agg exports only"
            );
            Decider::Pomdp(Box::new(PomdpRouter::load(p)?))
        }
        (None, None) => anyhow::bail!("name a policy: --export DIR or --pomdp FILE"),
    };
    router.check_lambda(a.lambda)?;
    let input: Box<dyn BufRead> = match &a.input {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let name = (a.input.as_ref()).map_or("stdin".to_string(), |p| p.display().to_string());
    if a.sessions {
        let make = maker(&router, a.lambda)?;
        let mut sessions = super::route_sessions::Sessions::new(a.max_sessions, make);
        serve_lines(input, &name, a.strict, &mut |line| sessions.answer(line))?;
        if sessions.len() > 0 {
            eprintln!(
                "trim route: {} session(s) still open at the end of input",
                sessions.len()
            );
        }
        return Ok(());
    }
    let mut explorer = a.explorer(&router)?;
    serve_lines(input, &name, a.strict, &mut |line| {
        answer(&router, (a.lambda, explorer.as_mut()), line)
    })
}

/// New episodes of a network export (TRIM-POMDP needs no per-episode state); a λ-conditioned
/// TRIM-Agg episode acts at `lambda`.
fn maker<'r>(
    router: &'r Decider,
    lambda: Option<f64>,
) -> Result<Box<dyn Fn() -> trim_router::Session<'r> + 'r>> {
    Ok(match router {
        Decider::Agg(r) => match lambda {
            Some(l) => Box::new(move || r.session_at(l)),
            None => Box::new(|| r.session()),
        },
        Decider::Seq(r) => match lambda {
            Some(l) => Box::new(move || r.session_at(l)),
            None => Box::new(|| r.session()),
        },
        Decider::Pomdp(_) => anyhow::bail!(
            "--sessions serves TRIM-Agg and TRIM-Seq exports; a TRIM-POMDP decision needs only \
             the kept PRM scores: send whole steps without --sessions"
        ),
    })
}

/// Answer every line of `input` with `handle`, flushing each answer (one decision per step in a
/// serving loop); a malformed line gets an error object (`{"id", "error", "line"}`) unless
/// `strict`, which stops at it.
fn serve_lines(
    input: Box<dyn BufRead + '_>,
    name: &str,
    strict: bool,
    handle: &mut dyn FnMut(&[u8]) -> super::route_sessions::Answer,
) -> Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut bad = 0u64;
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("{name}: cannot read line {}", i + 1))?;
        let answer = match handle(&line) {
            Some(Ok(o)) => o,
            Some(Err((id, e))) if !strict => {
                bad += 1;
                serde_json::json!({"id": id, "error": e, "line": i + 1})
            }
            Some(Err((_, e))) => anyhow::bail!("{name}:{}: {e}", i + 1),
            None => continue,
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    if bad > 0 {
        eprintln!("trim route: {bad} malformed line(s) answered with an error object");
    }
    Ok(())
}

/// The answer to one input line: a decision object, an error with the request id when one could
/// be read, or `None` for a blank line. Lines are bytes: invalid UTF-8 is an error answer, not
/// the end of the stream.
fn answer(
    router: &Decider,
    (lambda, explorer): (Option<f64>, Option<&mut super::route_explore::Explorer>),
    line: &[u8],
) -> super::route_sessions::Answer {
    let mut step: StepObservation =
        match super::route_sessions::parse_line(line, "id", "a step observation")? {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
    step.lambda = step.lambda.or(lambda);
    let id = step.id.clone().unwrap_or(serde_json::Value::Null);
    let decided = match explorer {
        Some(x) => router
            .network(&step)
            .map(|d| d.map_or(serde_json::Value::Null, |d| x.answer(&d))),
        None => router.decide(&step),
    };
    Some(match decided {
        Ok(mut o) => {
            if let Some(id) = step.id {
                o["id"] = id;
            }
            Ok(o)
        }
        Err(e) => Err((id, e)),
    })
}
