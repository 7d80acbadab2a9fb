//! Trained checkpoints in the evaluation suite, of whichever family each checkpoint records:
//! the greedy policy (one point per checkpoint, family `<family>`) and the policy's own
//! regenerate-probability thresholds (family `<family> p>t`).

use trim_env::{Action, EvalOptions, Policy, Rng, StepView, World};

use super::push_to;
use super::{CheckpointSpec, Family, Kind, OperatingPoint, Scorer, SuiteOptions, family, names};
use crate::backend::Backend;
use crate::checkpoint;
use crate::family::rows::{NetRule, act_alone, evaluate_nets};
use crate::family::seq::{Seq, SeqLambda};
use crate::family::{self, GreedyOf, agg::Agg, agg_lambda::AggLambda};

/// A trained policy that regenerates when its probability of `regenerate` exceeds `threshold`.
///
/// Greedy acting is the `threshold = 0.5` member (up to ties); sweeping the threshold trades
/// accuracy for cost along the policy's own confidence, which densifies the curve of a single
/// checkpoint the way TRIM-Thr's threshold does for the PRM score.
pub struct RegenAbove<'a, F: family::Family> {
    pub weights: &'a F::Acting,
    pub threshold: f32,
}

impl<F: family::Family> Policy for RegenAbove<'_, F> {
    fn act(&self, view: &StepView<'_>, mask: [bool; 2], _rng: &mut Rng) -> Action {
        act_alone(self, view, mask)
    }

    fn wants_history(&self) -> bool {
        F::needs_history()
    }
}

/// The block path of [`RegenAbove`] (`family::rows`): the same observation and decision.
impl<F: family::Family> NetRule for RegenAbove<'_, F> {
    type F = F;

    fn acting(&self) -> &F::Acting {
        self.weights
    }

    fn observe(&self, view: &StepView<'_>, row: &mut [f32]) {
        F::observe(view, row);
    }

    fn decide(&self, lp: [f32; 2]) -> Action {
        if lp[1].exp() > self.threshold {
            Action::Regenerate
        } else {
            Action::Continue
        }
    }
}

type Points = Vec<(String, Vec<OperatingPoint>)>;

/// The acting network of the checkpoint in `dir`, of family `F` (verified).
pub(super) fn load_acting<F: family::Family>(dir: &std::path::Path) -> anyhow::Result<F::Acting> {
    let device = Backend::Flex.device()?;
    let (model, _) = checkpoint::load_model_as::<F>(dir, &device)?;
    F::acting(&model).map_err(anyhow::Error::msg)
}

/// Checkpoints: greedy points form `<family>`; probability-threshold points `<family> p>t`.
pub(super) fn checkpoint_families<W: World>(
    forest: &W,
    problems: &[u32],
    sc: &Scorer,
    checkpoints: &[CheckpointSpec],
    o: &SuiteOptions,
) -> anyhow::Result<Vec<Family>> {
    let (mut greedy, mut swept): (Points, Points) = (vec![], vec![]);
    for c in checkpoints {
        let recorded = checkpoint::load_state(&c.dir)?.family;
        let out = (&mut greedy, &mut swept);
        if recorded == <Agg as family::Family>::NAME {
            points::<Agg, W>(forest, problems, sc, c, o, out)?;
        } else if recorded == <Seq as family::Family>::NAME {
            points::<Seq, W>(forest, problems, sc, c, o, out)?;
        } else if recorded == <AggLambda as family::Family>::NAME {
            for p in super::conditioned::points::<AggLambda, W>(forest, problems, sc, c, o)? {
                push_to(out.0, &c.family, p);
            }
        } else if recorded == <SeqLambda as family::Family>::NAME {
            for p in super::conditioned::points::<SeqLambda, W>(forest, problems, sc, c, o)? {
                push_to(out.0, &c.family, p);
            }
        } else {
            anyhow::bail!(
                "{}: policy family `{recorded}` cannot be evaluated by this build",
                c.dir.display()
            );
        }
    }
    let trained = greedy.into_iter().chain(swept);
    Ok(trained
        .map(|(name, pts)| family(&name, Kind::Trained, pts))
        .collect())
}

/// The greedy point and the threshold points of one checkpoint of family `F`.
fn points<F: family::Family, W: World>(
    forest: &W,
    problems: &[u32],
    sc: &Scorer,
    c: &CheckpointSpec,
    o: &SuiteOptions,
    (greedy, swept): (&mut Points, &mut Points),
) -> anyhow::Result<()> {
    let det = EvalOptions {
        repeats: 1,
        seed: o.seed,
    };
    let w = load_acting::<F>(&c.dir)?;
    // The greedy policy and every threshold, played together (they share the network's rows
    // wherever their actions agree; each rule's outcomes are its own).
    let greedy_rule = GreedyOf::<F>::new(&w);
    let above: Vec<RegenAbove<'_, F>> = (o.checkpoint_thresholds.iter())
        .map(|&threshold| RegenAbove {
            weights: &w,
            threshold,
        })
        .collect();
    let rules: Vec<&dyn NetRule<F = F>> = std::iter::once(&greedy_rule as &dyn NetRule<F = F>)
        .chain(above.iter().map(|r| r as &dyn NetRule<F = F>))
        .collect();
    let mut outs = evaluate_nets(forest, problems, &rules, det, None)?.into_iter();
    let out = outs.next().expect("the greedy rule comes first");
    // Each checkpoint is its own row in the TwinRouterBench table.
    let name = format!("{} {}", c.family, c.label);
    sc.tier(forest, &name, "greedy", &greedy_rule);
    push_to(
        greedy,
        &c.family,
        sc.point(&c.family, c.label.clone(), &out),
    );
    let swept_name = format!("{}{}", c.family, names::SWEPT_SUFFIX);
    for (&t, out) in o.checkpoint_thresholds.iter().zip(outs) {
        let p = sc.point(&swept_name, format!("{} t={t:.2}", c.label), &out);
        push_to(swept, &swept_name, p);
    }
    Ok(())
}
