//! `trim data validate|stats|convert`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use trim_data::stats::DatasetStats;
use trim_data::{Integrity, LoadOptions};

/// The file `trim data stats` reads when none is given: the shipped
/// materialised sample (training and evaluation default to lazy worlds, see `trim::config`).
pub const DEFAULT_DATA: &str = "data/sets/synth-math.parquet";

/// The integrity switch every data command shares.
#[derive(Args, Clone, Copy)]
pub struct IntegrityArgs {
    /// Accept files without an integrity checksum (written by another tool or by hand); same as
    /// TRIM_ALLOW_UNVERIFIED=1. A file whose checksum does not match is refused regardless.
    #[arg(long)]
    pub allow_unverified: bool,
}

impl IntegrityArgs {
    /// Load options: the flag, or the environment variable.
    pub fn options(self) -> LoadOptions {
        let env = LoadOptions::from_env();
        LoadOptions {
            allow_unverified: self.allow_unverified || env.allow_unverified,
        }
    }
}

/// Arguments of `trim data validate`.
#[derive(Args)]
pub struct ValidateArgs {
    /// Dataset files (.parquet or .jsonl).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub integrity: IntegrityArgs,
    /// Also measure the load: wall time, nodes/s and peak memory per node (use a release build).
    #[arg(long)]
    pub bench: bool,
}

/// Arguments of `trim data stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// Dataset file (.parquet or .jsonl) or synth spec (`synth:math500?problems=2000`).
    #[arg(default_value = DEFAULT_DATA)]
    pub file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub integrity: IntegrityArgs,
}

/// Arguments of `trim data convert`.
#[derive(Args)]
pub struct ConvertArgs {
    /// Input dataset (.parquet or .jsonl).
    pub input: PathBuf,
    /// Output dataset (.parquet or .jsonl); written atomically, with a content checksum.
    pub output: PathBuf,
    /// Replace OUTPUT if it exists (otherwise an existing file is never overwritten).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub integrity: IntegrityArgs,
}

fn integrity_note(i: &Integrity) -> &'static str {
    match i {
        Integrity::Verified(_) => "checksum verified",
        Integrity::Unverified => "UNVERIFIED: no checksum",
    }
}

/// Validate each file; the first bad one fails the command with its precise error.
pub fn validate(a: ValidateArgs) -> anyhow::Result<()> {
    let opts = a.integrity.options();
    for f in &a.files {
        let mem = a.bench.then(MemProbe::start);
        let t0 = Instant::now();
        let l = trim_data::load_forest(f, &opts)?;
        let secs = t0.elapsed().as_secs_f64();
        let n = l.forest.n_nodes();
        println!(
            "{}: ok ({} problems, {} sample trees, {n} nodes; {})",
            f.display(),
            l.forest.n_problems(),
            l.forest.n_trees(),
            integrity_note(&l.integrity)
        );
        if let Some(mem) = mem {
            print_bench(f, n, secs, &mem);
        }
    }
    Ok(())
}

/// Resident-memory readings of this process (Linux `/proc`; absent elsewhere).
struct MemProbe {
    /// Resident set before the load, bytes.
    before: Option<u64>,
}

impl MemProbe {
    /// Reset the peak-RSS mark (so an earlier file does not count) and read the baseline.
    fn start() -> MemProbe {
        // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        MemProbe {
            before: proc_status_kib("VmRSS:").map(|k| k * 1024),
        }
    }
}

/// A `kB` field of `/proc/self/status`.
fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn print_bench(f: &Path, nodes: usize, secs: f64, mem: &MemProbe) {
    let n = nodes.max(1) as f64;
    print!(
        "{}: load+validate {secs:.3} s = {:.2} M nodes/s",
        f.display(),
        n / secs.max(1e-9) / 1e6
    );
    match (proc_status_kib("VmHWM:").map(|k| k * 1024), mem.before) {
        (Some(peak), Some(before)) => println!(
            "; peak RSS {:.1} MB = {:.1} bytes/node ({:.1} bytes/node above the {:.1} MB \
             resident before loading)",
            peak as f64 / 1e6,
            peak as f64 / n,
            peak.saturating_sub(before) as f64 / n,
            before as f64 / 1e6
        ),
        _ => println!("; peak RSS not available on this system"),
    }
}

