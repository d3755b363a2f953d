//! One BuildKit build through bollard's session API.
//!
//! The context is streamed (crate::context), its large files read from disk as it goes. Each build gets its own session id, so
//! builds for several platforms can run at once. Images are built untagged: the caller
//! tags them only when every image of a target is ready, so a failure never leaves a
//! half-tagged set behind.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::BuildInfoAux;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion, ImageBuildOutput};
use futures_util::StreamExt;

use super::progress::Progress;
use super::Engine;
use crate::context::BuildContext;
use crate::error::{Error, Result};
use crate::terminal_text::one_line;

/// Where a build's result goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// An image in the engine's store (its id is returned).
    Image,
    /// The result's files as a tar on this machine; no image is created.
    Tar(PathBuf),
}

pub struct BuildSpec<'a> {
    pub context: &'a BuildContext,
    pub dockerfile: &'a str,
    pub target: &'a str,
    pub platform: &'a str,
    pub output: Output,
    pub no_cache: bool,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Built {
    pub image_id: Option<String>,
    /// For `Output::Image`: the hold tag on the image, to release once tagged.
    pub hold: Option<String>,
    /// `DPY-WARN` lines the build printed.
    pub warnings: Vec<String>,
}

pub fn session_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "dpy-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Turns a `DPY-ERROR <kind>: <message>` line from the gather stage into an error. The
/// line comes from `Progress::update`, which has made it printable already.
fn marked_error(line: &str) -> Option<Error> {
    let rest = &line[line.find("DPY-ERROR")? + "DPY-ERROR".len()..];
    let rest = rest.trim();
    let message = rest.split_once(": ").map(|(_, m)| m).unwrap_or(rest);
    Some(Error::SourceUnfit(message.trim().to_string()))
}

/// How many times a build is started when its answer breaks off or its export is cut.
const ATTEMPTS: u32 = 2;

/// How one attempt at a build ended badly.
enum Failure {
    /// Worth one more attempt: the engine's progress stream ended in the middle of a
    /// message (nothing says the build itself failed), or the build succeeded and its
    /// tar export arrived incomplete. BuildKit's cache makes a second attempt cheap.
    /// `warning` is said before the retry, `error` is the outcome after the last one.
    Retry {
        warning: String,
        error: Error,
    },
    Final(Error),
}

/// Runs the build to its end and returns the image id (for `Output::Image`).
///
/// A build whose progress stream breaks off (seen about once in a few hundred builds,
/// with two platforms building at once), or whose export arrives incomplete, is started
/// once more; a build that fails is not.
pub async fn build(engine: &Engine, spec: BuildSpec<'_>, progress: &Progress) -> Result<Built> {
    let mut attempt = 1;
    loop {
        match build_once(engine, &spec, progress).await {
            Ok(built) => return Ok(built),
            Err(Failure::Retry { warning, .. }) if attempt < ATTEMPTS => {
                progress.warn(&warning);
                attempt += 1;
            }
            Err(Failure::Retry { error, .. } | Failure::Final(error)) => return Err(error),
        }
    }
}

/// A broken answer: retried, then an engine error that says how often it broke.
fn broken(spec: &BuildSpec<'_>, message: String) -> Failure {
    Failure::Retry {
        warning: format!(
            "the engine's answer broke off ({message}); building {} again",
            spec.target
        ),
        error: Error::Engine(format!(
            "the engine's answer broke off {ATTEMPTS} times building {} for {}: {message}",
            spec.target, spec.platform
        )),
    }
}

/// A clash of shared steps between builds in flight: retried, then an engine error.
fn clashed(spec: &BuildSpec<'_>, message: String) -> Failure {
    Failure::Retry {
        warning: format!(
            "BuildKit failed a step it shared with another build ({message}); building {} again",
            spec.target
        ),
        error: Error::Engine(format!(
            "BuildKit failed {} for {} {ATTEMPTS} times on a step shared with other builds: {message}; run fewer identical builds at once",
            spec.target, spec.platform
        )),
    }
}

