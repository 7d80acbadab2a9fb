//! The `trim` command line: clap parsing only; each subcommand lives in `cli/<name>.rs` and calls
//! the libraries (`trim-data` for files, `trim-env` for replay).

use clap::{Parser, Subcommand};

mod cli;

/// Train, evaluate and export step-level LLM routing policies (TRIM) on offline rollout trees.
#[derive(Parser)]
#[command(name = "trim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build rollout trees from live models: OpenAI-compatible weak/strong generators and a PRM
    /// endpoint (resumable, sharded).
    Collect(Box<cli::collect::CollectArgs>),
    /// Benchmark: trim collect against the in-process fake server (requests/s).
    BenchCollect(cli::bench_collect::BenchCollectArgs),
    /// Dataset tools: validate, stats, convert, synthesise, import.
    #[command(subcommand)]
    Data(DataCmd),
    /// Evaluate a reference policy on a dataset (accuracy, strong tokens, cost fraction).
    Eval(cli::eval::EvalArgs),
    /// Benchmarks: replay steps per second.
    Bench(cli::bench::BenchArgs),
    /// Train a TRIM-Agg routing policy with PPO into checkpoints/<run-name>/ (resumable).
    Train(Box<cli::train::TrainArgs>),
    /// Benchmark: PPO updates/s and env steps/s on the paper's schedule (1060 × 64 episodes).
    BenchTrain(cli::bench_train::BenchTrainArgs),
    /// Benchmark one TRIM-Agg PPO gradient step: burn against the fused plain-Rust kernels
    BenchKernels(cli::bench_kernels::BenchKernelsArgs),
    /// Export a checkpoint for inference: safetensors + JSON manifest, ONNX, parity fixture.
    Export(cli::export::ExportArgs),
    /// Set an exported policy's operating point (its threshold on p(regenerate)) to a target
    /// strong-call rate, cost fraction or strong tokens per problem on your traffic.
    Calibrate(cli::calibrate_policy::CalibrateArgs),
    /// Off-policy evaluation: a policy's value from serving logs with propensities (SNIS,
    /// PDWIS, effective sample size, bootstrap CIs), optionally beside its exact replay value.
    Ope(cli::ope::OpeArgs),
    /// Route steps: JSON lines of step observations in, continue/regenerate decisions out.
    Route(cli::route::RouteArgs),
    /// Benchmark: latency of one routing decision and batched decision throughput.
    BenchRoute(cli::bench_route::BenchRouteArgs),
    /// Evaluate every baseline, the oracles and trained checkpoints on the same problems; write
    /// CSV, JSON, a Markdown summary and a cost-vs-accuracy plot.
    Report(Box<cli::report::ReportArgs>),
    /// Train a grid of runs (λ × seed × any field) in parallel, skip finished runs, resume
    /// interrupted ones, then write the report.
    Sweep(Box<cli::sweep::SweepArgs>),
    /// TRIM-POMDP: solve the three-state POMDP exactly on a belief grid.
    #[command(subcommand)]
    Pomdp(PomdpCmd),
}

#[derive(Subcommand)]
enum PomdpCmd {
    /// Build a model file with its provenance: the official artifacts, a fit on a dataset's
    /// state labels, or a synth world's Bayes reference.
    Fit(cli::pomdp::FitArgs),
    /// Solve for a list of λ (timed); with --data, evaluate every solution under both belief
    /// rules.
    Solve(cli::pomdp::SolveArgs),
}

#[derive(Subcommand)]
enum DataCmd {
    /// Check every tree invariant of a dataset file; exit non-zero with a precise error if bad.
    Validate(cli::data::ValidateArgs),
    /// Problems, nodes, coverage, always-weak/always-strong accuracy, tokens, PRM AUROC.
    Stats(cli::data::StatsArgs),
    /// Convert between parquet and JSONL (format from the file extensions).
    Convert(cli::data::ConvertArgs),
    /// Generate synthetic trees from the latent step-correctness model (TOML config).
    Synth(cli::synth::SynthArgs),
    /// A synthetic world's TRIM-Thr curve beside the real MATH-500 one (`--check`).
    Calibrate(cli::calibrate::CalibrateArgs),
    /// TwinRouterBench-style gold tiers per step (downgrade-and-cascade with sequential
    /// locking), its static-track rows (`--out`) and its scores for baselines and exports.
    Tiers(cli::tiers::TiersArgs),
    /// Import real third-party data as rollout trees.
    #[command(subcommand)]
    Import(ImportCmd),
}

#[derive(Subcommand)]
enum ImportCmd {
    /// ProcessBench solutions (real steps and human labels) + latent-model regenerations.
    Processbench(cli::import_processbench::ProcessBenchArgs),
    /// OpenAI GSM8K GPT-3 6B / 175B paired solutions, suffix-switch trees.
    #[command(name = "gsm8k-paired")]
    Gsm8kPaired(cli::import_gsm8k::Gsm8kArgs),
    /// Logged serving traces (one row per executed step) merged into trees.
    Paths(cli::import_paths::PathsArgs),
}

/// Die quietly on a closed pipe (`trim … | head`) like other Unix tools, instead of panicking
/// in `println!`.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// glibc's malloc hands freed heap back to the kernel above 128 KiB and serves large blocks
/// with fresh mmaps, so burn's per-op tensor buffers (megabytes for TRIM-Seq's `[n, l, d]`
/// activations) cost a page fault per page on every op: measured, 40 % of TRIM-Seq's training
/// time was kernel time (8.9 s instead of 15.0 s for 40 updates with these settings; TRIM-Agg
/// 4 % faster). Keep up to 512 MiB of freed heap, pad the heap by 64 MiB, and mmap only above
/// 64 MiB.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in `main`, before any thread exists; mallopt only sets
    // allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

fn main() {
    restore_default_sigpipe();
    tune_malloc();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Data(d) => match d {
            DataCmd::Validate(a) => cli::data::validate(a),
            DataCmd::Stats(a) => cli::data::stats(a),
            DataCmd::Convert(a) => cli::data::convert(a),
            DataCmd::Synth(a) => cli::synth::run(a),
            DataCmd::Calibrate(a) => cli::calibrate::run(a),
            DataCmd::Tiers(a) => cli::tiers::run(a),
            DataCmd::Import(i) => match i {
                ImportCmd::Processbench(a) => cli::import_processbench::run(a),
                ImportCmd::Gsm8kPaired(a) => cli::import_gsm8k::run(a),
                ImportCmd::Paths(a) => cli::import_paths::run(a),
            },
        },
        Cmd::Calibrate(a) => cli::calibrate_policy::run(a),
        Cmd::Ope(a) => cli::ope::run(a),
        Cmd::Collect(a) => cli::collect::run(*a),
        Cmd::BenchCollect(a) => cli::bench_collect::run(a),
        Cmd::Eval(a) => cli::eval::run(a),
        Cmd::Bench(a) => cli::bench::run(a),
        Cmd::Train(a) => cli::train::run(*a),
        Cmd::BenchTrain(a) => cli::bench_train::run(a),
        Cmd::BenchKernels(a) => cli::bench_kernels::run(a),
        Cmd::Report(a) => cli::report::run(*a),
        Cmd::Sweep(a) => cli::sweep::run(*a),
        Cmd::Export(a) => cli::export::run(a),
        Cmd::Route(a) => cli::route::run(a),
        Cmd::BenchRoute(a) => cli::bench_route::run(a),
        Cmd::Pomdp(PomdpCmd::Solve(a)) => cli::pomdp::solve_cmd(a),
        Cmd::Pomdp(PomdpCmd::Fit(a)) => cli::pomdp::fit_cmd(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
