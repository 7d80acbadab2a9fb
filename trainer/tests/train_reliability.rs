//! Run-directory reliability through the library API: rewinding never destroys data (forks),
//! runs killed before their first checkpoint restart in place, stale temporary directories are
//! cleaned, one process at a time per run, and divergence stops the run with a clear error.
//! Where a run executes: on a rayon worker, whatever thread starts it, with the same results.

mod train_support;

use std::path::Path;

use train_support::{
    make_dataset, metrics_without_time, resume_opts, run_opts, tiny_config, tmpdir, weights_of,
};
use trim::family::agg::Agg;
use trim::train::{RunStatus, RunSummary};
use trim::{RunOptions, TrainConfig, TrainError, Trainer};

fn metrics(run: &Path) -> String {
    std::fs::read_to_string(run.join("metrics.csv")).unwrap()
}

/// Started from a plain thread, a run executes on a worker of a rayon pool of its own (its
/// gradient steps then share their parts without a cross-thread hand-off each); started on a
/// pool's worker (a sweep's), it stays on that thread. The metrics are the same either way.
#[test]
fn a_run_executes_on_a_rayon_worker_with_the_same_results() {
    let d = tmpdir("pool-worker");
    let data = make_dataset(&d, "tiny", 60, 2, 7);
    let train = |name: &str| {
        let t = Trainer::<Agg>::new(tiny_config(&data), run_opts(&d.join("runs"), name)).unwrap();
        let mut threads = vec![];
        let s = t
            .run_with(&mut |_| {
                let here = std::thread::current().id();
                threads.push((rayon::current_thread_index().is_some(), here));
            })
            .unwrap();
        (s.run_dir, threads)
    };
    let (outside, threads) = std::thread::scope(|s| {
        s.spawn(|| {
            let caller = std::thread::current().id();
            let (run, threads) = train("outside");
            assert!(
                threads.iter().all(|&(w, t)| w && t != caller),
                "{threads:?}"
            );
            (run, threads.len())
        })
        .join()
        .unwrap()
    });
    assert!(threads > 2, "events were reported");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (inside, worker, threads) = pool.install(|| {
        let (run, threads) = train("inside");
        (run, std::thread::current().id(), threads)
    });
    assert!(
        threads.iter().all(|&(w, t)| w && t == worker),
        "{threads:?}"
    );
    assert_eq!(
        metrics_without_time(&outside),
        metrics_without_time(&inside)
    );
}

/// Defect 6: resuming an older checkpoint of a finished run in place would truncate
/// `metrics.csv`; it is refused (saying how to fork), and a fork copies rows ≤ N into the new
/// run and leaves the original as it was.
#[test]
fn rewinding_is_refused_in_place_and_forks_keep_every_row() {
    let d = tmpdir("rewind");
    let data = make_dataset(&d, "tiny", 60, 2, 4);
    Trainer::<Agg>::new(tiny_config(&data), run_opts(&d, "run"))
        .unwrap()
        .run()
        .unwrap();
    let before = metrics(&d.join("run"));
    assert_eq!(before.lines().count(), 13);
    let old = d.join("run/checkpoints/update_000004");
    let e = Trainer::<Agg>::resume(resume_opts(&old, None, Some(4)))
        .err()
        .expect("rewind in place refused")
        .to_string();
    assert!(
        e.contains("reached update 12") && e.contains("--name") && e.contains("5–12"),
        "{e}"
    );
    assert_eq!(metrics(&d.join("run")), before, "metrics.csv changed");

    let old_in_runs = d.join("run/checkpoints/update_000004");
    let fork = Trainer::<Agg>::resume(RunOptions {
        out_root: d.clone(),
        ..resume_opts(&old_in_runs, Some("fork"), Some(6))
    })
    .unwrap()
    .run()
    .unwrap();
    assert_eq!((fork.status, fork.updates_done), (RunStatus::Stopped, 6));
    let kept: Vec<&str> = before.lines().take(1 + 4).collect();
    let forked = metrics(&d.join("fork"));
    assert_eq!(forked.lines().take(5).collect::<Vec<_>>(), kept);
    assert_eq!(forked.lines().count(), 1 + 6);
    assert!(d.join("fork/checkpoints/update_000004").is_dir());
    let config = std::fs::read_to_string(d.join("fork/config.toml")).unwrap();
    assert!(config.contains("forked_from"), "{config}");
    // The fork continues exactly like the original did.
    let done = Trainer::<Agg>::resume(resume_opts(&d.join("fork"), None, None))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(done.status, RunStatus::Finished);
    assert_eq!(
        metrics_without_time(&d.join("fork")),
        metrics_without_time(&d.join("run"))
    );
    assert_eq!(
        weights_of(&d.join("fork/final")),
        weights_of(&d.join("run/final"))
    );
    assert_eq!(metrics(&d.join("run")), before);
    // Forking onto an existing run is refused.
    let e = Trainer::<Agg>::resume(RunOptions {
        out_root: d.clone(),
        ..resume_opts(&old_in_runs, Some("fork"), None)
    })
    .err()
    .expect("fork onto a run refused")
    .to_string();
    assert!(e.contains("already exists"), "{e}");
}

