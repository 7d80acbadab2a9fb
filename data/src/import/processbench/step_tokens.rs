//! `trim data synth --derive-step-tokens`: the synth calibration's real step lengths
//! (`data/calibration/step_tokens.json`) rebuilt from ProcessBench solutions.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::synth::step_tokens::{StepTokenLists, StepTokensFile};
use crate::tokenizer::{TOKENIZER_NAME, TokenCounter};

use super::solution::{read_subset, subset_path, subset_source};

/// ProcessBench generators whose steps give the weak role's lengths.
pub const STEP_TOKENS_WEAK_GENERATORS: [&str; 2] = ["Qwen2.5-1.5B-Instruct", "Qwen2-1.5B-Instruct"];
/// ProcessBench generators whose steps give the strong role's lengths.
pub const STEP_TOKENS_STRONG_GENERATORS: [&str; 1] = ["Qwen2.5-7B-Instruct"];
/// ProcessBench subsets the step lengths come from (MATH, like the calibration).
pub const STEP_TOKENS_SUBSETS: [&str; 1] = ["math"];

/// Rebuild the step-token lists from ProcessBench (`raw` holds `math.json`).
pub fn derive_step_tokens(raw: &Path, command: &str) -> Result<StepTokensFile> {
    let counter = TokenCounter::new();
    let weak = role_lists(raw, &STEP_TOKENS_WEAK_GENERATORS, &counter)?;
    let strong = role_lists(raw, &STEP_TOKENS_STRONG_GENERATORS, &counter)?;
    let sources = STEP_TOKENS_SUBSETS
        .iter()
        .map(|s| subset_source(raw, s))
        .collect::<Result<_>>()?;
    Ok(StepTokensFile {
        description: "Token counts of real ProcessBench solution steps, per model role: `weak` \
                      from Qwen2.5-1.5B-Instruct and Qwen2-1.5B-Instruct, `strong` from \
                      Qwen2.5-7B-Instruct, MATH subset; `final` holds each solution's last step \
                      (the one with the answer), `nonfinal` the others. ProcessBench steps are \
                      paragraph-level re-segmentations of the generators' outputs."
            .into(),
        tokenizer: TOKENIZER_NAME.into(),
        sources,
        command: command.to_string(),
        weak,
        strong,
    })
}

/// The step lengths of every solution by one of `gens`, split into last and other steps.
fn role_lists(raw: &Path, gens: &[&str], counter: &TokenCounter) -> Result<StepTokenLists> {
    let mut l = StepTokenLists {
        generators: gens.iter().map(|g| g.to_string()).collect(),
        subsets: STEP_TOKENS_SUBSETS.iter().map(|s| s.to_string()).collect(),
        solutions: 0,
        nonfinal: vec![],
        last: vec![],
    };
    for s in STEP_TOKENS_SUBSETS {
        for sol in read_subset(&subset_path(raw, s))? {
            if !gens.contains(&sol.generator.as_str()) {
                continue;
            }
            l.solutions += 1;
            let n = sol.steps.len();
            for (t, step) in sol.steps.iter().enumerate() {
                let tok = counter.count(step);
                if t + 1 == n {
                    l.last.push(tok);
                } else {
                    l.nonfinal.push(tok);
                }
            }
        }
    }
    if l.solutions == 0 {
        return Err(DataError::file(
            raw,
            format!("no ProcessBench solution by {}", gens.join(" or ")),
        ));
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, generator: &str, steps: &[&str]) -> serde_json::Value {
        serde_json::json!({"id": id, "generator": generator, "problem": "p", "steps": steps,
                           "final_answer_correct": true, "label": -1})
    }

    #[test]
    fn lists_come_from_the_named_generators_only() {
        let d = crate::import::tmpdir("pb", "step-tokens");
        let recs = serde_json::json!([
            record(
                "a",
                "Qwen2.5-1.5B-Instruct",
                &["one two three", "so $\\boxed{4}$"]
            ),
            record("b", "Qwen2-1.5B-Instruct", &["x"]),
            record("c", "Qwen2.5-7B-Instruct", &["first", "second", "done"]),
            record("d", "Llama-3.1-8B-Instruct", &["ignored"]),
        ]);
        std::fs::write(d.join("math.json"), recs.to_string()).unwrap();
        let f = derive_step_tokens(&d, "cmd").unwrap();
        let c = TokenCounter::new();
        assert_eq!((f.weak.solutions, f.strong.solutions), (2, 1));
        assert_eq!(f.weak.nonfinal, vec![c.count("one two three")]);
        assert_eq!(f.weak.last, vec![c.count("so $\\boxed{4}$"), c.count("x")]);
        assert_eq!(f.strong.nonfinal.len(), 2);
        assert_eq!(f.sources[0].name, "processbench/math.json");
        assert_eq!(f.sources[0].sha256.as_ref().map(String::len), Some(64));
        // Without a strong-generator solution the lists cannot be built.
        let recs = serde_json::json!([record("a", "Qwen2.5-1.5B-Instruct", &["x"])]);
        std::fs::write(d.join("math.json"), recs.to_string()).unwrap();
        let e = derive_step_tokens(&d, "cmd").unwrap_err();
        assert!(e.to_string().contains("Qwen2.5-7B-Instruct"), "{e}");
    }
}
