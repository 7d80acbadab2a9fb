//! Request bodies and response parsing for the three APIs trim speaks: OpenAI-compatible
//! `/v1/completions` and `/v1/chat/completions` (with vLLM's extra sampling fields when
//! enabled), and vLLM's `/pooling` for step rewards. Pure functions, so the exact bodies are
//! tested against fixtures (`tests/fixtures/`).

use serde_json::{Map, Value, json};

use crate::config::{Api, GeneratorConfig, PrmConfig, PrmInput, Sampling};
use crate::prompt::{PromptConfig, STEP_SEP};

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The stop string (end of step) or end of sequence.
    Stop,
    /// The per-step token limit (the solution ends here, as in the release).
    Length,
}

/// One generated step as the server reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub text: String,
    /// Completion tokens (the generator's tokenizer).
    pub tokens: u32,
    pub finish: Finish,
    /// Prompt tokens, when the server reports them.
    pub prompt_tokens: Option<u32>,
}

/// The route of a generator's API under its base URL.
pub fn generation_path(api: Api) -> &'static str {
    match api {
        Api::Completions => "/completions",
        Api::Chat => "/chat/completions",
    }
}

/// The body of one step's generation request. `seed` makes sampling reproducible on servers
/// that honour it (vLLM does).
pub fn generation_body(
    g: &GeneratorConfig,
    s: &Sampling,
    prompt: &PromptConfig,
    question: &str,
    steps: &[&str],
    seed: u64,
    max_tokens: u32,
) -> Value {
    let mut b = Map::new();
    b.insert("model".into(), json!(g.model));
    match g.api {
        Api::Completions => {
            b.insert(
                "prompt".into(),
                json!(prompt.completion_prompt(question, steps)),
            );
        }
        Api::Chat => {
            b.insert(
                "messages".into(),
                json!(prompt.chat_messages(question, steps)),
            );
        }
    }
    b.insert("max_tokens".into(), json!(max_tokens));
    b.insert("temperature".into(), json!(s.temperature));
    b.insert("top_p".into(), json!(s.top_p));
    b.insert("n".into(), json!(1));
    b.insert("stop".into(), json!([STEP_SEP]));
    b.insert("seed".into(), json!(seed));
    if g.vllm_extensions {
        b.insert("top_k".into(), json!(s.top_k));
        if g.api == Api::Chat && prompt.prefill == crate::prompt::Prefill::Assistant {
            b.insert("continue_final_message".into(), json!(true));
            b.insert("add_generation_prompt".into(), json!(false));
        }
    }
    merge_extra(&mut b, g.extra.as_ref());
    Value::Object(b)
}

/// The body of one PRM request over `steps` (the candidate last).
pub fn pooling_body(p: &PrmConfig, prompt: &PromptConfig, question: &str, steps: &[&str]) -> Value {
    let mut b = Map::new();
    b.insert("model".into(), json!(p.model));
    match p.input {
        PrmInput::Messages => {
            let m = prompt.prm_messages(question, steps, &p.step_tag);
            b.insert("messages".into(), json!(m));
        }
        PrmInput::Text => {
            b.insert(
                "input".into(),
                json!(prompt.prm_text(question, steps, &p.step_tag)),
            );
        }
    }
    merge_extra(&mut b, p.extra.as_ref());
    Value::Object(b)
}

fn merge_extra(b: &mut Map<String, Value>, extra: Option<&toml::Table>) {
    for (k, v) in extra.into_iter().flatten() {
        // TOML values are a subset of JSON's.
        if let Ok(j) = serde_json::to_value(v) {
            b.insert(k.clone(), j);
        }
    }
}

/// Parse a completions or chat response.
pub fn parse_generation(api: Api, v: &Value) -> Result<Generated, String> {
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("no `choices[0]` in the response")?;
    let text = match api {
        Api::Completions => choice.get("text"),
        Api::Chat => choice.get("message").and_then(|m| m.get("content")),
    };
    let text = match text {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) if api == Api::Chat => String::new(),
        _ => {
            let field = match api {
                Api::Completions => "choices[0].text",
                Api::Chat => "choices[0].message.content",
            };
            return Err(format!("`{field}` is missing or not a string"));
        }
    };
    let finish = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => Finish::Length,
        Some(_) | None => Finish::Stop,
    };
    let tokens = v
        .get("usage")
        .and_then(|u| u.get("completion_tokens"))
        .and_then(Value::as_u64)
        .ok_or(
            "no `usage.completion_tokens` in the response (trim counts cost in generated \
             tokens; enable usage reporting on the server)",
        )?;
    let tokens = u32::try_from(tokens).map_err(|_| "`usage.completion_tokens` is too large")?;
    let prompt_tokens = (v.get("usage"))
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    Ok(Generated {
        text,
        tokens,
        finish,
        prompt_tokens,
    })
}

