//! Sweeps run by other executors: `--plan`, one run per `--index`, the Slurm array executed
//! index by index with `SLURM_ARRAY_TASK_ID` set, two workers given the same run, a worker killed
//! mid-run — each ends with run directories equal to a local `trim sweep`'s — and the Ray driver
//! on a local Ray cluster (with a worker killed mid-run).

mod train_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use train_support::{make_dataset, metrics_without_time, ok, python_with, tmpdir, trim};

const NAMES: [&str; 4] = [
    "lambda=0.0004__seed=1",
    "lambda=0.0004__seed=2",
    "lambda=0.0016__seed=1",
    "lambda=0.0016__seed=2",
];

/// A 2 λ × 2 seed sweep over a tiny dataset; `passes` sets the run length.
fn setup(name: &str, passes: u32) -> PathBuf {
    let dir = tmpdir(name);
    make_dataset(&dir, "tiny", 60, 2, 7);
    let spec = format!(
        "[base]\ndata = \"tiny.jsonl\"\ntest_data = \"same\"\npasses = {passes}\n\
         batch_episodes = 8\nminibatch_episodes = 8\nval_every = 4\ncheckpoint_every = 2\n\
         lr = 3e-3\n[grid]\nlambda = [4e-4, 1.6e-3]\nseed = [1, 2]\n"
    );
    std::fs::write(dir.join("sweep.toml"), spec).unwrap();
    dir
}

/// Report flags that keep the report fast.
const REPORT: [&str; 6] = [
    "--threshold-steps",
    "10",
    "--cascade-steps",
    "5",
    "--checkpoint-steps",
    "4",
];

/// A local sweep into `out` (the reference).
fn local_sweep(dir: &Path, out: &str) {
    let mut a = vec!["sweep", "sweep.toml", "--out", out, "--threads", "2"];
    a.extend(REPORT);
    ok(dir, &a);
}

/// Every run of `out` equals the local sweep's in `reference`: same metrics (apart from wall
/// time), no staging left, no stray directories; and the same report points.
fn assert_same_runs(dir: &Path, out: &str, reference: &str) {
    let runs = dir.join(out).join("runs");
    let mut found: Vec<String> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != ".partial" && n != ".claims" && n != "logs")
        .collect();
    found.sort();
    assert_eq!(found, NAMES, "run directories of {out}");
    let staged = runs.join(".partial");
    let left = std::fs::read_dir(&staged).map_or(0, |rd| rd.count());
    assert_eq!(left, 0, "runs left in {}", staged.display());
    for n in NAMES {
        assert_eq!(
            metrics_without_time(&runs.join(n)),
            metrics_without_time(&dir.join(reference).join("runs").join(n)),
            "{out}/{n} differs from the local sweep"
        );
        let s = std::fs::read_to_string(runs.join(n).join("summary.json")).unwrap();
        assert!(
            s.contains(&format!("{out}/runs/{n}")),
            "summary names its final dir: {s}"
        );
    }
    let points = |o: &str| std::fs::read_to_string(dir.join(o).join("report/points.csv")).unwrap();
    assert_eq!(points(out), points(reference), "report of {out}");
}

