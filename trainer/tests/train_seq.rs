//! TRIM-Seq through the same PPO loop, run directories and checkpoints as TRIM-Agg: determinism,
//! bit-exact stop/resume and fork, and family mismatches refused.

mod train_support;

use train_support::{
    make_dataset, metrics_without_time, resume_opts, run_opts, tiny_config, tmpdir, weights_of_as,
};
use trim::checkpoint;
use trim::config::PolicyKind;
use trim::family::{agg::Agg, seq::Seq};
use trim::train::{AnyTrainer, RunStatus};
use trim::{RunOptions, TrainConfig, Trainer};

fn seq_config(data: &std::path::Path) -> TrainConfig {
    TrainConfig {
        policy: PolicyKind::Seq,
        seq_dim: 16,
        seq_ff: 32,
        // Several minibatches: the run's RNG shuffles inside the update too.
        minibatch_episodes: 3,
        ..tiny_config(data)
    }
}

#[test]
fn seq_runs_are_deterministic_and_resume_bit_exactly() {
    let d = tmpdir("seq-resume");
    let data = make_dataset(&d, "tiny", 60, 2, 3);
    let cfg = seq_config(&data);
    let full = AnyTrainer::new(cfg.clone(), run_opts(&d, "full"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!((full.status, full.updates_done), (RunStatus::Finished, 12));
    let again = Trainer::<Seq>::new(cfg.clone(), run_opts(&d, "again"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(full.best, again.best);
    let w = |run: &str| weights_of_as::<Seq>(&d.join(run));
    assert_eq!(w("full/final"), w("again/final"));
    assert_ne!(
        w("full/checkpoints/update_000004"),
        w("full/final"),
        "it trained"
    );

    // Stop mid-pass, resume through the family-agnostic entry point.
    let half = AnyTrainer::new(
        cfg.clone(),
        RunOptions {
            stop_after_updates: Some(7),
            ..run_opts(&d, "split")
        },
    )
    .unwrap()
    .run()
    .unwrap();
    assert_eq!((half.status, half.updates_done), (RunStatus::Stopped, 7));
    let resumed = AnyTrainer::resume(resume_opts(&d.join("split"), None, None)).unwrap();
    assert_eq!(resumed.config().policy, PolicyKind::Seq);
    let resumed = resumed.run().unwrap();
    assert_eq!(resumed.updates_done, 12);
    assert_eq!(
        metrics_without_time(&d.join("full")),
        metrics_without_time(&d.join("split"))
    );
    assert_eq!(w("full/final"), w("split/final"));
    assert_eq!(w("full/best"), w("split/best"));
    let (a, b) = (
        checkpoint::load_state(&d.join("full/final")).unwrap(),
        checkpoint::load_state(&d.join("split/final")).unwrap(),
    );
    assert_eq!(
        (a.rng, a.env_steps, a.family.as_str()),
        (b.rng, b.env_steps, "seq")
    );

    // A fork of an older checkpoint redoes the rest identically.
    AnyTrainer::resume(RunOptions {
        resume: Some(d.join("split/checkpoints/update_000004")),
        ..run_opts(&d, "fork")
    })
    .unwrap()
    .run()
    .unwrap();
    assert_eq!(w("full/final"), w("fork/final"));

    // Another seed is another run.
    let other = AnyTrainer::new(TrainConfig { seed: 99, ..cfg }, run_opts(&d, "other"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(other.updates_done, 12);
    assert_ne!(w("other/final"), w("full/final"));
}

#[test]
fn a_checkpoint_of_one_family_is_refused_as_the_other() {
    let d = tmpdir("seq-mismatch");
    let data = make_dataset(&d, "tiny", 40, 1, 4);
    let seq = TrainConfig {
        passes: 1,
        ..seq_config(&data)
    };
    AnyTrainer::new(seq, run_opts(&d, "seq"))
        .unwrap()
        .run()
        .unwrap();
    let agg = TrainConfig {
        passes: 1,
        ..tiny_config(&data)
    };
    AnyTrainer::new(agg, run_opts(&d, "agg"))
        .unwrap()
        .run()
        .unwrap();
    let dev = trim::backend::Backend::Flex.device().unwrap();
    let e = checkpoint::load_model_as::<Agg>(&d.join("seq/final"), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a seq checkpoint, not a agg one"), "{e}");
    let e = checkpoint::load_model_as::<Seq>(&d.join("agg/final"), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("family mismatch"), "{e}");
    // Resuming with the wrong family's trainer is refused, not silently retrained.
    let e = Trainer::<Agg>::resume(resume_opts(&d.join("seq/final"), Some("x"), None))
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("family mismatch"), "{e}");
    // TRIM-Seq has no dropout: asking for it is an error, not a silent no-op.
    let e = TrainConfig {
        dropout: 0.1,
        ..seq_config(&data)
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("dropout"), "{e}");
    let e = TrainConfig {
        seq_heads: 3,
        ..seq_config(&data)
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("heads"), "{e}");
}

/// `trim sweep` takes `policy` as a grid axis: both families train side by side and the report
/// names each family as its runs recorded it.
#[test]
fn a_sweep_grid_over_policies_reports_both_families() {
    let d = tmpdir("seq-sweep");
    let data = make_dataset(&d, "tiny", 60, 2, 6);
    let spec = d.join("sweep.toml");
    std::fs::write(
        &spec,
        format!(
            "[base]\ndata = {:?}\ntest_data = \"same\"\npasses = 1\nbatch_episodes = 8\n\
             minibatch_episodes = 8\nseq_dim = 16\nseq_ff = 32\n[grid]\npolicy = [\"agg\", \"seq\"]\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let out = train_support::ok(
        &d,
        &[
            "sweep",
            "sweep.toml",
            "--threads",
            "2",
            "--threshold-steps",
            "4",
            "--cascade-steps",
            "2",
            "--checkpoint-steps",
            "2",
            "--pomdp-fit-data",
            "none",
            "--out",
            "sw",
        ],
    );
    assert!(
        out.contains("| TRIM-Agg |") && out.contains("| TRIM-Seq |"),
        "{out}"
    );
    for (run, family) in [("policy=agg", "agg"), ("policy=seq", "seq")] {
        let s = checkpoint::load_state(&d.join("sw/runs").join(run).join("final")).unwrap();
        assert_eq!(s.family, family);
    }
}
