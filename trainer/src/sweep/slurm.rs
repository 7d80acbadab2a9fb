//! `trim sweep … --emit-slurm DIR`: a Slurm job array of the sweep (one array index per run, in
//! plan order) and a report job to chain after it. A renderer only: each index executes
//! `trim sweep … --index $SLURM_ARRAY_TASK_ID`, so Slurm runs exactly the runs, names and
//! skip/resume rules of a local sweep.

use std::path::{Path, PathBuf};

/// Resources of each array task.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub cpus: usize,
    pub mem: String,
    pub time: String,
    pub partition: Option<String>,
    /// Array throttle (`%P`): at most this many runs at once.
    pub max_parallel: Option<usize>,
}

/// How to invoke the sweep again: the binary, the directory relative paths are resolved
/// from, and the sweep's arguments (without any mode flag).
#[derive(Clone, Debug)]
pub struct Invocation {
    pub trim: PathBuf,
    pub cwd: PathBuf,
    pub args: Vec<String>,
}

/// Quote `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn command(inv: &Invocation, tail: &str) -> String {
    let args: Vec<String> = inv.args.iter().map(|a| shell_quote(a)).collect();
    format!("exec \"$TRIM\" sweep {} {tail}", args.join(" "))
}

fn header(inv: &Invocation, logs: &Path, job: &str, o: &SlurmOptions) -> String {
    let mut h = format!(
        "#SBATCH --job-name={job}\n#SBATCH --cpus-per-task={}\n#SBATCH --mem={}\n\
         #SBATCH --time={}\n#SBATCH --output={}/%x_%A_%a.out\n#SBATCH --requeue\n",
        o.cpus,
        o.mem,
        o.time,
        logs.display()
    );
    if let Some(p) = &o.partition {
        h.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    let _ = inv;
    h
}

fn preamble(inv: &Invocation) -> String {
    format!(
        "set -euo pipefail\nTRIM=\"${{TRIM:-{}}}\"\ncd {}\n",
        inv.trim.display(),
        shell_quote(&inv.cwd.display().to_string())
    )
}

/// The array script for `n` runs.
pub fn render_array(
    n: usize,
    inv: &Invocation,
    o: &SlurmOptions,
    logs: &Path,
    dir: &Path,
) -> String {
    let throttle = o.max_parallel.map_or(String::new(), |p| format!("%{p}"));
    let script = dir.join("sweep.sbatch");
    let report = dir.join("report.sbatch");
    format!(
        "#!/bin/bash\n\
         # trim sweep as a Slurm job array: {n} runs, array indices 0..{last} in the order of\n\
         # `trim sweep … --plan`. Rendered by trim {version}; re-render after changing the grid.\n\
         #\n\
         #   jobid=$(sbatch --parsable {script})\n\
         #   sbatch --dependency=afterok:$jobid {report}      # the report, once all succeeded\n\
         #\n\
         # Resubmitting is always safe: finished runs are skipped, interrupted ones resume from\n\
         # their last checkpoint. Failed indices of a job:\n\
         #   sacct -j $jobid -X -n -o JobID,State | awk '$2 !~ /COMPLETED/ {{sub(/.*_/, \"\", $1); print $1}}' | paste -sd,\n\
         #   sbatch --array=<those indices> {script}\n\
         #SBATCH --array=0-{last}{throttle}\n{header}\n{pre}\
         : \"${{SLURM_ARRAY_TASK_ID:?submit with sbatch, or set SLURM_ARRAY_TASK_ID to run one index}}\"\n\
         {cmd}\n",
        last = n.saturating_sub(1),
        version = env!("CARGO_PKG_VERSION"),
        script = script.display(),
        report = report.display(),
        header = header(inv, logs, "trim-sweep", o),
        pre = preamble(inv),
        cmd = command(
            inv,
            "--index \"$SLURM_ARRAY_TASK_ID\" --threads \"${SLURM_CPUS_PER_TASK:-1}\" --no-report"
        ),
    )
}

/// The report job (every run must be finished).
pub fn render_report(inv: &Invocation, o: &SlurmOptions, logs: &Path) -> String {
    format!(
        "#!/bin/bash\n# The report of the trim sweep in sweep.sbatch (submit with\n\
         # --dependency=afterok:<array job id>); fails, naming them, if runs are unfinished.\n\
         {header}\n{pre}{cmd}\n",
        header = header(inv, logs, "trim-sweep-report", o).replace("#SBATCH --requeue\n", ""),
        pre = preamble(inv),
        cmd = command(inv, "--report-only"),
    )
}

/// Write `sweep.sbatch`, `report.sbatch` and the `logs/` directory into `dir`.
pub fn write(
    dir: &Path,
    n: usize,
    inv: &Invocation,
    o: &SlurmOptions,
) -> anyhow::Result<Vec<PathBuf>> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", logs.display()))?;
    let files = [
        (
            dir.join("sweep.sbatch"),
            render_array(n, inv, o, &logs, dir),
        ),
        (dir.join("report.sbatch"), render_report(inv, o, &logs)),
    ];
    for (path, text) in &files {
        trim_data::io::write_text_atomic(path, text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
        }
    }
    Ok(files.into_iter().map(|f| f.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("lambda=8e-4"), "lambda=8e-4");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_array_covers_every_run_and_runs_one_index() {
        let inv = Invocation {
            trim: "/opt/trim".into(),
            cwd: "/work dir".into(),
            args: vec!["sweep.toml".into(), "--grid".into(), "seed=1,2".into()],
        };
        let o = SlurmOptions {
            cpus: 2,
            mem: "4G".into(),
            time: "01:00:00".into(),
            partition: Some("cpu".into()),
            max_parallel: Some(8),
        };
        let s = render_array(6, &inv, &o, Path::new("/l"), Path::new("/d"));
        assert!(s.contains("#SBATCH --array=0-5%8"), "{s}");
        assert!(s.contains("#SBATCH --cpus-per-task=2") && s.contains("#SBATCH --partition=cpu"));
        assert!(s.contains("cd '/work dir'"), "{s}");
        assert!(s.contains(
            "exec \"$TRIM\" sweep sweep.toml --grid seed=1,2 --index \"$SLURM_ARRAY_TASK_ID\""
        ));
        let r = render_report(&inv, &o, Path::new("/l"));
        assert!(r.contains("--report-only") && !r.contains("--array"), "{r}");
    }
}
