//! The fused kernels against burn's autodiff: the same network, minibatch and coefficients give
//! the same loss, diagnostics and gradients of every parameter.

use burn::optim::GradientsParams;
use trim_env::{AGG_DIM, Rng};

use super::bench::random_minibatch as minibatch;
use super::*;
use crate::backend::Backend;
use crate::model::ActorCritic;
use crate::ppo::loss::{LossCoefs, MinibatchTensors, ppo_loss};

/// The PPO coefficients of the paper's schedule at its first update.
fn coefs() -> LossCoefs {
    LossCoefs {
        clip_coef: 0.2,
        vf_clip: 0.2,
        vf_coef: 0.5,
        ent_coef: 0.01,
    }
}

fn check(coefs: LossCoefs, seed: u64) {
    let device = Backend::Flex.train_device().unwrap();
    let mut rng = Rng::new(seed);
    let model = ActorCritic::new(64, &mut rng, &device);
    let mb = minibatch(&model, 97, &mut rng);
    // burn
    let t = MinibatchTensors::new(&mb, AGG_DIM, &device);
    let out = ppo_loss(&model, &t, coefs, None);
    let loss_burn = f64::from(out.loss.clone().into_scalar::<f32>());
    let stats = out.terms.mean(1, 0.0);
    let grads = GradientsParams::from_grads(out.loss.backward(), &model);
    let mut burn_grads = model.torch_grads(&grads);
    // fused
    let p = params_of(&model).unwrap();
    let mut ws = Workspace::default();
    ws.forward(&p, &mb.obs);
    let batch = PpoBatch::of(&mb);
    let mut head = HeadGrads::default();
    ppo_head(&ws.logits, &ws.values, &batch, coefs, &mut head);
    let mut g = p.zeros_like();
    ws.backward(&p, &mb.obs, &head.d_logits, &head.d_values, &mut g);

    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{what}: fused {a} burn {b}"
        );
    };
    close(head.loss, loss_burn, "loss");
    close(head.policy_loss, stats.policy_loss, "policy loss");
    close(head.value_loss, stats.value_loss, "value loss");
    close(head.entropy, stats.entropy, "entropy");
    close(head.approx_kl, stats.approx_kl, "approx kl");
    close(head.clip_fraction, stats.clip_fraction, "clip fraction");
    assert!(
        head.clip_fraction > 0.0 && head.clip_fraction < 1.0,
        "{}",
        head.clip_fraction
    );
    for (name, fused) in g.named() {
        let reference = burn_grads.take(&name).unwrap();
        let scale = reference
            .iter()
            .fold(0.0f32, |m, x| m.max(x.abs()))
            .max(1e-3);
        let worst = (fused.iter().zip(&reference))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 2e-4 * scale,
            "{name}: max |Δ| {worst} (scale {scale})"
        );
    }
}

#[test]
fn loss_and_every_gradient_match_burn_autodiff() {
    let base = coefs();
    check(base, 1);
    check(
        LossCoefs {
            vf_clip: 0.0,
            ..base
        },
        2,
    );
    check(
        LossCoefs {
            ent_coef: 0.3,
            clip_coef: 0.1,
            ..base
        },
        3,
    );
}

