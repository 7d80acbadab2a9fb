//! Replay throughput on a synthetic forest without any file I/O:
//! `cargo run --release -p trim-env --example replay_speed`.
//!
//! Builds 4000 problems, each a binary tree of depth 8 (511 nodes, every branch generated, leaves
//! at depth 8 finish), and times the threshold policy on one core.

use std::time::Instant;

use trim_env::{Branch, Candidate, ForestBuilder, RefPolicy, Rng, run_episode};

fn main() {
    let depth = 8u16;
    let mut rng = Rng::new(1);
    let mut b = ForestBuilder::new();
    for _ in 0..4000 {
        b.begin_problem();
        b.begin_tree();
        // Nodes in BFS order: node k's children are 2k+1, 2k+2 (relative to the tree base).
        let base = b.next_index();
        let n = (1u32 << (depth + 1)) - 1;
        for k in 0..n {
            let d = (32 - (k + 1).leading_zeros() - 1) as u16;
            let cand = |rng: &mut Rng| Candidate {
                tokens: 1 + rng.below(200) as u32,
                prm: rng.f32(),
            };
            let children = if d == depth {
                [
                    Branch::Outcome(rng.bernoulli(0.4)),
                    Branch::Outcome(rng.bernoulli(0.8)),
                ]
            } else {
                [
                    Branch::Node(base + 2 * k + 1),
                    Branch::Node(base + 2 * k + 2),
                ]
            };
            let (w, s) = (cand(&mut rng), cand(&mut rng));
            b.push_node(d, w, Some(s), children);
        }
    }
    let f = b.finish().expect("valid synthetic forest");
    let policy = RefPolicy::Threshold(0.5);
    let start = Instant::now();
    let mut steps = 0u64;
    let mut pass = 0u64;
    while start.elapsed().as_secs_f64() < 2.0 {
        for t in 0..f.n_trees() {
            let mut r = Rng::stream(pass, t as u64);
            steps += u64::from(run_episode(&f, t, &policy, &mut r).expect("no masks").steps);
        }
        pass += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} nodes; {:.1} M steps/s on one core (threshold policy)",
        f.n_nodes(),
        steps as f64 / secs / 1e6
    );
}
