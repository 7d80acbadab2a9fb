//! [`TestData`]: where the end-of-run test split comes from — the training data itself, or
//! another dataset or synthetic world (the paper trains on MATH-train and tests on MATH-500).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The data the test split is read from. On the command line and in TOML it is a dataset path
/// or synth spec, or `same` for the training data (`--test-data same`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TestData {
    /// The training data (`same`): its `test_split` is held out from training.
    #[default]
    SameAsData,
    /// A separate dataset file or synth spec.
    Other(PathBuf),
}

impl TestData {
    /// The spelling of [`TestData::SameAsData`].
    pub const SAME: &'static str = "same";

    /// The separate data, or None for the training data.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TestData::SameAsData => None,
            TestData::Other(p) => Some(p),
        }
    }
}

impl fmt::Display for TestData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestData::SameAsData => f.write_str(Self::SAME),
            TestData::Other(p) => write!(f, "{}", p.display()),
        }
    }
}

impl FromStr for TestData {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "" => Err(format!(
                "empty test data: name a dataset or synth spec, or `{}` for the training data",
                Self::SAME
            )),
            Self::SAME => Ok(TestData::SameAsData),
            p => Ok(TestData::Other(PathBuf::from(p))),
        }
    }
}

impl TryFrom<String> for TestData {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<TestData> for String {
    fn from(t: TestData) -> String {
        t.to_string()
    }
}