#[test]
fn clipped_adam_steps_follow_burns_update() {
    use crate::config::TrainConfig;
    use crate::ppo::update::{clip_grad_norm as burn_clip, optimizer};
    let device = Backend::Flex.train_device().unwrap();
    let mut rng = Rng::new(7);
    let mut model = ActorCritic::new(64, &mut rng, &device);
    let mb = minibatch(&model, 80, &mut rng);
    let cfg = TrainConfig::default();
    let coefs = coefs();
    let lr = 3e-4f32;
    let mut optim = optimizer(&cfg);
    let mut p = params_of(&model).unwrap();
    let mut adam = Adam::new(&p, cfg.adam_eps as f32, cfg.weight_decay as f32);
    let (mut ws, mut head) = (Workspace::default(), HeadGrads::default());
    let batch = PpoBatch::of(&mb);
    for step in 0..4 {
        let t = MinibatchTensors::new(&mb, AGG_DIM, &device);
        let out = ppo_loss(&model, &t, coefs, None);
        let mut grads = GradientsParams::from_grads(out.loss.backward(), &model);
        let norm_burn = burn_clip(&model, &mut grads, 0.1);
        model = optim.step(f64::from(lr), model, grads);

        ws.forward(&p, &mb.obs);
        ppo_head(&ws.logits, &ws.values, &batch, coefs, &mut head);
        let mut g = p.zeros_like();
        ws.backward(&p, &mb.obs, &head.d_logits, &head.d_values, &mut g);
        let norm = clip_grad_norm(&mut g, 0.1);
        assert!(
            (norm - norm_burn).abs() <= 1e-4 * norm_burn,
            "{step}: {norm} vs {norm_burn}"
        );
        adam.step(&mut p, &g, lr);

        // Adam divides by √v: an entry whose gradient is ~0 can move by ±lr on float noise, so
        // compare the bulk: (almost) every parameter within 1e-6, none beyond 2·lr per step.
        let mut reference = model.torch_params();
        let (mut off, mut total) = (0usize, 0usize);
        for (name, fused) in p.named() {
            let r = reference.take(&name).unwrap();
            for (a, b) in fused.iter().zip(&r) {
                let d = (a - b).abs();
                assert!(d <= 2.0 * lr * (step + 1) as f32, "{name}: {a} vs {b}");
                off += usize::from(d > 1e-6);
                total += 1;
            }
        }
        assert!(
            off * 100 <= total,
            "step {step}: {off} of {total} parameters differ"
        );
    }
}

/// The AVX-512 build blocks 4 rows per register tile; the plain build 1. Both must give the
/// same bits — activations, outputs and every gradient — including the rows left over when
/// the minibatch is not a multiple of 4.
#[cfg(target_arch = "x86_64")]
#[test]
fn row_blocking_does_not_change_a_bit() {
    if !std::is_x86_feature_detected!("avx512f") {
        eprintln!("skipped: this CPU has no AVX-512F, so the 4-row build never runs here");
        return;
    }
    let device = Backend::Flex.train_device().unwrap();
    let mut rng = Rng::new(11);
    let model = ActorCritic::new(64, &mut rng, &device);
    let p = params_of(&model).unwrap();
    for rows in [1, 4, 97, 483] {
        let mb = minibatch(&model, rows, &mut rng);
        let batch = PpoBatch::of(&mb);
        let run = |blocked: bool| {
            let mut ws = Workspace::default();
            let mut g = p.zeros_like();
            let mut head = HeadGrads::default();
            if blocked {
                // SAFETY: AVX-512F was detected above.
                unsafe { ws.forward_avx512(&p, &mb.obs) };
            } else {
                ws.forward_any::<1>(&p, &mb.obs);
            }
            let coefs = coefs();
            ppo_head(&ws.logits, &ws.values, &batch, coefs, &mut head);
            let dy = (head.d_logits.as_slice(), head.d_values.as_slice());
            if blocked {
                // SAFETY: as above.
                unsafe { ws.backward_avx512(&p, &mb.obs, dy, &mut g) };
            } else {
                ws.backward_any::<1>(&p, &mb.obs, dy, &mut g);
            }
            (ws.logits.clone(), ws.values.clone(), g)
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (plain, blocked) = (run(false), run(true));
        assert_eq!(bits(&plain.0), bits(&blocked.0), "logits, {rows} rows");
        assert_eq!(bits(&plain.1), bits(&blocked.1), "values, {rows} rows");
        for ((name, a), (_, b)) in plain.2.named().into_iter().zip(blocked.2.named()) {
            assert_eq!(bits(a), bits(b), "{name}, {rows} rows");
        }
        assert!(
            plain
                .2
                .named()
                .iter()
                .any(|(_, g)| g.iter().any(|&x| x != 0.0))
        );
    }
}
