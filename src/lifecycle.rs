//! Whether a target is still cared for upstream: its Python before its end of life, its
//! OS release still updated by the official images.
//!
//! A retired target stays buildable (the images exist, and a team migrating off one needs
//! them), but `dpy list` shows why it is retired, `--all` leaves it out unless asked, and a
//! build of one warns once. The facts are images/matrix.toml's; the date is the caller's,
//! so that tests can hold it still.

use std::fmt;

use crate::error::{Error, Result};
use crate::target::Target;

/// The month retirement is judged in, instead of the clock's: `YYYY-MM`. It answers
/// "what will be retired next year?" and holds tests still.
pub const MONTH_VARIABLE: &str = "DPY_MONTH";

/// A calendar month, the granularity of Python's release schedule (PEP 602).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u8,
}

impl Month {
    /// The month it is now, in UTC, unless DPY_MONTH names another.
    pub fn now() -> Result<Month> {
        if let Some(text) = std::env::var_os(MONTH_VARIABLE) {
            let text = text.to_string_lossy();
            return Month::parse(&text).ok_or_else(|| {
                Error::Usage(format!(
                    "{MONTH_VARIABLE}={:?} is not a month: write it YYYY-MM (2027-11), or unset it for the current month",
                    crate::terminal_text::one_line(&text)
                ))
            });
        }
        let today = time::OffsetDateTime::now_utc().date();
        Ok(Month {
            year: today.year(),
            month: today.month().into(),
        })
    }

    /// `2025-10`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Month> {
        let (year, month) = text.split_once('-')?;
        let plain = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        if !plain(year, 4) || !plain(month, 2) {
            return None;
        }
        let month: u8 = month.parse().ok()?;
        time::Month::try_from(month).ok()?;
        Some(Month {
            year: year.parse().ok()?,
            month,
        })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A target's standing upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Supported,
    /// Its Python's last release was due in `ended`, a month now over.
    EndOfLife {
        ended: Month,
    },
    /// The official images no longer update its OS release; `instead` is the same
    /// Python on the family's newest release, where the official images publish it.
    Unmaintained {
        instead: Option<Target>,
    },
}

impl Support {
    pub fn is_retired(&self) -> bool {
        *self != Support::Supported
    }

    /// One word for `dpy list`: supported, end-of-life or unmaintained.
    pub fn status(&self) -> &'static str {
        match self {
            Support::Supported => "supported",
            Support::EndOfLife { .. } => "end-of-life",
            Support::Unmaintained { .. } => "unmaintained",
        }
    }

    /// The one line a build of `target` prints, when it is retired.
    pub fn warning(&self, target: &Target) -> Option<String> {
        let python = target.python.minor_version();
        match self {
            Support::Supported => None,
            Support::EndOfLife { ended } => Some(format!(
                "{target} is retired: Python {python} reached its end of life in {ended} and gets no more security fixes; \
                 move to a supported Python (`dpy list` shows each target's status)"
            )),
            Support::Unmaintained { instead } => Some(format!(
                "{target} is retired: the official images no longer update {}, so its source gets no more fixes; {}",
                target.os,
                match instead {
                    Some(newer) => format!("build {newer} instead"),
                    None => "`dpy list` shows the supported targets".to_string(),
                }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_in_the_developer_guide_s_form_only() {
        assert_eq!(Month::parse("2025-10").unwrap().to_string(), "2025-10");
        for bad in [
            "2025-13",
            "2025-00",
            "2025-1",
            "25-10",
            "2025/10",
            "2025-10-31",
            "",
            "-",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad:?}");
        }
        assert!(Month::parse("2025-12").unwrap() < Month::parse("2026-01").unwrap());
    }

    #[test]
    fn a_retired_target_s_warning_says_why_and_what_to_do() {
        let target: Target = "3.9-bookworm".parse().unwrap();
        let eol = Support::EndOfLife {
            ended: Month::parse("2025-10").unwrap(),
        };
        assert_eq!(
            eol.warning(&target).unwrap(),
            "3.9-bookworm is retired: Python 3.9 reached its end of life in 2025-10 and gets no more security fixes; \
             move to a supported Python (`dpy list` shows each target's status)"
        );
        let old: Target = "3.13-alpine3.20".parse().unwrap();
        let unmaintained = Support::Unmaintained {
            instead: Some("3.13-alpine3.24".parse().unwrap()),
        };
        assert_eq!(
            unmaintained.warning(&old).unwrap(),
            "3.13-alpine3.20 is retired: the official images no longer update alpine3.20, so its source gets no more fixes; \
             build 3.13-alpine3.24 instead"
        );
        assert_eq!(Support::Supported.warning(&old), None);
        assert!(!Support::Supported.is_retired() && eol.is_retired() && unmaintained.is_retired());
    }
}
