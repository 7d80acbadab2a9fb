use super::*;
use crate::grid::tests::random_belief;
use crate::model::tests::tiny;

/// The exact POMDP value by recursion over every observation history, with exact Bayes
/// posteriors (no grid): the brute-force reference of the grid solver.
fn exact_v(m: &PomdpModel, lambda: f64, k: usize, b: &Belief) -> f64 {
    let c = exact_c(m, lambda, k, b);
    c[0].max(c[1] - lambda * m.future_tokens)
}

fn exact_c(m: &PomdpModel, lambda: f64, k: usize, b: &Belief) -> [f64; 2] {
    let s = m.max_steps() as usize;
    let h = m.hazard[k + 1];
    let fin = |b: &Belief| {
        m.final_reward(b, false)
            .max(m.final_reward(b, true) - lambda * m.future_tokens)
    };
    let mut q = [0.0; 2];
    for (a, qa) in q.iter_mut().enumerate() {
        let pred = m.predict(b, a == 1);
        for o in 0..m.bins * m.bins {
            let l = m.likelihood(o);
            let w = [pred[0] * l[0], pred[1] * l[1], pred[2] * l[2]];
            let p: f64 = w.iter().sum();
            if p <= 0.0 {
                continue;
            }
            let post = [w[0] / p, w[1] / p, w[2] / p];
            let later = if k + 1 < s {
                (1.0 - h) * exact_v(m, lambda, k + 1, &post)
            } else {
                0.0
            };
            *qa += p * (h * fin(&post) + later);
        }
    }
    q
}

