//! The live models of a collection: a step generator (weak or strong) and a step scorer (the
//! PRM). The scorer is a trait so that other scorers (a local classifier, another server API)
//! can be added beside vLLM's `/pooling`.

use std::future::Future;
use std::pin::Pin;

use crate::api::{self, Finish, Generated};
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
            (self.endpoint)
                .call("/pooling", &body, |v| api::parse_pooling(v, n))
                .await
        })
    }

    fn endpoint(&self) -> Option<&Endpoint> {
        Some(&self.endpoint)
    }
}

/// A weak or strong generator.
pub struct Generator {
    pub cfg: GeneratorConfig,
    pub sampling: Sampling,
    pub prompt: PromptConfig,
    pub endpoint: Endpoint,
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
}

impl Generator {
    /// Generate the next step after `steps`. A degenerate step (empty, punctuation or markdown
    /// only) is appended to the context and the model asked for one more step, whose text
    /// replaces it; its tokens are added (the release's rule), up to `max_splices` times.
    pub async fn step(&self, question: &str, steps: &[&str], seed: u64) -> Result<Step> {
        let mut context: Vec<&str> = steps.to_vec();
        let mut spliced: Vec<String> = vec![];
        let mut tokens = 0u32;
        let mut requests = 0u32;
        loop {
            let s = seed.wrapping_add(requests as u64);
            let g = self.generate(question, &context, s).await?;
            requests += 1;
            tokens = tokens.saturating_add(g.tokens);
            let splice = is_degenerate(&g.text)
                && g.finish == Finish::Stop
                && (spliced.len() as u32) < self.sampling.max_splices;
            if !splice {
                return Ok(Step {
                    text: g.text,
                    tokens: tokens.max(1),
                    finish: g.finish,
                    requests,
                });
            }
            spliced.push(g.text);
            context = steps.to_vec();
            context.extend(spliced.iter().map(String::as_str));
        }
    }

    async fn generate(&self, question: &str, steps: &[&str], seed: u64) -> Result<Generated> {
        let body = api::generation_body(
            &self.cfg,
            &self.sampling,
            &self.prompt,
            question,
            steps,
            seed,
        );
        let path = api::generation_path(self.cfg.api);
        let kind = self.cfg.api;
        self.endpoint
            .call(path, &body, |v| api::parse_generation(kind, v))
            .await
    }
}
