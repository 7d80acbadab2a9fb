//! The hand-built forest fixture shared by the env tests, and the forest's own tests.
use super::*;

pub fn cand(tokens: u32, prm: f32) -> Candidate {
    Candidate { tokens, prm }
}

/// A hand-built tree used across the env tests (one problem, one tree):
///
/// ```text
/// n0 (t=0) weak(10, 0.9) strong(20, 0.95)
///   continue  -> n1 (t=1) weak(30, 0.4) strong(40, 0.8)
///                  continue   -> wrong
///                  regenerate -> n3 (t=2) weak(5, 0.7), no strong
///                                  continue -> correct
///   regenerate -> n2 (t=1) weak(50, 0.6) strong(60, 0.9)
///                  continue   -> correct
///                  regenerate -> correct
/// ```
pub fn small_forest() -> Forest {
    let mut b = ForestBuilder::new();
    b.begin_problem();
    b.begin_tree();
    b.push_node(
        0,
        cand(10, 0.9),
        Some(cand(20, 0.95)),
        [Branch::Node(1), Branch::Node(2)],
    );
    b.push_node(
        1,
        cand(30, 0.4),
        Some(cand(40, 0.8)),
        [Branch::Outcome(false), Branch::Node(3)],
    );
    b.push_node(
        1,
        cand(50, 0.6),
        Some(cand(60, 0.9)),
        [Branch::Outcome(true), Branch::Outcome(true)],
    );
    b.push_node(
        2,
        cand(5, 0.7),
        None,
        [Branch::Outcome(true), Branch::Absent],
    );
    b.finish().expect("valid forest")
}

#[test]
fn small_forest_is_valid_and_indexed() {
    let f = small_forest();
    assert_eq!((f.n_problems(), f.n_trees(), f.n_nodes()), (1, 1, 4));
    assert_eq!(f.trees_of(0), 0..1);
    assert_eq!(f.branch(0, Action::Regenerate), Branch::Node(2));
    assert_eq!(f.branch(1, Action::Continue), Branch::Outcome(false));
    assert_eq!(f.mask(3), [true, false]);
    assert_eq!(f.strong(3), None);
    assert_eq!(f.max_depth(), 2);
    let cov = f.coverage();
    assert_eq!(cov.with_strong, 3);
    assert_eq!(cov.both_available, 3);
    assert_eq!(cov.trees_with_all_weak, 1);
    assert_eq!(cov.trees_with_all_strong, 1);
}

fn one_node(weak: Candidate, strong: Option<Candidate>, ch: [Branch; 2]) -> ForestBuilder {
    let mut b = ForestBuilder::new();
    b.begin_problem();
    b.begin_tree();
    b.push_node(0, weak, strong, ch);
    b
}

#[test]
fn rejects_structural_faults() {
    let out = [Branch::Outcome(true), Branch::Absent];
    let e = one_node(cand(0, 0.5), None, out).finish().unwrap_err();
    assert!(matches!(e, ForestError::BadCandidate { .. }), "{e}");
    let e = one_node(cand(3, f32::NAN), None, out).finish().unwrap_err();
    assert!(matches!(e, ForestError::BadCandidate { .. }), "{e}");
    let e = one_node(cand(3, 1.5), None, out).finish().unwrap_err();
    assert!(matches!(e, ForestError::BadCandidate { .. }), "{e}");
    let e = one_node(cand(3, 0.5), None, [Branch::Absent; 2])
        .finish()
        .unwrap_err();
    assert_eq!(e, ForestError::DeadEnd { node: 0 });
    let e = one_node(cand(3, 0.5), None, [Branch::Absent, Branch::Outcome(true)])
        .finish()
        .unwrap_err();
    assert_eq!(e, ForestError::MissingStrong { node: 0 });
    // Self-loop: a cycle is caught because children must be one level deeper.
    let e = one_node(cand(3, 0.5), None, [Branch::Node(0), Branch::Absent])
        .finish()
        .unwrap_err();
    assert!(matches!(e, ForestError::BadChild { .. }), "{e}");
    // An orphan: a second node reached by nothing.
    let mut b = one_node(cand(3, 0.5), None, out);
    b.push_node(1, cand(3, 0.5), None, out);
    assert_eq!(
        b.finish().unwrap_err(),
        ForestError::Orphan {
            node: 1,
            parents: 0
        }
    );
}
