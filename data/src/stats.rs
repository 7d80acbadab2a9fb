//! Dataset statistics (`trim data stats`): size, coverage, anchors, tokens, PRM quality.

use serde::Serialize;
use trim_env::{Action, Coverage, Next, World, resolve};

use crate::schema::StepState;
use crate::validate::LoadedForest;

/// Everything `trim data stats` reports.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetStats {
    pub name: String,
    pub problems: usize,
    pub trees: usize,
    pub nodes: usize,
    pub max_depth: u16,
    /// (split, problems).
    pub splits: Vec<(String, usize)>,
    pub coverage: CoverageStats,
    pub always_weak: AnchorStats,
    pub always_strong: AnchorStats,
    /// Mean tokens of a weak / strong candidate step over all nodes.
    pub mean_weak_step_tokens: f64,
    pub mean_strong_step_tokens: f64,
    pub prm: PrmStats,
    /// The same separation for the optional step signals of the weak candidates.
    pub signals: SignalStats,
    /// How often the world runs out of regenerations for budgeted threshold policies.
    pub masked_regenerate: MaskedRegenerate,
    /// Which parts are real / synthetic (from the metadata).
    pub real: Vec<String>,
    pub synthetic: Vec<String>,
    pub tokenizer: String,
    /// The command that made the dataset and its generator/importer/collector parameters
    /// (provenance, from the metadata).
    pub command: String,
    pub params: serde_json::Value,
}

/// Coverage as fractions of nodes/trees.
#[derive(Clone, Debug, Serialize)]
pub struct CoverageStats {
    pub nodes_with_strong: f64,
    pub nodes_continue_available: f64,
    pub nodes_regenerate_available: f64,
    pub nodes_with_choice: f64,
    pub trees_with_all_weak_path: f64,
    pub trees_with_all_strong_path: f64,
}

/// The fraction of episodes in which TRIM-Thr, stopped after `max_calls` strong calls, wants to
/// regenerate a step whose regenerate branch was never generated
/// ([`trim_env::reach::masked_regenerate_rate`]), at the release's 21 thresholds. A capped
/// synthetic world is trustworthy for such policies only while this stays small (< 1 %).
#[derive(Clone, Debug, Serialize)]
pub struct MaskedRegenerate {
    pub max_calls: u16,
    /// (threshold, fraction of episodes), thresholds 0, 0.05, …, 1.
    pub by_threshold: Vec<(f32, f64)>,
    /// The largest fraction and its threshold.
    pub worst: (f32, f64),
}

/// One anchor policy's evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct AnchorStats {
    pub accuracy: f64,
    pub strong_tokens_per_problem: f64,
    pub strong_calls_per_problem: f64,
    pub steps_per_problem: f64,
    pub weak_tokens_per_problem: f64,
}

/// How well PRM scores separate correct from incorrect steps, where states are known.
#[derive(Clone, Debug, Serialize)]
pub struct PrmStats {
    /// Candidates with a known state.
    pub labelled: usize,
    /// AUROC of the PRM score for "step correct so far" (S0) vs any error (S1 or S2).
    pub auroc_correct_vs_error: Option<f64>,
    /// AUROC of S0 vs first errors (S2) only.
    pub auroc_correct_vs_first_error: Option<f64>,
    /// Mean PRM score per state S0, S1, S2 (None when absent).
    pub mean_by_state: [Option<f64>; 3],
}

/// Walk every tree with one preferred action (the other where it is masked, as
/// [`trim_env::resolve`] does) and average per problem, then over problems — what
/// `trim_env::evaluate` reports for always-weak / always-strong, but with 64-bit token sums so
/// totals above 4.29e9 do not wrap.
pub(crate) fn anchor<W: World>(f: &W, preferred: Action) -> AnchorStats {
    let (mut acc, mut strong, mut calls, mut steps, mut weak) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in 0..f.n_problems() {
        let trees = f.trees_of(p);
        let n = trees.len().max(1) as f64;
        let mut o = PathTotals::default();
        for t in trees {
            o.add_walk(f, t, preferred);
        }
        acc += o.correct as f64 / n;
        strong += o.strong_tokens as f64 / n;
        calls += o.strong_calls as f64 / n;
        steps += o.steps as f64 / n;
        weak += o.weak_tokens as f64 / n;
    }
    let np = f.n_problems().max(1) as f64;
    AnchorStats {
        accuracy: acc / np,
        strong_tokens_per_problem: strong / np,
        strong_calls_per_problem: calls / np,
        steps_per_problem: steps / np,
        weak_tokens_per_problem: weak / np,
    }
}