fn beliefs() -> Vec<Belief> {
    let mut v = vec![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let mut rng = trim_env::Rng::new(17);
    for _ in 0..60 {
        v.push(random_belief(&mut rng));
    }
    v
}

#[test]
fn grid_values_converge_to_the_brute_force_values_and_actions_agree() {
    let m = tiny();
    let lambda = 2e-3;
    let worst = |n: usize| {
        let sol = &solve(&m, n, &[lambda]).unwrap()[0];
        beliefs()
            .iter()
            .map(|b| (sol.first_value(b) - exact_v(&m, lambda, 1, b)).abs())
            .fold(0.0, f64::max)
    };
    let (coarse, fine) = (worst(8), worst(160));
    assert!(fine < 2e-3, "{fine}");
    assert!(fine < coarse / 4.0, "{coarse} {fine}");
    // Decisions with a clear margin agree with brute force at every step.
    let sol = &solve(&m, 160, &[lambda]).unwrap()[0];
    let mut checked = 0;
    for k in 1..m.max_steps() as usize {
        for b in beliefs() {
            let c = exact_c(&m, lambda, k, &b);
            let tokens = 40.0;
            let exact = [c[0], c[1] - lambda * tokens];
            if (exact[0] - exact[1]).abs() > 0.01 {
                let want = if exact[1] > exact[0] {
                    Action::Regenerate
                } else {
                    Action::Continue
                };
                assert_eq!(sol.action(k, &b, tokens), want, "step {k} belief {b:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn values_fall_with_lambda_and_the_extremes_act_as_they_must() {
    let m = tiny();
    let lambdas = [0.0, 1e-4, 1e-3, 1e-2, 1.0];
    let sols = solve(&m, 40, &lambdas).unwrap();
    for b in beliefs() {
        let v: Vec<f64> = sols.iter().map(|s| s.first_value(&b)).collect();
        assert!(v.windows(2).all(|w| w[1] <= w[0] + 1e-12), "{b:?} {v:?}");
        // λ = 1: one strong token costs a whole correct answer; never regenerate.
        for k in 1..=3 {
            assert_eq!(sols[4].action(k, &b, 10.0), Action::Continue);
        }
    }
    // λ = 0 and a step that is surely the first error: regenerating it is strictly better.
    for k in 1..=3 {
        assert_eq!(
            sols[0].action(k, &[0.0, 0.0, 1.0], 100.0),
            Action::Regenerate
        );
        // A surely correct step is kept.
        assert_eq!(sols[0].action(k, &[1.0, 0.0, 0.0], 100.0), Action::Continue);
    }
}

#[test]
fn bad_solver_inputs_are_errors() {
    let m = tiny();
    for l in [-1e-4, f64::NAN, f64::INFINITY] {
        let e = solve(&m, 10, &[1e-4, l]).unwrap_err().to_string();
        assert!(e.contains("lambda"), "{e}");
    }
    assert!(solve(&m, 0, &[0.0]).is_err());
    let mut broken = m.clone();
    broken.p_s = f64::NAN;
    assert!(
        solve(&broken, 10, &[0.0])
            .unwrap_err()
            .to_string()
            .contains("p_s")
    );
    assert_eq!(divisions_for_step(0.025).unwrap(), 40);
    assert_eq!(divisions_for_step(0.05).unwrap(), 20);
    for bad in [0.03, 0.0, -0.1, 1.5, f64::NAN] {
        assert!(divisions_for_step(bad).is_err(), "{bad}");
    }
}

/// The solver as it was written for one λ at a time: every posterior and its interpolation
/// computed afresh for each λ. The reference [`solve`] must match to the bit.
fn solve_one_lambda(m: &PomdpModel, n: usize, lambda: f64) -> (Vec<[f64; 2]>, Vec<f64>) {
    let (grid, obs) = (SimplexGrid::new(n), Observations::of(m));
    let s = m.max_steps() as usize;
    let points = grid.points();
    let regen_cost = lambda * m.future_tokens;
    let v_final = |b: &Belief| {
        m.final_reward(b, false)
            .max(m.final_reward(b, true) - regen_cost)
    };
    let mut cont = vec![[0.0; 2]; (s - 1) * points.len()];
    let mut next_v = vec![0.0; points.len()];
    for k in (1..s).rev() {
        let h = m.hazard[k + 1];
        let row = &mut cont[(k - 1) * points.len()..k * points.len()];
        for (g, b) in points.iter().enumerate() {
            let mut q = [0.0; 2];
            for (a, qa) in q.iter_mut().enumerate() {
                let pred = m.predict(b, a == 1);
                for l in &obs.likelihoods {
                    let Some((p, post)) = posterior(&pred, l) else {
                        continue;
                    };
                    let later = if h < 1.0 {
                        (1.0 - h) * grid.interpolate(&next_v, &post)
                    } else {
                        0.0
                    };
                    *qa += p * (h * v_final(&post) + later);
                }
            }
            row[g] = q;
        }
        next_v = row.iter().map(|q| q[0].max(q[1] - regen_cost)).collect();
    }
    (cont, next_v)
}

/// A random valid model: `bins`² observation bins, a `steps`-step hazard.
fn random_model(seed: u64, bins: usize, steps: usize) -> PomdpModel {
    let mut rng = trim_env::Rng::new(seed);
    let mut dist = || {
        let w: Vec<f64> = (0..bins * bins).map(|_| rng.f64() + 0.01).collect();
        let t: f64 = w.iter().sum();
        w.iter().map(|x| x / t).collect::<Vec<f64>>()
    };
    let obs = [dist(), dist(), dist()];
    let mut hazard = vec![0.0, 0.0];
    hazard.extend((2..steps).map(|k| 0.05 + 0.5 * (k as f64 / steps as f64)));
    hazard.push(1.0);
    PomdpModel {
        bins,
        obs,
        p_w: 0.85,
        p_s: 0.97,
        hazard,
        future_tokens: 60.0,
    }
}

#[test]
fn all_lambdas_at_once_equal_each_lambda_alone_to_the_bit() {
    let lambdas = [0.0, 2e-4, 1.2e-3, 5e-3];
    for (m, n) in [(tiny(), 7), (random_model(3, 5, 12), 12)] {
        m.validate().unwrap();
        let sols = solve(&m, n, &lambdas).unwrap();
        assert_eq!(sols.len(), lambdas.len());
        for (sol, &l) in sols.iter().zip(&lambdas) {
            let (cont, first) = solve_one_lambda(&m, n, l);
            let (c, f) = sol.tables();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let flat = |v: &[[f64; 2]]| v.iter().flatten().copied().collect::<Vec<f64>>();
            assert_eq!(bits(&flat(c)), bits(&flat(&cont)), "λ = {l}");
            assert_eq!(bits(f), bits(&first), "λ = {l}");
        }
        // The λ change the solution (so the comparison can fail).
        assert_ne!(sols[0].tables().1, sols[3].tables().1);
    }
    assert!(solve(&tiny(), 4, &[]).unwrap().is_empty());
}
