//! A job's priority: how much of a shared budget or cap it may use.

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// How much a job matters when retry budgets and concurrency caps bind: a lower
/// priority may use only part of them, so the rest stays for higher ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// 0 (low) – 3 (critical): the documents' `ConnectionPriority` index.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// `low`, `normal`, `high`, `critical` (any case).
    pub fn parse(text: &str) -> Result<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(text)).ok_or_else(|| {
            Error::invalid("priority", format!("expected low, normal, high or critical, got {text:?}"))
        })
    }
}

impl<'de> Deserialize<'de> for Priority {
    /// A name, or the index 0–3 (the documents' `ConnectionPriority` enum).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Index(i64),
        }
        use serde::de::Error as _;
        match Raw::deserialize(d)? {
            Raw::Name(n) => Priority::parse(&n)
                .map_err(|_| D::Error::custom(format!("expected low, normal, high or critical, got {n:?}"))),
            Raw::Index(i) => usize::try_from(i)
                .ok()
                .and_then(|i| Priority::ALL.get(i).copied())
                .ok_or_else(|| D::Error::custom(format!("expected 0–3 (low–critical), got {i}"))),
        }
    }
}