/// Print dataset statistics.
pub fn stats(a: StatsArgs) -> anyhow::Result<()> {
    if let Some(spec) = a
        .file
        .to_str()
        .filter(|_| trim_data::is_synth_spec(&a.file))
    {
        let s = trim_data::stats_world::compute_world(&trim_data::LazySource::open(spec)?);
        if a.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            print_world_stats(&s);
        }
        return Ok(());
    }
    let l = trim_data::load_forest(&a.file, &a.integrity.options())?;
    let s = trim_data::stats::compute(&l);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_stats(&a.file.display().to_string(), &s);
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn print_stats(file: &str, s: &DatasetStats) {
    println!("dataset        {} ({file})", s.name);
    println!(
        "size           {} problems, {} sample trees, {} nodes, max depth {}",
        s.problems, s.trees, s.nodes, s.max_depth
    );
    let splits: Vec<String> = s.splits.iter().map(|(k, n)| format!("{k}={n}")).collect();
    println!("splits         {}", splits.join(", "));
    let c = &s.coverage;
    println!(
        "coverage       strong candidate at {} of nodes; continue available {}, regenerate available {}, both {}",
        pct(c.nodes_with_strong),
        pct(c.nodes_continue_available),
        pct(c.nodes_regenerate_available),
        pct(c.nodes_with_choice)
    );
    println!(
        "               complete all-weak path in {} of trees, all-strong path in {}",
        pct(c.trees_with_all_weak_path),
        pct(c.trees_with_all_strong_path)
    );
    print_anchor("always-weak", &s.always_weak);
    print_anchor("always-strong", &s.always_strong);
    println!(
        "step tokens    weak candidate {:.1}, strong candidate {:.1} (mean)",
        s.mean_weak_step_tokens, s.mean_strong_step_tokens
    );
    print_prm(&s.prm, "labelled candidates");
    print_signals(&s.signals, "labelled weak candidates");
    print_masked(&s.masked_regenerate);
    if !s.tokenizer.is_empty() {
        println!("tokenizer      {}", s.tokenizer);
    }
    for r in &s.real {
        println!("real           {r}");
    }
    for r in &s.synthetic {
        println!("synthetic      {r}");
    }
}

fn print_anchor(name: &str, a: &trim_data::stats::AnchorStats) {
    println!(
        "{name:<14} accuracy {}, {:.2} steps, {:.1} weak tokens, {:.1} strong tokens, {:.2} strong calls per problem",
        pct(a.accuracy),
        a.steps_per_problem,
        a.weak_tokens_per_problem,
        a.strong_tokens_per_problem,
        a.strong_calls_per_problem
    );
}

fn print_world_stats(s: &trim_data::stats_world::WorldStats) {
    println!(
        "world          {} ({}), generated on demand",
        s.name, s.spec
    );
    println!("fingerprint    {}", s.fingerprint);
    let cap = s
        .cap
        .map_or("none: both actions at every node".into(), |k| {
            format!("{k} regenerations per path (as a --max-regens {k} file)")
        });
    println!(
        "size           {} problems, {} sample trees; cap {cap}",
        s.problems, s.trees
    );
    let splits: Vec<String> = s.splits.iter().map(|(k, n)| format!("{k}={n}")).collect();
    println!("splits         {}", splits.join(", "));
    print_anchor("always-weak", &s.always_weak);
    print_anchor("always-strong", &s.always_strong);
    print_prm(&s.prm, "candidates on the anchor paths");
    print_signals(&s.signals, "weak candidates on the all-weak paths");
    print_masked(&s.masked_regenerate);
}

/// The PRM-quality line; `what` says which candidates were scored.
fn print_prm(p: &trim_data::stats::PrmStats, what: &str) {
    print_separation("PRM           ", p, what);
}

/// The same line for each optional step signal the data carries.
fn print_signals(s: &trim_data::stats::SignalStats, what: &str) {
    if let Some(p) = &s.judge_score {
        print_separation("judge score   ", p, what);
    }
    if let Some(p) = &s.mean_logprob {
        print_separation("mean logprob  ", p, what);
    }
}

/// How well a score separates correct from incorrect steps.
fn print_separation(name: &str, p: &trim_data::stats::PrmStats, what: &str) {
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    println!(
        "{name} {} {what}; AUROC correct vs error {}, correct vs first error {}; mean by state S0 {} S1 {} S2 {}",
        p.labelled,
        fmt(p.auroc_correct_vs_error),
        fmt(p.auroc_correct_vs_first_error),
        fmt(p.mean_by_state[0]),
        fmt(p.mean_by_state[1]),
        fmt(p.mean_by_state[2])
    );
}

/// The masked-regenerate probe's line.
fn print_masked(m: &trim_data::stats::MaskedRegenerate) {
    println!(
        "masked regen   TRIM-Thr with at most {} strong calls meets a missing regeneration in {:.2}% of episodes at worst (threshold {:.2}; target < 1 %)",
        m.max_calls,
        100.0 * m.worst.1,
        m.worst.0
    );
}

/// Convert between formats (validating on the way: a bad input is never re-encoded). The
/// output carries a checksum, so converting an unverified file (with `--allow-unverified`) is
/// how a file from another tool becomes a verified one.
pub fn convert(a: ConvertArgs) -> anyhow::Result<()> {
    if !a.force && std::fs::symlink_metadata(&a.output).is_ok() {
        anyhow::bail!(
            "{} exists: refusing to overwrite it (pass --force to replace it)",
            a.output.display()
        );
    }
    let l = trim_data::load_with(&a.input, &a.integrity.options())?;
    trim_data::io::write_dataset(&a.output, &l.ds)
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!(
        "{} -> {} ({} problems, {} nodes)",
        a.input.display(),
        a.output.display(),
        l.ds.problems.len(),
        l.ds.rows.len()
    );
    Ok(())
}
