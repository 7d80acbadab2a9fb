//! `trim-collect`: building rollout trees from live models (`trim collect`, issue 12).
//!
//! Today this crate holds the part every collection needs first and that can be checked without
//! a model: [`mod@grade`] — extracting a solution's final `\boxed{…}` answer and comparing it with
//! the reference. The asynchronous clients for OpenAI-compatible generators and PRM scoring
//! endpoints, the tree expansion strategies and the resumable sharded writer come next; until
//! then nothing in the binary depends on this crate.

pub mod grade;

pub use grade::{Grade, extract_boxed, grade, normalize};
