//! The live models of a collection: a step generator (weak or strong) and a step scorer (the
//! PRM). The scorer is a trait so that other scorers (a local classifier, another server API)
//! can be added beside vLLM's `/pooling`.

use std::future::Future;
use std::pin::Pin;

use crate::api::{self, Finish, Generated, LogprobSum};
use crate::config::{GeneratorConfig, PrmConfig, Sampling};
use crate::error::Result;
use crate::http::Endpoint;
use crate::prompt::{PromptConfig, is_degenerate};

/// A boxed future borrowing its arguments (what an object-safe async trait method returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Scores a solution prefix step by step.
pub trait StepScorer: Send + Sync {
    /// The scoring model's name, for provenance.
    fn model(&self) -> &str;
    /// One score in `[0, 1]` per step of `steps` (the candidate is the last), each in the
    /// context of the steps before it.
    fn score<'a>(
        &'a self,
        question: &'a str,
        steps: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<f32>>>;
    /// The endpoint behind it, when there is one (for the summary).
    fn endpoint(&self) -> Option<&Endpoint> {
        None
    }
}

/// A step-reward model behind vLLM's `/pooling` (STEP pooler, e.g. Qwen2.5-Math-PRM-7B).
pub struct PoolingPrm {
    pub cfg: PrmConfig,
    pub prompt: PromptConfig,
    pub endpoint: Endpoint,
}

impl StepScorer for PoolingPrm {
    fn model(&self) -> &str {
        &self.cfg.model
    }

    fn score<'a>(
        &'a self,
        question: &'a str,
        steps: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let body = api::pooling_body(&self.cfg, &self.prompt, question, steps);
            let n = steps.len();
            let pad = self.truncates();
            (self.endpoint)
                .call("/pooling", &body, |v| api::parse_pooling(v, n, pad))
                .await
        })
    }

    fn endpoint(&self) -> Option<&Endpoint> {
        Some(&self.endpoint)
    }
}

impl PoolingPrm {
    /// The request asks the server to left-truncate long inputs (vLLM's
    /// `truncate_prompt_tokens`), so fewer scores than steps can come back.
    fn truncates(&self) -> bool {
        (self.cfg.extra.as_ref()).is_some_and(|e| e.contains_key("truncate_prompt_tokens"))
    }
}

/// A weak or strong generator.
pub struct Generator {
    pub cfg: GeneratorConfig,
    pub sampling: Sampling,
    pub prompt: PromptConfig,
    pub endpoint: Endpoint,
    /// Ask for token log-probabilities (`signals.logprobs`); a response without them is then
    /// malformed, because the step's `mean_logprob` would be missing.
    pub logprobs: bool,
}

/// One step after degenerate splicing.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub text: String,
    /// All tokens decoded for it, spliced-out degenerate text included (≥ 1).
    pub tokens: u32,
    pub finish: Finish,
    /// Generation requests it took.
    pub requests: u32,
    /// Prompt tokens of the request that wrote it (reported, else estimated).
    pub prompt_tokens: u32,
    /// Mean token log-probability over every request that wrote it, spliced-out text included
    /// (token-weighted, like the token count); None unless log-probabilities were asked for.
    pub mean_logprob: Option<f32>,
}

impl Generator {
    /// Generate the next step after `steps`. A degenerate step (empty, punctuation or markdown
    /// only) is appended to the context and the model asked for one more step, whose text
    /// replaces it; its tokens are added (the release's rule), up to `max_splices` times.
    ///
    /// `prompt_est` is the prompt's length in tokens as far as the caller knows it (None: the
    /// first step, estimated from its characters); the step may use
    /// `min(max_tokens, context_len − prompt)` tokens, as in the release.
    pub async fn step(
        &self,
        question: &str,
        steps: &[&str],
        seed: u64,
        prompt_est: Option<u32>,
    ) -> Result<Step> {
        let mut context: Vec<&str> = steps.to_vec();
        let mut spliced: Vec<String> = vec![];
        let mut tokens = 0u32;
        let mut requests = 0u32;
        let mut logprobs: Option<LogprobSum> = None;
        let mut prompt = prompt_est.unwrap_or_else(|| self.estimate(question, steps));
        loop {
            let s = seed.wrapping_add(requests as u64);
            let g = self
                .generate(question, &context, s, self.room(prompt))
                .await?;
            requests += 1;
            prompt = g.prompt_tokens.unwrap_or(prompt);
            tokens = tokens.saturating_add(g.tokens);
            if let Some(lp) = g.logprobs {
                logprobs = Some(logprobs.unwrap_or_default() + lp);
            }
            let splice = is_degenerate(&g.text)
                && g.finish == Finish::Stop
                && (spliced.len() as u32) < self.sampling.max_splices;
            if !splice {
                return Ok(Step {
                    text: g.text,
                    tokens: tokens.max(1),
                    finish: g.finish,
                    requests,
                    prompt_tokens: prompt,
                    mean_logprob: logprobs.map(LogprobSum::mean),
                });
            }
            prompt = prompt.saturating_add(g.tokens + 2);
            spliced.push(g.text);
            context = steps.to_vec();
            context.extend(spliced.iter().map(String::as_str));
        }
    }

    /// Tokens the next step may use after a prompt of `prompt` tokens (≥ 1).
    pub fn room(&self, prompt: u32) -> u32 {
        let max = self.sampling.max_tokens;
        match self.sampling.context_len {
            0 => max,
            ctx => max.min(ctx.saturating_sub(prompt)).max(1),
        }
    }

    /// A prompt's length before any server reported it: a quarter more than characters / 4.
    fn estimate(&self, question: &str, steps: &[&str]) -> u32 {
        let chars = self
            .prompt
            .completion_prompt(question, steps)
            .chars()
            .count();
        (chars as u32 / 4) * 5 / 4
    }

    async fn generate(
        &self,
        question: &str,
        steps: &[&str],
        seed: u64,
        max_tokens: u32,
    ) -> Result<Generated> {
        let (g, s, p) = (&self.cfg, &self.sampling, &self.prompt);
        let mut body = api::generation_body(g, s, p, question, steps, seed, max_tokens);
        let (path, kind, want) = (api::generation_path(g.api), g.api, self.logprobs);
        if want {
            api::request_logprobs(kind, &mut body);
        }
        let parse = |v: &serde_json::Value| {
            let mut g = api::parse_generation(kind, v)?;
            if want {
                g.logprobs = Some(api::parse_logprobs(kind, v, &g.text, g.tokens)?);
            }
            Ok(g)
        };
        self.endpoint.call(path, &body, parse).await
    }
}