/// An incomplete export (engine::export): retried, then an engine error.
fn incomplete(spec: &BuildSpec<'_>, message: String) -> Failure {
    Failure::Retry {
        warning: format!(
            "the export of {} arrived incomplete ({message}); building it again",
            spec.target
        ),
        error: Error::Engine(format!(
            "the export of {} for {} arrived incomplete {ATTEMPTS} times: {message}; the engine or its session with dpy is unreliable here: run `dpy doctor`",
            spec.target, spec.platform
        )),
    }
}

async fn build_once(
    engine: &Engine,
    spec: &BuildSpec<'_>,
    progress: &Progress,
) -> std::result::Result<Built, Failure> {
    let id = session_id();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(spec.dockerfile)
        .target(spec.target)
        .platform(spec.platform)
        .version(BuilderVersion::BuilderBuildKit)
        .session(&id)
        .nocache(spec.no_cache)
        .rm(true)
        .forcerm(true)
        .buildargs(&spec.build_args)
        .labels(&spec.labels);
    let mut hold = None;
    match &spec.output {
        Output::Tar(path) => {
            options = options.outputs(ImageBuildOutput::Tar(path.display().to_string()));
        }
        Output::Image => {
            let reference = engine.hold(&id, spec.target);
            options = options.t(&reference);
            hold = Some(reference);
        }
    }
    let body = bollard::body_try_stream(spec.context.stream());
    let mut stream = engine
        .docker()
        .build_image(options.build(), None, Some(body));

    let mut built = Built {
        hold,
        ..Built::default()
    };
    let mut marked_errors = Vec::new();
    let mut ended: Option<Ended> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(message) = info.error_detail.and_then(|d| d.message) {
                    ended = Some(Ended::Engine(message));
                }
                match info.aux {
                    Some(BuildInfoAux::BuildKit(status)) => {
                        if let Some(hold) = &built.hold {
                            if status.vertexes.iter().any(|v| {
                                v.name.starts_with("exporting to image") && v.started.is_some()
                            }) {
                                engine.exporting(hold, true);
                            }
                        }
                        for line in progress.update(&status) {
                            if line.contains("DPY-ERROR") {
                                marked_errors.push(line);
                            } else if let Some(w) = line.split("DPY-WARN").nth(1) {
                                let w = w.trim().to_string();
                                if !built.warnings.contains(&w) {
                                    progress.warn(&w);
                                    built.warnings.push(w);
                                }
                            }
                        }
                    }
                    Some(BuildInfoAux::Default(image)) => {
                        if let Some(image_id) = image.id {
                            built.image_id = Some(image_id);
                        }
                    }
                    None => {}
                }
            }
            Err(e) => {
                ended = Some(Ended::Client(e));
                break;
            }
        }
    }
    progress.finish();
    if let Some(hold) = &built.hold {
        engine.exporting(hold, false);
    }

    let error = if let Some(line) = marked_errors.first() {
        Some(Failure::Final(marked_error(line).expect("a marked line")))
    } else if let Some(ended) = ended {
        // A client error is a lost engine only if the engine no longer answers at all:
        // asked now, not guessed from the error.
        let answers = match &ended {
            Ended::Client(_) => matches!(
                tokio::time::timeout(std::time::Duration::from_secs(10), engine.docker().ping())
                    .await,
                Ok(Ok(_))
            ),
            Ended::Engine(_) => true,
        };
        // The engine's error can quote what the step printed: made printable here, once,
        // for every message below that embeds it (printed as a warning or in the error).
        Some(match judge(ended, answers) {
            Judged::Lost(e) => Failure::Final(Error::engine(
                "the Docker engine stopped answering during the build",
                e,
            )),
            Judged::BrokeOff(message) => broken(spec, one_line(&message)),
            Judged::Clash(message) => clashed(spec, one_line(&message)),
            Judged::StepFailed(message) => {
                Failure::Final(step_error(progress, spec.platform, &one_line(&message)))
            }
        })
    } else if matches!(spec.output, Output::Image) && built.image_id.is_none() {
        Some(Failure::Final(Error::BuildStep(format!(
            "the {} build for {} finished without an image id",
            spec.target, spec.platform
        ))))
    } else {
        None
    };
    // A tar export is read only once it proves itself whole (see engine::export).
    let error = match (&error, &spec.output) {
        (None, Output::Tar(path)) => {
            super::export::inject_cut(spec.target, path);
            super::export::settle(path)
                .await
                .err()
                // It names files of the export, which the source's code wrote.
                .map(|message| incomplete(spec, one_line(&message)))
        }
        _ => error,
    };
    match error {
        Some(error) => {
            if let Some(hold) = &built.hold {
                engine.release(hold).await;
            }
            Err(error)
        }
        None => Ok(built),
    }
}

