//! A deterministic OpenAI-compatible server (`/v1/completions`, `/v1/chat/completions`,
//! `/v1/models`) and vLLM-style `/pooling` endpoint on 127.0.0.1, backed by the latent world
//! of [`world`]. Real HTTP/1.1 over real sockets (keep-alive, content-length), so the client's
//! connection handling, timeouts and retries are exercised for real. Faults are injected at
//! configurable rates: HTTP 500, responses slower than the client's timeout, truncated JSON,
//! dropped connections, and a wrong number of PRM scores. Asked for them, it also returns token
//! log-probabilities and answers as a judge model ([`signals`]); asked nothing new, it answers
//! byte for byte as before.

pub mod signals;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::http::fnv;
pub use world::FakeWorld;

/// Fault rates (each a probability per request) and the slow delay.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub http_500: f64,
    pub slow: f64,
    pub slow_ms: u64,
    pub truncated: f64,
    pub dropped: f64,
    /// Pooling requests only.
    pub wrong_count: f64,
    /// Pooling requests whose question contains this always get a wrong count.
    pub always_wrong_for: Option<String>,
    /// Latency added to every request (a model takes time to answer).
    pub latency_ms: u64,
    /// Generation requests whose prompt contains this get no `logprobs`, even when asked.
    pub no_logprobs_for: Option<String>,
    /// Judge requests whose prompt contains this get a reply without a digit.
    pub no_digit_for: Option<String>,
}

/// Requests served, by kind.
#[derive(Debug, Default)]
pub struct FakeStats {
    pub requests: AtomicU64,
    pub generations: AtomicU64,
    pub poolings: AtomicU64,
    pub judgements: AtomicU64,
    pub faults: AtomicU64,
}

struct State {
    world: FakeWorld,
    faults: Faults,
    stats: Arc<FakeStats>,
    counter: AtomicU64,
}

/// A running fake server (stopped when dropped).
pub struct FakeServer {
    pub addr: SocketAddr,
    pub stats: Arc<FakeStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Start on an ephemeral port of 127.0.0.1, on its own runtime thread(s).
    pub fn start(world: FakeWorld, faults: Faults) -> std::io::Result<FakeServer> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let stats = Arc::new(FakeStats::default());
        let state = Arc::new(State {
            world,
            faults,
            stats: stats.clone(),
            counter: AtomicU64::new(0),
        });
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        acc = listener.accept() => {
                            if let Ok((sock, _)) = acc {
                                let st = state.clone();
                                tokio::spawn(serve(sock, st));
                            }
                        }
                    }
                }
            });
        });
        Ok(FakeServer {
            addr,
            stats,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `collect.toml` overrides (`key=value`) that point a collection's three models at
    /// this server, with the default world's model names.
    pub fn overrides(&self) -> Vec<String> {
        let (url, w) = (self.url(), FakeWorld::default());
        vec![
            format!("weak.model={}", w.weak_model),
            format!("weak.url={url}/v1"),
            format!("strong.model={}", w.strong_model),
            format!("strong.url={url}/v1"),
            format!("prm.model={}", w.prm_model),
            format!("prm.url={url}"),
        ]
    }

    /// The overrides that add this server's judge model (`[judge]`).
    pub fn judge_overrides(&self) -> Vec<String> {
        vec![
            format!("judge.model={}", FakeWorld::default().judge_model),
            format!("judge.url={}/v1", self.url()),
        ]
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Reply {
    Json(u16, Vec<u8>),
    Drop,
}

/// Serve one connection: requests in sequence until the peer closes.
async fn serve(mut sock: TcpStream, st: Arc<State>) {
    let _ = sock.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let Some((path, body)) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        let reply = handle(&st, &path, &body).await;
        let (code, bytes) = match reply {
            Reply::Drop => return,
            Reply::Json(c, b) => (c, b),
        };
        let reason = if code == 200 { "OK" } else { "Error" };
        let head = format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            bytes.len()
        );
        // One write: a head and a body in two segments would meet Nagle + delayed ACK.
        let mut msg = head.into_bytes();
        msg.extend_from_slice(&bytes);
        if sock.write_all(&msg).await.is_err() {
            return;
        }
    }
}

/// Read one request (path and body); None when the connection ends or is not HTTP.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 65536];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some((path, body))
}

