//! A solved POMDP as a self-checking JSON file: the model, λ, the grid and the continuation
//! table on the first line, and `{"content_sha256": …}` of that line's exact bytes on the second,
//! so a copy can be verified before it decides anything (hashing the bytes, not re-serialised
//! floats, keeps the check exact).
//!
//! Written by `trim pomdp solve --out DIR` (one file per λ); the basis of a POMDP export.

use serde::{Deserialize, Serialize};
use trim_env::checksum::sha256_hex;

use crate::grid::SimplexGrid;
use crate::model::PomdpModel;
use crate::solve::Solution;

/// The `format` field of a solution file.
pub const SOLUTION_FORMAT: &str = "trim-pomdp-solution/1";

/// Why a solution or model file was refused (the caller names the file).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FileError {
    /// Not JSON of the expected shape.
    #[error("not a TRIM-POMDP file of the expected shape: {0}")]
    Parse(String),
    /// Another format or version: `(found, expected)`.
    #[error("format `{0}` is not {1}")]
    Format(String, &'static str),
    /// The content does not match its checksum.
    #[error("content sha256 {actual} does not match the recorded {recorded}: the file is damaged")]
    Checksum { recorded: String, actual: String },
    /// The model, λ or the table is invalid.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SolutionFile {
    format: String,
    lambda: f64,
    grid_divisions: usize,
    model: PomdpModel,
    /// `[continue, regenerate]` continuation values, step-major.
    continuation: Vec<[f64; 2]>,
    first_values: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    content_sha256: String,
}

/// `body` (one line of JSON) followed by the line `{"content_sha256": …}` of its exact bytes.
pub(crate) fn with_checksum(body: String) -> String {
    let trailer = Trailer {
        content_sha256: sha256_hex(body.as_bytes()),
    };
    format!(
        "{body}\n{}\n",
        serde_json::to_string(&trailer).unwrap_or_default()
    )
}

/// The first line of `text` once its checksum line matches it (`what` names the content in
/// the error).
pub(crate) fn verified_body<'a>(text: &'a str, what: &str) -> Result<&'a str, FileError> {
    let mut lines = text.lines();
    let (Some(body), Some(trailer), None) = (lines.next(), lines.next(), lines.next()) else {
        return Err(FileError::Parse(format!(
            "expected two lines: {what} and its checksum"
        )));
    };
    let trailer: Trailer = serde_json::from_str(trailer)
        .map_err(|e| FileError::Parse(format!("checksum line: {e}")))?;
    let actual = sha256_hex(body.as_bytes());
    if actual != trailer.content_sha256 {
        return Err(FileError::Checksum {
            recorded: trailer.content_sha256,
            actual,
        });
    }
    Ok(body)
}

impl Solution {
    /// The solution and its model as checksummed JSON text.
    pub fn to_json(&self, model: &PomdpModel) -> String {
        let (continuation, first_values) = self.tables();
        let f = SolutionFile {
            format: SOLUTION_FORMAT.into(),
            lambda: self.lambda,
            grid_divisions: self.grid().divisions(),
            model: model.clone(),
            continuation: continuation.to_vec(),
            first_values: first_values.to_vec(),
        };
        with_checksum(serde_json::to_string(&f).unwrap_or_default())
    }

