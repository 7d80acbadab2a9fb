//! Determinism, stop/resume equality and damaged checkpoints, through the library API.

mod train_support;

use std::path::Path;

use train_support::{
    make_dataset, metrics_without_time, resume_opts, run_opts, tiny_config, tmpdir, weights_of,
};
use trim::checkpoint;
use trim::config::Kernels;
use trim::family::agg::Agg;
use trim::train::RunStatus;
use trim::{RunOptions, TrainConfig, Trainer};

#[test]
fn same_seed_gives_identical_metrics_and_weights() {
    let d = tmpdir("determinism");
    let data = make_dataset(&d, "tiny", 60, 2, 1);
    let cfg = tiny_config(&data);
    let a = Trainer::<Agg>::new(cfg.clone(), run_opts(&d, "a"))
        .unwrap()
        .run()
        .unwrap();
    let b = Trainer::<Agg>::new(cfg.clone(), run_opts(&d, "b"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(a.status, RunStatus::Finished);
    assert_eq!((a.updates_done, b.updates_done), (12, 12));
    let (ma, mb) = (
        metrics_without_time(&d.join("a")),
        metrics_without_time(&d.join("b")),
    );
    assert_eq!(ma.lines().count(), 1 + 12);
    assert_eq!(ma, mb);
    assert_eq!(
        weights_of(&d.join("a/final")),
        weights_of(&d.join("b/final"))
    );
    // The policy trained: weights moved away from the seed's initialisation.
    let first = weights_of(&d.join("a/checkpoints/update_000004"));
    assert_ne!(first, weights_of(&d.join("a/final")));
    // Another seed gives another run.
    let c = Trainer::<Agg>::new(TrainConfig { seed: 11, ..cfg }, run_opts(&d, "c"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(c.updates_done, 12);
    assert_ne!(metrics_without_time(&d.join("c")), ma);
}

/// Lazy synthetic worlds train deterministically too, with the separate test world; the run
/// records the world's fingerprint, and a run whose world changed is refused on resume.
#[test]
fn lazy_worlds_train_deterministically_and_resume_only_on_the_same_world() {
    let d = tmpdir("lazy-determinism");
    let toml = d.join("world.toml");
    std::fs::write(&toml, trim_data::synth::SHIPPED_CONFIG_TOML).unwrap();
    let spec = format!("synth:{}?problems=60&test_fraction=0", toml.display());
    let cfg = TrainConfig {
        data: spec.clone().into(),
        test_data: trim::config::TestData::Other(
            "synth:math500?problems=40&test_fraction=1".into(),
        ),
        ..tiny_config(Path::new(&spec))
    };
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|n| {
            Trainer::<Agg>::new(cfg.clone(), run_opts(&d, n))
                .unwrap()
                .run()
                .unwrap()
        })
        .collect();
    assert_eq!(runs[0].status, RunStatus::Finished);
    assert_eq!(
        metrics_without_time(&d.join("a")),
        metrics_without_time(&d.join("b"))
    );
    assert_eq!(
        weights_of(&d.join("a/final")),
        weights_of(&d.join("b/final"))
    );
    let test = runs[0]
        .test
        .as_ref()
        .expect("test report on the separate world");
    assert_eq!(test.problems, 40);
    let ck = d.join("a/checkpoints/update_000004");
    let state = checkpoint::load_state(&ck).unwrap();
    let world = trim_data::LazySource::open(&spec).unwrap();
    assert_eq!(state.dataset_sha256, world.fingerprint);
    // Edit the world's config: resuming (here: forking) the run is refused, naming the data.
    let edited = trim_data::synth::SHIPPED_CONFIG_TOML.replace("seed = 20260110", "seed = 7");
    std::fs::write(&toml, edited).unwrap();
    let e = Trainer::<Agg>::resume(resume_opts(&ck, Some("fork"), None))
        .err()
        .expect("a changed world is refused")
        .to_string();
    assert!(e.contains("changed since this checkpoint"), "{e}");
}

#[test]
fn stopped_and_resumed_run_equals_uninterrupted_run() {
    let d = tmpdir("resume");
    let data = make_dataset(&d, "tiny", 60, 2, 2);
    // Several minibatches and dropout: the run's RNG shuffles and draws masks in the update too
    // (burn's kernels: the fused ones have no dropout).
    let cfg = TrainConfig {
        minibatch_episodes: 3,
        dropout: 0.1,
        ..tiny_config(&data)
    };
    assert_eq!(cfg.fused_kernels(), Ok(false));
    stop_resume_fork_equal_the_full_run(&d, cfg);
}

/// The same with the fused kernels: their Adam state goes through `fused_adam.bin`.
#[test]
fn stopped_and_resumed_fused_run_equals_uninterrupted_run() {
    let d = tmpdir("resume-fused");
    let data = make_dataset(&d, "tiny", 60, 2, 2);
    let cfg = TrainConfig {
        minibatch_episodes: 3,
        ..tiny_config(&data)
    };
    assert_eq!(cfg.fused_kernels(), Ok(true));
    stop_resume_fork_equal_the_full_run(&d, cfg);
    assert!(d.join("split/final/fused_adam.bin").is_file());
}

/// Fused and burn kernels train the same run to within float rounding: same first rollout
/// (same initial weights and draws), the first update's losses agree closely, and both
/// policies move away from the initial weights by nearly the same amount.
#[test]
fn fused_and_burn_kernels_train_alike() {
    let d = tmpdir("kernels-agree");
    let data = make_dataset(&d, "tiny", 60, 2, 5);
    let cfg = TrainConfig {
        passes: 1,
        ..tiny_config(&data)
    };
    for (name, kernels) in [("fused", Kernels::Fused), ("burn", Kernels::Burn)] {
        let c = TrainConfig {
            kernels,
            ..cfg.clone()
        };
        Trainer::<Agg>::new(c, run_opts(&d, name))
            .unwrap()
            .run()
            .unwrap();
    }
    assert!(d.join("fused/final/fused_adam.bin").is_file());
    assert!(!d.join("burn/final/fused_adam.bin").exists());
    let rows = |name: &str| -> Vec<Vec<String>> {
        let m = metrics_without_time(&d.join(name));
        m.lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let (f, b) = (rows("fused"), rows("burn"));
    let header = &f[0];
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    // Update 1: the rollout is identical, the losses agree to float rounding.
    for name in ["rollout/reward", "rollout/accuracy"] {
        assert_eq!(f[1][col(name)], b[1][col(name)], "{name}");
    }
    for name in [
        "train/policy_loss",
        "train/value_loss",
        "train/entropy",
        "train/grad_norm",
    ] {
        let (x, y): (f64, f64) = (
            f[1][col(name)].parse().unwrap(),
            b[1][col(name)].parse().unwrap(),
        );
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "{name}: fused {x} burn {y}"
        );
    }
    let init = weights_of(&d.join("fused/checkpoints/update_000004"));
    let (wf, wb) = (
        weights_of(&d.join("fused/final")),
        weights_of(&d.join("burn/final")),
    );
    let dist = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let moved = dist(&wf, &init);
    assert!(moved > 0.0);
    assert!(
        dist(&wf, &wb) < 0.05 * moved,
        "fused and burn diverged: {} vs moved {moved}",
        dist(&wf, &wb)
    );
}

/// Stop `cfg`'s run after 7 updates and resume it, fork an older checkpoint of it, and check
/// both end exactly where the uninterrupted run does.
fn stop_resume_fork_equal_the_full_run(d: &Path, cfg: TrainConfig) {
    let full = Trainer::<Agg>::new(cfg.clone(), run_opts(d, "full"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(full.status, RunStatus::Finished);

    // Stop after 7 updates (mid-pass, not a checkpoint multiple), then resume from the run dir.
    let half = Trainer::<Agg>::new(
        cfg.clone(),
        RunOptions {
            stop_after_updates: Some(7),
            ..run_opts(d, "split")
        },
    )
    .unwrap()
    .run()
    .unwrap();
    assert_eq!((half.status, half.updates_done), (RunStatus::Stopped, 7));
    assert!(!d.join("split/final").exists());
    // Simulate a crash after the checkpoint: a stray metrics row that the resume must drop.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.join("split/metrics.csv"))
            .unwrap();
        writeln!(f, "8,garbage").unwrap();
    }
    let resumed = Trainer::<Agg>::resume(resume_opts(&d.join("split"), None, None))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(resumed.status, RunStatus::Finished);
    assert_eq!(resumed.updates_done, 12);
    assert_eq!(
        metrics_without_time(&d.join("full")),
        metrics_without_time(&d.join("split"))
    );
    assert_eq!(
        weights_of(&d.join("full/final")),
        weights_of(&d.join("split/final"))
    );
    assert_eq!(
        weights_of(&d.join("full/best")),
        weights_of(&d.join("split/best"))
    );
    assert_eq!(full.best, resumed.best);
    let s_full = checkpoint::load_state(&d.join("full/final")).unwrap();
    let s_split = checkpoint::load_state(&d.join("split/final")).unwrap();
    assert_eq!(s_full.rng, s_split.rng);
    assert_eq!(s_full.env_steps, s_split.env_steps);

    // Forking a specific (older) checkpoint into a new run redoes the rest identically.
    let again = Trainer::<Agg>::resume(RunOptions {
        resume: Some(d.join("split/checkpoints/update_000004")),
        ..run_opts(d, "fork")
    })
    .unwrap()
    .run()
    .unwrap();
    assert_eq!(again.updates_done, 12);
    assert_eq!(
        weights_of(&d.join("full/final")),
        weights_of(&d.join("fork/final"))
    );
    assert_eq!(
        metrics_without_time(&d.join("full")),
        metrics_without_time(&d.join("fork"))
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn damaged_checkpoints_are_refused_with_the_file_named() {
    let d = tmpdir("damaged");
    let data = make_dataset(&d, "tiny", 60, 1, 3);
    let cfg = TrainConfig {
        passes: 1,
        ..tiny_config(&data)
    };
    Trainer::<Agg>::new(cfg, run_opts(&d, "run"))
        .unwrap()
        .run()
        .unwrap();
    let good = d.join("run/checkpoints/update_000004");
    let device = trim::backend::Backend::Flex.train_device().unwrap();
    assert!(checkpoint::load(&good, &device).is_ok());

    let damage = |name: &str, f: &dyn Fn(&Path)| -> String {
        let c = d.join(format!("run/checkpoints/bad_{name}"));
        copy_dir(&good, &c);
        f(&c);
        match checkpoint::load(&c, &device) {
            Ok(_) => panic!("{name}: damaged checkpoint accepted"),
            Err(e) => e.to_string(),
        }
    };
    let truncate = |file: &'static str| {
        move |c: &Path| {
            let p = c.join(file);
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        }
    };
    let e = damage("model", &truncate("model.bpk"));
    assert!(e.contains("model.bpk is damaged"), "{e}");
    let e = damage("optim", &truncate("optim.bpk"));
    assert!(e.contains("optim.bpk is damaged"), "{e}");
    let e = damage("fused_adam", &truncate("fused_adam.bin"));
    assert!(e.contains("fused_adam.bin is damaged"), "{e}");
    let e = damage("state", &|c: &Path| {
        let p = c.join("state.json");
        let s = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            s.replacen("\"updates_done\": 4", "\"updates_done\": 5", 1),
        )
        .unwrap();
    });
    assert!(e.contains("state.json is damaged"), "{e}");
    let e = damage("sums", &|c: &Path| {
        std::fs::remove_file(c.join("SHA256SUMS")).unwrap()
    });
    assert!(e.contains("SHA256SUMS"), "{e}");
    // Resume through the trainer reports the same.
    let bad = d.join("run/checkpoints/bad_model");
    let err = Trainer::<Agg>::resume(resume_opts(&bad, None, None))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("model.bpk is damaged"), "{err}");
}

/// A population member — a run trained beside others in one process by the sweep executor, on
/// a one-thread worker — ends bit-identical to the same configuration trained alone on the
/// whole pool: same metrics, same final and best weights.
#[test]
fn population_members_are_bit_identical_to_solo_runs() {
    let d = tmpdir("population");
    let data = make_dataset(&d, "tiny", 240, 2, 6);
    let cfg = TrainConfig {
        passes: 1,
        // Several parts per gradient step, so the one-thread and two-thread paths differ.
        batch_episodes: 100,
        minibatch_episodes: 100,
        ..tiny_config(&data)
    };
    let runs: Vec<trim::sweep::RunSpec> = [1u64, 2, 3]
        .iter()
        .map(|&seed| trim::sweep::RunSpec {
            name: format!("seed={seed}"),
            config: TrainConfig {
                seed,
                ..cfg.clone()
            },
        })
        .collect();
    let o = trim::sweep::SweepOptions {
        runs_dir: d.join("pop"),
        threads: 2,
        backend: trim::backend::Backend::Flex,
        stop_after_updates: None,
        command_line: String::new(),
    };
    let results = trim::sweep::run_sweep(&runs, &o, &|_| {}).unwrap();
    for r in &results {
        assert!(r.outcome.is_ok(), "{}: {:?}", r.name, r.outcome);
    }
    let solo = TrainConfig { seed: 2, ..cfg };
    assert_eq!(solo.fused_kernels(), Ok(true));
    Trainer::<Agg>::new(solo, run_opts(&d, "solo"))
        .unwrap()
        .run()
        .unwrap();
    // The first update's steps span more than one part.
    let m = metrics_without_time(&d.join("solo"));
    let mut lines = m.lines().map(|l| l.split(',').collect::<Vec<_>>());
    let header = lines.next().unwrap();
    let col = header.iter().position(|h| *h == "env_steps").unwrap();
    let steps: usize = lines.next().unwrap()[col].parse().unwrap();
    assert!(steps > trim::fused::learner::PART_ROWS, "{steps} steps");
    let member = d.join("pop/seed=2");
    assert_eq!(
        metrics_without_time(&member),
        metrics_without_time(&d.join("solo"))
    );
    for ckpt in ["final", "best"] {
        assert_eq!(
            weights_of(&member.join(ckpt)),
            weights_of(&d.join("solo").join(ckpt)),
            "{ckpt}"
        );
    }
}
