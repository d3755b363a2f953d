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

    /// The engine's client failed: the message names what was asked, and the client's
    /// error stays as the cause.
    #[error("{message}")]
    EngineClient {
        message: String,
        #[source]
        source: bollard::errors::Error,
    },

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
            Error::Engine(_) | Error::EngineClient { .. } => exit::ENGINE,
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

    /// The same error, its message prefixed (e.g. with the platform or target it
    /// happened on); the kind, and so the exit code, stay. Only an interruption, which
    /// concerns the whole run, goes unprefixed.
    pub fn prefixed(self, prefix: &str) -> Self {
        let with = |m: String| format!("{prefix}: {m}");
        match self {
            Error::Usage(m) => Error::Usage(with(m)),
            Error::Definition { file, key, message } => Error::Definition {
                file,
                key,
                message: with(message),
            },
            Error::Template { name, message } => Error::Template {
                name,
                message: with(message),
            },
            Error::Engine(m) => Error::Engine(with(m)),
            Error::EngineClient { message, source } => Error::EngineClient {
                message: with(message),
                source,
            },
            Error::SourceMissing(m) => Error::SourceMissing(with(m)),
            Error::SourceUnfit(m) => Error::SourceUnfit(with(m)),
            Error::BuildStep(m) => Error::BuildStep(with(m)),
            Error::Distill(m) => Error::Distill(with(m)),
            Error::Conformance(m) => Error::Conformance(with(m)),
            Error::Doctor(m) => Error::Doctor(with(m)),
            Error::Registry(m) => Error::Registry(with(m)),
            Error::SigningKey(m) => Error::SigningKey(with(m)),
            Error::Io { path, message } => Error::Io {
                path,
                message: with(message),
            },
            Error::Interrupted => Error::Interrupted,
        }
    }

    /// An engine error that names what was asked (`context`). The advice to check the
    /// engine is given only when it did not answer: an engine that refused a request
    /// (a bad name, a missing image) is running, and the hint would send the user the
    /// wrong way.
    pub fn engine(context: &str, err: bollard::errors::Error) -> Self {
        let message = if unreachable(&err) {
            format!(
                "{context}: {err} (is the Docker engine running? check DOCKER_HOST, or run `dpy doctor`)"
            )
        } else {
            format!("{context}: {err}")
        };
        Error::EngineClient {
            message,
            source: err,
        }
    }
}

/// Whether an error of the engine's client means nothing answered: no socket, a refused,
/// reset or timed-out connection, a scheme it cannot speak. Judged by the error's kind
/// and the I/O errors among its causes, never by its words: a build step's own failure
/// can say "no such file or directory", and the engine that reported it is running.
pub fn unreachable(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as Client;
    match err {
        Client::SocketNotFoundError(_)
        | Client::RequestTimeoutError
        | Client::UnsupportedURISchemeError { .. } => true,
        Client::HyperLegacyError { err } if err.is_connect() => true,
        Client::HyperResponseError { err } if err.is_timeout() => true,
        // The engine answered: whatever it said, it is running.
        Client::DockerResponseServerError { .. } | Client::DockerStreamError { .. } => false,
        // bollard's I/O variant is transparent: its chain of causes starts below it.
        Client::IOError { err } => lost_connection(err),
        other => io_causes(other).any(lost_connection),
    }
}

/// An I/O error that means the connection to the engine was never made, or broke.
fn lost_connection(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        io.kind(),
        NotFound
            | ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
    )
}

/// The I/O errors along an error's chain of causes, the error itself first.
fn io_causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a std::io::Error> {
    std::iter::successors(Some(err), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_hint_comes_only_when_nothing_answered() {
        use bollard::errors::Error as Client;
        let io = |kind| Client::IOError {
            err: std::io::Error::new(kind, "no such file or directory"),
        };
        for down in [
            Client::SocketNotFoundError("/run/docker.sock".into()),
            Client::RequestTimeoutError,
            io(std::io::ErrorKind::ConnectionRefused),
            io(std::io::ErrorKind::NotFound),
        ] {
            let e = Error::engine("the Docker engine did not answer", down);
            assert!(
                e.to_string().contains("is the Docker engine running?"),
                "{e}"
            );
            assert_eq!(e.exit_code(), exit::ENGINE);
        }
        // The engine answered, in words that an unreachable engine's error also uses.
        for answered in [
            Client::DockerResponseServerError {
                status_code: 400,
                message: "invalid reference format".into(),
            },
            Client::DockerResponseServerError {
                status_code: 404,
                message: "open /var/lib/docker/x: no such file or directory; connection refused; timed out".into(),
            },
            Client::DockerStreamError {
                error: "failed to solve: no such file or directory".into(),
            },
            io(std::io::ErrorKind::InvalidData),
        ] {
            let e = Error::engine("tagging Bar/Bad:3.11-bookworm", answered);
            assert!(!e.to_string().contains("is the Docker engine running?"), "{e}");
            assert!(e.to_string().starts_with("tagging Bar/Bad:3.11-bookworm: "), "{e}");
        }
        // The client's error stays as the cause.
        let e = Error::engine("saving x", Client::RequestTimeoutError);
        assert!(std::error::Error::source(&e).is_some());
        let e = e.prefixed("linux/arm64");
        assert!(e.to_string().starts_with("linux/arm64: saving x: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn a_prefix_keeps_the_kind_and_reaches_the_message() {
        let kinds = [
            Error::Usage("u".into()),
            Error::Registry("r".into()),
            Error::SigningKey("k".into()),
            Error::Conformance("c".into()),
            Error::Doctor("d".into()),
            Error::Io {
                path: "/m.json".into(),
                message: "denied".into(),
            },
            Error::Template {
                name: "t".into(),
                message: "m".into(),
            },
        ];
        for e in kinds {
            let code = e.exit_code();
            let text = e.to_string();
            let prefixed = e.prefixed("3.13-trixie");
            assert_eq!(prefixed.exit_code(), code);
            assert!(
                prefixed.to_string().contains("3.13-trixie: "),
                "{text} -> {prefixed}"
            );
        }
        assert_eq!(
            Error::Interrupted.prefixed("x").to_string(),
            Error::Interrupted.to_string()
        );
    }
}
