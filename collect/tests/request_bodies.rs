//! The request builder against the fixtures in `tests/fixtures/` (see its README for where the
//! bodies come from).

use serde_json::Value;
use trim_collect::api::{
    LogprobSum, generation_body, parse_generation, parse_logprobs, pooling_body, request_logprobs,
};
use trim_collect::config::{Api, CollectConfig};
use trim_collect::judge::{judge_body, parse_judge, render};

fn fixture(name: &str) -> Value {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn config(extra: &[&str]) -> CollectConfig {
    let mut o: Vec<String> = [
        "problems=p.jsonl",
        "out=o.parquet",
        "weak.model=Qwen/Qwen2.5-1.5B-Instruct",
        "weak.url=http://127.0.0.1:8000/v1",
        "strong.model=Qwen/Qwen2.5-7B-Instruct",
        "strong.url=http://127.0.0.1:8001/v1",
        "strong.api=chat",
        "prm.model=Qwen/Qwen2.5-Math-PRM-7B",
        "prm.url=http://127.0.0.1:8002",
    ]
    .map(String::from)
    .to_vec();
    o.extend(extra.iter().map(|s| s.to_string()));
    CollectConfig::load(None, &o).unwrap()
}

#[test]
fn vllm_completion_and_chat_bodies() {
    let c = config(&[]);
    let q = "What is 1+1?";
    let weak = generation_body(&c.weak, &c.sampling, &c.prompt, q, &["We add."], 42, 2048);
    assert_eq!(weak, fixture("vllm_completions.json"));
    let strong = generation_body(&c.strong, &c.sampling, &c.prompt, q, &["We add."], 42, 2048);
    assert_eq!(strong, fixture("vllm_chat.json"));
}

#[test]
fn hosted_chat_body_has_no_vllm_fields() {
    let c = config(&[
        "strong.model=gpt-4o-mini",
        "strong.vllm_extensions=false",
        "prompt.prefill=user",
    ]);
    let b = generation_body(
        &c.strong,
        &c.sampling,
        &c.prompt,
        "What is 1+1?",
        &["We add."],
        42,
        2048,
    );
    assert_eq!(b, fixture("hosted_chat.json"));
}

#[test]
fn pooling_bodies() {
    let steps = ["We add.", "So \\boxed{2}."];
    let c = config(&[]);
    let b = pooling_body(&c.prm, &c.prompt, "What is 1+1?", &steps);
    assert_eq!(b, fixture("vllm_pooling_messages.json"));
    let c = config(&["prm.input=text", "prm.extra.truncate_prompt_tokens=4096"]);
    let b = pooling_body(&c.prm, &c.prompt, "What is 1+1?", &steps);
    assert_eq!(b, fixture("vllm_pooling_text.json"));
}

#[test]
fn asking_for_logprobs_adds_one_field_in_each_apis_spelling() {
    let c = config(&[]);
    let q = "What is 1+1?";
    for (g, name, want) in [
        (&c.weak, "vllm_completions.json", serde_json::json!(1)),
        (&c.strong, "vllm_chat.json", serde_json::json!(true)),
    ] {
        let mut b = generation_body(g, &c.sampling, &c.prompt, q, &["We add."], 42, 2048);
        request_logprobs(g.api, &mut b);
        let mut expected = fixture(name);
        expected["logprobs"] = want;
        assert_eq!(b, expected, "{name}");
    }
}

/// Parse a response fixture as the collector does: the generation, then its step's tokens.
fn step_logprobs(api: Api, name: &str) -> (String, LogprobSum) {
    let v = fixture(name);
    let g = parse_generation(api, &v).unwrap();
    let lp = parse_logprobs(api, &v, &g.text, g.tokens).unwrap();
    (g.text, lp)
}

#[test]
fn vllm_logprob_responses_of_both_apis_are_parsed() {
    // Completions: the reported "\n\n" stop token is past the step text, so it is left out.
    let (text, lp) = step_logprobs(Api::Completions, "vllm_completions_logprobs_response.json");
    assert_eq!(text, "We add 1 and 1.");
    assert_eq!((lp.sum, lp.tokens), (-2.0, 6));
    assert!((lp.mean() - (-2.0 / 6.0)).abs() < 1e-6);
    // Chat: the last token ".\n\n" starts inside the text, so it counts.
    let (text, lp) = step_logprobs(Api::Chat, "vllm_chat_logprobs_response.json");
    assert_eq!(text, "Then 1 + 1 = 2.");
    assert_eq!((lp.sum, lp.tokens), (-3.0, 7));
    // The other API's parser refuses each shape (a misconfigured `api` is not read silently).
    let v = fixture("vllm_chat_logprobs_response.json");
    assert!(parse_logprobs(Api::Completions, &v, &text, 7).is_err());
}

#[test]
fn judge_request_body() {
    let mut c = config(&[
        "judge.model=Qwen/Qwen2.5-7B-Instruct",
        "judge.url=http://127.0.0.1:8001/v1",
    ]);
    let j = c.judge.take().unwrap();
    let text = render(&j.prompt, "What is 1+1?", &["We add."], "So \\boxed{2}.");
    assert_eq!(judge_body(&j, &text), fixture("judge_chat.json"));
    let reply =
        serde_json::json!({"choices": [{"message": {"role": "assistant", "content": "8"}}]});
    assert_eq!(parse_judge(Api::Chat, &reply).unwrap(), 8.0 / 9.0);
}