#[test]
fn plan_and_slurm_array_run_the_same_runs_as_a_local_sweep() {
    let dir = setup("sweep-slurm", 2);
    local_sweep(&dir, "local");
    check_plan(&dir);
    run_slurm_array(&dir);
    assert_same_runs(&dir, "slurm", "local");
    // Without SLURM_ARRAY_TASK_ID the script refuses to guess.
    let o = Command::new("bash")
        .arg(dir.join("jobs/sweep.sbatch"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    // A finished sweep plans every run as finished; --index on one is a no-op.
    let plan = ok(&dir, &["sweep", "sweep.toml", "--out", "slurm", "--plan"]);
    assert_eq!(plan.matches("\"status\":\"finished\"").count(), 4, "{plan}");
    let e = String::from_utf8_lossy(
        &trim(
            &dir,
            &["sweep", "sweep.toml", "--out", "slurm", "--index", "9"],
        )
        .stderr,
    )
    .to_string();
    assert!(e.contains("--index 9") && e.contains("4 runs"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The plan: one JSON line per run, in grid order, with the command that trains it.
fn check_plan(dir: &Path) {
    let plan = ok(dir, &["sweep", "sweep.toml", "--out", "slurm", "--plan"]);
    let lines: Vec<serde_json::Value> = plan
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["index"], i);
        assert_eq!(l["name"], NAMES[i]);
        assert_eq!(l["status"], "new");
        let argv: Vec<&str> = l["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            &argv[1..],
            [
                "sweep",
                "sweep.toml",
                "--out",
                "slurm",
                "--index",
                &i.to_string()
            ]
        );
        assert_eq!(l["config"]["seed"], if i % 2 == 0 { 1 } else { 2 });
        assert_eq!(l["trim_sha256"].as_str().unwrap().len(), 64);
    }
}

/// Render the array, then run every index the way Slurm would, and the report job.
fn run_slurm_array(dir: &Path) {
    let mut emit = vec![
        "sweep",
        "sweep.toml",
        "--out",
        "slurm",
        "--emit-slurm",
        "jobs",
    ];
    emit.extend(REPORT);
    emit.extend(["--slurm-cpus", "1", "--slurm-time", "00:30:00"]);
    ok(dir, &emit);
    let script = std::fs::read_to_string(dir.join("jobs/sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3"), "{script}");
    assert!(
        !script.contains("--emit-slurm") && !script.contains("--slurm-"),
        "{script}"
    );
    for i in 0..4 {
        let o = Command::new("bash")
            .arg(dir.join("jobs/sweep.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .env("SLURM_CPUS_PER_TASK", "1")
            .current_dir("/")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "index {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = Command::new("bash")
        .arg(dir.join("jobs/report.sbatch"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "report: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn index_cmd(dir: &Path, out: &str, i: usize) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trim"));
    c.args([
        "sweep",
        "sweep.toml",
        "--out",
        out,
        "--index",
        &i.to_string(),
    ])
    .current_dir(dir)
    .env_remove("TRIM_BACKEND")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// Wait until run `name` of `out` has a periodic checkpoint in its staging directory.
fn wait_for_checkpoint(dir: &Path, out: &str, name: &str) {
    let ckpts = dir
        .join(out)
        .join("runs/.partial")
        .join(name)
        .join("checkpoints");
    let t = Instant::now();
    while std::fs::read_dir(&ckpts).map_or(0, |rd| rd.count()) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no checkpoint in {}",
            ckpts.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn concurrent_and_killed_workers_never_corrupt_a_run() {
    let dir = setup("sweep-workers", 6);
    local_sweep(&dir, "local");
    // Two workers get run 0 at once: one trains, the other waits for it and then skips it.
    let a = index_cmd(&dir, "w", 0).spawn().unwrap();
    let b = index_cmd(&dir, "w", 0).spawn().unwrap();
    for (k, c) in [a, b].into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "worker {k}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("\"status\":\"finished\""));
    }
    // A worker killed (SIGKILL) after run 1's first checkpoint; the retry resumes it.
    let mut c = index_cmd(&dir, "w", 1).spawn().unwrap();
    wait_for_checkpoint(&dir, "w", NAMES[1]);
    c.kill().unwrap();
    assert!(!c.wait().unwrap().success());
    assert!(
        !dir.join("w/runs").join(NAMES[1]).exists(),
        "a killed run was promoted"
    );
    let out = ok(&dir, &["sweep", "sweep.toml", "--out", "w", "--index", "1"]);
    assert!(out.contains("\"status\":\"finished\""), "{out}");
    for i in 2..4 {
        ok(
            &dir,
            &[
                "sweep",
                "sweep.toml",
                "--out",
                "w",
                "--index",
                &i.to_string(),
            ],
        );
    }
    let mut rep = vec!["sweep", "sweep.toml", "--out", "w", "--report-only"];
    rep.extend(REPORT);
    ok(&dir, &rep);
    assert_same_runs(&dir, "w", "local");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_only_names_unfinished_runs() {
    let dir = setup("sweep-report-only", 2);
    ok(&dir, &["sweep", "sweep.toml", "--out", "r", "--index", "0"]);
    let o = trim(
        &dir,
        &["sweep", "sweep.toml", "--out", "r", "--report-only"],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("3 of 4 runs are not finished"),
        "{e}"
    );
    assert!(e.contains(NAMES[3]), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Ray driver on a local Ray cluster (2 CPUs). Needs a Python with `ray`
/// (`scripts/ray/requirements.txt`); skipped without one unless `TRIM_REQUIRE_RAY=1` (CI).
#[test]
fn ray_sweep_equals_a_local_sweep_and_survives_a_killed_worker() {
    let Some(py) = python_with("ray") else {
        assert!(
            std::env::var("TRIM_REQUIRE_RAY").is_err(),
            "TRIM_REQUIRE_RAY is set but no Python with ray was found (TRIM_PYTHON)"
        );
        eprintln!("skipped: no Python with ray (pip install -r scripts/ray/requirements.txt)");
        return;
    };
    let dir = setup("sweep-ray", 6);
    local_sweep(&dir, "local");
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ray/trim_ray_sweep.py");
    let t0 = Instant::now();
    let child = Command::new(&py)
        .arg(&driver)
        .args([
            "sweep.toml",
            "--storage",
            "ray",
            "--num-cpus",
            "2",
            "--max-retries",
            "3",
        ])
        .arg("--trim")
        .arg(env!("CARGO_BIN_EXE_trim"))
        .arg("--")
        .args(REPORT)
        .current_dir(&dir)
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the Ray worker running run 0 once it has a checkpoint: its `trim` dies with it and
    // Ray retries the task, which resumes the run.
    wait_for_checkpoint(&dir, "ray", NAMES[0]);
    let killed = kill_worker_of(&dir.join("ray"), 0);
    let o = child.wait_with_output().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "driver failed:\n{out}\n{err}");
    assert!(out.contains("all 4 runs finished"), "{out}");
    assert_same_runs(&dir, "ray", "local");
    // The killed run was started twice (the log has two attempts), and finished once.
    let log =
        std::fs::read_to_string(dir.join("ray/logs").join(format!("{}.log", NAMES[0]))).unwrap();
    assert!(
        killed,
        "no Ray worker was found running run 0 (it finished too fast?)"
    );
    assert!(
        log.matches("== ").count() >= 2,
        "no retry after the kill:\n{log}"
    );
    eprintln!("ray sweep of 4 runs (one worker killed mid-run): {wall:.1} s wall");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGKILL the Ray worker process whose child `trim` trains `--index i` under `out`.
fn kill_worker_of(out: &Path, i: usize) -> bool {
    let want = format!("--index\0{i}\0");
    let out_s = out.file_name().unwrap().to_string_lossy().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if !(cmd.contains("sweep\0") && cmd.contains(&want) && cmd.contains(&out_s)) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ppid: i32 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if ppid > 1 {
            // SAFETY: sending a signal to a process id read from /proc.
            unsafe { libc::kill(ppid, libc::SIGKILL) };
            return true;
        }
    }
    false
}

/// A node whose `trim` is missing or another build fails the run loudly, without retries.
#[test]
fn ray_refuses_a_missing_or_different_trim_binary() {
    let Some(py) = python_with("ray") else {
        assert!(
            std::env::var("TRIM_REQUIRE_RAY").is_err(),
            "TRIM_REQUIRE_RAY is set"
        );
        return;
    };
    let dir = setup("sweep-ray-binary", 2);
    let other = dir.join("trim-other");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_trim")).unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ray/trim_ray_sweep.py");
    for (node_binary, want) in [
        (
            other.display().to_string(),
            "differs from the driver's binary",
        ),
        (
            "/nonexistent/trim".to_string(),
            "no trim binary at /nonexistent/trim",
        ),
    ] {
        let o = Command::new(&py)
            .arg(&driver)
            .args([
                "sweep.toml",
                "--storage",
                "ray",
                "--num-cpus",
                "2",
                "--no-report",
            ])
            .arg("--trim")
            .arg(env!("CARGO_BIN_EXE_trim"))
            .current_dir(&dir)
            .env("TRIM_BINARY", &node_binary)
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.status.success(), "{all}");
        assert!(all.contains(want) && all.contains("4 runs failed"), "{all}");
        assert!(
            !dir.join("ray/runs/.partial").exists(),
            "a run started: {all}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
