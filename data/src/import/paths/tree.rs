//! Trees under construction from traces: the consistency test (does a trace fit a tree all the
//! way), insertion (shared prefixes merge, a strong candidate fills in where another trace did
//! not generate it), and emission in breadth-first order.

use trim_env::Action;

use crate::build::TreeWriter;
use crate::schema::CandidateRec;

use super::schema::TraceRow;

/// A node of a tree under construction; candidates as logged.
pub(super) struct MNode {
    parent: Option<(usize, Action)>,
    weak: CandidateRec,
    strong: Option<CandidateRec>,
    child: [Option<usize>; 2],
    outcome: [Option<bool>; 2],
}

/// Candidates agree: same tokens, score and finished flag, and same state/hash/text where both
/// recorded them.
fn agree(a: &CandidateRec, b: &CandidateRec) -> bool {
    a.tokens == b.tokens
        && a.prm == b.prm
        && a.finished == b.finished
        && both_equal(&a.state, &b.state)
        && both_equal(&a.hash, &b.hash)
        && both_equal(&a.text, &b.text)
        && both_equal(&a.judge_score, &b.judge_score)
        && both_equal(&a.mean_logprob, &b.mean_logprob)
}

/// Equal where both are recorded.
fn both_equal<T: PartialEq>(x: &Option<T>, y: &Option<T>) -> bool {
    match (x, y) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Fill optional audit fields that `dst` lacks from `src` (they agree where both have them).
fn fill(dst: &mut CandidateRec, src: &CandidateRec) {
    dst.state = dst.state.or(src.state);
    dst.judge_score = dst.judge_score.or(src.judge_score);
    dst.mean_logprob = dst.mean_logprob.or(src.mean_logprob);
    if dst.hash.is_none() {
        dst.hash.clone_from(&src.hash);
    }
    if dst.text.is_none() {
        dst.text.clone_from(&src.text);
    }
}

/// Whether the trace (steps `0..n` in order) fits `tree` all the way.
pub(super) fn consistent(tree: &[MNode], steps: &[&TraceRow], correct: bool) -> bool {
    let mut n = 0;
    for (d, r) in steps.iter().enumerate() {
        let node = &tree[n];
        if !agree(&node.weak, &r.weak) {
            return false;
        }
        if let (Some(a), Some(b)) = (&node.strong, &r.strong)
            && !agree(a, b)
        {
            return false;
        }
        let a = r.action as usize;
        if d + 1 == steps.len() {
            return node.child[a].is_none() && node.outcome[a].is_none_or(|o| o == correct);
        }
        if node.outcome[a].is_some() {
            return false;
        }
        match node.child[a] {
            Some(c) => n = c,
            None => return true,
        }
    }
    true
}

fn new_node(parent: Option<(usize, Action)>, r: &TraceRow) -> MNode {
    MNode {
        parent,
        weak: r.weak.clone(),
        strong: r.strong.clone(),
        child: [None, None],
        outcome: [None, None],
    }
}

/// Add a consistent trace to `tree` (which may be empty).
pub(super) fn insert(tree: &mut Vec<MNode>, steps: &[&TraceRow], correct: bool) {
    if tree.is_empty() {
        tree.push(new_node(None, steps[0]));
    }
    let mut n = 0;
    for (d, r) in steps.iter().enumerate() {
        let node = &mut tree[n];
        fill(&mut node.weak, &r.weak);
        match (&mut node.strong, &r.strong) {
            (None, Some(s)) => node.strong = Some(s.clone()),
            (Some(dst), Some(s)) => fill(dst, s),
            _ => {}
        }
        let a = r.action as usize;
        if d + 1 == steps.len() {
            node.outcome[a] = Some(correct);
            return;
        }
        n = match node.child[a] {
            Some(c) => c,
            None => {
                let c = tree.len();
                tree[n].child[a] = Some(c);
                tree.push(new_node(Some((n, r.action)), steps[d + 1]));
                c
            }
        };
    }
}

/// Write one merged tree; node ids follow breadth-first order (parents first).
pub(super) fn emit(tw: &mut TreeWriter<'_>, tree: &[MNode]) {
    // A candidate is written finished exactly when its branch has an observed outcome: a
    // finished candidate nobody kept has no known outcome, so its branch is masked instead.
    let out = |c: &CandidateRec, outcome: Option<bool>| CandidateRec {
        finished: outcome.is_some(),
        ..c.clone()
    };
    let mut ids = vec![0u32; tree.len()];
    let mut queue = vec![0usize];
    let mut k = 0;
    while k < queue.len() {
        let m = queue[k];
        k += 1;
        let node = &tree[m];
        let weak = out(&node.weak, node.outcome[0]);
        let strong = node.strong.as_ref().map(|s| out(s, node.outcome[1]));
        let id = match node.parent {
            None => tw.root(weak, strong),
            Some((p, a)) => tw.child(ids[p], a, weak, strong),
        };
        ids[m] = id;
        for a in Action::ALL {
            if let Some(o) = node.outcome[a as usize] {
                tw.set_outcome(id, a, o);
            }
            if let Some(c) = node.child[a as usize] {
                queue.push(c);
            }
        }
    }
}
