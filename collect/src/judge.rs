//! Optional per-step signals beside the PRM score: the generators' token log-probabilities
//! (`[signals] logprobs = true` → each candidate's `mean_logprob`) and a judge model's rating
//! of every weak step (`[judge]` → `judge_score`), as SpecReason does: a stronger model reads
//! the problem, the solution so far and the new step and answers with one digit 0–9, which is
//! divided by 9. The routing rules of `trim report` read these columns; collecting them costs
//! one judge request per weak candidate (and nothing extra for log-probabilities).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{Api, EndpointLimits};
use crate::error::Result;
use crate::http::Endpoint;
use crate::prompt::{ChatFormat, STEP_SEP};

/// `[signals]` in `collect.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsConfig {
    /// Ask both generators for the sampled tokens' log-probabilities and record each
    /// candidate's mean (`mean_logprob`). Free: the servers compute them anyway.
    #[serde(default)]
    pub logprobs: bool,
}

impl SignalsConfig {
    /// Nothing asked for (then the section is left out of `run.json`, so switching signals
    /// on is a different collection, while runs without them resume as before).
    pub fn is_off(&self) -> bool {
        !self.logprobs
    }
}

/// `[judge]` in `collect.toml`: the model that rates every weak step.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    pub model: String,
    /// Base URL up to and including `/v1`.
    pub url: String,
    /// `chat` (default: the server applies the judge's chat template) or `completions`
    /// (the prompt is wrapped client-side in `format`).
    #[serde(default = "default_api")]
    pub api: Api,
    #[serde(default = "default_format")]
    pub format: ChatFormat,
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Tokens of the reply: a digit needs one, a few more tolerate `Score: 7`.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// The judge's prompt, with `{question}`, `{steps}` (the solution so far, steps separated
    /// by blank lines) and `{step}` (the step rated; required).
    #[serde(default = "default_prompt")]
    pub prompt: String,
    /// Extra JSON fields merged into every request body.
    #[serde(default)]
    pub extra: Option<toml::Table>,
    #[serde(default)]
    pub limits: EndpointLimits,
}

fn default_api() -> Api {
    Api::Chat
}
fn default_format() -> ChatFormat {
    ChatFormat::Chatml
}
fn default_max_tokens() -> u32 {
    4
}

/// SpecReason's judging instruction in substance (its exact wording is not in our reference
/// material): judge only the new step's correctness, answer with one digit.
pub fn default_prompt() -> String {
    "You are verifying one step of a step-by-step math solution.\n\n\
     Problem:\n{question}\n\n\
     Solution so far:\n{steps}\n\n\
     New step:\n{step}\n\n\
     Rate the new step from 0 to 9 on factual correctness and logical validity only \
     (ignore style and whether it is the most useful step): 0 means certainly wrong, 9 means \
     certainly correct. Answer with a single digit."
        .into()
}

/// What `{steps}` becomes before the first step.
pub const NO_STEPS: &str = "(no steps yet)";

impl JudgeConfig {
    /// Range checks; the message names the field.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "field `judge.url`: `{}` is not an http:// or https:// URL",
                self.url
            ));
        }
        if !self.prompt.contains("{step}") {
            return Err("field `judge.prompt`: must contain `{step}` (the step rated)".into());
        }
        if self.max_tokens == 0 {
            return Err("field `judge.max_tokens`: must be ≥ 1".into());
        }
        let l = &self.limits;
        if l.max_in_flight == 0 {
            return Err("field `judge.limits.max_in_flight`: must be ≥ 1".into());
        }
        if !(l.timeout_s > 0.0 && l.timeout_s.is_finite()) {
            return Err("field `judge.limits.timeout_s`: must be > 0".into());
        }
        Ok(())
    }
}

