//! The request builder against the fixtures in `tests/fixtures/` (see its README for where the
//! bodies come from).

use serde_json::Value;
use trim_collect::api::{generation_body, pooling_body};
use trim_collect::config::CollectConfig;

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
