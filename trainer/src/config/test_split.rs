//! [`TestSplit`]: the split scored at the end of a run, or none (`none` on the command line and
//! in TOML, instead of a sentinel string inside the program).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The split scored once at the end of training, or none. On the command line and in TOML it
/// is a split name, or `none` to skip the test evaluation (`--test-split none`,
/// `test_split = "none"`); a split the dataset does not have is refused when the data is
/// loaded ([`crate::TrainConfig::validate_for_dataset`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TestSplit {
    /// No test evaluation (`none`).
    Skip,
    /// The problems of this dataset split.
    Split(String),
}

impl TestSplit {
    /// The spelling of [`TestSplit::Skip`].
    pub const NONE: &'static str = "none";

    /// The split name, or None for [`TestSplit::Skip`].
    pub fn name(&self) -> Option<&str> {
        match self {
            TestSplit::Skip => None,
            TestSplit::Split(s) => Some(s),
        }
    }
}

impl fmt::Display for TestSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name().unwrap_or(Self::NONE))
    }
}

impl FromStr for TestSplit {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "" => Err(format!(
                "empty split name: name a split, or `{}` to skip the test evaluation",
                Self::NONE
            )),
            Self::NONE => Ok(TestSplit::Skip),
            name => Ok(TestSplit::Split(name.to_string())),
        }
    }
}

impl TryFrom<String> for TestSplit {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<TestSplit> for String {
    fn from(t: TestSplit) -> String {
        t.to_string()
    }
}
