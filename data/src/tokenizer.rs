//! Token counting with a real BPE whose vocabulary ships inside the `tiktoken-rs` crate
//! (no download at run time).

/// Name recorded in dataset metadata.
pub const TOKENIZER_NAME: &str =
    "cl100k_base BPE (OpenAI tiktoken vocabulary embedded in the tiktoken-rs 0.12.1 crate)";

/// Counts tokens of step texts.
pub struct TokenCounter {
    bpe: &'static tiktoken_rs::CoreBPE,
}

impl Default for TokenCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCounter {
    /// The shared cl100k_base encoder (built once per process).
    pub fn new() -> Self {
        TokenCounter {
            bpe: tiktoken_rs::cl100k_base_singleton(),
        }
    }

    /// Tokens in `text`; at least 1 (an empty step still costs a stop token).
    pub fn count(&self, text: &str) -> u32 {
        (self.bpe.encode_ordinary(text).len() as u32).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_cl100k() {
        let t = TokenCounter::new();
        assert_eq!(t.count("hello world"), 2);
        assert_eq!(t.count(""), 1);
        assert!(t.count("Let $x = 2$. Then $x^2 = 4$.") > 8);
    }
}
