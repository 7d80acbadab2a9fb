//! Dataset statistics (`trim data stats`): size, coverage, anchors, tokens, PRM quality.

use serde::Serialize;
use trim_env::{Coverage, EvalOptions, RefPolicy, Summary, evaluate, summarize};

use crate::schema::{CandidateRec, state};
use crate::validate::Loaded;

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
    /// Which parts are real / synthetic (from the metadata).
    pub real: Vec<String>,
    pub synthetic: Vec<String>,
    pub tokenizer: String,
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

fn anchor(s: &Summary, weak_tokens: f64) -> AnchorStats {
    AnchorStats {
        accuracy: s.accuracy,
        strong_tokens_per_problem: s.strong_tokens,
        strong_calls_per_problem: s.strong_calls,
        steps_per_problem: s.steps,
        weak_tokens_per_problem: weak_tokens,
    }
}

/// Compute all statistics of a validated dataset.
pub fn compute(l: &Loaded) -> DatasetStats {
    let f = &l.forest;
    let all: Vec<u32> = (0..f.n_problems() as u32).collect();
    let opts = EvalOptions::default();
    let run = |p: RefPolicy| evaluate(f, &all, &p, opts).expect("reference policies obey masks");
    let weak = run(RefPolicy::Weak);
    let strong = run(RefPolicy::Strong);
    let strong_sum = summarize(&strong, 0.0, 0.0);
    let weak_sum = summarize(&weak, strong_sum.strong_tokens, 0.0);
    let mean_of = |xs: &[trim_env::ProblemOutcome]| {
        xs.iter().map(|o| o.weak_tokens).sum::<f64>() / xs.len().max(1) as f64
    };
    let c: Coverage = f.coverage();
    let frac = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    let rows = &l.ds.rows;
    let strong_steps: Vec<&CandidateRec> = rows.iter().filter_map(|r| r.strong.as_ref()).collect();
    let mean_tokens = |it: &mut dyn Iterator<Item = &CandidateRec>| {
        let (mut s, mut n) = (0.0, 0usize);
        for c in it {
            s += f64::from(c.tokens);
            n += 1;
        }
        s / n.max(1) as f64
    };
    DatasetStats {
        name: l.ds.meta.name.clone(),
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
        always_weak: anchor(&weak_sum, mean_of(&weak)),
        always_strong: anchor(&strong_sum, mean_of(&strong)),
        mean_weak_step_tokens: mean_tokens(&mut rows.iter().map(|r| &r.weak)),
        mean_strong_step_tokens: mean_tokens(&mut strong_steps.iter().copied()),
        prm: prm_stats(
            rows.iter()
                .map(|r| &r.weak)
                .chain(rows.iter().filter_map(|r| r.strong.as_ref())),
        ),
        real: l.ds.meta.real.clone(),
        synthetic: l.ds.meta.synthetic.clone(),
        tokenizer: l.ds.meta.tokenizer.clone(),
    }
}

fn prm_stats<'a>(cands: impl Iterator<Item = &'a CandidateRec>) -> PrmStats {
    let mut by_state: [Vec<f64>; 3] = [vec![], vec![], vec![]];
    for c in cands {
        if let Some(s) = c.state {
            by_state[usize::from(s.min(2))].push(f64::from(c.prm));
        }
    }
    let labelled = by_state.iter().map(Vec::len).sum();
    let errors: Vec<f64> = by_state[state::S1 as usize]
        .iter()
        .chain(&by_state[state::S2 as usize])
        .copied()
        .collect();
    let mean = |v: &Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    PrmStats {
        labelled,
        auroc_correct_vs_error: auroc(&by_state[0], &errors),
        auroc_correct_vs_first_error: auroc(&by_state[0], &by_state[state::S2 as usize]),
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
