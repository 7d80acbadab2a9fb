//! `trim sweep`: planning (skip / resume / restart / refuse), resumed runs equal uninterrupted
//! ones, and an end-to-end sweep through the real binary that skips finished runs when re-run.

mod train_support;

use std::path::Path;
use std::process::Command;

use train_support::{make_dataset, metrics_without_time, tmpdir};
use trim::backend::Backend;
use trim::sweep::plan::STAGING;
use trim::sweep::{Plan, RunSpec, SweepOptions, SweepSpec, plan_run, run_sweep};
use trim::train::RunStatus;

fn spec_text(data: &Path) -> String {
    format!(
        "[base]\ndata = {:?}\ntest_data = \"same\"\npasses = 2\nbatch_episodes = 8\nminibatch_episodes = 8\n\
         val_every = 4\ncheckpoint_every = 4\nlr = 3e-3\n[grid]\nlambda = [4e-4, 1.6e-3]\nseed = [1]\n",
        data.display().to_string()
    )
}

fn runs(data: &Path) -> Vec<RunSpec> {
    SweepSpec::from_toml_str(&spec_text(data))
        .unwrap()
        .runs(None)
        .unwrap()
}

fn opts(dir: &Path, stop: Option<u64>) -> SweepOptions {
    SweepOptions {
        runs_dir: dir.to_path_buf(),
        threads: 2,
        backend: Backend::Flex,
        stop_after_updates: stop,
        command_line: "test".into(),
    }
}

#[test]
fn interrupted_runs_resume_to_the_same_result_and_finished_runs_are_skipped() {
    let dir = tmpdir("sweep-plan");
    let data = make_dataset(&dir, "tiny", 60, 2, 7);
    let rs = runs(&data);
    assert_eq!(rs.len(), 2);
    let full_dir = dir.join("full");
    let part_dir = dir.join("part");
    let quiet = |_: trim::sweep::Event<'_>| {};

    let full = run_sweep(&rs, &opts(&full_dir, None), &quiet).unwrap();
    assert!(full.iter().all(|r| r.plan == Plan::New));
    assert!(
        full.iter()
            .all(|r| r.outcome.as_ref().unwrap().status == RunStatus::Finished)
    );

    // Stop every run after its first checkpoint, then continue the sweep.
    let part = run_sweep(&rs, &opts(&part_dir, Some(4)), &quiet).unwrap();
    assert!(
        part.iter()
            .all(|r| r.outcome.as_ref().unwrap().status == RunStatus::Stopped)
    );
    for r in &rs {
        // Unfinished runs stay in the staging directory; `runs/` holds finished ones only.
        let p = plan_run(&part_dir, &r.name, &r.config).unwrap();
        assert_eq!((p.plan, p.staged), (Plan::Resume, true));
        assert!(part_dir.join(STAGING).join(&r.name).is_dir());
        assert!(!part_dir.join(&r.name).exists());
    }
    let resumed = run_sweep(&rs, &opts(&part_dir, None), &quiet).unwrap();
    assert!(resumed.iter().all(|r| r.plan == Plan::Resume));
    for r in &rs {
        assert_eq!(
            metrics_without_time(&part_dir.join(&r.name)),
            metrics_without_time(&full_dir.join(&r.name)),
            "{}: resumed run differs from the uninterrupted one",
            r.name
        );
    }

    // Finished runs are skipped and left untouched.
    let before = std::fs::read(full_dir.join(&rs[0].name).join("summary.json")).unwrap();
    let again = run_sweep(&rs, &opts(&full_dir, None), &quiet).unwrap();
    assert!(again.iter().all(|r| r.plan == Plan::Skip));
    assert!(again.iter().all(|r| r.outcome.is_ok()));
    let after = std::fs::read(full_dir.join(&rs[0].name).join("summary.json")).unwrap();
    assert_eq!(before, after);

    // A directory that never reached a checkpoint is restarted.
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(fresh.join(&rs[0].name)).unwrap();
    assert_eq!(
        plan_run(&fresh, &rs[0].name, &rs[0].config).unwrap().plan,
        Plan::Restart
    );
    let one = run_sweep(&rs[..1], &opts(&fresh, None), &quiet).unwrap();
    assert_eq!(one[0].plan, Plan::Restart);
    assert_eq!(one[0].outcome.as_ref().unwrap().status, RunStatus::Finished);

    // A run directory made with another configuration is refused, not reused.
    let mut other = rs[0].config.clone();
    other.lambda = 1.0;
    let err = plan_run(&full_dir, &rs[0].name, &other).unwrap_err();
    assert!(
        format!("{err}").contains("different configuration"),
        "{err}"
    );
}

#[test]
fn sweep_binary_trains_reports_and_skips_on_rerun() {
    let dir = tmpdir("sweep-cli");
    let data = make_dataset(&dir, "tiny", 60, 2, 7);
    let spec = dir.join("sweep.toml");
    std::fs::write(&spec, spec_text(&data)).unwrap();
    let out = dir.join("sweep");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_trim"))
            .arg("sweep")
            .arg(&spec)
            .args([
                "--grid",
                "seed=1,2",
                "--threads",
                "2",
                "--threshold-steps",
                "10",
            ])
            .args(["--cascade-steps", "5", "--checkpoint-steps", "4", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run();
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{err}");
    assert!(err.contains("sweep: 4 runs"), "{err}");
    for name in [
        "lambda=0.0004__seed=1",
        "lambda=0.0004__seed=2",
        "lambda=0.0016__seed=1",
        "lambda=0.0016__seed=2",
    ] {
        let s = std::fs::read_to_string(out.join("runs").join(name).join("summary.json")).unwrap();
        assert!(s.contains("\"status\": \"finished\""), "{name}");
    }
    let report = out.join("report");
    let csv = std::fs::read_to_string(report.join("points.csv")).unwrap();
    // 4 greedy checkpoint points and 4 × 3 probability-threshold points.
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("TRIM-Agg,")).count(),
        4
    );
    assert_eq!(
        csv.lines()
            .filter(|l| l.starts_with("TRIM-Agg p>t,"))
            .count(),
        12
    );
    let frontier = std::fs::read_to_string(report.join("frontier.csv")).unwrap();
    assert!(frontier.lines().count() >= 2, "{frontier}");
    for f in [
        "summary.md",
        "report.json",
        "cost_accuracy.png",
        "cost_accuracy.svg",
    ] {
        assert!(report.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("| TRIM-Agg |") && md.contains("| hindsight-optimal |"));

    same_points_from_trim_report(&dir, &data, &out, &csv);

    let second = run();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert_eq!(
        err.matches("skipped (already finished)").count(),
        4,
        "{err}"
    );
    assert!(err.contains("4 skipped"), "{err}");
}

/// `trim report` over the same run directories gives the same trained points.
fn same_points_from_trim_report(dir: &Path, data: &Path, out: &Path, csv: &str) {
    let rep2 = dir.join("report2");
    let r = Command::new(env!("CARGO_BIN_EXE_trim"))
        .args(["report", "--split", "test", "--threshold-steps", "10"])
        .args(["--cascade-steps", "5", "--checkpoint-steps", "4", "--data"])
        .arg(data)
        .arg("--runs")
        .arg(out.join("runs"))
        .arg("--out")
        .arg(&rep2)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        std::fs::read_to_string(rep2.join("points.csv")).unwrap(),
        csv,
        "trim report and trim sweep disagree on the same runs"
    );
}
