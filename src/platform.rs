//! Platforms (`linux/amd64`, `linux/arm64`): parsed strictly, checked for being runnable.
//!
//! A platform the engine cannot execute fails in the middle of a build with an obscure
//! "exec format error"; checking binfmt first turns that into advice.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Architectures the official Python images are published for.
const KNOWN: &[(&str, &str)] = &[
    ("amd64", "x86_64"),
    ("arm64", "aarch64"),
    ("arm/v7", "arm"),
    ("arm/v6", "arm"),
    ("386", "i386"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `amd64`, `arm64`, `arm/v7`, ...
    pub arch: String,
}

impl Platform {
    /// Short form for tags: `amd64`, `arm64`, `armv7`.
    pub fn tag_suffix(&self) -> String {
        self.arch.replace('/', "")
    }

    /// The qemu/kernel machine name, which binfmt handlers are named after.
    pub fn machine(&self) -> &'static str {
        KNOWN
            .iter()
            .find(|(arch, _)| *arch == self.arch)
            .map(|(_, m)| *m)
            .unwrap_or("unknown")
    }

    /// Whether this machine can execute the platform's binaries: natively, or through
    /// a registered binfmt handler (qemu-user-static).
    pub fn runnable_here(&self, native: &Platform) -> bool {
        if self == native {
            return true;
        }
        let handler = format!("/proc/sys/fs/binfmt_misc/qemu-{}", self.machine());
        std::fs::read_to_string(handler).is_ok_and(|s| s.starts_with("enabled"))
    }

    pub fn ensure_runnable(&self, native: &Platform) -> Result<()> {
        if self.runnable_here(native) {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "platform {self} cannot run on this {native} machine: no binfmt handler for {m}; install qemu-user-static and binfmt-support (and enable qemu-{m}), or build for {native}",
            m = self.machine()
        )))
    }

    /// The engine's architecture name (`x86_64`, `aarch64` or already `amd64`) as a platform.
    pub fn from_engine_arch(arch: &str) -> Platform {
        let arch = KNOWN
            .iter()
            .find(|(a, m)| *m == arch || *a == arch)
            .map(|(a, _)| a.to_string())
            .unwrap_or_else(|| arch.to_string());
        Platform { arch }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "linux/{}", self.arch)
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let accepted = KNOWN
            .iter()
            .map(|(a, _)| format!("linux/{a}"))
            .collect::<Vec<_>>()
            .join(", ");
        let arch = s.strip_prefix("linux/").ok_or_else(|| {
            Error::Usage(format!(
                "invalid platform {s:?}: only linux platforms exist for Python images; use one of {accepted}"
            ))
        })?;
        if KNOWN.iter().any(|(a, _)| *a == arch) {
            Ok(Platform {
                arch: arch.to_string(),
            })
        } else {
            Err(Error::Usage(format!(
                "invalid platform {s:?}: unknown architecture {arch:?}; use one of {accepted}"
            )))
        }
    }
}

/// Parses a comma-separated `--platform` list, without duplicates, order kept.
pub fn parse_list(text: &str) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for part in text.split(',').map(str::trim) {
        let platform: Platform = part.parse()?;
        if !out.contains(&platform) {
            out.push(platform);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_refuses_unknowns() {
        let list = parse_list("linux/amd64,linux/arm64,linux/amd64").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].to_string(), "linux/arm64");
        assert_eq!(list[1].machine(), "aarch64");
        for bad in ["linux/amd65", "windows/amd64", "amd64", ""] {
            let e = parse_list(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{bad}");
            assert!(e.to_string().contains("linux/amd64"), "{e}");
        }
    }

    #[test]
    fn the_native_platform_is_always_runnable() {
        let native = Platform::from_engine_arch("x86_64");
        assert_eq!(native.to_string(), "linux/amd64");
        assert!(native.runnable_here(&native));
    }
}
