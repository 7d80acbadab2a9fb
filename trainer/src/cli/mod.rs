//! One module per subcommand; each turns parsed arguments into library calls and prints results.

pub mod bench;
pub mod bench_collect;
pub mod bench_kernels;
pub mod bench_route;
pub mod bench_train;
pub mod calibrate;
pub mod calibrate_policy;
pub mod collect;
pub mod data;
pub mod eval;
mod eval_budget;
pub mod export;
pub mod import_gsm8k;
pub mod import_paths;
pub mod import_processbench;
pub mod ope;
pub mod pomdp;
pub mod progress;
pub mod report;
pub mod route;
mod route_explore;
mod route_sessions;
pub mod sweep;
mod sweep_modes;
pub mod synth;
pub mod tiers;
pub mod train;

/// The command line as typed, for dataset metadata ("the command that regenerates it").
pub fn command_line() -> String {
    let mut args = std::env::args();
    let _ = args.next();
    std::iter::once("trim".to_string())
        .chain(args.map(|a| if a.contains(' ') { format!("'{a}'") } else { a }))
        .collect::<Vec<_>>()
        .join(" ")
}
