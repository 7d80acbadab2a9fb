//! `trim route --sessions`: a stateful serving sidecar. Each JSON line names an episode
//! (`session`) and carries only the new numbers — the weak step to decide on, the step that was
//! kept, or the end of the episode — and the router keeps each episode's state
//! (`trim_router::Session`: TRIM-Agg's aggregates, TRIM-Seq's attention cache). Decisions equal
//! the stateless whole-history call exactly.
//!
//! ```text
//! {"session": "req-7", "prm": 0.42, "tokens": 120}                      → {"session", "action", "p_regenerate", "logits", "step"}
//! {"session": "req-7", "kept": {"prm": 0.91, "tokens": 95, "regenerated": true}}  → {"session", "steps"}
//! {"session": "req-7", "end": true}                                    → {"session", "ended": true}
//! ```
//!
//! A hard per-request budget of strong tokens (`trim_router::BudgetedSession`): give `budget`
//! (and optionally `reserve`) on a session's first decision; answers then carry
//! `strong_max_tokens` (the cap for the strong request) and `budget_left`, `regenerate` is never
//! answered once less than `reserve` is left, and a strong step that hit the cap is reported as
//! `{"session": …, "discarded": TOKENS}` (charged; then send the weak step as `kept`).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};
use trim_router::{BudgetedSession, KeptStep, Session};

/// One input line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    session: String,
    #[serde(default)]
    prm: Option<f32>,
    #[serde(default)]
    tokens: Option<u32>,
    #[serde(default)]
    kept: Option<Kept>,
    #[serde(default)]
    end: bool,
    /// Strong-token budget of the request (first decision only).
    #[serde(default)]
    budget: Option<u64>,
    /// Regenerate only while at least this many budget tokens are left (default 1).
    #[serde(default)]
    reserve: Option<u64>,
    /// A strong step that hit `strong_max_tokens` and was discarded: its tokens.
    #[serde(default)]
    discarded: Option<u32>,
}

/// The step that was kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kept {
    prm: f32,
    tokens: u32,
    regenerated: bool,
}

/// One JSON line as a `T`: `None` for a blank line; an error (with the line's `id_key` value
/// when the line is a JSON object, so the caller can match it) for invalid UTF-8 or a line that
/// is not a `what`.
pub(super) fn parse_line<T: serde::de::DeserializeOwned>(
    line: &[u8],
    id_key: &str,
    what: &str,
) -> Option<Result<T, (Value, String)>> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(e) => return Some(Err((Value::Null, format!("not UTF-8: {e}")))),
    };
    if text.is_empty() {
        return None;
    }
    Some(serde_json::from_str(text).map_err(|e| {
        let id = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get(id_key).cloned())
            .unwrap_or(Value::Null);
        (id, format!("not {what}: {e}"))
    }))
}

/// A session without a budget (never reached: no masking, no extra answer fields).
const UNLIMITED: u64 = u64::MAX;

/// The open episodes.
pub(super) struct Sessions<'r> {
    open: HashMap<String, BudgetedSession<'r>>,
    max: usize,
    new_session: Box<dyn Fn() -> Session<'r> + 'r>,
}

/// An answer, or an error with the session id when one could be read.
pub(super) type Answer = Option<Result<Value, (Value, String)>>;

impl<'r> Sessions<'r> {
    pub(super) fn new(max: usize, new_session: Box<dyn Fn() -> Session<'r> + 'r>) -> Self {
        Sessions {
            open: HashMap::new(),
            max,
            new_session,
        }
    }

    /// Episodes open now.
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    /// The answer to one input line (`None` for a blank line).
    pub(super) fn answer(&mut self, line: &[u8]) -> Answer {
        let l: Line = match parse_line(line, "session", "a session line")? {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let id = json!(l.session);
        Some(self.apply(l).map_err(|e| (id, e)))
    }

    fn apply(&mut self, l: Line) -> Result<Value, String> {
        if let Some(t) = l.discarded {
            if l.prm.is_some() || l.tokens.is_some() || l.kept.is_some() || l.end {
                return Err("`discarded` goes on a line of its own".into());
            }
            let s = (self.open.get_mut(&l.session))
                .ok_or_else(|| format!("no open session `{}`", l.session))?;
            s.discard_strong(t);
            return Ok(json!({"session": l.session, "budget_left": s.left()}));
        }
        let opened = self.open.contains_key(&l.session);
        if (l.budget.is_some() || l.reserve.is_some()) && (opened || l.prm.is_none()) {
            return Err("`budget` and `reserve` go on a session's first decision".into());
        }
        match (l.prm, l.tokens, l.kept, l.end) {
            (Some(prm), Some(tokens), None, false) => {
                if !self.open.contains_key(&l.session) && self.open.len() >= self.max {
                    return Err(format!(
                        "{} sessions are open (--max-sessions): end some before starting another",
                        self.max
                    ));
                }
                // A session opens with its first valid decision, never with a refused one.
                let d = match self.open.get(&l.session) {
                    Some(s) => s.decide(prm, tokens)?,
                    None => {
                        let budget = l.budget.unwrap_or(UNLIMITED);
                        let s = BudgetedSession::new(
                            (self.new_session)(),
                            budget,
                            l.reserve.unwrap_or(1),
                        );
                        let d = s.decide(prm, tokens)?;
                        self.open.insert(l.session.clone(), s);
                        d
                    }
                };
                let s = &self.open[&l.session];
                let mut v = json!({
                    "session": l.session,
                    "action": if d.regenerate { "regenerate" } else { "continue" },
                    "p_regenerate": d.p_regenerate,
                    "logits": d.logits,
                    "step": s.steps(),
                });
                if s.left() != UNLIMITED {
                    v["budget_left"] = json!(s.left());
                    v["strong_max_tokens"] = json!(s.strong_max_tokens());
                }
                Ok(v)
            }
            (None, None, Some(k), false) => {
                let s = (self.open.get_mut(&l.session)).ok_or_else(|| {
                    format!("no open session `{}`: decide a step first", l.session)
                })?;
                s.push(KeptStep {
                    prm: k.prm,
                    tokens: k.tokens,
                    regenerated: k.regenerated,
                })?;
                let mut v = json!({"session": l.session, "steps": s.steps()});
                if s.left() != UNLIMITED {
                    v["budget_left"] = json!(s.left());
                }
                Ok(v)
            }
            (None, None, None, true) => match self.open.remove(&l.session) {
                Some(_) => Ok(json!({"session": l.session, "ended": true})),
                None => Err(format!("no open session `{}`", l.session)),
            },
            _ => Err(
                "a session line holds exactly one of: `prm` and `tokens` (decide), `kept` \
                 (record the kept step), `end: true`"
                    .into(),
            ),
        }
    }
}
