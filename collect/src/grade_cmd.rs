//! Grading a finished solution: the built-in LaTeX normaliser ([`mod@crate::grade`]), or an
//! external checker started once and spoken to in JSON lines — one request
//! `{"solution": …, "answer": <extracted or null>, "reference": …}` per line on its stdin, one
//! reply `{"correct": true|false}` (optionally with `"answer"`, its own extraction) per line on
//! its stdout. A persistent process, because checkers such as `math-verify` take a second to
//! import; `scripts/python/math_verify_grader.py` is one.

use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::error::{CollectError, Result};
use crate::grade::{extract_boxed, grade};

/// A grade with the answer it was based on.
#[derive(Clone, Debug, PartialEq)]
pub struct Graded {
    pub correct: bool,
    pub answer: Option<String>,
}

/// Built-in or external grading.
pub enum Grader {
    BuiltIn,
    External(Box<External>),
}

/// A running external grader.
pub struct External {
    cmd: String,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    _child: Child,
}

#[derive(Deserialize)]
struct Reply {
    correct: bool,
    #[serde(default)]
    answer: Option<String>,
}

impl Grader {
    /// The built-in grader, or `cmd` (run by `sh -c`) started now.
    pub fn start(cmd: Option<&str>) -> Result<Grader> {
        let Some(cmd) = cmd else {
            return Ok(Grader::BuiltIn);
        };
        let err = |msg: String| CollectError::Grader {
            cmd: cmd.to_string(),
            msg,
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| err(format!("cannot start: {e}")))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Grader::External(Box::new(External {
            cmd: cmd.to_string(),
            io: Mutex::new((stdin, stdout)),
            _child: child,
        })))
    }

    /// Grade `solution` (the whole text) against `reference`.
    pub async fn grade(&self, solution: &str, reference: &str) -> Result<Graded> {
        match self {
            Grader::BuiltIn => {
                let g = grade(solution, reference);
                Ok(Graded {
                    correct: g.correct,
                    answer: g.extracted,
                })
            }
            Grader::External(x) => x.ask(solution, reference).await,
        }
    }

    /// What grades, for provenance.
    pub fn describe(&self) -> String {
        match self {
            Grader::BuiltIn => "built-in \\boxed{} extraction and LaTeX normaliser".into(),
            Grader::External(x) => format!("external: {}", x.cmd),
        }
    }
}

impl External {
    async fn ask(&self, solution: &str, reference: &str) -> Result<Graded> {
        let err = |msg: String| CollectError::Grader {
            cmd: self.cmd.clone(),
            msg,
        };
        let extracted = extract_boxed(solution);
        let mut line =
            json!({"solution": solution, "answer": extracted, "reference": reference}).to_string();
        line.push('\n');
        let mut io = self.io.lock().await;
        let (stdin, stdout) = &mut *io;
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| err(format!("cannot write a request (did it exit?): {e}")))?;
        stdin
            .flush()
            .await
            .map_err(|e| err(format!("cannot write: {e}")))?;
        let mut reply = String::new();
        let n = stdout
            .read_line(&mut reply)
            .await
            .map_err(|e| err(format!("cannot read a reply: {e}")))?;
        if n == 0 {
            return Err(err("exited without replying".into()));
        }
        let r: Reply = serde_json::from_str(reply.trim()).map_err(|e| {
            err(format!(
                "reply {:?} is not {{\"correct\": true|false}}: {e}",
                reply.trim()
            ))
        })?;
        Ok(Graded {
            correct: r.correct,
            answer: r.answer.or(extracted),
        })
    }
}