    /// Read a solution written by [`Solution::to_json`]: format, checksum, model and table shape
    /// are verified before anything is returned.
    pub fn from_json(text: &str) -> Result<(Solution, PomdpModel), FileError> {
        let body = verified_body(text, "the solution")?;
        let f: SolutionFile =
            serde_json::from_str(body).map_err(|e| FileError::Parse(e.to_string()))?;
        if f.format != SOLUTION_FORMAT {
            return Err(FileError::Format(f.format, SOLUTION_FORMAT));
        }
        f.model
            .validate()
            .map_err(|e| FileError::Invalid(format!("model: {e}")))?;
        if !(f.lambda.is_finite() && f.lambda >= 0.0) {
            return Err(FileError::Invalid(format!(
                "lambda {} must be finite and ≥ 0",
                f.lambda
            )));
        }
        if !(1..=2000).contains(&f.grid_divisions) {
            return Err(FileError::Invalid(format!(
                "grid_divisions {}",
                f.grid_divisions
            )));
        }
        let grid = SimplexGrid::new(f.grid_divisions);
        let steps = usize::from(f.model.max_steps()) - 1;
        if f.continuation.len() != steps * grid.len() || f.first_values.len() != grid.len() {
            return Err(FileError::Invalid(format!(
                "table holds {} entries, expected {} steps × {} beliefs",
                f.continuation.len(),
                steps,
                grid.len()
            )));
        }
        let finite = f.continuation.iter().flatten().chain(&f.first_values);
        if finite.clone().any(|v| !v.is_finite()) {
            return Err(FileError::Invalid("table holds a non-finite value".into()));
        }
        let sol = Solution::from_parts(f.lambda, grid, f.continuation, f.first_values, &f.model);
        Ok((sol, f.model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::tests::random_belief;
    use crate::model::tests::tiny;
    use crate::solve::solve;

    #[test]
    fn a_solution_round_trips_and_damage_is_refused() {
        let m = tiny();
        let sol = &solve(&m, 20, &[1e-3]).unwrap()[0];
        let text = sol.to_json(&m);
        let (back, model) = Solution::from_json(&text).unwrap();
        assert!(model == m);
        let mut rng = trim_env::Rng::new(5);
        for _ in 0..200 {
            let bel = random_belief(&mut rng);
            for k in 1..4 {
                assert_eq!(sol.q(k, &bel, 30.0), back.q(k, &bel, 30.0));
            }
        }
        // A changed digit anywhere in the table or model: refused by the checksum.
        let i = text.find("\"continuation\":[[").unwrap() + 20;
        let digit = text[i..]
            .find(|c: char| c.is_ascii_digit() && c != '0')
            .unwrap()
            + i;
        let mut damaged = text.clone();
        damaged.replace_range(digit..digit + 1, "0");
        assert!(matches!(
            Solution::from_json(&damaged),
            Err(FileError::Checksum { .. })
        ));
        // Truncated, foreign, other format.
        assert!(matches!(
            Solution::from_json(&text[..text.len() / 2]),
            Err(FileError::Parse(_))
        ));
        assert!(matches!(
            Solution::from_json("{}"),
            Err(FileError::Parse(_))
        ));
        // Another format with a valid checksum: refused by name.
        let body = text
            .lines()
            .next()
            .unwrap()
            .replace(SOLUTION_FORMAT, "trim-pomdp-solution/9");
        let other = format!(
            "{body}\n{{\"content_sha256\":\"{}\"}}\n",
            sha256_hex(body.as_bytes())
        );
        assert!(matches!(
            Solution::from_json(&other),
            Err(FileError::Format(..))
        ));
        // A valid checksum over an invalid model: refused by validation.
        let body = text
            .lines()
            .next()
            .unwrap()
            .replace("\"p_w\":0.8", "\"p_w\":1.8");
        let bad = format!(
            "{body}\n{{\"content_sha256\":\"{}\"}}\n",
            sha256_hex(body.as_bytes())
        );
        let e = Solution::from_json(&bad).unwrap_err().to_string();
        assert!(e.contains("p_w"), "{e}");
    }

    /// Fuzz-style: any single changed, removed or inserted byte is refused cleanly (never a
    /// panic, never a silently different solution).
    #[test]
    fn random_byte_damage_is_always_refused() {
        let m = tiny();
        let sol = &solve(&m, 6, &[2e-3]).unwrap()[0];
        let text = sol.to_json(&m).into_bytes();
        let mut rng = trim_env::Rng::new(8);
        for _ in 0..300 {
            let mut b = text.clone();
            let i = rng.below(b.len() as u64) as usize;
            match rng.below(3) {
                0 => b[i] = b[i].wrapping_add(1 + rng.below(200) as u8),
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, b"0x{\"\n"[rng.below(5) as usize]),
            }
            let s = String::from_utf8_lossy(&b).into_owned();
            let r = std::panic::catch_unwind(|| Solution::from_json(&s).map(|_| ()));
            match r {
                Err(_) => panic!("damaged byte {i} panicked"),
                // Only damage that leaves the body bytes intact can load (e.g. the trailing
                // newline); then the solution is the original.
                Ok(Ok(())) => {
                    let (back, _) = Solution::from_json(&s).unwrap();
                    assert_eq!(
                        back.q(1, &[0.3, 0.3, 0.4], 5.0),
                        sol.q(1, &[0.3, 0.3, 0.4], 5.0)
                    );
                }
                Ok(Err(_)) => {}
            }
        }
    }
}