/// Sums over the episodes of one problem.
#[derive(Default)]
struct PathTotals {
    correct: u64,
    strong_tokens: u64,
    strong_calls: u64,
    steps: u64,
    weak_tokens: u64,
}

impl PathTotals {
    fn add_walk<W: World>(&mut self, f: &W, tree: usize, preferred: Action) {
        let mut node = f.root(tree);
        loop {
            let a = resolve(preferred, f.mask(&node));
            self.steps += 1;
            match a {
                Action::Continue => self.weak_tokens += u64::from(f.weak(&node).tokens),
                Action::Regenerate => {
                    let tokens = f.strong(&node).map_or(0, |c| c.tokens);
                    self.strong_tokens += u64::from(tokens);
                    self.strong_calls += 1;
                }
            }
            match f.next(&node, a) {
                Next::Node(next) => node = next,
                Next::Outcome(correct) => {
                    self.correct += u64::from(correct);
                    return;
                }
                // Validated forests offer every node an available action.
                Next::Absent => return,
            }
        }
    }
}

/// Compute all statistics of a validated dataset.
pub fn compute(l: &LoadedForest) -> DatasetStats {
    let f = &l.forest;
    let c: Coverage = f.coverage();
    let frac = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    let (mut weak_sum, mut strong_sum, mut n_strong) = (0u64, 0u64, 0u64);
    for node in 0..f.n_nodes() as u32 {
        weak_sum += u64::from(f.weak(node).tokens);
        if let Some(s) = f.strong(node) {
            strong_sum += u64::from(s.tokens);
            n_strong += 1;
        }
    }
    DatasetStats {
        name: l.meta.name.clone(),
        problems: f.n_problems(),
        trees: f.n_trees(),
        nodes: f.n_nodes(),
        max_depth: f.max_depth(),
        splits: l.splits(),
        coverage: CoverageStats {
            nodes_with_strong: frac(c.with_strong, c.nodes),
            nodes_continue_available: frac(c.continue_available, c.nodes),
            nodes_regenerate_available: frac(c.regenerate_available, c.nodes),
            nodes_with_choice: frac(c.both_available, c.nodes),
            trees_with_all_weak_path: frac(c.trees_with_all_weak, c.trees),
            trees_with_all_strong_path: frac(c.trees_with_all_strong, c.trees),
        },
        always_weak: anchor(f, Action::Continue),
        always_strong: anchor(f, Action::Regenerate),
        mean_weak_step_tokens: weak_sum as f64 / f.n_nodes().max(1) as f64,
        mean_strong_step_tokens: strong_sum as f64 / n_strong.max(1) as f64,
        prm: prm_stats(&labelled_in_file_order(l)),
        signals: signal_stats_in_file_order(l),
        masked_regenerate: masked_regenerate(f),
        real: l.meta.real.clone(),
        synthetic: l.meta.synthetic.clone(),
        tokenizer: l.meta.tokenizer.clone(),
        command: l.meta.command.clone(),
        params: l.meta.params.clone(),
    }
}

/// [`MaskedRegenerate`] over every problem of `f`.
pub(crate) fn masked_regenerate<W: World>(f: &W) -> MaskedRegenerate {
    use trim_env::reach::{PROBE_MAX_CALLS, masked_regenerate_rate};
    let problems: Vec<u32> = (0..f.n_problems() as u32).collect();
    let by_threshold: Vec<(f32, f64)> = (0..=20)
        .map(|i| {
            let k = i as f32 / 20.0;
            (k, masked_regenerate_rate(f, &problems, k, PROBE_MAX_CALLS))
        })
        .collect();
    let worst = by_threshold
        .iter()
        .copied()
        .fold((0.0, 0.0), |w, x| if x.1 > w.1 { x } else { w });
    MaskedRegenerate {
        max_calls: PROBE_MAX_CALLS,
        by_threshold,
        worst,
    }
}

