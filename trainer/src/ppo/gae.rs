//! Generalised advantage estimation (Schulman et al. 2016) over a padded, time-major buffer.
//!
//! With δ_t = r_t + γ·V(s_{t+1})·(1 − done_t) − V(s_t), the advantage is
//! A_t = δ_t + γλ·(1 − done_t)·A_{t+1} and the value target (return) is A_t + V(s_t).
//! λ = 0 gives the one-step TD error, λ = 1 the Monte-Carlo return minus V (SB3's docstring).
//!
//! Layout follows CleanRL's `[num_steps, num_envs]`: index `t * n + b`. A column may hold
//! several episodes back to back (`done` ends each) and may be padded after its last episode
//! (`valid = false`); padded entries get advantage and return 0 and never leak into valid ones.
//! The value after a non-terminal step is the next valid entry's value, or `last_values[b]` when
//! the column stops there (a truncated episode, bootstrapped). TRIM episodes always terminate,
//! so the trainer passes zeros; the general form is what the tests pin down.

/// Compute advantages and returns.
///
/// # Shapes
/// `rewards, values, dones, valid, adv_out, ret_out: [t_len * n]` time-major;
/// `last_values: [n]`.
#[allow(clippy::too_many_arguments)]
pub fn compute_gae(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    valid: &[bool],
    last_values: &[f32],
    n: usize,
    gamma: f32,
    gae_lambda: f32,
    adv_out: &mut [f32],
    ret_out: &mut [f32],
) {
    let len = rewards.len();
    assert!(
        n > 0 && len.is_multiple_of(n),
        "buffer length {len} is not a multiple of n = {n}"
    );
    for s in [
        values.len(),
        dones.len(),
        valid.len(),
        adv_out.len(),
        ret_out.len(),
    ] {
        assert_eq!(s, len, "all buffers must have t_len * n entries");
    }
    assert_eq!(last_values.len(), n);
    let t_len = len / n;
    for (b, &last) in last_values.iter().enumerate() {
        // State carried backwards through the column.
        let mut next_adv = 0.0f32;
        let mut next_value = last;
        for t in (0..t_len).rev() {
            let i = t * n + b;
            if !valid[i] {
                adv_out[i] = 0.0;
                ret_out[i] = 0.0;
                // Padding: whatever follows belongs to no episode of this column.
                next_adv = 0.0;
                next_value = last;
                continue;
            }
            let nonterminal = if dones[i] { 0.0 } else { 1.0 };
            let delta = rewards[i] + gamma * next_value * nonterminal - values[i];
            let adv = delta + gamma * gae_lambda * nonterminal * next_adv;
            adv_out[i] = adv;
            ret_out[i] = adv + values[i];
            next_adv = adv;
            next_value = values[i];
        }
    }
}

