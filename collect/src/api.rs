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
    /// Log-probabilities of the step's tokens, when they were asked for (`signals.logprobs`).
    pub logprobs: Option<LogprobSum>,
}

/// The summed log-probability of a step's tokens and how many there were: sums, not means, so
/// a step spliced from several requests gets the token-weighted mean of all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogprobSum {
    pub sum: f64,
    pub tokens: u32,
}

/// Both requests' tokens together.
impl std::ops::Add for LogprobSum {
    type Output = LogprobSum;
    fn add(self, o: LogprobSum) -> LogprobSum {
        LogprobSum {
            sum: self.sum + o.sum,
            tokens: self.tokens + o.tokens,
        }
    }
}

impl LogprobSum {
    /// The mean token log-probability (≤ 0); 0 for a generation without tokens (nothing was
    /// uncertain), so the value is always one the dataset accepts.
    pub fn mean(self) -> f32 {
        if self.tokens == 0 {
            return 0.0;
        }
        ((self.sum / f64::from(self.tokens)) as f32).min(0.0)
    }
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
        logprobs: None,
    })
}

/// Ask a generation request for the sampled tokens' log-probabilities, in each API's spelling:
/// `"logprobs": 1` on `/v1/completions` (the sampled token's, plus the top one), `"logprobs":
/// true` on `/v1/chat/completions`.
pub fn request_logprobs(api: Api, body: &mut Value) {
    if let Value::Object(b) = body {
        let v = match api {
            Api::Completions => json!(1),
            Api::Chat => json!(true),
        };
        b.insert("logprobs".into(), v);
    }
}

/// The log-probabilities of the tokens that make up `text` (the step as the server cut it),
/// from `choices[0].logprobs.token_logprobs` (completions; with `tokens`) or
/// `choices[0].logprobs.content[i].logprob` (chat; with `token`). Tokens past the end of the
/// text (the `"\n\n"` stop token, which servers may report though the text omits it) are left
/// out when the token strings allow aligning them; nulls (the first token of an echoed prompt)
/// are skipped. `generated` is the response's completion-token count: an empty list for a
/// non-empty generation is malformed, as is a missing list — the request asked for it.
pub fn parse_logprobs(
    api: Api,
    v: &Value,
    text: &str,
    generated: u32,
) -> Result<LogprobSum, String> {
    let lp = v
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("logprobs"))
        .filter(|l| !l.is_null())
        .ok_or(
            "no `choices[0].logprobs` in the response (log-probabilities were asked for: \
             `signals.logprobs = true`; does the server support them?)",
        )?;
    let entries = match api {
        Api::Completions => completion_entries(lp)?,
        Api::Chat => chat_entries(lp)?,
    };
    if entries.is_empty() && generated > 0 {
        return Err(format!(
            "`choices[0].logprobs` lists no tokens for {generated} generated tokens"
        ));
    }
    Ok(step_sum(&entries, text))
}

/// One reported token: its text (when given) and log-probability (None: null).
type Entry<'a> = (Option<&'a str>, Option<f64>);

fn completion_entries(lp: &Value) -> Result<Vec<Entry<'_>>, String> {
    let values = (lp.get("token_logprobs").and_then(Value::as_array))
        .ok_or("`choices[0].logprobs.token_logprobs` is missing or not a list")?;
    let tokens = lp.get("tokens").and_then(Value::as_array);
    let mut out = Vec::with_capacity(values.len());
    for (i, x) in values.iter().enumerate() {
        let t = tokens.and_then(|t| t.get(i)).and_then(Value::as_str);
        out.push((t, logprob(x, || format!("token_logprobs[{i}]"))?));
    }
    Ok(out)
}

fn chat_entries(lp: &Value) -> Result<Vec<Entry<'_>>, String> {
    let content = (lp.get("content").and_then(Value::as_array))
        .ok_or("`choices[0].logprobs.content` is missing or not a list")?;
    let mut out = Vec::with_capacity(content.len());
    for (i, e) in content.iter().enumerate() {
        let x = e.get("logprob").unwrap_or(&Value::Null);
        let t = e.get("token").and_then(Value::as_str);
        out.push((t, logprob(x, || format!("content[{i}].logprob"))?));
    }
    Ok(out)
}

/// A log-probability: null, or a number ≤ 0 (a rounding hair above 0 is read as 0).
fn logprob(x: &Value, field: impl Fn() -> String) -> Result<Option<f64>, String> {
    match x {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() && f <= 1e-4 => Ok(Some(f.min(0.0))),
            _ => Err(format!(
                "`{}` = {n} is not a log-probability (≤ 0)",
                field()
            )),
        },
        other => Err(format!("`{}` = {other} is not a number", field())),
    }
}

