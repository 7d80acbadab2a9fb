//! The fake server's per-step signals: token log-probabilities in vLLM's two response shapes
//! (lower on erroneous steps, as a model is less sure of a step it gets wrong) and a judge
//! model that rates the step after `New step:` in its prompt with one digit (high for a correct
//! step, low for an erroneous one). Deterministic given the text, like everything the fake
//! server answers.

use serde_json::{Value, json};

use super::world::ERROR_WORD;
use crate::http::fnv;
use crate::prompt::is_degenerate;

/// Mean |log-probability| of a token in a correct, an erroneous and a degenerate step, and of
/// the stop token.
const CORRECT: f64 = 0.3;
const ERRONEOUS: f64 = 1.2;
const DEGENERATE: f64 = 2.0;
const STOP: f64 = 0.05;

/// Whether a generation request asked for log-probabilities (`"logprobs": 1` or `true`).
pub fn wanted(req: &Value) -> bool {
    !matches!(
        req.get("logprobs"),
        None | Some(Value::Null) | Some(Value::Bool(false))
    )
}

/// The tokens of a step as the fake tokenizes it — the text split after each space, so they
/// concatenate to the text — followed by the `"\n\n"` stop token when generation stopped on
/// it (reported though the text omits it, as servers do), each with its log-probability.
pub fn token_logprobs(model: &str, text: &str, stopped: bool) -> Vec<(String, f64)> {
    let scale = if is_degenerate(text) {
        DEGENERATE
    } else if text.contains(ERROR_WORD) {
        ERRONEOUS
    } else {
        CORRECT
    };
    let mut out: Vec<(String, f64)> = (text.split_inclusive(' ').enumerate())
        .map(|(i, t)| {
            let h = fnv(format!("{model}\u{1}{text}\u{1}{i}").as_bytes());
            let u = (h >> 11) as f64 / (1u64 << 53) as f64;
            (t.to_string(), -scale * (0.5 + u))
        })
        .collect();
    if stopped {
        out.push(("\n\n".into(), -STOP));
    }
    out
}

/// The `logprobs` object of a choice: `{content: [{token, logprob, bytes, top_logprobs}]}` on
/// the chat API, `{tokens, token_logprobs, top_logprobs, text_offset}` on completions.
pub fn logprobs_json(chat: bool, toks: &[(String, f64)]) -> Value {
    if chat {
        let content: Vec<Value> = (toks.iter())
            .map(|(t, x)| json!({"token": t, "logprob": x, "bytes": t.as_bytes(), "top_logprobs": []}))
            .collect();
        return json!({ "content": content });
    }
    let mut offset = 0usize;
    let offsets: Vec<usize> = (toks.iter())
        .map(|(t, _)| {
            let o = offset;
            offset += t.len();
            o
        })
        .collect();
    json!({
        "tokens": toks.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        "token_logprobs": toks.iter().map(|(_, x)| x).collect::<Vec<_>>(),
        "top_logprobs": toks.iter().map(|(t, x)| json!({ t: x })).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

/// The marker before the rated step in the default judge prompt (the fake judge needs it).
pub const STEP_MARKER: &str = "New step:\n";

/// The fake judge's reply to `prompt`: one digit, 5–9 for a correct step and 0–3 for one
/// with an error; or, when `refuse` is set, a sentence without a digit. Err when the prompt
/// has no [`STEP_MARKER`] (the fake cannot find the step in a custom template).
pub fn judge_reply(prompt: &str, refuse: bool) -> Result<String, String> {
    let (_, rest) = prompt
        .rsplit_once(STEP_MARKER)
        .ok_or("the fake judge found no `New step:` in its prompt")?;
    let step = rest.split("\n\n").next().unwrap_or_default();
    if refuse {
        return Ok("I cannot rate this step.".into());
    }
    let h = fnv(step.as_bytes()) >> 7;
    let digit = if step.contains(ERROR_WORD) {
        h % 4
    } else {
        5 + h % 5
    };
    Ok(digit.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_to_the_text_and_errors_are_less_likely() {
        let ok = "Step 1: we add the terms carefully.";
        let bad = "Step 1: we add the terms incorrectly.";
        let t = token_logprobs("m", ok, true);
        let text: String = t.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(text, format!("{ok}\n\n"));
        let mean = |v: &[(String, f64)]| v.iter().map(|x| x.1).sum::<f64>() / v.len() as f64;
        let b = token_logprobs("m", bad, false);
        assert!(mean(&b) < mean(&t[..t.len() - 1]) - 0.3);
        assert!(t.iter().chain(&b).all(|(_, x)| *x < 0.0));
        assert_eq!(t, token_logprobs("m", ok, true), "deterministic");
    }

    #[test]
    fn the_judge_rates_the_step_after_the_marker() {
        let p = |s: &str| format!("Solution so far:\nA incorrectly.\n\nNew step:\n{s}\n\nRate it.");
        let good: u32 = judge_reply(&p("B carefully."), false)
            .unwrap()
            .parse()
            .unwrap();
        let bad: u32 = judge_reply(&p("B incorrectly."), false)
            .unwrap()
            .parse()
            .unwrap();
        assert!(good >= 5 && bad <= 3, "{good} {bad}");
        assert!(
            !judge_reply(&p("B"), true)
                .unwrap()
                .contains(char::is_numeric)
        );
        assert!(judge_reply("no marker", false).is_err());
    }
}
