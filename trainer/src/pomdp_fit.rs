//! TRIM-POMDP models fitted from a synthetic world whose latent states are known (issue 10,
//! sources (b)/(c)): the **Bayes reference** of a world is the POMDP fitted on that world's own
//! generator, by simulation.
//!
//! Episodes of a random router (each step regenerated with probability 0.3, so both branches of
//! the tree are visited) give, for every weak candidate, its observation (min PRM of the kept
//! steps, its own PRM) and its latent state; the observation tables are smoothed histograms
//! (20×20 bins of 0.05, half a pseudo-count per bin). p_w and p_s are the fractions of weak and
//! routed strong candidates written after an all-correct prefix that are correct; the hazard is
//! the fraction of weak candidates at step k that end the solution; future regenerations cost the
//! mean routed strong step.
//!
//! How it departs from Bayes-optimal for the world: the world draws a per-problem difficulty that
//! shifts both models' accuracies (the 3-state model averages it out), and scores the current step
//! conditionally on the running minimum rather than as a joint pair; the reference is the best
//! policy *of the TRIM-POMDP form* for this world.

use trim_data::StepState;
use trim_data::synth::lazy::{LazyNode, LazyWorld};
use trim_env::{Action, Next, Rng, World};
use trim_pomdp::PomdpModel;
use trim_pomdp::model::obs_bin;

/// Observation bins per axis by default (the release's 0.05; 50 gives bins of 0.02).
pub const FIT_BINS: usize = 20;
/// Pseudo-count mass spread evenly over each state's observation table (add-constant
/// smoothing: 0.5 per cell at 20 × 20 bins, the same total mass at any bin size).
const SMOOTHING_MASS: f64 = 200.0;
/// Probability that the simulating router regenerates a step.
const EXPLORE: f64 = 0.3;
/// Episodes simulated per sample tree.
const EPISODES_PER_TREE: u64 = 4;

/// Counts gathered from simulated episodes.
struct Counts {
    bins: usize,
    obs: [Vec<f64>; 3],
    weak_ok: [f64; 2],
    strong_ok: [f64; 2],
    /// Per step k: (weak candidates reaching it, of which final).
    ends: Vec<[f64; 2]>,
    routed_tokens: [f64; 2],
}

/// The latent states of a node's weak and strong candidates (None: not labelled / absent).
pub type StatesOf<'a, N> = &'a (dyn Fn(&N) -> [Option<StepState>; 2] + Sync);

/// Problems simulated to fit a reference.
pub const REFERENCE_PROBLEMS: u32 = 5000;

/// The Bayes reference's model for the world `z`: fitted on a fresh world of the same generator
/// (another seed, [`REFERENCE_PROBLEMS`] problems), so no evaluated problem is simulated.
pub fn reference_model(z: &trim_data::LazySource) -> anyhow::Result<PomdpModel> {
    let mut cfg = z.spec.cfg.clone();
    cfg.seed ^= 0x005E_ED0F_2EF5;
    cfg.problems = REFERENCE_PROBLEMS;
    let world = LazyWorld::new(&cfg, std::path::Path::new(&z.spec.spec))?;
    let all = world.problems_in_split("all");
    fit_lazy(&world, &all, FIT_BINS, 1)
}

/// Fit the TRIM-POMDP model of a lazy world on `problems` with `bins` × `bins` observation
/// bins (deterministic in `seed`).
pub fn fit_lazy(
    world: &LazyWorld,
    problems: &[u32],
    bins: usize,
    seed: u64,
) -> anyhow::Result<PomdpModel> {
    let states = |n: &LazyNode| {
        [
            Some(n.weak.state),
            world.strong_candidate(n).map(|s| s.state),
        ]
    };
    fit(world, &states, problems, bins, seed)
}