/// Sum the entries that belong to `text`: with every token string given, those that start
/// inside the text (a token straddling the boundary counts, one after it does not); without
/// them, or when none starts inside (an empty step), every non-null entry.
fn step_sum(entries: &[Entry<'_>], text: &str) -> LogprobSum {
    let sum_of = |keep: &dyn Fn(usize) -> bool| {
        (entries.iter().enumerate())
            .filter(|(i, _)| keep(*i))
            .filter_map(|(_, (_, x))| *x)
            .fold(LogprobSum::default(), |a, x| LogprobSum {
                sum: a.sum + x,
                tokens: a.tokens + 1,
            })
    };
    if entries.iter().all(|(t, _)| t.is_some()) {
        let mut starts = Vec::with_capacity(entries.len());
        let mut at = 0usize;
        for (t, _) in entries {
            starts.push(at);
            at += t.map_or(0, str::len);
        }
        let inside = sum_of(&|i| starts[i] < text.len());
        if inside.tokens > 0 {
            return inside;
        }
    }
    sum_of(&|_| true)
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
    fn logprobs_cover_the_step_text_and_stop_at_its_boundary() {
        // Completions: a null first entry is skipped; the "\n\n" stop token is left out.
        let v = json!({"choices": [{"text": "x = 2", "logprobs": {
            "tokens": ["x", " =", " 2", "\n\n"],
            "token_logprobs": [null, -0.5, -1.5, -0.1]}}]});
        let s = parse_logprobs(Api::Completions, &v, "x = 2", 4).unwrap();
        assert_eq!((s.sum, s.tokens), (-2.0, 2));
        assert_eq!(s.mean(), -1.0);
        // Chat: a token straddling the boundary belongs to the step.
        let v = json!({"choices": [{"logprobs": {"content": [
            {"token": "x", "logprob": -1.0}, {"token": " 2.\n\n", "logprob": -3.0},
            {"token": "y", "logprob": -9.0}]}}]});
        let s = parse_logprobs(Api::Chat, &v, "x 2.", 3).unwrap();
        assert_eq!((s.sum, s.tokens), (-4.0, 2));
        // No token strings: every value counts. An empty step: its stop token's.
        let v = json!({"choices": [{"logprobs": {"token_logprobs": [-1.0, -2.0, 0.0]}}]});
        assert_eq!(
            parse_logprobs(Api::Completions, &v, "ab", 3)
                .unwrap()
                .tokens,
            3
        );
        let v =
            json!({"choices": [{"logprobs": {"content": [{"token": "\n\n", "logprob": -0.5}]}}]});
        assert_eq!(parse_logprobs(Api::Chat, &v, "", 1).unwrap().mean(), -0.5);
        // Spliced requests: the token-weighted mean.
        let a = LogprobSum {
            sum: -1.0,
            tokens: 1,
        };
        let b = LogprobSum {
            sum: -5.0,
            tokens: 3,
        };
        assert_eq!((a + b).mean(), -1.5);
        assert_eq!(LogprobSum::default().mean(), 0.0);
    }

    #[test]
    fn missing_or_bad_logprobs_are_malformed() {
        let text = json!({"choices": [{"text": "x"}]});
        let e = parse_logprobs(Api::Completions, &text, "x", 1).unwrap_err();
        assert!(
            e.contains("choices[0].logprobs") && e.contains("signals.logprobs"),
            "{e}"
        );
        let null = json!({"choices": [{"text": "x", "logprobs": null}]});
        assert!(parse_logprobs(Api::Completions, &null, "x", 1).is_err());
        let wrong_shape = json!({"choices": [{"logprobs": {"token_logprobs": [-1.0]}}]});
        let e = parse_logprobs(Api::Chat, &wrong_shape, "x", 1).unwrap_err();
        assert!(e.contains("content"), "{e}");
        for (bad, want) in [
            (json!([0.5]), "not a log-probability"),
            (json!(["a"]), "not a number"),
            (json!([]), "no tokens for 1"),
        ] {
            let v = json!({"choices": [{"logprobs": {"token_logprobs": bad}}]});
            let e = parse_logprobs(Api::Completions, &v, "x", 1).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let mut body = json!({"model": "m"});
        request_logprobs(Api::Completions, &mut body);
        assert_eq!(body["logprobs"], 1);
        request_logprobs(Api::Chat, &mut body);
        assert_eq!(body["logprobs"], true);
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