/// Normalise `x` to zero mean and unit (unbiased, as `torch.std`) standard deviation over the
/// entries where `valid` is true; the others are left untouched. Returns (mean, std).
pub fn normalize_valid(x: &mut [f32], valid: &[bool]) -> (f32, f32) {
    let n = valid.iter().filter(|&&v| v).count();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = x
        .iter()
        .zip(valid)
        .filter(|(_, v)| **v)
        .map(|(a, _)| f64::from(*a))
        .sum::<f64>()
        / n as f64;
    let var = if n > 1 {
        x.iter()
            .zip(valid)
            .filter(|(_, v)| **v)
            .map(|(a, _)| (f64::from(*a) - mean).powi(2))
            .sum::<f64>()
            / (n - 1) as f64
    } else {
        0.0
    };
    let std = var.sqrt();
    for (a, _) in x.iter_mut().zip(valid).filter(|(_, v)| **v) {
        *a = ((f64::from(*a) - mean) / (std + 1e-8)) as f32;
    }
    (mean as f32, std as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Column-major helper: columns of (reward, value, done) with `None` as padding.
    type Col = Vec<Option<(f32, f32, bool)>>;

    struct Out {
        adv: Vec<f32>,
        ret: Vec<f32>,
        n: usize,
    }

    impl Out {
        fn at(&self, t: usize, b: usize) -> (f32, f32) {
            (self.adv[t * self.n + b], self.ret[t * self.n + b])
        }
    }

    fn run(cols: &[Col], last: &[f32], gamma: f32, lam: f32) -> Out {
        let n = cols.len();
        let t_len = cols[0].len();
        let mut r = vec![0.0; t_len * n];
        let mut v = vec![0.0; t_len * n];
        let mut d = vec![false; t_len * n];
        let mut ok = vec![false; t_len * n];
        for (b, col) in cols.iter().enumerate() {
            for (t, e) in col.iter().enumerate() {
                if let Some((rr, vv, dd)) = *e {
                    let i = t * n + b;
                    (r[i], v[i], d[i], ok[i]) = (rr, vv, dd, true);
                }
            }
        }
        let mut adv = vec![f32::NAN; t_len * n];
        let mut ret = vec![f32::NAN; t_len * n];
        compute_gae(&r, &v, &d, &ok, last, n, gamma, lam, &mut adv, &mut ret);
        Out { adv, ret, n }
    }

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// Reference: A_t = Σ_k (γλ)^k δ_{t+k} inside one episode (O(T²), no recursion).
    fn reference(rs: &[f32], vs: &[f32], boot: f32, gamma: f32, lam: f32) -> Vec<f32> {
        let t_len = rs.len();
        let v_next = |t: usize| if t + 1 < t_len { vs[t + 1] } else { boot };
        let delta: Vec<f32> = (0..t_len)
            .map(|t| rs[t] + gamma * v_next(t) - vs[t])
            .collect();
        (0..t_len)
            .map(|t| {
                (t..t_len)
                    .map(|k| (gamma * lam).powi((k - t) as i32) * delta[k])
                    .sum()
            })
            .collect()
    }

    #[test]
    fn lambda_zero_is_one_step_td() {
        // One episode of 3 steps: rewards -0.1, 0, 1 (terminal), values 0.5, 0.6, 0.7.
        let col: Col = vec![
            Some((-0.1, 0.5, false)),
            Some((0.0, 0.6, false)),
            Some((1.0, 0.7, true)),
        ];
        let o = run(&[col], &[9.0], 0.9, 0.0);
        close(o.at(0, 0).0, -0.1 + 0.9 * 0.6 - 0.5);
        close(o.at(1, 0).0, 0.9 * 0.7 - 0.6);
        close(o.at(2, 0).0, 1.0 - 0.7); // terminal: no bootstrap (last value 9 ignored)
        close(o.at(0, 0).1, -0.1 + 0.9 * 0.6);
    }

    #[test]
    fn lambda_one_is_monte_carlo() {
        let col: Col = vec![
            Some((-0.1, 0.5, false)),
            Some((-0.2, 0.6, false)),
            Some((1.0, 0.7, true)),
        ];
        let o = run(&[col], &[0.0], 1.0, 1.0);
        // Returns are the undiscounted rewards-to-go; advantages subtract V.
        close(o.at(0, 0).1, 0.7);
        close(o.at(1, 0).1, 0.8);
        close(o.at(2, 0).1, 1.0);
        close(o.at(0, 0).0, 0.7 - 0.5);
        // With γ = 0.5 the returns are discounted sums.
        let col: Col = vec![Some((1.0, 0.0, false)), Some((2.0, 0.0, true))];
        let o = run(&[col], &[0.0], 0.5, 1.0);
        close(o.at(0, 0).1, 1.0 + 0.5 * 2.0);
    }

    #[test]
    fn lambda_095_hand_computed() {
        // γ = 1, λ = 0.95, two steps: δ1 = 1 − 0.4 = 0.6; δ0 = 0 + 0.4 − 0.3 = 0.1;
        // A0 = 0.1 + 0.95·0.6 = 0.67; A1 = 0.6.
        let col: Col = vec![Some((0.0, 0.3, false)), Some((1.0, 0.4, true))];
        let o = run(&[col], &[0.0], 1.0, 0.95);
        close(o.at(0, 0).0, 0.67);
        close(o.at(1, 0).0, 0.6);
        close(o.at(0, 0).1, 0.97);
    }

    #[test]
    fn several_episodes_padding_and_truncation_match_reference() {
        let mut rng = trim_env::Rng::new(5);
        let mut u = || rng.f32() - 0.5;
        let e1: Vec<(f32, f32)> = (0..3).map(|_| (u(), u())).collect();
        let e2: Vec<(f32, f32)> = (0..2).map(|_| (u(), u())).collect();
        let e3: Vec<(f32, f32)> = (0..4).map(|_| (u(), u())).collect();
        let e4: Vec<(f32, f32)> = (0..5).map(|_| (u(), u())).collect();
        let mk = |e: &[(f32, f32)], end_done: bool| -> Col {
            e.iter()
                .enumerate()
                .map(|(i, &(r, v))| Some((r, v, end_done && i + 1 == e.len())))
                .collect()
        };
        // Column 0: e1 then e2 back to back (two episodes), then padding.
        let mut c0 = mk(&e1, true);
        c0.extend(mk(&e2, true));
        c0.push(None);
        // Column 1: e3 then padding (terminal).
        let mut c1 = mk(&e3, true);
        c1.extend([None, None]);
        // Column 2: a one-step episode, then e4 cut by the end of the buffer (bootstrapped
        // from last_values[2]). Column 3: e4 cut and followed by padding (last_values[3]).
        let one = (u(), u());
        let mut c2: Col = vec![Some((one.0, one.1, true))];
        c2.extend(mk(&e4, false));
        let e4_only: Col = {
            let mut c = mk(&e4, false);
            c.push(None);
            c
        };
        let last = [0.0, 0.0, 0.3, 0.8];
        for (gamma, lam) in [(1.0, 0.0), (1.0, 0.95), (1.0, 1.0), (0.9, 0.95)] {
            let o = run(
                &[c0.clone(), c1.clone(), c2.clone(), e4_only.clone()],
                &last,
                gamma,
                lam,
            );
            let check = |b: usize, t0: usize, e: &[(f32, f32)], boot: f32| {
                let rs: Vec<f32> = e.iter().map(|x| x.0).collect();
                let vs: Vec<f32> = e.iter().map(|x| x.1).collect();
                let want = reference(&rs, &vs, boot, gamma, lam);
                for (k, w) in want.iter().enumerate() {
                    let (a, r) = o.at(t0 + k, b);
                    close(a, *w);
                    close(r, w + vs[k]);
                }
            };
            check(0, 0, &e1, 0.0);
            check(0, 3, &e2, 0.0);
            check(1, 0, &e3, 0.0);
            check(2, 0, &[one], 0.0);
            check(2, 1, &e4, 0.3);
            check(3, 0, &e4, 0.8);
            // Padding is zero.
            assert_eq!(o.at(5, 0), (0.0, 0.0));
            assert_eq!(o.at(4, 1), (0.0, 0.0));
            assert_eq!(o.at(5, 3), (0.0, 0.0));
        }
    }

    #[test]
    fn normalization_ignores_padding() {
        let mut x = vec![1.0, 100.0, 3.0, -50.0];
        let valid = [true, false, true, false];
        let (m, s) = normalize_valid(&mut x, &valid);
        assert_eq!(m, 2.0);
        assert!((s - 2f32.sqrt()).abs() < 1e-6);
        assert!((x[0] + 1.0 / 2f32.sqrt()).abs() < 1e-5);
        assert_eq!((x[1], x[3]), (100.0, -50.0));
    }
}
