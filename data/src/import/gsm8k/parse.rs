//! Parsing the upstream records: one line = one step, token counts, and the "on-chain"
//! heuristic (calculator results among the ground truth's intermediate results).

use std::path::Path;

use serde_json::Value;

use crate::error::{DataError, Loc, Result};
use crate::tokenizer::TokenCounter;

use super::options::Variant;

/// One step (line) of an upstream solution.
#[derive(Clone, Debug)]
pub(super) struct Step {
    pub(super) text: String,
    pub(super) tokens: u32,
    /// The heuristic's verdict: calculator results on the ground-truth chain.
    pub(super) on_chain: bool,
    /// Last line of the solution: the episode ends when it is kept.
    pub(super) finished: bool,
}

/// One upstream solution: its steps and its upstream correctness.
#[derive(Clone, Debug)]
pub(super) struct Solution {
    pub(super) steps: Vec<Step>,
    pub(super) correct: bool,
}

/// One upstream line: the question and the chosen weak / strong solutions.
pub(super) struct Record {
    pub(super) question: String,
    pub(super) weak: Solution,
    pub(super) strong: Solution,
}

/// Line `lineno` of `path` for the JSON-level errors of a record.
struct At<'a> {
    path: &'a Path,
    lineno: usize,
}

impl At<'_> {
    fn err(&self, field: Option<&str>, reason: &str) -> DataError {
        DataError::new(self.path, Loc::Line(self.lineno), field, reason)
    }

    /// The string `obj[name]`, named `field` in errors.
    fn str_field(&self, obj: &Value, name: &str, field: &str) -> Result<String> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.err(Some(field), "expected a string")),
            None => Err(self.err(Some(field), "missing field")),
        }
    }
}

/// Parse line `lineno` of `path`: the question, the ground truth and the variant's two solutions.
pub(super) fn parse_record(
    path: &Path,
    lineno: usize,
    line: &str,
    variant: Variant,
    counter: &TokenCounter,
) -> Result<Record> {
    let at = At { path, lineno };
    let v: Value =
        serde_json::from_str(line).map_err(|e| at.err(None, &format!("bad JSON: {e}")))?;
    let question = at.str_field(&v, "question", "question")?;
    let gt = ground_truth_results(&at.str_field(&v, "ground_truth", "ground_truth")?);
    Ok(Record {
        question,
        weak: parse_solution(&at, &v, variant.weak_field(), &gt, counter)?,
        strong: parse_solution(&at, &v, variant.strong_field(), &gt, counter)?,
    })
}

/// The solution `v[name]`: its non-empty lines as steps, judged against the chain `gt`.
fn parse_solution(
    at: &At<'_>,
    v: &Value,
    name: &str,
    gt: &[f64],
    counter: &TokenCounter,
) -> Result<Solution> {
    let obj = v
        .get(name)
        .ok_or_else(|| at.err(Some(name), "missing field"))?;
    let sol_field = format!("{name}.solution");
    let ok_field = format!("{name}.is_correct");
    let text = at.str_field(obj, "solution", &sol_field)?;
    let correct = match obj.get("is_correct") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(at.err(Some(&ok_field), "expected a boolean")),
        None => return Err(at.err(Some(&ok_field), "missing field")),
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(at.err(Some(&sol_field), "solution has no non-empty line"));
    }
    let n = lines.len();
    let steps = lines
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let finished = k + 1 == n;
            Step {
                text: (*l).to_string(),
                tokens: counter.count(l),
                // The finishing line carries the answer: on-chain iff the answer is right.
                on_chain: if finished {
                    correct
                } else {
                    line_on_chain(l, gt)
                },
                finished,
            }
        })
        .collect();
    Ok(Solution { steps, correct })
}

/// Calculator results of the ground truth plus its final answer: the "chain" of the heuristic.
fn ground_truth_results(gt: &str) -> Vec<f64> {
    let mut out: Vec<f64> = annotation_results(gt).into_iter().flatten().collect();
    for l in gt.lines() {
        if let Some(a) = l.trim().strip_prefix("A:").and_then(parse_number) {
            out.push(a);
        }
    }
    out
}

/// Results of every `<<expr=result>>` annotation in `text` (None when not a plain number).
fn annotation_results(text: &str) -> Vec<Option<f64>> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(start) = rest.find("<<") {
        let inner = &rest[start + 2..];
        let Some(end) = inner.find(">>") else { break };
        let ann = &inner[..end];
        out.push(ann.rsplit_once('=').and_then(|(_, r)| parse_number(r)));
        rest = &inner[end + 2..];
    }
    out
}

/// A plain number, tolerating `$`, `%`, thousands commas and a trailing period.
fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s
        .trim()
        .trim_end_matches('.')
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | '%' | ' '))
        .collect();
    cleaned.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A non-final line is on-chain when every judgeable calculator result is a ground-truth result;
/// a line without judgeable annotations is neutral (on-chain).
fn line_on_chain(line: &str, gt: &[f64]) -> bool {
    annotation_results(line)
        .into_iter()
        .flatten()
        .all(|r| gt.iter().any(|&g| (r - g).abs() <= 1e-6 * g.abs().max(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic_marks_first_off_chain_step() {
        let gt = ground_truth_results("a <<16-3-4=9>>9\nb $<<9*2=18>>18\nA: 18");
        assert_eq!(gt, vec![9.0, 18.0, 18.0]);
        assert!(line_on_chain("x <<2*9=18.0>>18", &gt));
        assert!(!line_on_chain("x <<16-3=13>>13", &gt));
        assert!(line_on_chain("no annotation here", &gt));
        assert!(line_on_chain("odd <<2/3>> annotation", &gt));
        assert_eq!(parse_number(" $1,000. "), Some(1000.0));
        assert_eq!(parse_number("1/2"), None);
    }
}
