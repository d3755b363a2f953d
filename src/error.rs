//! One error type for the whole pipeline, and the exit code each kind maps to.
//!
//! Every variant renders as a single line that names what is wrong and what to do next,
//! because that line is often all a CI log shows of a failed build.

use std::path::PathBuf;

/// Exit codes, one per kind of failure, so scripts can tell them apart.
pub mod exit {
    /// Bad command-line input: target grammar, options, platform strings.
    pub const USAGE: i32 = 2;
    /// An image definition or template in images/ or templates/ is broken.
    pub const DEFINITION: i32 = 3;
    /// The Docker engine cannot be reached or lacks a needed feature.
    pub const ENGINE: i32 = 10;
    /// The source image does not exist locally and cannot be pulled.
    pub const SOURCE_MISSING: i32 = 11;
    /// The source image exists but cannot be distilled (no Python, wrong family, ...).
    pub const SOURCE_UNFIT: i32 = 12;
    /// A build step failed inside BuildKit.
    pub const BUILD_STEP: i32 = 13;
    /// The distilled root violates an invariant (e.g. an unresolved shared library).
    pub const DISTILL: i32 = 14;
    /// `dpy test` found a failing conformance check.
    pub const CONFORMANCE: i32 = 15;
    /// `dpy doctor` found a missing part.
    pub const DOCTOR: i32 = 16;
    /// A registry refused the credentials or did not answer (`--push`).
    pub const REGISTRY: i32 = 17;
    /// The signing key cannot be used: missing, not a key, or a wrong passphrase.
    pub const SIGNING_KEY: i32 = 18;
    /// Files on the host: an output directory, the metadata file.
    pub const IO: i32 = 20;
    /// Interrupted by Ctrl-C (128 + SIGINT).
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("{file}: {key}: {message}")]
    Definition {
        file: String,
        key: String,
        message: String,
    },

    #[error("template {name}: {message}")]
    Template { name: String, message: String },

    #[error("{0}")]
    Engine(String),

    #[error("{0}")]
    SourceMissing(String),

    #[error("{0}")]
    SourceUnfit(String),

    #[error("{0}")]
    BuildStep(String),

    #[error("{0}")]
    Distill(String),

    #[error("{0}")]
    Conformance(String),

    #[error("{0}")]
    Doctor(String),

    #[error("{0}")]
    Registry(String),

    #[error("{0}")]
    SigningKey(String),

    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },

    #[error("interrupted: the build was cancelled and its temporary state removed")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Definition { .. } | Error::Template { .. } => exit::DEFINITION,
            Error::Engine(_) => exit::ENGINE,
            Error::SourceMissing(_) => exit::SOURCE_MISSING,
            Error::SourceUnfit(_) => exit::SOURCE_UNFIT,
            Error::BuildStep(_) => exit::BUILD_STEP,
            Error::Distill(_) => exit::DISTILL,
            Error::Conformance(_) => exit::CONFORMANCE,
            Error::Doctor(_) => exit::DOCTOR,
            Error::Registry(_) => exit::REGISTRY,
            Error::SigningKey(_) => exit::SIGNING_KEY,
            Error::Io { .. } => exit::IO,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Error::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }

    /// The same error, its message prefixed (e.g. with the platform it happened on).
    pub fn prefixed(self, prefix: &str) -> Self {
        let with = |m: String| format!("{prefix}: {m}");
        match self {
            Error::Usage(m) => Error::Usage(with(m)),
            Error::Engine(m) => Error::Engine(with(m)),
            Error::SourceMissing(m) => Error::SourceMissing(with(m)),
            Error::SourceUnfit(m) => Error::SourceUnfit(with(m)),
            Error::BuildStep(m) => Error::BuildStep(with(m)),
            Error::Distill(m) => Error::Distill(with(m)),
            other => other,
        }
    }

    /// An engine error that names what was asked (`context`). The advice to check the
    /// engine is given only when it did not answer: an engine that refused a request
    /// (a bad name, a missing image) is running, and the hint would send the user the
    /// wrong way.
    pub fn engine(context: &str, err: impl std::fmt::Display) -> Self {
        let message = err.to_string();
        if engine_unreachable(&message) {
            Error::Engine(format!(
                "{context}: {message} (is the Docker engine running? check DOCKER_HOST, or run `dpy doctor`)"
            ))
        } else {
            Error::Engine(format!("{context}: {message}"))
        }
    }
}

/// Whether an error from the engine's client means nothing answered: no socket, a
/// refused or dropped connection, a time-out.
pub fn engine_unreachable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "error trying to connect",
        "connection refused",
        "no such file or directory",
        "socket not found",
        "timed out",
        "timeout",
        "connection reset",
        "broken pipe",
        "unsupported url scheme",
        "client error (connect)",
    ]
    .iter()
    .any(|phrase| m.contains(phrase))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_hint_comes_only_when_nothing_answered() {
        let down = Error::engine(
            "the Docker engine did not answer",
            "error trying to connect: No such file or directory (os error 2)",
        );
        assert!(
            down.to_string().contains("is the Docker engine running?"),
            "{down}"
        );
        let refused = Error::engine(
            "tagging Bar/Bad:3.11-bookworm",
            "Docker responded with status code 400: invalid reference format",
        );
        assert_eq!(
            refused.to_string(),
            "tagging Bar/Bad:3.11-bookworm: Docker responded with status code 400: invalid reference format"
        );
        assert_eq!(refused.exit_code(), exit::ENGINE);
    }
}
