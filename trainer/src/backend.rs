//! The one place that knows which burn backends exist. Everything else takes a [`Device`].
//!
//! * `flex` (default feature): burn's pure-Rust CPU backend. For a 5→64→64 MLP it is faster than
//!   LibTorch on CPU (rust-deps.md §3), so it is the default.
//! * `tch` (feature): LibTorch through burn-tch, CPU or CUDA depending on the libtorch the binary
//!   was built against. Selected with `--backend tch` / `--backend tch-cuda:0` or the
//!   `TRIM_BACKEND` environment variable.
//!
//! `Device::default()` is never used: with `tch` compiled in it silently picks LibTorch.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Result, TrainError};

/// Environment variable read when no `--backend` flag is given.
pub const BACKEND_ENV: &str = "TRIM_BACKEND";

/// A backend choice, parsed from `flex`, `tch`, `tch-cuda` or `tch-cuda:N`; written to
/// `config.toml` and `summary.json` as that same string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Backend {
    /// burn-flex on the CPU.
    #[default]
    Flex,
    /// LibTorch on the CPU.
    Tch,
    /// LibTorch on CUDA device `N`.
    TchCuda(usize),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Flex => f.write_str("flex"),
            Backend::Tch => f.write_str("tch"),
            Backend::TchCuda(i) => write!(f, "tch-cuda:{i}"),
        }
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "flex" | "cpu" => Ok(Backend::Flex),
            "tch" | "libtorch" => Ok(Backend::Tch),
            "tch-cuda" => Ok(Backend::TchCuda(0)),
            other => match other.strip_prefix("tch-cuda:") {
                Some(i) => i
                    .parse()
                    .map(Backend::TchCuda)
                    .map_err(|_| format!("bad CUDA index in backend `{s}`")),
                None => Err(format!(
                    "unknown backend `{s}`: expected flex, tch, tch-cuda or tch-cuda:N"
                )),
            },
        }
    }
}

impl TryFrom<String> for Backend {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Backend> for String {
    fn from(b: Backend) -> String {
        b.to_string()
    }
}

/// The error for a backend this binary was built without.
#[allow(dead_code)] // unused when every backend is compiled in
fn not_compiled(name: &str, feature: &str) -> TrainError {
    TrainError::Backend(format!(
        "backend `{name}` is not compiled in (build with `--features {feature}`); available: {}",
        Backend::compiled().join(", ")
    ))
}

impl Backend {
    /// The flag if given, else `$TRIM_BACKEND`, else flex.
    pub fn resolve(flag: Option<Backend>) -> Result<Backend> {
        if let Some(b) = flag {
            return Ok(b);
        }
        match std::env::var(BACKEND_ENV) {
            Ok(v) if !v.trim().is_empty() => v
                .parse()
                .map_err(|e: String| TrainError::Backend(format!("{BACKEND_ENV}: {e}"))),
            _ => Ok(Backend::Flex),
        }
    }

    /// Backends compiled into this binary.
    pub fn compiled() -> &'static [&'static str] {
        &[
            #[cfg(feature = "flex")]
            "flex",
            #[cfg(feature = "tch")]
            "tch",
            #[cfg(feature = "tch")]
            "tch-cuda:N",
        ]
    }

    /// The plain (inference) device of this backend.
    pub fn device(self) -> Result<Device> {
        match self {
            Backend::Flex => {
                #[cfg(feature = "flex")]
                return Ok(Device::flex());
                #[cfg(not(feature = "flex"))]
                return Err(not_compiled("flex", "flex"));
            }
            Backend::Tch => {
                #[cfg(feature = "tch")]
                #[allow(deprecated)]
                // burn-tch is deprecated upstream but works (rust-deps.md §4)
                return Ok(Device::libtorch());
                #[cfg(not(feature = "tch"))]
                return Err(not_compiled("tch", "tch"));
            }
            Backend::TchCuda(_i) => {
                #[cfg(feature = "tch")]
                #[allow(deprecated)]
                return Ok(Device::libtorch_cuda(_i));
                #[cfg(not(feature = "tch"))]
                return Err(not_compiled("tch-cuda", "tch"));
            }
        }
    }

    /// The autodiff device the trainer optimises on.
    pub fn train_device(self) -> Result<Device> {
        Ok(self.device()?.autodiff())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        for s in ["flex", "tch", "tch-cuda:1"] {
            assert_eq!(s.parse::<Backend>().unwrap().to_string(), s);
        }
        assert_eq!("tch-cuda".parse::<Backend>(), Ok(Backend::TchCuda(0)));
        assert!("cuda".parse::<Backend>().is_err());
        assert!("tch-cuda:x".parse::<Backend>().is_err());
        let json = serde_json::to_string(&Backend::TchCuda(1)).unwrap();
        assert_eq!(json, "\"tch-cuda:1\"");
        assert_eq!(
            serde_json::from_str::<Backend>("\"flex\"").unwrap(),
            Backend::Flex
        );
        assert!(serde_json::from_str::<Backend>("\"gpu\"").is_err());
    }

    #[test]
    fn flex_device_is_available_by_default() {
        let d = Backend::Flex.train_device().unwrap();
        assert!(d.is_autodiff());
    }
}
