//! One endpoint's client: a bounded number of requests in flight, a timeout per attempt, and
//! retries with exponential backoff on what is worth retrying (5xx, 429, 408, timeouts,
//! dropped connections, a body that is not the JSON expected). A 4xx other than those is a
//! configuration error (wrong model name, bad field) and fails at once with the server's words.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::EndpointLimits;
use crate::error::{CollectError, Result};

/// Counters of one endpoint, for the summary and the benchmarks.
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Requests that got a usable answer.
    pub ok: AtomicU64,
    /// Attempts retried.
    pub retries: AtomicU64,
    /// Requests that failed after every retry (or at once on a 4xx).
    pub failed: AtomicU64,
}

/// A client of one endpoint.
pub struct Endpoint {
    /// `weak`, `strong` or `prm`, for messages.
    pub role: &'static str,
    base: String,
    client: reqwest::Client,
    key: Option<String>,
    permits: Semaphore,
    limits: EndpointLimits,
    pub stats: Arc<EndpointStats>,
}

impl Endpoint {
    /// A client of `base` (no trailing slash needed); the key is read from `key_env` now, so a
    /// missing variable fails before any request.
    pub fn new(
        role: &'static str,
        base: &str,
        key_env: Option<&str>,
        limits: &EndpointLimits,
    ) -> Result<Endpoint> {
        let key = match key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                CollectError::config(
                    format!("{role}.api_key_env"),
                    format!("environment variable {var} is not set"),
                )
            })?),
            None => None,
        };
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(limits.max_in_flight)
            .build()
            .map_err(|e| CollectError::endpoint(role, format!("cannot build a client: {e}")))?;
        Ok(Endpoint {
            role,
            base: base.trim_end_matches('/').to_string(),
            client,
            key,
            permits: Semaphore::new(limits.max_in_flight),
            limits: limits.clone(),
            stats: Arc::default(),
        })
    }

    /// The URL without credentials or query (what provenance records).
    pub fn public_url(&self) -> String {
        public_url(&self.base)
    }

    /// POST `body` to `path` and parse the JSON answer with `parse`, retrying as described in
    /// the module docs.
    pub async fn call<T>(
        &self,
        path: &str,
        body: &Value,
        parse: impl Fn(&Value) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let url = format!("{}{path}", self.base);
        let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
        let mut last = String::new();
        for attempt in 0..=self.limits.retries {
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.backoff(attempt, &bytes)).await;
            }
            match self.attempt(&url, &bytes, &parse).await {
                Ok(t) => {
                    self.stats.ok.fetch_add(1, Ordering::Relaxed);
                    return Ok(t);
                }
                Err(Attempt::Retry(why)) => last = why,
                Err(Attempt::Fatal(why)) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    return Err(CollectError::Refused {
                        endpoint: self.describe(path),
                        msg: why,
                    });
                }
            }
        }
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        Err(CollectError::endpoint(
            self.describe(path),
            format!(
                "failed after {} attempts; last: {last}",
                self.limits.retries + 1
            ),
        ))
    }

    fn describe(&self, path: &str) -> String {
        format!("{} endpoint {}{path}", self.role, self.public_url())
    }

    /// `backoff_ms × 2^(attempt−1)`, capped at 30 s, with ±25 % jitter (from the body and the
    /// attempt, so concurrent retries spread out without a random source).
    fn backoff(&self, attempt: u32, body: &[u8]) -> Duration {
        let base = self
            .limits
            .backoff_ms
            .saturating_mul(1 << (attempt - 1).min(16));
        let base = base.min(30_000) as f64;
        let h = fnv(body) ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let jitter = 0.75 + 0.5 * ((h >> 11) as f64 / (1u64 << 53) as f64);
        Duration::from_secs_f64(base * jitter / 1000.0)
    }

    async fn attempt<T>(
        &self,
        url: &str,
        bytes: &[u8],
        parse: &impl Fn(&Value) -> std::result::Result<T, String>,
    ) -> std::result::Result<T, Attempt> {
        let mut req = (self.client.post(url))
            .header("content-type", "application/json")
            .timeout(Duration::from_secs_f64(self.limits.timeout_s))
            .body(bytes.to_vec());
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Attempt::Retry(transport(&e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Attempt::Retry(transport(&e)))?;
        if !status.is_success() {
            let text = snippet(&body);
            let why = format!("HTTP {status}: {text}");
            let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
            return Err(if retry {
                Attempt::Retry(why)
            } else {
                Attempt::Fatal(why)
            });
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| Attempt::Retry(format!("malformed response ({e}): {}", snippet(&body))))?;
        parse(&v).map_err(|e| Attempt::Retry(format!("malformed response: {e}")))
    }
}

enum Attempt {
    Retry(String),
    Fatal(String),
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {}", source_chain(e))
    } else {
        format!("connection failed: {}", source_chain(e))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The first 300 characters of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let t: String = s.chars().take(300).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// `url` without `user:password@` and without a query string (keys sometimes travel there).
pub fn public_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = match rest.split_once('/') {
        Some((host, path)) => format!("{}/{path}", strip_userinfo(host)),
        None => strip_userinfo(rest).to_string(),
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

fn strip_userinfo(host: &str) -> &str {
    host.rsplit_once('@').map_or(host, |(_, h)| h)
}

/// FNV-1a, for seeds and jitter (stable across platforms and releases, unlike `DefaultHasher`).
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_provenance() {
        assert_eq!(
            public_url("https://user:sk-123@api.example.com/v1?key=abc"),
            "https://api.example.com/v1"
        );
        assert_eq!(
            public_url("http://127.0.0.1:8000/v1"),
            "http://127.0.0.1:8000/v1"
        );
        assert_eq!(public_url("http://h:1"), "http://h:1");
    }

    #[test]
    fn fnv_is_the_reference_fnv1a() {
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
