//! The target grammar: `<python>-<os>`, the same strings as the official image tags.
//!
//! Parsing here is purely syntactic; whether a well-formed target is one the official
//! images publish is the catalog's business (see `catalog::Catalog::check`), because the
//! list of releases is data in images/matrix.toml.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::runtime::Variant;

/// The forms a target may take, quoted in every grammar error.
pub const ACCEPTED_FORMS: &str = "expected <python>-<os>, e.g. 3.12-alpine3.20, 3.12-alpine, \
3.12-slim-bookworm or 3.13-trixie (python 3.X or 3.X.Y; os alpine3.N, alpine, slim-<codename> or <codename>)";

/// Suffix of the builder image derived from a target's tag.
pub const BUILDROOT_SUFFIX: &str = Variant::Buildroot.suffix();

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Alpine,
    Debian,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Alpine => "alpine",
            Family::Debian => "debian",
        }
    }

    pub fn libc(self) -> &'static str {
        match self {
            Family::Alpine => "musl",
            Family::Debian => "glibc",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PythonVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
}

impl PythonVersion {
    /// `3.12` for `3.12.4`: the granularity the support matrix is kept at.
    pub fn minor_version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

/// The OS half of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OsSpec {
    pub family: Family,
    /// `3.20` for Alpine, a codename for Debian; `None` only for the bare `alpine` alias.
    pub release: Option<String>,
    /// Debian's `slim-` variants.
    pub slim: bool,
}

impl fmt::Display for OsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.family, &self.release) {
            (Family::Alpine, Some(release)) => write!(f, "alpine{release}"),
            (Family::Alpine, None) => f.write_str("alpine"),
            (Family::Debian, release) => {
                if self.slim {
                    f.write_str("slim-")?;
                }
                f.write_str(release.as_deref().unwrap_or_default())
            }
        }
    }
}

/// A parsed target such as `3.12-alpine3.20`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub python: PythonVersion,
    pub os: OsSpec,
}

impl Target {
    pub fn family(&self) -> Family {
        self.os.family
    }

    /// The runtime image's tag: the target string itself.
    pub fn tag(&self) -> String {
        self.to_string()
    }

    /// The tag of one of the target's images.
    pub fn tag_of(&self, variant: Variant) -> String {
        format!("{self}{}", variant.suffix())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.python, self.os)
    }
}

fn bad(input: &str, why: &str) -> Error {
    Error::Usage(format!("invalid target {input:?}: {why}; {ACCEPTED_FORMS}"))
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_python(input: &str, text: &str) -> Result<PythonVersion, Error> {
    let parts: Vec<&str> = text.split('.').collect();
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| is_number(p)) {
        return Err(bad(
            input,
            &format!("{text:?} is not a Python version (3.X or 3.X.Y)"),
        ));
    }
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| bad(input, &format!("{s:?} is too large")))
    };
    let version = PythonVersion {
        major: number(parts[0])?,
        minor: number(parts[1])?,
        patch: parts.get(2).map(|p| number(p)).transpose()?,
    };
    if version.major != 3 {
        return Err(bad(
            input,
            &format!(
                "Python {} is not supported, only Python 3",
                version.minor_version()
            ),
        ));
    }
    Ok(version)
}

