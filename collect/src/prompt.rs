//! The prompt template: what the generators see before each step and what the PRM scores.
//!
//! As in the release (`../shared/reference/trim-paper.md` §1.1–1.2): the user turn is a math
//! instruction then `Question: <problem>`; the assistant turn is pre-filled with `Solution:`,
//! a blank line, the steps so far joined by blank lines, and a blank line, and the model
//! continues it up to the next `"\n\n"`. The PRM gets system = the instruction, user = the
//! question, assistant = every step followed by the step tag.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How a completions-API prompt is rendered client-side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatFormat {
    /// `<|im_start|>role\n…<|im_end|>\n` (Qwen and other ChatML models).
    Chatml,
    /// The user text, a blank line, then the assistant pre-fill (base models).
    Plain,
}

/// Where the partial solution goes in a chat request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefill {
    /// A final assistant message the server continues (`continue_final_message`; vLLM, SGLang).
    Assistant,
    /// Inside the user turn, with a request for the next step only (hosted APIs that cannot
    /// continue an assistant message).
    User,
}

/// The prompt template (`[prompt]` in `collect.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptConfig {
    /// The math instruction that opens the user turn (and is the PRM's system prompt).
    #[serde(default = "default_instruction")]
    pub instruction: String,
    #[serde(default = "default_question_prefix")]
    pub question_prefix: String,
    /// The assistant pre-fill before the first step.
    #[serde(default = "default_prefill_text")]
    pub solution_prefix: String,
    /// System prompt of the generators (none by default; Qwen's chat template then adds its own
    /// when the server renders it).
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default = "default_format")]
    pub format: ChatFormat,
    #[serde(default = "default_prefill")]
    pub prefill: Prefill,
}

impl Default for PromptConfig {
    fn default() -> Self {
        PromptConfig {
            instruction: default_instruction(),
            question_prefix: default_question_prefix(),
            solution_prefix: default_prefill_text(),
            system: None,
            format: default_format(),
            prefill: default_prefill(),
        }
    }
}

/// The release's instruction in substance (its exact wording is not part of our reference
/// material; set `prompt.instruction` to match another setup).
fn default_instruction() -> String {
    "Solve the following math problem step by step. Separate the steps with a blank line. \
     Present the final answer as \\boxed{X}, where X is the answer."
        .into()
}
fn default_question_prefix() -> String {
    "Question: ".into()
}
fn default_prefill_text() -> String {
    "Solution:".into()
}
fn default_format() -> ChatFormat {
    ChatFormat::Chatml
}
fn default_prefill() -> Prefill {
    Prefill::Assistant
}

/// The separator between steps, and the stop string of every generation.
pub const STEP_SEP: &str = "\n\n";

impl PromptConfig {
    /// The user turn.
    pub fn user(&self, question: &str) -> String {
        format!("{}\n\n{}{question}", self.instruction, self.question_prefix)
    }

    /// The assistant pre-fill: `Solution:`, a blank line, the steps joined by blank lines, and a
    /// blank line after them, so the model starts a fresh paragraph.
    pub fn assistant_prefix(&self, steps: &[&str]) -> String {
        let mut s = format!("{}{STEP_SEP}", self.solution_prefix);
        for step in steps {
            s.push_str(step);
            s.push_str(STEP_SEP);
        }
        s
    }

    /// A completions-API prompt.
    pub fn completion_prompt(&self, question: &str, steps: &[&str]) -> String {
        let user = self.user(question);
        let prefix = self.assistant_prefix(steps);
        match self.format {
            ChatFormat::Chatml => {
                let mut s = String::new();
                if let Some(sys) = &self.system {
                    s.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
                }
                s.push_str(&format!(
                    "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{prefix}"
                ));
                s
            }
            ChatFormat::Plain => format!("{user}{STEP_SEP}{prefix}"),
        }
    }

    /// Chat-API messages.
    pub fn chat_messages(&self, question: &str, steps: &[&str]) -> Vec<Value> {
        let mut m = vec![];
        if let Some(sys) = &self.system {
            m.push(json!({"role": "system", "content": sys}));
        }
        match self.prefill {
            Prefill::Assistant => {
                m.push(json!({"role": "user", "content": self.user(question)}));
                let prefix = self.assistant_prefix(steps);
                m.push(json!({"role": "assistant", "content": prefix}));
            }
            Prefill::User => {
                let so_far = self.assistant_prefix(steps);
                let content = format!(
                    "{}{STEP_SEP}Continue this partial solution with its next step only \
                     (one paragraph):{STEP_SEP}{so_far}",
                    self.user(question)
                );
                m.push(json!({"role": "user", "content": content}));
            }
        }
        m
    }

    /// The PRM's chat: system = instruction, user = question, assistant = each step followed by
    /// `tag`.
    pub fn prm_messages(&self, question: &str, steps: &[&str], tag: &str) -> Vec<Value> {
        vec![
            json!({"role": "system", "content": self.instruction}),
            json!({"role": "user", "content": question}),
            json!({"role": "assistant", "content": tagged(steps, tag)}),
        ]
    }

    /// [`prm_messages`](Self::prm_messages) rendered in ChatML.
    pub fn prm_text(&self, question: &str, steps: &[&str], tag: &str) -> String {
        format!(
            "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n\
             <|im_start|>assistant\n{}<|im_end|>\n",
            self.instruction,
            tagged(steps, tag)
        )
    }
}

fn tagged(steps: &[&str], tag: &str) -> String {
    let mut s = String::new();
    for step in steps {
        s.push_str(step);
        s.push_str(tag);
    }
    s
}

/// A step that carries no content: empty, or only whitespace, punctuation and markdown
/// characters (`---`, `**`, `#`). The release splices such steps out.
pub fn is_degenerate(step: &str) -> bool {
    step.chars()
        .all(|c| c.is_whitespace() || c.is_ascii_punctuation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefill_continues_exactly_what_the_model_wrote() {
        let p = PromptConfig::default();
        assert_eq!(p.assistant_prefix(&[]), "Solution:\n\n");
        assert_eq!(p.assistant_prefix(&["a", "b"]), "Solution:\n\na\n\nb\n\n");
        let c = p.completion_prompt("1+1?", &["a"]);
        assert!(
            c.starts_with("<|im_start|>user\nSolve the following"),
            "{c}"
        );
        assert!(
            c.ends_with("Question: 1+1?<|im_end|>\n<|im_start|>assistant\nSolution:\n\na\n\n"),
            "{c}"
        );
        let plain = PromptConfig {
            format: ChatFormat::Plain,
            ..p.clone()
        };
        assert!(
            plain
                .completion_prompt("q", &[])
                .ends_with("Question: q\n\nSolution:\n\n")
        );
    }

    #[test]
    fn the_prm_sees_every_step_tagged() {
        let p = PromptConfig::default();
        let m = p.prm_messages("q", &["a", "b"], "<extra_0>");
        assert_eq!(m[2]["content"], "a<extra_0>b<extra_0>");
        let t = p.prm_text("q", &["a"], "<extra_0>");
        assert!(
            t.ends_with("<|im_start|>assistant\na<extra_0><|im_end|>\n"),
            "{t}"
        );
    }

    #[test]
    fn degenerate_steps() {
        for s in ["", "  ", "---", "**", "# ", "***\n"] {
            assert!(is_degenerate(s), "{s:?}");
        }
        for s in ["x", "2", "---a", "\\boxed{1}"] {
            assert!(!is_degenerate(s), "{s:?}");
        }
    }
}
