//! Tests of the configuration: help texts, layering, limits and the test split.

use super::*;
use clap::{CommandFactory, Parser};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    o: ConfigOverrides,
}

/// The `[default: X]` in each help text is what `TrainConfig::default()` really holds:
/// feeding every documented default back through the CLI reproduces the defaults.
#[test]
fn help_defaults_match_real_defaults() {
    let cmd = Cli::command();
    let mut argv = vec!["x".to_string()];
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let d = help
            .rsplit_once("[default: ")
            .and_then(|(_, r)| r.strip_suffix(']'))
            .unwrap_or_else(|| panic!("--{long} help lacks [default: ]: {help}"));
        argv.push(format!("--{long}={d}"));
    }
    assert_eq!(argv.len() - 1, TrainConfig::FIELDS.len());
    let cli = Cli::try_parse_from(&argv).unwrap();
    let mut cfg = TrainConfig {
        lambda: 99.0,
        ..TrainConfig::default()
    };
    cfg.apply(&cli.o);
    assert_eq!(cfg, TrainConfig::default());
}

#[test]
fn both_flag_spellings_and_toml_layering() {
    let a = Cli::try_parse_from(["x", "--lambda", "2e-3"]).unwrap();
    let b = Cli::try_parse_from(["x", "--lambda=2e-3", "--anneal-lr=false"]).unwrap();
    assert_eq!(a.o.lambda, Some(2e-3));
    assert_eq!(b.o.lambda, Some(2e-3));
    assert_eq!(b.o.anneal_lr, Some(false));
    let file = ConfigOverrides::from_toml_str("lambda = 1e-3\nseed = 3\n").unwrap();
    let mut cfg = TrainConfig::default();
    cfg.apply(&file);
    cfg.apply(&a.o);
    assert_eq!((cfg.lambda, cfg.seed), (2e-3, 3));
}

#[test]
fn own_config_toml_round_trips_with_provenance() {
    let cfg = TrainConfig {
        lambda: 5e-4,
        ..TrainConfig::default()
    };
    let text = format!(
        "{}\n[{PROVENANCE_TABLE}]\ncommand_line = \"trim train\"\n",
        cfg.to_toml()
    );
    let o = ConfigOverrides::from_toml_str(&text).unwrap();
    let mut back = TrainConfig::default();
    back.apply(&o);
    assert_eq!(back, cfg);
}

#[test]
fn shipped_configs_parse_and_paper_equals_defaults() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let paper = TrainConfig::resolve(Some(&dir.join("paper.toml")), &Default::default());
    assert_eq!(paper.unwrap(), TrainConfig::default());
    let smoke = TrainConfig::resolve(Some(&dir.join("smoke.toml")), &Default::default());
    assert_eq!(smoke.unwrap().passes, 1);
}

#[test]
fn invalid_values_are_rejected_with_the_field_name() {
    let err = |o: &str| {
        let mut c = TrainConfig::default();
        c.apply(&ConfigOverrides::from_toml_str(o).unwrap());
        c.validate().unwrap_err().to_string()
    };
    assert!(err("lambda = -1e-4").contains("lambda"));
    assert!(err("minibatch_episodes = 0").contains("minibatch_episodes"));
    assert!(err("gae_lambda = 1.5").contains("gae_lambda"));
    assert!(err("dropout = 1.0").contains("dropout"));
    assert!(err("update_epochs = 0").contains("update_epochs"));
    let unknown = ConfigOverrides::from_toml_str("lamda = 1e-3").unwrap_err();
    assert!(unknown.contains("unknown field `lamda`"), "{unknown}");
    let typed = ConfigOverrides::from_toml_str("seed = \"ten\"").unwrap_err();
    assert!(typed.contains("seed"), "{typed}");
    let c = TrainConfig::default();
    let splits = [("test".to_string(), 11), ("train".to_string(), 44)];
    let e = c.validate_for_dataset(40, 4, &splits, &splits).unwrap_err();
    assert!(
        e.to_string().contains("batch_episodes: 64 is larger"),
        "{e}"
    );
    assert_eq!(c.n_val(7500), 750);
    assert_eq!(c.total_updates(6750), 1060);
}

/// Defect 5: a width beyond the plain-Rust forward's stack buffers (or one that cannot be
/// allocated) and absurd sizes are refused by `validate`, naming the field and the limit.
#[test]
fn sizes_beyond_real_limits_are_refused() {
    let err = |c: TrainConfig| c.validate().unwrap_err().to_string();
    let d = TrainConfig::default;
    let e = err(TrainConfig {
        hidden: 2048,
        ..d()
    });
    assert!(e.contains("hidden: 2048") && e.contains("1024"), "{e}");
    let e = err(TrainConfig {
        hidden: 1_000_000_000,
        ..d()
    });
    assert!(e.contains("hidden"), "{e}");
    assert!(
        TrainConfig {
            hidden: MAX_HIDDEN,
            ..d()
        }
        .validate()
        .is_ok()
    );
    for (c, field) in [
        (
            TrainConfig {
                batch_episodes: usize::MAX,
                ..d()
            },
            "batch_episodes",
        ),
        (
            TrainConfig {
                minibatch_episodes: 1 << 40,
                ..d()
            },
            "minibatch_episodes",
        ),
        (
            TrainConfig {
                update_epochs: u32::MAX,
                ..d()
            },
            "update_epochs",
        ),
        (
            TrainConfig {
                passes: u32::MAX,
                ..d()
            },
            "passes",
        ),
    ] {
        let e = err(c);
        assert!(e.contains(field) && e.contains("limit"), "{e}");
    }
}

