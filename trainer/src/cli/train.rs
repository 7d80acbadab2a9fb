//! `trim train`: PPO training of a TRIM-Agg routing policy into `checkpoints/<run-name>/`.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use trim::backend::Backend;
use trim::train::AnyTrainer;
use trim::train::{RunSummary, Scores, Setup, StartInfo, TrainEvent};
use trim::{ConfigOverrides, RunOptions, TrainConfig};

/// Arguments of `trim train`.
#[derive(Args)]
#[command(
    after_help = "Every configuration field can also be set in a TOML file (--config); \
flags override the file, the file overrides the defaults. A run directory's config.toml can be \
passed back with --config to repeat the run.

Run directories: a run killed before its first checkpoint is started again in place by the same \
command (or --resume). --resume continues a run in place from its newest state only; to go back \
to an older checkpoint, fork it: `--resume RUN/checkpoints/update_000250 --name NEW` copies the \
checkpoint and the metrics rows up to it into OUT/NEW (--out) and continues there, leaving RUN as \
it was. One process at a time trains a run (run.lock). A run that diverges (NaN/inf loss, \
gradients or weights) stops with an error, its summary.json marked failed; its checkpoints stay."
)]
pub struct TrainArgs {
    /// TOML configuration file (keys = the flag names with `_` instead of `-`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory that holds run directories.
    #[arg(long, default_value = "checkpoints")]
    pub out: PathBuf,
    /// Run name (default: `<dataset>__lam<λ>__s<seed>__<unix time>`). With --resume: fork the
    /// checkpoint into this new run directory instead of continuing in place.
    #[arg(long)]
    pub name: Option<String>,
    /// Continue a run: a run directory (latest checkpoint) or a checkpoint directory. The run's
    /// own configuration is used; configuration flags are refused. A checkpoint older than the
    /// run's newest state is refused unless forked with --name NEW (nothing is discarded).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this many updates in total (a checkpoint is written); resume later.
    #[arg(long)]
    pub stop_after_updates: Option<u64>,
    /// Backend: flex (pure-Rust CPU), tch (LibTorch CPU), tch-cuda[:N] (LibTorch CUDA; needs a
    /// build with `--features tch`). Default: $TRIM_BACKEND, else flex.
    #[arg(long)]
    pub backend: Option<Backend>,
    /// No progress bar, no messages; only the final summary line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print summary.json instead of the result table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cfg: ConfigOverrides,
}

fn row(name: &str, s: &Scores) {
    println!(
        "  {name:<28} {:>9.4} {:>8.2}% {:>10.1} {:>8.2} {:>9.3}",
        s.reward,
        100.0 * s.accuracy,
        s.strong_tokens,
        s.strong_calls,
        s.cost_fraction
    );
}

fn print_summary(s: &RunSummary) {
    println!(
        "{} after {}/{} updates ({} env steps) in {:.1} s: {:.1} updates/s, {:.0} env steps/s \
         (rollout {:.1} s, PPO {:.1} s, validation {:.1} s, I/O {:.1} s)",
        s.status,
        s.updates_done,
        s.total_updates,
        s.env_steps,
        s.timing.wall_s,
        s.timing.updates_per_s,
        s.timing.env_steps_per_s,
        s.timing.rollout_s,
        s.timing.update_s,
        s.timing.validation_s,
        s.timing.io_s
    );
    for rep in [&s.val, &s.test].into_iter().flatten() {
        println!(
            "{} split ({} problems), λ = {}:\n  {:<28} {:>9} {:>9} {:>10} {:>8} {:>9}",
            rep.split,
            rep.problems,
            s.lambda,
            "policy",
            "reward",
            "accuracy",
            "strong tok",
            "calls",
            "cost frac"
        );
        row("always-weak", &rep.always_weak);
        row("always-strong", &rep.always_strong);
        row(
            &format!("TRIM-Thr {:.2} (val-chosen)", rep.best_threshold.threshold),
            &rep.best_threshold.scores,
        );
        if rep.oracle_threshold.threshold != rep.best_threshold.threshold {
            row(
                &format!("TRIM-Thr {:.2} (oracle)", rep.oracle_threshold.threshold),
                &rep.oracle_threshold.scores,
            );
        }
        if let Some(b) = &rep.best_policy {
            row("TRIM-Agg PPO best/", b);
        }
        if let Some(f) = &rep.final_policy {
            row("TRIM-Agg PPO final", f);
        }
    }
    println!("run directory: {}", s.run_dir.display());
}