/// Parse a `/pooling` response into one score per step: the class-1 ("correct") probability of
/// each `[p_wrong, p_correct]` pair, or the value itself when the pooler returns one number per
/// step. The count must equal `n_steps`, except that with `pad_truncated` (the request asked
/// the server to left-truncate long inputs) missing leading scores are 1.0, as in the release.
pub fn parse_pooling(v: &Value, n_steps: usize, pad_truncated: bool) -> Result<Vec<f32>, String> {
    let rows = v
        .get("data")
        .and_then(|d| d.get(0))
        .and_then(|d| d.get("data"))
        .and_then(Value::as_array)
        .ok_or("no `data[0].data` array in the pooling response")?;
    let missing = n_steps.saturating_sub(rows.len());
    let truncated = pad_truncated && !rows.is_empty() && rows.len() < n_steps;
    if rows.len() != n_steps && !truncated {
        return Err(format!(
            "the PRM returned {} step scores for {n_steps} steps (is `prm.step_tag` the \
             model's step token?)",
            rows.len()
        ));
    }
    let scores = rows.iter().enumerate().map(|(i, r)| {
        let x = match r {
            Value::Array(pair) if pair.len() == 2 => pair[1].as_f64(),
            Value::Array(one) if one.len() == 1 => one[0].as_f64(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        match x {
            Some(x) if (0.0..=1.0).contains(&x) => Ok(x as f32),
            _ => Err(format!(
                "step {i}: score {r} is not a probability in [0, 1] (or a [p_wrong, \
                     p_correct] pair)"
            )),
        }
    });
    std::iter::repeat_n(Ok(1.0), missing)
        .chain(scores)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_pairs_numbers_and_wrong_counts() {
        let v =
            json!({"data": [{"index": 0, "object": "pooling", "data": [[0.1, 0.9], [0.7, 0.3]]}]});
        assert_eq!(parse_pooling(&v, 2, false).unwrap(), vec![0.9, 0.3]);
        let e = parse_pooling(&v, 3, false).unwrap_err();
        assert!(e.contains("2 step scores for 3 steps"), "{e}");
        // Left-truncated input: the cut-off leading steps score 1.0 (the release's rule).
        assert_eq!(parse_pooling(&v, 3, true).unwrap(), vec![1.0, 0.9, 0.3]);
        assert!(
            parse_pooling(&v, 1, true).is_err(),
            "more scores than steps"
        );
        let v = json!({"data": [{"data": [0.5, [0.25]]}]});
        assert_eq!(parse_pooling(&v, 2, false).unwrap(), vec![0.5, 0.25]);
        for bad in [
            json!({"data": []}),
            json!({"data": [{"data": [[0.1, 1.5]]}]}),
            json!(3),
        ] {
            assert!(parse_pooling(&bad, 1, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn generations_need_text_and_usage() {
        let v = json!({"choices": [{"text": "x = 2", "finish_reason": "stop"}],
                       "usage": {"completion_tokens": 4}});
        let g = parse_generation(Api::Completions, &v).unwrap();
        assert_eq!(
            (g.text.as_str(), g.tokens, g.finish),
            ("x = 2", 4, Finish::Stop)
        );
        let v = json!({"choices": [{"message": {"content": "y"}, "finish_reason": "length"}],
                       "usage": {"completion_tokens": 9}});
        assert_eq!(
            parse_generation(Api::Chat, &v).unwrap().finish,
            Finish::Length
        );
        let e = parse_generation(Api::Chat, &json!({"choices": [{"text": "y"}]})).unwrap_err();
        assert!(e.contains("message.content"), "{e}");
        let e =
            parse_generation(Api::Completions, &json!({"choices": [{"text": "y"}]})).unwrap_err();
        assert!(e.contains("usage.completion_tokens"), "{e}");
    }
}