/// The judge prompt for `step` after `steps`: the placeholders are replaced in one pass, so a
/// question that happens to contain `{step}` is shown as written.
pub fn render(template: &str, question: &str, steps: &[&str], step: &str) -> String {
    let so_far = if steps.is_empty() {
        NO_STEPS.to_string()
    } else {
        steps.join(STEP_SEP)
    };
    let mut out = String::with_capacity(template.len() + so_far.len() + step.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let hit = [
            ("{question}", question),
            ("{steps}", so_far.as_str()),
            ("{step}", step),
        ]
        .into_iter()
        .find(|(k, _)| tail.starts_with(k));
        match hit {
            Some((k, v)) => {
                out.push_str(v);
                rest = &tail[k.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The body of one judge request: greedy (temperature 0), a few tokens.
pub fn judge_body(cfg: &JudgeConfig, text: &str) -> Value {
    let mut b = Map::new();
    b.insert("model".into(), json!(cfg.model));
    match cfg.api {
        Api::Chat => {
            b.insert(
                "messages".into(),
                json!([{"role": "user", "content": text}]),
            );
        }
        Api::Completions => {
            let prompt = match cfg.format {
                ChatFormat::Chatml => {
                    format!("<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")
                }
                ChatFormat::Plain => format!("{text}{STEP_SEP}"),
            };
            b.insert("prompt".into(), json!(prompt));
        }
    }
    b.insert("max_tokens".into(), json!(cfg.max_tokens));
    b.insert("temperature".into(), json!(0.0));
    b.insert("n".into(), json!(1));
    for (k, v) in cfg.extra.iter().flatten() {
        if let Ok(j) = serde_json::to_value(v) {
            b.insert(k.clone(), j);
        }
    }
    Value::Object(b)
}

/// The judge score of a reply: its first digit 0–9, divided by 9. A reply without a digit is
/// malformed (retried like any malformed body).
pub fn parse_judge(api: Api, v: &Value) -> std::result::Result<f32, String> {
    let choice = (v.get("choices").and_then(|c| c.get(0)))
        .ok_or("no `choices[0]` in the judge's response")?;
    let text = match api {
        Api::Completions => choice.get("text"),
        Api::Chat => choice.get("message").and_then(|m| m.get("content")),
    }
    .and_then(Value::as_str)
    .ok_or("the judge's reply has no text")?;
    let digit = (text.chars()).find_map(|c| c.to_digit(10)).ok_or_else(|| {
        let shown: String = text.chars().take(80).collect();
        format!("the judge's reply {shown:?} has no digit 0–9")
    })?;
    Ok(digit as f32 / 9.0)
}

/// A judge endpoint.
pub struct Judge {
    pub cfg: JudgeConfig,
    pub endpoint: Endpoint,
}

impl Judge {
    /// Connect to `cfg`'s endpoint (reads the key variable now, so a missing one fails first).
    pub fn new(cfg: &JudgeConfig) -> Result<Judge> {
        let endpoint = Endpoint::new("judge", &cfg.url, cfg.api_key_env.as_deref(), &cfg.limits)?;
        Ok(Judge {
            cfg: cfg.clone(),
            endpoint,
        })
    }

    /// The judge score of `step` written after `steps`, in `[0, 1]`.
    pub async fn rate(&self, question: &str, steps: &[&str], step: &str) -> Result<f32> {
        let text = render(&self.cfg.prompt, question, steps, step);
        let body = judge_body(&self.cfg, &text);
        let path = crate::api::generation_path(self.cfg.api);
        let api = self.cfg.api;
        self.endpoint
            .call(path, &body, |v| parse_judge(api, v))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> JudgeConfig {
        toml::from_str("model = \"j\"\nurl = \"http://127.0.0.1:1/v1\"").unwrap()
    }

    #[test]
    fn the_prompt_is_rendered_in_one_pass() {
        let p = render(
            "Q {question} S {steps} N {step} {other}",
            "a {step}",
            &[],
            "x",
        );
        assert_eq!(p, format!("Q a {{step}} S {NO_STEPS} N x {{other}}"));
        let p = render(&default_prompt(), "1+1?", &["We add.", "It is 2."], "So 3.");
        assert!(
            p.contains("Solution so far:\nWe add.\n\nIt is 2.\n\nNew step:\nSo 3.\n\n"),
            "{p}"
        );
        assert!(p.contains("single digit"), "{p}");
    }

    #[test]
    fn replies_give_their_first_digit_over_nine() {
        let chat = |s: &str| json!({"choices": [{"message": {"content": s}}]});
        assert_eq!(parse_judge(Api::Chat, &chat("9")).unwrap(), 1.0);
        assert_eq!(
            parse_judge(Api::Chat, &chat("Score: 3/9")).unwrap(),
            3.0 / 9.0
        );
        assert_eq!(parse_judge(Api::Chat, &chat(" 0\n")).unwrap(), 0.0);
        let done = json!({"choices": [{"text": "7"}]});
        assert_eq!(parse_judge(Api::Completions, &done).unwrap(), 7.0 / 9.0);
        let e = parse_judge(Api::Chat, &chat("I cannot tell.")).unwrap_err();
        assert!(
            e.contains("no digit") && e.contains("I cannot tell."),
            "{e}"
        );
        assert!(
            parse_judge(Api::Chat, &done).is_err(),
            "a chat reply has a message"
        );
        assert!(parse_judge(Api::Chat, &json!({"choices": []})).is_err());
    }

    #[test]
    fn bodies_are_greedy_and_short() {
        let c = cfg();
        let b = judge_body(&c, "rate it");
        assert_eq!(b["messages"][0]["content"], "rate it");
        assert_eq!(
            (b["temperature"].as_f64(), b["max_tokens"].as_u64()),
            (Some(0.0), Some(4))
        );
        let c = JudgeConfig {
            api: Api::Completions,
            ..cfg()
        };
        let p = judge_body(&c, "rate it")["prompt"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(p.starts_with("<|im_start|>user\nrate it<|im_end|>"), "{p}");
    }

    #[test]
    fn bad_judge_settings_are_named() {
        let bad = |c: JudgeConfig, want: &str| {
            let e = c.check().unwrap_err();
            assert!(e.contains(want), "{e}");
        };
        assert!(cfg().check().is_ok());
        bad(
            JudgeConfig {
                prompt: "rate {question}".into(),
                ..cfg()
            },
            "judge.prompt",
        );
        bad(
            JudgeConfig {
                url: "localhost:1".into(),
                ..cfg()
            },
            "judge.url",
        );
        bad(
            JudgeConfig {
                max_tokens: 0,
                ..cfg()
            },
            "judge.max_tokens",
        );
    }
}