/// Fit from a stored dataset whose nodes carry `weak_state` / `strong_state` labels
/// (`trim data synth` files, the ProcessBench import), on the problems of `split`: source (b)
/// of issue 10.
pub fn fit_stored(
    l: &trim_data::LoadedForest,
    split: &str,
    bins: usize,
    seed: u64,
) -> anyhow::Result<PomdpModel> {
    let labelled = l.states.iter().filter(|s| s.weak.is_some()).count();
    anyhow::ensure!(
        labelled * 2 >= l.states.len().max(1),
        "{}: only {labelled} of {} nodes carry a weak_state label; fitting needs labelled trees",
        l.meta.name,
        l.states.len()
    );
    let state = |v: Option<u8>| v.and_then(StepState::from_u8);
    let states = |n: &u32| {
        let s = &l.states[*n as usize];
        [state(s.weak), state(s.strong)]
    };
    let problems = l.problems_in_split(split);
    anyhow::ensure!(
        !problems.is_empty(),
        "{}: no problems in split `{split}` to fit on",
        l.meta.name
    );
    fit(&l.forest, &states, &problems, bins, seed)
}

/// Simulate random-router episodes on `problems` of any labelled world and fit the model.
pub fn fit<W: World>(
    world: &W,
    states: StatesOf<'_, W::Node>,
    problems: &[u32],
    bins: usize,
    seed: u64,
) -> anyhow::Result<PomdpModel> {
    anyhow::ensure!(
        (2..=200).contains(&bins),
        "{bins} observation bins per axis: use 2..=200 (20 for bins of 0.05, 50 for 0.02)"
    );
    let max_steps = usize::from(world.max_depth()) + 1;
    let mut c = Counts {
        bins,
        obs: std::array::from_fn(|_| vec![SMOOTHING_MASS / (bins * bins) as f64; bins * bins]),
        weak_ok: [0.0; 2],
        strong_ok: [0.0; 2],
        ends: vec![[0.0; 2]; max_steps + 1],
        routed_tokens: [0.0; 2],
    };
    for &p in problems {
        for tree in world.trees_of(p as usize) {
            for e in 0..EPISODES_PER_TREE {
                let mut rng = Rng::stream(seed, ((tree as u64) << 8) ^ e);
                simulate(world, states, tree, &mut rng, &mut c);
            }
        }
    }
    let ratio = |x: [f64; 2]| if x[1] > 0.0 { x[0] / x[1] } else { 0.0 };
    let mut hazard: Vec<f64> = c.ends.iter().map(|&e| ratio(e)).collect();
    hazard[0] = 0.0;
    hazard[max_steps] = 1.0;
    let obs = c.obs.map(|t| {
        let total: f64 = t.iter().sum();
        t.into_iter().map(|x| x / total).collect()
    });
    let model = PomdpModel {
        bins,
        obs,
        p_w: ratio(c.weak_ok),
        p_s: ratio(c.strong_ok),
        hazard,
        future_tokens: ratio(c.routed_tokens),
    };
    model
        .validate()
        .map_err(|e| anyhow::anyhow!("fitted POMDP model: {e}"))?;
    Ok(model)
}