/// PRM scores of the candidates with a known state, per state: every weak candidate in file row
/// order, then every strong one (a fixed order keeps the floating-point means reproducible).
fn labelled_in_file_order(l: &LoadedForest) -> [Vec<f64>; 3] {
    let f = &l.forest;
    let node_of_row = node_of_row(l);
    let mut by_state: [Vec<f64>; 3] = [vec![], vec![], vec![]];
    for strong in [false, true] {
        for &node in &node_of_row {
            let st = l.states[node as usize];
            let (prm, state) = if strong {
                (f.strong(node).map(|c| c.prm), st.strong)
            } else {
                (Some(f.weak(node).prm), st.weak)
            };
            if let (Some(prm), Some(s)) = (prm, state) {
                by_state[usize::from(s.min(2))].push(f64::from(prm));
            }
        }
    }
    by_state
}

/// The forest node of each file row (the inverse of `forest_row`), to walk nodes in file order.
fn node_of_row(l: &LoadedForest) -> Vec<u32> {
    let mut out = vec![0u32; l.forest_row.len()];
    for (node, &row) in l.forest_row.iter().enumerate() {
        out[row as usize] = node as u32;
    }
    out
}

/// How well the optional step signals of the weak candidates separate correct from incorrect
/// steps (None: the data carries no such signal), like [`PrmStats`] for the PRM.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SignalStats {
    pub judge_score: Option<PrmStats>,
    pub mean_logprob: Option<PrmStats>,
}

impl SignalStats {
    /// From per-state value lists of each signal (`None`: absent).
    pub(crate) fn of(judge: Option<[Vec<f64>; 3]>, logprob: Option<[Vec<f64>; 3]>) -> Self {
        SignalStats {
            judge_score: judge.as_ref().map(prm_stats),
            mean_logprob: logprob.as_ref().map(prm_stats),
        }
    }
}

/// The weak candidates' signals with a known state, per state, in file row order.
fn signal_stats_in_file_order(l: &LoadedForest) -> SignalStats {
    let f = &l.forest;
    let kinds = f.signal_kinds();
    let mut judge: [Vec<f64>; 3] = Default::default();
    let mut logprob: [Vec<f64>; 3] = Default::default();
    for node in node_of_row(l) {
        let Some(s) = l.states[node as usize].weak else {
            continue;
        };
        let sig = f.weak_signals(&node);
        let k = usize::from(s.min(2));
        judge[k].push(f64::from(sig.judge_score));
        logprob[k].push(f64::from(sig.mean_logprob));
    }
    SignalStats::of(
        kinds.judge_score.then_some(judge),
        kinds.mean_logprob.then_some(logprob),
    )
}

pub(crate) fn prm_stats(by_state: &[Vec<f64>; 3]) -> PrmStats {
    let labelled = by_state.iter().map(Vec::len).sum();
    let errors: Vec<f64> = by_state[StepState::S1 as usize]
        .iter()
        .chain(&by_state[StepState::S2 as usize])
        .copied()
        .collect();
    let mean = |v: &Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    PrmStats {
        labelled,
        auroc_correct_vs_error: auroc(&by_state[0], &errors),
        auroc_correct_vs_first_error: auroc(&by_state[0], &by_state[StepState::S2 as usize]),
        mean_by_state: [mean(&by_state[0]), mean(&by_state[1]), mean(&by_state[2])],
    }
}

/// Area under the ROC curve of `score` for positives vs negatives (Mann–Whitney U with mid-ranks
/// for ties). `None` when either class is empty.
pub fn auroc(pos: &[f64], neg: &[f64]) -> Option<f64> {
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = pos
        .iter()
        .map(|&x| (x, true))
        .chain(neg.iter().map(|&x| (x, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1..=j+1 share their average.
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += mid * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    Some((rank_sum_pos - np * (np + 1.0) / 2.0) / (np * nn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_hand_computed() {
        assert_eq!(auroc(&[0.9, 0.8], &[0.1, 0.2]), Some(1.0));
        assert_eq!(auroc(&[0.1], &[0.9]), Some(0.0));
        // One tie between classes counts half: pairs (0.5,0.5)=0.5, (0.5,0.1)=1, (0.9,·)=1,1 → 3.5/4.
        assert_eq!(auroc(&[0.5, 0.9], &[0.5, 0.1]), Some(0.875));
        assert_eq!(auroc(&[], &[0.1]), None);
    }
}