/// The progress bar and status lines of a run (nothing when quiet).
struct Progress {
    quiet: bool,
    bar: ProgressBar,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            bar: ProgressBar::hidden(),
        }
    }

    /// A status line on stderr, above the bar when there is one (indicatif drops `println` on
    /// a hidden bar, e.g. when stderr is not a terminal).
    fn say(&self, msg: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{}", msg.as_ref());
        } else {
            self.bar.println(msg.as_ref());
        }
    }

    fn start(&mut self, s: &StartInfo) {
        if self.quiet {
            return;
        }
        self.bar = ProgressBar::new(s.total_updates);
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:28.cyan/blue} {pos:>5}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        ) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_position(s.updates_done);
        for c in &s.cleaned {
            self.say(format!(
                "cleaned up {} (left by a process that died)",
                c.display()
            ));
        }
        match &s.setup {
            Setup::Restarted => self.say(format!(
                "{} has no checkpoint yet: starting it again in place",
                s.run_dir.display()
            )),
            Setup::Forked { checkpoint } => self.say(format!(
                "forked {} (update {}) into {}",
                checkpoint.display(),
                s.updates_done,
                s.run_dir.display()
            )),
            Setup::Fresh | Setup::Resumed { .. } => {}
        }
        self.say(format!(
            "training on {} ({} train / {} validation problems), λ = {}, seed {}, backend {}: \
             {} updates of {} episodes → {}",
            s.data.display(),
            s.train_problems,
            s.val_problems,
            s.lambda,
            s.seed,
            s.backend,
            s.total_updates,
            s.batch_episodes,
            s.run_dir.display()
        ));
    }

    fn event(&mut self, e: TrainEvent<'_>) {
        match e {
            TrainEvent::Start(s) => self.start(s),
            TrainEvent::Baseline(b) => self.say(format!(
                "best TRIM-Thr on validation: threshold {:.2} → reward {:.4} (accuracy {:.1}%, \
                 {:.1} strong tokens)",
                b.threshold,
                b.scores.reward,
                100.0 * b.scores.accuracy,
                b.scores.strong_tokens
            )),
            TrainEvent::Validation { record: r, best } => self.say(format!(
                "update {:>5}: validation reward {:.4} (accuracy {:.1}%, {:.1} strong \
                 tokens){}",
                r.update,
                r.reward,
                100.0 * r.accuracy,
                r.strong_tokens,
                if best { "  ← best" } else { "" }
            )),
            TrainEvent::Update {
                done,
                rollout: r,
                best_val,
                ..
            } => {
                self.bar.set_position(done);
                let best = best_val
                    .map(|b| format!(" | val best {b:.4}"))
                    .unwrap_or_default();
                self.bar.set_message(format!(
                    "reward {:.3} acc {:.1}% cost {:.0} tok{best}",
                    r.reward,
                    100.0 * r.accuracy,
                    r.strong_tokens
                ));
            }
        }
    }
}

/// Train (or resume) and print the result.
pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let backend = Backend::resolve(a.backend)?;
    let opts = RunOptions {
        out_root: a.out,
        name: a.name,
        resume: a.resume.clone(),
        stop_after_updates: a.stop_after_updates,
        backend,
        command_line: super::command_line(),
    };
    let trainer = if a.resume.is_some() {
        let set = TrainConfig::set_in(&a.cfg);
        anyhow::ensure!(
            a.config.is_none() && set.is_empty(),
            "--resume continues a run with its own configuration; drop --config and the \
             configuration flags ({}) — run options like --stop-after-updates are fine",
            set.join(", ")
        );
        AnyTrainer::resume(opts)?
    } else {
        let cfg = TrainConfig::resolve(a.config.as_deref(), &a.cfg)?;
        AnyTrainer::new(cfg, opts)?
    };
    let mut progress = Progress::new(a.quiet);
    let result = trainer.run_with(&mut |e| progress.event(e));
    progress.bar.finish_and_clear();
    let summary = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if a.quiet {
        println!(
            "{} {} updates; best validation reward {}; {}",
            summary.status,
            summary.updates_done,
            summary
                .best
                .map_or("n/a".into(), |b| format!("{:.4}", b.reward)),
            summary.run_dir.display()
        );
    } else {
        print_summary(&summary);
    }
    Ok(())
}