/// Defect 7 (configuration half): λ must be finite, >= 0 and at most MAX_LAMBDA.
#[test]
fn lambda_outside_its_sane_range_is_refused() {
    for l in [1e308, 1.5, f64::INFINITY, f64::NAN, -1e-4] {
        let e = TrainConfig {
            lambda: l,
            ..TrainConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("lambda") && e.contains("<= 1"), "{l}: {e}");
    }
    let ok = TrainConfig {
        lambda: 1.0,
        ..TrainConfig::default()
    };
    assert!(ok.validate().is_ok());
}

/// `none` is the only spelling of "no test split", on the command line and in TOML; the
/// resolved config.toml writes it back the same way.
#[test]
fn test_split_none_on_the_command_line_and_in_toml() {
    let a = Cli::try_parse_from(["x", "--test-split", "none"]).unwrap();
    assert_eq!(a.o.test_split, Some(TestSplit::Skip));
    let b = Cli::try_parse_from(["x", "--test-split=heldout"]).unwrap();
    assert_eq!(b.o.test_split, Some(TestSplit::Split("heldout".into())));
    assert!(Cli::try_parse_from(["x", "--test-split="]).is_err());
    let o = ConfigOverrides::from_toml_str("test_split = \"none\"\n").unwrap();
    assert_eq!(o.test_split, Some(TestSplit::Skip));
    let cfg = TrainConfig {
        test_split: TestSplit::Skip,
        ..TrainConfig::default()
    };
    assert!(
        cfg.to_toml().contains("test_split = \"none\""),
        "{}",
        cfg.to_toml()
    );
}

/// Defect 10: a test split the dataset does not have is refused, listing the splits.
#[test]
fn unknown_test_split_is_refused_with_the_dataset_splits() {
    let splits = [("test".to_string(), 12), ("train".to_string(), 48)];
    let cfg = TrainConfig {
        batch_episodes: 8,
        test_split: "tets".parse().unwrap(),
        ..TrainConfig::default()
    };
    let e = cfg
        .validate_for_dataset(43, 5, &splits, &splits)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test_split") && e.contains("`tets`") && e.contains("test: 12, train: 48"),
        "{e}"
    );
    for ok in [TestSplit::Skip, TestSplit::Split("test".into())] {
        let c = TrainConfig {
            test_split: ok,
            ..cfg.clone()
        };
        assert!(c.validate_for_dataset(43, 5, &splits, &splits).is_ok());
    }
}

/// The default test world belongs to the default training world: naming other data without
/// test data tests on that data; naming both keeps both.
#[test]
fn naming_data_without_test_data_tests_on_that_data() {
    let d = TrainConfig::default();
    assert_eq!(
        d.test_data.path(),
        Some(Path::new(super::DEFAULT_TEST_DATA))
    );
    let own = ConfigOverrides::from_toml_str("data = \"mine.parquet\"\n").unwrap();
    let c = TrainConfig::from_layers(&[own]).unwrap();
    assert_eq!(c.test_data, TestData::SameAsData);
    let both = ConfigOverrides::from_toml_str("data = \"a.parquet\"\ntest_data = \"b.parquet\"\n")
        .unwrap();
    let c = TrainConfig::from_layers(&[both]).unwrap();
    assert_eq!(c.test_data.path(), Some(Path::new("b.parquet")));
    let lambda_only = ConfigOverrides::from_toml_str("lambda = 1e-3\n").unwrap();
    assert_eq!(
        TrainConfig::from_layers(&[lambda_only]).unwrap().test_data,
        d.test_data
    );
    // A recorded configuration from before `test_data` existed tested on its own data.
    let mut old = toml::Table::try_from(&d).unwrap();
    old.remove("test_data");
    let back: TrainConfig = old.try_into().unwrap();
    assert_eq!(back.test_data, TestData::SameAsData);
    assert_eq!("same".parse::<TestData>().unwrap(), TestData::SameAsData);
    assert!("".parse::<TestData>().is_err());
}

/// A configuration recorded before `kernels` existed trained with burn, and resumes with burn
/// (its checkpoints hold burn's optimiser state); a new configuration asks for `auto`, which
/// is fused for TRIM-Agg.
#[test]
fn recorded_configurations_without_kernels_keep_burn() {
    let d = TrainConfig::default();
    assert_eq!(d.kernels, Kernels::Auto);
    assert_eq!(d.fused_kernels(), Ok(true));
    let mut old = toml::Table::try_from(&d).unwrap();
    old.remove("kernels");
    let back: TrainConfig = old.try_into().unwrap();
    assert_eq!(back.kernels, Kernels::Burn);
    assert_eq!(back.fused_kernels(), Ok(false));
    let e = TrainConfig {
        kernels: Kernels::Fused,
        dropout: 0.1,
        ..d
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("kernels") && e.contains("dropout"), "{e}");
}
