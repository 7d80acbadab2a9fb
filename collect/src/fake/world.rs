//! The fake models' latent world: each problem has a known answer and solution length; each
//! step a model writes is correct or an error (the weak model errs more often); an error
//! anywhere makes the final answer wrong; the PRM scores steps from their hidden correctness
//! with noise. Deterministic given the request (model, prompt, seed), like a seeded server.

use trim_env::Rng;

use crate::http::fnv;

/// Marks an erroneous step in the fake text (what the fake PRM "sees").
pub const ERROR_WORD: &str = "incorrectly";

/// Parameters of the fake world.
#[derive(Clone, Debug)]
pub struct FakeWorld {
    pub weak_model: String,
    pub strong_model: String,
    pub prm_model: String,
    /// The judge ([`super::signals`]): rates the step after `New step:` in its prompt.
    pub judge_model: String,
    /// Per-step error probability of each model.
    pub weak_error: f64,
    pub strong_error: f64,
    /// Probability of a degenerate `---` step (spliced out by the collector).
    pub degenerate: f64,
    /// Probability that a step hits the token limit (`finish_reason: length`).
    pub length_stop: f64,
    /// Steps of a correct solution (inclusive range, chosen per question).
    pub steps: (usize, usize),
    /// Words (≈ tokens) of a weak and of a strong step (inclusive ranges).
    pub weak_words: (usize, usize),
    pub strong_words: (usize, usize),
}

impl Default for FakeWorld {
    fn default() -> Self {
        FakeWorld {
            weak_model: "fake-weak".into(),
            strong_model: "fake-strong".into(),
            prm_model: "fake-prm".into(),
            judge_model: "fake-judge".into(),
            weak_error: 0.25,
            strong_error: 0.05,
            degenerate: 0.05,
            length_stop: 0.01,
            steps: (3, 6),
            weak_words: (4, 15),
            strong_words: (4, 15),
        }
    }
}

impl FakeWorld {
    /// Shaped like Qwen2.5-1.5B → 7B on MATH-train as the shipped synthetic world measures it
    /// (`trim data stats data/sets/synth-math.parquet`: weak 7.7 steps of 68 tokens, 38 %
    /// correct; strong 8.6 steps of 94 tokens, 77 %): 6–10 steps, per-step error 0.12 / 0.03.
    /// For cost estimates of the expansion strategies (`trim bench-collect --costs`).
    pub fn math_like() -> Self {
        FakeWorld {
            weak_error: 0.12,
            strong_error: 0.03,
            steps: (6, 10),
            weak_words: (34, 100),
            strong_words: (47, 141),
            ..FakeWorld::default()
        }
    }

    /// Steps in a correct solution of `question`.
    pub fn solution_length(&self, question: &str) -> usize {
        let (lo, hi) = self.steps;
        lo + (fnv(question.as_bytes()) >> 20) as usize % (hi - lo + 1)
    }
}

/// The reference answer of a fake question.
pub fn answer(question: &str) -> String {
    (fnv(question.as_bytes()) % 1000).to_string()
}

/// `n` fake problems as a JSONL problem file (id, question, answer, split: 80 % train).
pub fn problem_file(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let q = format!("Compute the value of expression number {i}.");
        let split = if i % 5 == 4 { "test" } else { "train" };
        let line = serde_json::json!({"id": format!("fake-{i}"), "question": q,
            "answer": answer(&q), "split": split});
        s.push_str(&line.to_string());
        s.push('\n');
    }
    s
}

/// One generated step.
pub struct FakeStep {
    pub text: String,
    pub tokens: u32,
    pub length_stop: bool,
}

impl FakeWorld {
    /// The next step `model` writes after `steps` (degenerate ones included, as sent).
    pub fn step(&self, model: &str, question: &str, steps: &[&str], seed: u64) -> FakeStep {
        let key = format!(
            "{model}\u{1}{question}\u{1}{}\u{1}{seed}",
            steps.join("\u{2}")
        );
        let mut rng = Rng::new(fnv(key.as_bytes()));
        let real: Vec<&&str> = steps
            .iter()
            .filter(|s| !crate::prompt::is_degenerate(s))
            .collect();
        let k = real.len();
        let len = self.solution_length(question);
        let p_err = if model == self.strong_model {
            self.strong_error
        } else {
            self.weak_error
        };
        let (deg, length, err) = (
            rng.bernoulli(self.degenerate),
            rng.bernoulli(self.length_stop),
            rng.bernoulli(p_err),
        );
        let (lo, hi) = if model == self.strong_model {
            self.strong_words
        } else {
            self.weak_words
        };
        let words = lo + rng.below((hi - lo + 1) as u64) as usize;
        if deg && k + 1 < len {
            return FakeStep {
                text: "---".into(),
                tokens: 2,
                length_stop: false,
            };
        }
        if length {
            let text = "so on ".repeat(40);
            return FakeStep {
                text,
                tokens: 80,
                length_stop: true,
            };
        }
        let mark = if err { ERROR_WORD } else { "carefully" };
        let filler: Vec<&str> = (0..words)
            .map(|j| ["we", "then", "add", "the", "terms", "so", "that"][(j + k) % 7])
            .collect();
        let text = if k + 1 >= len {
            let wrong = err || real.iter().any(|s| s.contains(ERROR_WORD));
            let truth = answer(question);
            let ans = if wrong {
                format!("{}", truth.parse::<u64>().unwrap_or(0) + 1)
            } else {
                truth
            };
            format!(
                "Step {}: {} {mark}, therefore the answer is \\boxed{{{ans}}}.",
                k + 1,
                filler.join(" ")
            )
        } else {
            format!("Step {}: {} {mark}.", k + 1, filler.join(" "))
        };
        let tokens = text.split_whitespace().count() as u32 + 2;
        FakeStep {
            text,
            tokens,
            length_stop: false,
        }
    }

    /// PRM scores (p_correct) of each step: high for a correct step, low for an erroneous
    /// one, middling after an earlier error, with deterministic noise.
    pub fn scores(&self, steps: &[&str]) -> Vec<f64> {
        let mut earlier_error = false;
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let err = s.contains(ERROR_WORD);
                let base = if err {
                    0.25
                } else if earlier_error {
                    0.5
                } else {
                    0.8
                };
                earlier_error |= err;
                let noise = (fnv(format!("{i}\u{1}{s}").as_bytes()) % 1000) as f64 / 1000.0 - 0.5;
                (base + 0.3 * noise).clamp(0.001, 0.999)
            })
            .collect()
    }
}

/// The question and the steps so far from a rendered prompt or concatenated messages: the
/// question follows `Question: ` up to the end of its line or turn; the steps are the
/// paragraphs after the last `Solution:`.
pub fn parse_prompt(text: &str) -> (String, Vec<String>) {
    let question = text
        .split_once("Question: ")
        .map(|(_, r)| r.split(['\n', '<']).next().unwrap_or("").to_string())
        .unwrap_or_default();
    let steps = match text.rsplit_once("Solution:") {
        Some((_, r)) => r
            .split("\n\n")
            .map(|s| s.trim_matches(|c: char| c == ' ').to_string())
            .filter(|s| !s.is_empty() && !s.starts_with("<|im_end|>"))
            .collect(),
        None => vec![],
    };
    (question, steps)
}