fn parse_os(input: &str, text: &str) -> Result<OsSpec, Error> {
    if let Some(rest) = text.strip_prefix("alpine") {
        if rest.is_empty() {
            return Ok(OsSpec {
                family: Family::Alpine,
                release: None,
                slim: false,
            });
        }
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() == 2 && parts.iter().all(|p| is_number(p)) {
            return Ok(OsSpec {
                family: Family::Alpine,
                release: Some(rest.to_string()),
                slim: false,
            });
        }
        return Err(bad(
            input,
            &format!("{text:?} is not an Alpine release (alpine3.N or alpine)"),
        ));
    }
    let (slim, codename) = match text.strip_prefix("slim-") {
        Some(codename) => (true, codename),
        None => (false, text),
    };
    if !codename.is_empty() && codename.bytes().all(|b| b.is_ascii_lowercase()) {
        return Ok(OsSpec {
            family: Family::Debian,
            release: Some(codename.to_string()),
            slim,
        });
    }
    Err(bad(input, &format!("{text:?} is not a known OS form")))
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        if input.is_empty() {
            return Err(bad(input, "it is empty"));
        }
        if input.chars().any(char::is_whitespace) {
            return Err(bad(input, "it contains whitespace"));
        }
        for variant in [Variant::Buildroot, Variant::Debug] {
            if let Some(base) = input.strip_suffix(variant.suffix()) {
                let asked = match variant {
                    Variant::Debug => " with --variants runtime,buildroot,debug",
                    _ => "",
                };
                return Err(Error::Usage(format!(
                    "invalid target {input:?}: a {} tag is derived from a target, not a target itself; \
                     build {base:?}{asked} and dpy makes {input:?} alongside it",
                    variant.suffix()
                )));
            }
        }
        let Some((python, os)) = input.split_once('-') else {
            let why = if input.starts_with(|c: char| c.is_ascii_digit()) {
                "the OS part is missing"
            } else {
                "the Python version is missing"
            };
            return Err(bad(input, why));
        };
        if python.is_empty() || !python.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad(input, "the Python version is missing"));
        }
        Ok(Target {
            python: parse_python(input, python)?,
            os: parse_os(input, os)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        match input.parse::<Target>() {
            Err(e) => {
                assert_eq!(e.exit_code(), crate::error::exit::USAGE);
                e.to_string()
            }
            Ok(t) => panic!("{input:?} parsed as {t:?}"),
        }
    }

    #[test]
    fn good_targets_round_trip() {
        for text in [
            "3.12-alpine3.20",
            "3.12-alpine",
            "3.12.4-alpine3.21",
            "3.12-slim-bookworm",
            "3.13-bookworm",
            "3.13-trixie",
            "3.9-slim-trixie",
            "3.14.0-slim-trixie",
        ] {
            let target: Target = text.parse().unwrap();
            assert_eq!(target.to_string(), text);
        }
    }

    #[test]
    fn parts_are_typed() {
        let t: Target = "3.12.4-slim-bookworm".parse().unwrap();
        assert_eq!(
            t.python,
            PythonVersion {
                major: 3,
                minor: 12,
                patch: Some(4)
            }
        );
        assert_eq!(t.family(), Family::Debian);
        assert_eq!(t.os.release.as_deref(), Some("bookworm"));
        assert!(t.os.slim);
        let a: Target = "3.13-alpine".parse().unwrap();
        assert_eq!(a.family(), Family::Alpine);
        assert_eq!(a.os.release, None);
        assert_eq!(a.tag_of(Variant::Buildroot), "3.13-alpine-buildroot");
    }

    #[test]
    fn every_bad_input_names_the_accepted_forms() {
        for input in [
            "3.12",
            "alpine3.20",
            "3-alpine3.20",
            "3.12-centos7",
            "3.12-alpine3.x",
            "",
            " 3.12-alpine3.20",
            "2.7-alpine3.20",
        ] {
            let message = err(input);
            assert!(message.contains(ACCEPTED_FORMS), "{input:?}: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn each_bad_input_says_what_is_wrong() {
        assert!(err("3.12").contains("OS part is missing"));
        assert!(err("alpine3.20").contains("Python version is missing"));
        assert!(err("3-alpine3.20").contains("not a Python version"));
        assert!(err("3.12-centos7").contains("not a known OS form"));
        assert!(err("3.12-alpine3.x").contains("not an Alpine release"));
        assert!(err("").contains("empty"));
        assert!(err(" 3.12-alpine3.20").contains("whitespace"));
        assert!(err("3.12-alpine3.20\t").contains("whitespace"));
        assert!(err("2.7-alpine3.20").contains("only Python 3"));
    }

    #[test]
    fn buildroot_tags_are_derived_not_targets() {
        let message = err("3.12-alpine3.20-buildroot");
        assert!(message.contains("derived"), "{message}");
        assert!(message.contains("\"3.12-alpine3.20\""), "{message}");
    }
}
