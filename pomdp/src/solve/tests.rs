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
