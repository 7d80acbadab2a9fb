//! One sample tree as it is collected: nodes in creation order (parents before children), each
//! with its weak candidate and, when generated, the strong one. Serialisable, because shards
//! store trees with their text; converted to dataset rows at the end.

use serde::{Deserialize, Serialize};
use trim_data::{CandidateRec, NodeRow};
use trim_env::Action;

/// One candidate step, scored and (when it ends the solution) graded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cand {
    pub text: String,
    /// Generated tokens, spliced-out degenerate text included.
    pub tokens: u32,
    /// PRM score of the prefix ending with this step.
    pub prm: f32,
    pub finished: bool,
    /// Final-answer correctness when finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<bool>,
    /// The extracted final answer when finished (None: no `\boxed{}` found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Prompt tokens of the request that wrote it (the context its successor builds on).
    #[serde(default)]
    pub prompt_tokens: u32,
    /// The judge's rating in `[0, 1]` (weak candidates, when a judge is configured). Left out
    /// of the shards when absent, so collections without signals store what they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_score: Option<f32>,
    /// Mean token log-probability under the model that wrote it (`signals.logprobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_logprob: Option<f32>,
}

impl Cand {
    /// The prompt length of the step after this one, if this one is kept.
    pub fn next_prompt(&self) -> u32 {
        self.prompt_tokens
            .saturating_add(self.tokens)
            .saturating_add(2)
    }
}

/// One decision node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Parent node and the action taken there (None for the root).
    pub parent: Option<(u32, u8)>,
    pub depth: u16,
    /// Regenerations on the path from the root.
    pub regens: u16,
    pub weak: Cand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strong: Option<Cand>,
    /// Children by action (rebuilt on load; not stored).
    #[serde(skip)]
    pub children: [Option<u32>; 2],
}

/// Where a candidate is generated: the kept steps before it, its step index, the action
/// history (for its seed) and the prompt length when known.
pub struct Context<'t> {
    pub prefix: Vec<&'t str>,
    pub depth: u16,
    pub path: String,
    pub prompt: Option<u32>,
}

/// A sample tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Add a node below `parent` (or the root); returns its id.
    pub fn push(&mut self, parent: Option<(u32, Action)>, weak: Cand) -> u32 {
        let id = self.nodes.len() as u32;
        let (depth, regens) = match parent {
            None => (0, 0),
            Some((p, a)) => {
                let pn = &mut self.nodes[p as usize];
                assert!(pn.children[a as usize].is_none(), "one child per action");
                pn.children[a as usize] = Some(id);
                (pn.depth + 1, pn.regens + u16::from(a == Action::Regenerate))
            }
        };
        self.nodes.push(Node {
            parent: parent.map(|(p, a)| (p, a as u8)),
            depth,
            regens,
            weak,
            strong: None,
            children: [None, None],
        });
        id
    }

    /// The candidates kept on the way to `node` (root first), each with whether it was the
    /// strong one.
    pub fn kept(&self, node: u32) -> Vec<(&Cand, bool)> {
        let mut steps = vec![];
        let mut cur = self.nodes[node as usize].parent;
        while let Some((p, a)) = cur {
            let pn = &self.nodes[p as usize];
            let c = if a == 0 {
                &pn.weak
            } else {
                pn.strong.as_ref().expect("strong kept")
            };
            steps.push((c, a == 1));
            cur = pn.parent;
        }
        steps.reverse();
        steps
    }

    /// The kept steps' text leading to `node` (root first).
    pub fn prefix(&self, node: u32) -> Vec<&str> {
        self.kept(node)
            .into_iter()
            .map(|(c, _)| c.text.as_str())
            .collect()
    }

    /// The action history leading to `node`, as `0`/`1` characters (a stable key for seeds).
    pub fn path(&self, node: u32) -> String {
        let mut s = vec![];
        let mut cur = self.nodes[node as usize].parent;
        while let Some((p, a)) = cur {
            s.push(if a == 0 { b'0' } else { b'1' });
            cur = self.nodes[p as usize].parent;
        }
        s.reverse();
        String::from_utf8(s).expect("ascii")
    }

    /// The context a new node below `parent` (or the root) is generated in.
    pub fn below(&self, parent: Option<(u32, Action)>) -> Context<'_> {
        let Some((par, a)) = parent else {
            return Context {
                prefix: vec![],
                depth: 0,
                path: String::new(),
                prompt: None,
            };
        };
        let pn = &self.nodes[par as usize];
        let kept = match a {
            Action::Continue => &pn.weak,
            Action::Regenerate => pn
                .strong
                .as_ref()
                .expect("a regenerate child has a strong step"),
        };
        let mut prefix = self.prefix(par);
        prefix.push(kept.text.as_str());
        let mut path = self.path(par);
        path.push(if a == Action::Continue { '0' } else { '1' });
        Context {
            prefix,
            depth: pn.depth + 1,
            path,
            prompt: Some(kept.next_prompt()),
        }
    }

    /// The context of the existing `node` (for a candidate generated there later).
    pub fn at(&self, node: u32) -> Context<'_> {
        let n = &self.nodes[node as usize];
        Context {
            prefix: self.prefix(node),
            depth: n.depth,
            path: self.path(node),
            prompt: Some(n.weak.prompt_tokens),
        }
    }

    /// Rebuild the child links after deserialisation, checking parents come first.
    pub fn relink(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if let Some((p, a)) = self.nodes[i].parent {
                let ok = (p as usize) < i && a <= 1;
                let slot = ok.then(|| &mut self.nodes[p as usize].children[a as usize]);
                match slot {
                    Some(s @ None) => *s = Some(i as u32),
                    _ => return Err(format!("node {i}: bad parent link ({p}, {a})")),
                }
            }
        }
        Ok(())
    }

    /// Dataset rows of this tree (`problem`/`tree` indices given).
    pub fn rows(&self, problem: u32, tree: u32) -> Vec<NodeRow> {
        (self.nodes.iter().enumerate())
            .map(|(i, n)| NodeRow {
                problem,
                tree,
                node: i as u32,
                parent: n.parent.map(|p| p.0),
                action: n.parent.and_then(|p| Action::from_index(p.1)),
                depth: n.depth,
                weak: rec(&n.weak),
                strong: n.strong.as_ref().map(rec),
                continue_correct: n.weak.finished.then(|| n.weak.correct.unwrap_or(false)),
                regenerate_correct: (n.strong.as_ref())
                    .filter(|s| s.finished)
                    .map(|s| s.correct.unwrap_or(false)),
            })
            .collect()
    }
}

fn rec(c: &Cand) -> CandidateRec {
    CandidateRec {
        tokens: c.tokens.max(1),
        prm: c.prm,
        finished: c.finished,
        state: None,
        text: Some(c.text.clone()),
        hash: None,
        judge_score: c.judge_score,
        mean_logprob: c.mean_logprob,
    }
}