fn step_error(progress: &Progress, platform: &str, message: &str) -> Error {
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match progress.failure(&message) {
        Some(step) => {
            let mut text = format!(
                "build step failed on {platform}: {}: {}",
                shorten(step.name.trim(), 100),
                readable_error(&step.error)
            );
            if !step.tail.is_empty() {
                text.push_str("\n  last lines of its log:");
                for line in &step.tail {
                    text.push_str("\n    ");
                    text.push_str(line);
                }
            }
            Error::BuildStep(text)
        }
        None => Error::BuildStep(format!("build failed on {platform}: {message}")),
    }
}

/// BuildKit repeats the whole command in "executor failed running [...]: exit code: N";
/// the step's name already says which command, so keep the outcome.
fn readable_error(error: &str) -> String {
    let error = error.split_whitespace().collect::<Vec<_>>().join(" ");
    match (
        error.starts_with("executor failed running"),
        error.rfind("exit code:"),
    ) {
        (true, Some(at)) => format!("the command failed ({})", &error[at..]),
        _ => shorten(&error, 300),
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

/// What ended a build's answer with an error.
enum Ended {
    /// The engine's own words: BuildKit's error, which may quote what a step printed.
    Engine(String),
    /// The client's: bollard could not reach the engine or read its whole answer.
    Client(bollard::errors::Error),
}

/// What an error that ended a build means, by where it came from and its kind; only
/// the engine's own words are read, and only for BuildKit's one retriable failure.
#[derive(Debug)]
enum Judged {
    /// The client failed and the engine does not answer a ping either.
    Lost(bollard::errors::Error),
    /// The engine answered, and then the answer ended in the middle (seen about once in
    /// a few hundred builds, with two platforms at once): nothing says the build failed.
    BrokeOff(String),
    /// A clash of shared steps between builds in flight.
    Clash(String),
    /// The build failed, in the engine's words.
    StepFailed(String),
}

/// `answers`: whether the engine answers a ping now.
fn judge(ended: Ended, answers: bool) -> Judged {
    use bollard::errors::Error as Client;
    let words = match ended {
        Ended::Engine(words) => words,
        // The engine's words, passed on by bollard: an error line in the stream, or an
        // error status to the request.
        Ended::Client(Client::DockerStreamError { error }) => error,
        Ended::Client(Client::DockerResponseServerError { message, .. }) => message,
        Ended::Client(e) if !answers => return Judged::Lost(e),
        Ended::Client(e) => return Judged::BrokeOff(e.to_string()),
    };
    if is_shared_step_clash(&words) {
        Judged::Clash(words)
    } else {
        Judged::StepFailed(words)
    }
}

/// BuildKit (engine 20.10) shares the steps of identical builds in flight; when two of
/// them finish one shared step at once it can fail one build with "duplicate output N"
/// (seen once in CI, with two tests building the same source side by side; BuildKit's
/// issue 3748). No step of the build failed, so it is started once more, as a broken
/// answer is. Only BuildKit's error itself counts, the last part of the message: a step
/// that fails is named with its command, which may hold any words, and ends in its own
/// outcome (`exit code: 1`).
fn is_shared_step_clash(words: &str) -> bool {
    let last = words.rsplit(": ").next().unwrap_or_default().trim();
    last.strip_prefix("duplicate output ")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_lines_become_one_line_errors() {
        let e = marked_error(
            "#8 0.41 DPY-ERROR no-python: the source image has no python3 on PATH; pass --source-image",
        )
        .unwrap();
        assert_eq!(e.exit_code(), crate::error::exit::SOURCE_UNFIT);
        assert_eq!(
            e.to_string(),
            "the source image has no python3 on PATH; pass --source-image"
        );
        assert!(marked_error("ordinary output").is_none());
    }

    #[test]
    fn step_errors_keep_the_outcome_not_the_command() {
        assert_eq!(
            readable_error("executor failed running [/bin/sh -c long command]: exit code: 3"),
            "the command failed (exit code: 3)"
        );
        assert_eq!(readable_error("no space left"), "no space left");
        assert_eq!(shorten("abcdef", 3), "abc…");
    }

    #[test]
    fn an_error_is_judged_by_where_it_came_from_not_by_its_words() {
        use bollard::errors::Error as Client;
        let io = |kind, words: &str| Client::IOError {
            err: std::io::Error::new(kind, words.to_string()),
        };
        let judged = |ended, answers| format!("{:?}", judge(ended, answers));
        let engine = |words: &str| Ended::Engine(words.to_string());
        use std::io::ErrorKind::*;
        // The answer broke off: whatever the words or the kind, the engine still answers.
        assert!(
            judged(Ended::Client(io(Other, "bytes remaining on stream")), true)
                .starts_with("BrokeOff")
        );
        assert!(judged(Ended::Client(io(ConnectionReset, "reset")), true).starts_with("BrokeOff"));
        // An engine that no longer answers is lost, whatever the words.
        for e in [
            io(ConnectionRefused, "refused"),
            io(Other, "bytes remaining on stream"),
        ] {
            assert!(judged(Ended::Client(e), false).starts_with("Lost"));
        }
        // The engine's own words are never a broken answer, even in a broken answer's words.
        for words in [
            "bytes remaining on stream",
            "error reading a body from connection: connection closed before message completed",
            "no space left on device",
        ] {
            assert!(
                judged(engine(words), true).starts_with("StepFailed"),
                "{words}"
            );
        }
        // BuildKit's clash, as the stream's error line or bollard's stream error.
        assert!(judged(engine("failed to solve: duplicate output 0"), true).starts_with("Clash"));
        let stream = Client::DockerStreamError {
            error: "duplicate output 12".into(),
        };
        assert!(judged(Ended::Client(stream), true).starts_with("Clash"));
        // A step whose command says those words failed on its own.
        for words in [
            "process \"/bin/sh -c echo duplicate output 0\" did not complete successfully: exit code: 1",
            "executor failed running [/bin/sh -c printf 'duplicate output 3']: exit code: 2",
            "duplicate output",
            "duplicate output 0x1",
        ] {
            assert!(judged(engine(words), true).starts_with("StepFailed"), "{words}");
        }
    }

    #[test]
    fn a_step_failure_in_the_words_of_a_lost_engine_is_still_a_step_failure() {
        // The engine answered with this failure: whatever its words, it is running.
        let progress = Progress::new(crate::engine::progress::ProgressMode::Quiet, "t");
        for words in [
            "failed to compute cache key: \"/x\": no such file or directory",
            "process \"/bin/sh -c curl x\" did not complete successfully: connection refused, timed out",
        ] {
            let e = step_error(&progress, "linux/amd64", words);
            assert_eq!(e.exit_code(), crate::error::exit::BUILD_STEP, "{e}");
            assert!(!e.to_string().contains("is the Docker engine running?"), "{e}");
        }
    }

    #[test]
    fn session_ids_are_unique() {
        assert_ne!(session_id(), session_id());
    }
}
