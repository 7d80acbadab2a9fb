//! What the collection tests share: a scratch directory, a config against a fake server, and
//! loading the result.

use std::path::{Path, PathBuf};

use trim_collect::config::CollectConfig;
use trim_collect::fake::FakeServer;
use trim_collect::fake::world::problem_file;

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trim-collect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A config for `n` fake problems against `srv`, with fast retries.
pub fn config(dir: &Path, srv: &FakeServer, n: usize, extra: &[&str]) -> CollectConfig {
    let problems = dir.join("problems.jsonl");
    std::fs::write(&problems, problem_file(n)).unwrap();
    let mut o: Vec<String> = vec![
        format!("problems={}", problems.display()),
        format!("out={}", dir.join("out.parquet").display()),
        "seed=7".into(),
        "run.shard_size=3".into(),
    ];
    o.extend(srv.overrides());
    for role in ["weak", "strong", "prm"] {
        o.push(format!("{role}.limits.backoff_ms=1"));
        o.push(format!("{role}.limits.timeout_s=2"));
        o.push(format!("{role}.limits.retries=8"));
    }
    o.extend(extra.iter().map(|s| s.to_string()));
    CollectConfig::load(None, &o).unwrap()
}

pub fn load(path: &Path) -> trim_data::Loaded {
    trim_data::load(path).unwrap()
}