/// One random-router episode on `tree`, recording every labelled weak candidate it meets. The
/// path's running minimum, all-correct flag and all-strong flag are tracked here, so any world
/// with state labels can be fitted.
fn simulate<W: World>(
    world: &W,
    states: StatesOf<'_, W::Node>,
    tree: usize,
    rng: &mut Rng,
    c: &mut Counts,
) {
    let mut node = world.root(tree);
    let (mut min_prev, mut ok, mut all_strong) = (1.0f32, true, true);
    loop {
        let [ws, ss] = states(&node);
        let w = world.weak(&node);
        let strong = world.strong(&node);
        let k = usize::from(world.depth(&node)) + 1;
        if let Some(st) = ws {
            c.obs[st.index()][obs_bin(c.bins, min_prev, w.prm)] += 1.0;
            if ok {
                c.weak_ok[1] += 1.0;
                c.weak_ok[0] += f64::from(u8::from(st == StepState::S0));
            }
        }
        if let (Some(st), false, true) = (ss, all_strong, ok) {
            c.strong_ok[1] += 1.0;
            c.strong_ok[0] += f64::from(u8::from(st == StepState::S0));
        }
        if let (Some(s), false) = (strong, all_strong) {
            c.routed_tokens[0] += f64::from(s.tokens);
            c.routed_tokens[1] += 1.0;
        }
        let regen = world.mask(&node)[1] && rng.bernoulli(EXPLORE);
        let a = if regen || !world.mask(&node)[0] {
            Action::Regenerate
        } else {
            Action::Continue
        };
        let (kept_prm, kept_state) = match a {
            Action::Regenerate => (strong.map_or(w.prm, |s| s.prm), ss),
            Action::Continue => (w.prm, ws),
        };
        let next = world.next(&node, a);
        if k < c.ends.len() && a == Action::Continue {
            c.ends[k][1] += 1.0;
            c.ends[k][0] += f64::from(u8::from(matches!(next, Next::Outcome(_))));
        }
        match next {
            Next::Node(n) => node = n,
            _ => return,
        }
        min_prev = min_prev.min(kept_prm);
        ok = ok && kept_state == Some(StepState::S0);
        all_strong = all_strong && a == Action::Regenerate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fitted_model_recovers_the_world_it_was_fitted_on() {
        let z = trim_data::LazySource::open("synth:math500?problems=1500").unwrap();
        let all = z.world.problems_in_split("all");
        let m = fit_lazy(&z.world, &all, FIT_BINS, 1).unwrap();
        let again = fit_lazy(&z.world, &all, FIT_BINS, 1).unwrap();
        assert!(m == again, "deterministic in the seed");
        // The world's calibrated per-step accuracies (mean over problems): weak ≈ 0.80, strong
        // ≈ 0.94 at MATH-500 targets with σ = 1.85; the fit measures them along random paths.
        assert!((0.7..0.9).contains(&m.p_w), "{}", m.p_w);
        assert!((0.85..0.99).contains(&m.p_s), "{}", m.p_s);
        // First errors score low, correct steps high.
        let mean_current = |s: usize| {
            (0..FIT_BINS * FIT_BINS)
                .map(|o| m.obs[s][o] * ((o % FIT_BINS) as f64 + 0.5) / FIT_BINS as f64)
                .sum::<f64>()
        };
        assert!(
            mean_current(0) > 0.8 && mean_current(2) < 0.4,
            "{} {}",
            mean_current(0),
            mean_current(2)
        );
        // Routed strong steps are longer than the release's 60-token assumption here.
        assert!(m.future_tokens > 70.0, "{}", m.future_tokens);
        // Bins of 0.02: the same accuracies, a valid 50 × 50 table; bad bin counts refused.
        let fine = fit_lazy(&z.world, &all, 50, 1).unwrap();
        assert_eq!((fine.bins, fine.obs[0].len()), (50, 2500));
        assert!(fine.p_w == m.p_w && fine.p_s == m.p_s);
        assert!(fit_lazy(&z.world, &all, 1, 1).is_err());
    }

    /// A stored file of the same generator gives nearly the same model as its lazy world
    /// (source (b) against source (c)); unlabelled data is refused.
    #[test]
    fn stored_labelled_trees_fit_the_same_model_as_their_world() {
        let cfg = trim_data::synth::SynthConfig {
            problems: 600,
            max_regens: 2,
            ..trim_data::synth::SynthConfig::shipped()
        };
        let (ds, _) = trim_data::synth::generate(&cfg, std::path::Path::new("<t>"), "t").unwrap();
        let dir = std::env::temp_dir().join(format!("trim-fit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.parquet");
        trim_data::io::write_dataset(&path, &ds).unwrap();
        let mut forest = trim_data::load_forest(&path, &trim_data::LoadOptions::default()).unwrap();
        let stored = fit_stored(&forest, "all", FIT_BINS, 1).unwrap();
        let lazy = LazyWorld::with_cap(&cfg, std::path::Path::new("<t>"), 2).unwrap();
        let from_world = fit_lazy(&lazy, &lazy.problems_in_split("all"), FIT_BINS, 1).unwrap();
        assert!(
            (stored.p_w - from_world.p_w).abs() < 1e-9,
            "{stored:?} {from_world:?}"
        );
        assert!((stored.p_s - from_world.p_s).abs() < 1e-9);
        assert_eq!(stored.obs, from_world.obs);
        for s in &mut forest.states {
            s.weak = None;
        }
        let e = fit_stored(&forest, "all", FIT_BINS, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weak_state"), "{e}");
    }
}