async fn handle(st: &State, path: &str, body: &[u8]) -> Reply {
    st.stats.requests.fetch_add(1, Ordering::Relaxed);
    let n = st.counter.fetch_add(1, Ordering::Relaxed);
    let u = (fnv(&n.to_le_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
    let f = &st.faults;
    let mut edge = 0.0;
    let mut hit = |p: f64| {
        let h = u >= edge && u < edge + p;
        edge += p;
        h
    };
    let (e500, slow, trunc, drop) = (
        hit(f.http_500),
        hit(f.slow),
        hit(f.truncated),
        hit(f.dropped),
    );
    let wrong = hit(f.wrong_count);
    if e500 || slow || trunc || drop || wrong {
        st.stats.faults.fetch_add(1, Ordering::Relaxed);
    }
    if e500 {
        return Reply::Json(500, br#"{"error": "injected overload"}"#.to_vec());
    }
    if drop {
        return Reply::Drop;
    }
    let delay = f.latency_ms + if slow { f.slow_ms } else { 0 };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return Reply::Json(400, br#"{"error": "body is not JSON"}"#.to_vec());
    };
    let out = match path {
        "/v1/completions" | "/v1/chat/completions" => generation(st, path, &req),
        "/pooling" => pooling(st, &req, wrong),
        "/v1/models" => Ok(json!({"object": "list", "data": [
            {"id": st.world.weak_model}, {"id": st.world.strong_model}, {"id": st.world.prm_model}]})),
        _ => Err((404, format!("no route {path}"))),
    };
    match out {
        Ok(v) => {
            let mut bytes = serde_json::to_vec(&v).expect("serialisable");
            if trunc {
                bytes.truncate(bytes.len() / 2);
            }
            Reply::Json(200, bytes)
        }
        Err((code, msg)) => Reply::Json(code, json!({"error": msg}).to_string().into_bytes()),
    }
}

type Answer = Result<Value, (u16, String)>;

/// The prompt of a generation request: the completions prompt, or the chat messages' contents
/// joined by newlines.
fn prompt_text(chat: bool, req: &Value) -> String {
    if chat {
        (req["messages"].as_array().into_iter().flatten())
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        req["prompt"].as_str().unwrap_or_default().to_string()
    }
}

fn generation(st: &State, path: &str, req: &Value) -> Answer {
    let model = req["model"].as_str().unwrap_or_default();
    let chat = path.ends_with("chat/completions");
    if model == st.world.judge_model {
        return judgement(st, chat, req);
    }
    st.stats.generations.fetch_add(1, Ordering::Relaxed);
    if model != st.world.weak_model && model != st.world.strong_model {
        return Err((404, format!("The model `{model}` does not exist.")));
    }
    let text = prompt_text(chat, req);
    let (question, steps) = world::parse_prompt(&text);
    if question.is_empty() {
        return Err((400, "no `Question: ` in the prompt".into()));
    }
    let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
    let seed = req["seed"].as_u64().unwrap_or(0);
    let mut s = st.world.step(model, &question, &refs, seed);
    let max_tokens = req["max_tokens"].as_u64().unwrap_or(u64::MAX);
    if u64::from(s.tokens) > max_tokens {
        // Cut at the limit, as a server does.
        let words: Vec<&str> = s
            .text
            .split_whitespace()
            .take(max_tokens as usize)
            .collect();
        s.text = words.join(" ");
        s.tokens = max_tokens as u32;
        s.length_stop = true;
    }
    let finish = if s.length_stop { "length" } else { "stop" };
    let mut choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": s.text}, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": s.text, "finish_reason": finish})
    };
    let withheld = (st.faults.no_logprobs_for.as_deref()).is_some_and(|w| text.contains(w));
    if signals::wanted(req) && !withheld {
        let toks = signals::token_logprobs(model, &s.text, !s.length_stop);
        choice["logprobs"] = signals::logprobs_json(chat, &toks);
    }
    Ok(
        json!({"id": "fake", "object": if chat { "chat.completion" } else { "text_completion" },
        "model": model, "choices": [choice],
        "usage": {"prompt_tokens": text.len() / 4, "completion_tokens": s.tokens,
                  "total_tokens": text.len() / 4 + s.tokens as usize}}),
    )
}

/// A judge request: one digit rating the step after `New step:` (see [`signals`]).
fn judgement(st: &State, chat: bool, req: &Value) -> Answer {
    st.stats.judgements.fetch_add(1, Ordering::Relaxed);
    let text = prompt_text(chat, req);
    let refuse = (st.faults.no_digit_for.as_deref()).is_some_and(|w| text.contains(w));
    let reply = signals::judge_reply(&text, refuse).map_err(|e| (400, e))?;
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"})
    } else {
        json!({"index": 0, "text": reply, "finish_reason": "stop"})
    };
    Ok(
        json!({"id": "fake-judge", "object": if chat { "chat.completion" } else { "text_completion" },
        "model": st.world.judge_model, "choices": [choice],
        "usage": {"prompt_tokens": text.len() / 4, "completion_tokens": 1,
                  "total_tokens": text.len() / 4 + 1}}),
    )
}

fn pooling(st: &State, req: &Value, wrong: bool) -> Answer {
    st.stats.poolings.fetch_add(1, Ordering::Relaxed);
    let model = req["model"].as_str().unwrap_or_default();
    if model != st.world.prm_model {
        return Err((404, format!("The model `{model}` does not exist.")));
    }
    let (question, assistant) = match req.get("messages").and_then(Value::as_array) {
        Some(m) => (
            m.get(1)
                .and_then(|x| x["content"].as_str())
                .unwrap_or_default()
                .to_string(),
            m.get(2)
                .and_then(|x| x["content"].as_str())
                .unwrap_or_default()
                .to_string(),
        ),
        None => {
            let t = req["input"].as_str().unwrap_or_default();
            let q = t
                .split("<|im_start|>user\n")
                .nth(1)
                .and_then(|r| r.split("<|im_end|>").next());
            let a = t
                .split("<|im_start|>assistant\n")
                .nth(1)
                .and_then(|r| r.split("<|im_end|>").next());
            (
                q.unwrap_or_default().to_string(),
                a.unwrap_or_default().to_string(),
            )
        }
    };
    let steps: Vec<&str> = assistant.split("<extra_0>").collect();
    let steps = &steps[..steps.len().saturating_sub(1)];
    let mut scores: Vec<Value> = (st.world.scores(steps).into_iter())
        .map(|p| json!([1.0 - p, p]))
        .collect();
    let always = (st.faults.always_wrong_for.as_deref()).is_some_and(|w| question.contains(w));
    if wrong || always {
        scores.pop();
    }
    Ok(json!({"id": "pool-fake", "object": "list", "model": model,
        "data": [{"index": 0, "object": "pooling", "data": scores}],
        "usage": {"prompt_tokens": assistant.len() / 4, "total_tokens": assistant.len() / 4}}))
}
