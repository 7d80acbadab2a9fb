//! The suffix-switch tree of one problem: the weak chain, and at every weak step a switch to the
//! aligned strong step followed by the strong suffix (regenerate only). See the module doc of
//! [`super`] and `data/docs/gsm8k-paired.md`.

use trim_env::{Action, Rng};

use crate::build::TreeWriter;
use crate::io::text_hash;
use crate::schema::{CandidateRec, StepState};
use crate::synth::obs_model::ObsModel;

use super::parse::{Solution, Step};

/// Running context of one path: what a new candidate's state and PRM draw depend on.
#[derive(Clone, Copy, Debug)]
struct PathCtx {
    min_prev: f32,
    has_error: bool,
}

impl PathCtx {
    const START: PathCtx = PathCtx {
        min_prev: 1.0,
        has_error: false,
    };

    /// The context after `c` was kept.
    fn after(self, c: &CandidateRec) -> PathCtx {
        PathCtx {
            min_prev: self.min_prev.min(c.prm),
            has_error: self.has_error || c.state != Some(StepState::S0),
        }
    }
}

/// Samples candidates in the context of a path.
pub(super) struct Sampler<'a> {
    pub(super) obs: &'a ObsModel,
    pub(super) rng: Rng,
    pub(super) with_text: bool,
}

impl Sampler<'_> {
    fn cand(&mut self, step: &Step, ctx: PathCtx, finished: bool) -> CandidateRec {
        let s = if ctx.has_error {
            StepState::S1
        } else if step.on_chain {
            StepState::S0
        } else {
            StepState::S2
        };
        CandidateRec {
            tokens: step.tokens,
            prm: self.obs.sample(s, ctx.min_prev, &mut self.rng),
            finished,
            state: Some(s),
            text: self.with_text.then(|| step.text.clone()),
            hash: Some(text_hash(&step.text)),
            judge_score: None,
            mean_logprob: None,
        }
    }
}

/// Write the tree of one problem (see the module doc for the construction).
pub(super) fn build_tree(
    tw: &mut TreeWriter<'_>,
    weak: &Solution,
    strong: &Solution,
    s: &mut Sampler<'_>,
) {
    let lw = weak.steps.len();
    let ls = strong.steps.len();
    let mut ctx = PathCtx::START;
    let mut prev: Option<u32> = None;
    let mut prefix_on_chain = true;
    for t in 0..lw {
        let wstep = &weak.steps[t];
        let j = t * ls / lw;
        let w = s.cand(wstep, ctx, wstep.finished);
        let sc = s.cand(&strong.steps[j], ctx, strong.steps[j].finished);
        let after_switch = ctx.after(&sc);
        let node = match prev {
            None => tw.root(w.clone(), Some(sc)),
            Some(pn) => tw.child(pn, Action::Continue, w.clone(), Some(sc)),
        };
        if wstep.finished {
            tw.set_outcome(node, Action::Continue, weak.correct);
        }
        let switch_correct = strong.correct && (prefix_on_chain || weak.correct);
        if strong.steps[j].finished {
            tw.set_outcome(node, Action::Regenerate, switch_correct);
        }
        // The 175B suffix after the switch: regenerate only.
        let mut sctx = after_switch;
        let mut parent = node;
        for k in j + 1..ls {
            let stand_in = &weak.steps[(k * lw / ls).min(lw - 1)];
            let sw = s.cand(stand_in, sctx, false);
            let ss = s.cand(&strong.steps[k], sctx, strong.steps[k].finished);
            let next_ctx = sctx.after(&ss);
            let n = tw.child(parent, Action::Regenerate, sw, Some(ss));
            if strong.steps[k].finished {
                tw.set_outcome(n, Action::Regenerate, switch_correct);
            }
            sctx = next_ctx;
            parent = n;
        }
        ctx = ctx.after(&w);
        prefix_on_chain &= wstep.on_chain;
        prev = Some(node);
    }
}