/// Defect 11: a run killed before its first checkpoint (config.toml and the metrics header
/// written, temp directories left) restarts in place, by `new` with the same configuration or
/// by `resume`; the stale temp directory of the dead process is removed.
#[test]
fn a_run_killed_before_its_first_checkpoint_restarts_in_place() {
    let d = tmpdir("restart");
    let data = make_dataset(&d, "tiny", 60, 2, 5);
    let cfg = tiny_config(&data);
    Trainer::<Agg>::new(cfg.clone(), run_opts(&d, "clean"))
        .unwrap()
        .run()
        .unwrap();
    for name in ["killed", "killed2"] {
        drop(Trainer::<Agg>::new(cfg.clone(), run_opts(&d, name)).unwrap());
        let stale = d.join(name).join(".best.tmp-2147483647");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("model.bpk"), b"partial").unwrap();
    }
    let s = Trainer::<Agg>::new(cfg.clone(), run_opts(&d, "killed"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(s.status, RunStatus::Finished);
    assert!(!d.join("killed/.best.tmp-2147483647").exists());
    let s = Trainer::<Agg>::resume(resume_opts(&d.join("killed2"), None, None))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(s.status, RunStatus::Finished);
    for name in ["killed", "killed2"] {
        assert_eq!(
            metrics_without_time(&d.join(name)),
            metrics_without_time(&d.join("clean"))
        );
    }
    // With another configuration the directory is refused, not reused.
    drop(Trainer::<Agg>::new(cfg.clone(), run_opts(&d, "other")).unwrap());
    let e = Trainer::<Agg>::new(TrainConfig { seed: 3, ..cfg }, run_opts(&d, "other"))
        .err()
        .expect("different configuration refused")
        .to_string();
    assert!(e.contains("another configuration"), "{e}");
}

/// Defect 11: stale `checkpoints/.update_*.tmp-PID/` of dead processes are removed on resume;
/// two concurrent trainers of one run directory are refused at once.
#[test]
fn stale_temps_are_cleaned_and_a_run_is_trained_by_one_process() {
    let d = tmpdir("lock");
    let data = make_dataset(&d, "tiny", 60, 2, 6);
    let cfg = tiny_config(&data);
    let first = Trainer::<Agg>::new(cfg.clone(), run_opts(&d, "busy")).unwrap();
    let e = Trainer::<Agg>::new(cfg.clone(), run_opts(&d, "busy"))
        .err()
        .expect("second trainer refused")
        .to_string();
    assert!(e.contains("in use by another trim process"), "{e}");
    drop(first);

    let stopped = Trainer::<Agg>::new(
        cfg,
        RunOptions {
            stop_after_updates: Some(4),
            ..run_opts(&d, "stopped")
        },
    )
    .unwrap()
    .run()
    .unwrap();
    assert_eq!(stopped.status, RunStatus::Stopped);
    let stale = d.join("stopped/checkpoints/.update_000008.tmp-2147483647");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("state.json"), b"{").unwrap();
    let a = Trainer::<Agg>::resume(resume_opts(&d.join("stopped"), None, None)).unwrap();
    assert!(!stale.exists(), "stale temp directory left");
    let e = Trainer::<Agg>::resume(resume_opts(&d.join("stopped"), None, None))
        .err()
        .expect("concurrent resume refused")
        .to_string();
    assert!(e.contains("in use by another trim process"), "{e}");
    assert_eq!(a.run().unwrap().status, RunStatus::Finished);
}

/// Defect 7: a valid configuration that diverges (lr 1e30) stops at once with an error naming
/// the update and the quantity; summary.json says failed; the checkpoints before it are good.
#[test]
fn divergence_stops_the_run_with_a_failed_summary() {
    let d = tmpdir("diverge");
    let data = make_dataset(&d, "tiny", 60, 1, 7);
    let cfg = TrainConfig {
        lr: 1e30,
        anneal_lr: false,
        checkpoint_every: 1,
        ..tiny_config(&data)
    };
    let e = Trainer::<Agg>::new(cfg, run_opts(&d, "nan"))
        .unwrap()
        .run()
        .expect_err("diverged run must fail");
    let TrainError::Diverged(div) = &e else {
        panic!("not a divergence: {e}");
    };
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("diverged at update {}", div.update + 1)),
        "{msg}"
    );
    assert!(
        !div.quantity.is_empty() && msg.contains(&div.quantity),
        "{msg}"
    );
    let s = RunSummary::read(&d.join("nan")).unwrap();
    assert_eq!(s.status, RunStatus::Failed);
    assert_eq!(s.updates_done, div.update);
    assert!(s.error.unwrap().contains("diverged"));
    assert!(!d.join("nan/final").exists());
    // Every checkpoint written holds finite weights.
    for (_, c) in trim::checkpoint::periodic(&d.join("nan")) {
        assert!(
            weights_of(&c).iter().all(|w| w.is_finite()),
            "{}",
            c.display()
        );
    }
}
