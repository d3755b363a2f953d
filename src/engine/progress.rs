//! Progress of BuildKit builds: which vertices started, finished or hit the cache.
//!
//! BuildKit resends the same vertex many times as its state changes, so vertices are
//! de-duplicated by digest and each change is printed once. Log lines are kept per
//! vertex (the last 20) so a failing step can be reported with its own output.
//!
//! Everything a vertex carries (its name, its error, its log) is made printable by
//! `terminal_text` as it arrives, before it is kept: what is printed here,
//! returned as a marked line, or put into an error by engine::build is then safe.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use bollard::moby::buildkit::v1::StatusResponse;

use crate::terminal_text::{one_line, sanitize};

/// Every live line of this process, one per build in flight (indicatif keeps them
/// together at the bottom of the terminal, and prints other lines above them).
fn lines() -> &'static MultiProgress {
    static LINES: OnceLock<MultiProgress> = OnceLock::new();
    LINES.get_or_init(MultiProgress::new)
}

/// How much to print, as `--progress` (buildx's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// `tty` on a terminal, `plain` otherwise.
    Auto,
    /// Live status line on a terminal.
    Tty,
    /// One line per event, for CI logs.
    Plain,
    /// Errors only.
    Quiet,
}

impl ProgressMode {
    /// Resolves `auto` against whether stderr is a terminal.
    pub fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        }
    }
}

const LOG_TAIL: usize = 20;

#[derive(Debug, Default)]
struct VertexState {
    name: String,
    started: bool,
    done: bool,
    error: String,
    logs: VecDeque<String>,
    partial: String,
}

/// Progress of one build, shared by the tasks reading its stream.
pub struct Progress {
    mode: ProgressMode,
    label: String,
    vertices: Mutex<HashMap<String, VertexState>>,
    /// In tty mode: this build's live line among every build's (`--jobs`, platforms).
    bar: Option<ProgressBar>,
}

/// A step that failed, with its log tail.
impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[derive(Debug, Clone)]
pub struct FailedStep {
    pub name: String,
    pub error: String,
    pub tail: Vec<String>,
}

/// A protobuf timestamp as seconds (the type itself is not re-exported by bollard).
macro_rules! seconds {
    ($ts:expr) => {
        $ts.as_ref()
            .map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
    };
}

impl Progress {
    pub fn new(mode: ProgressMode, label: impl Into<String>) -> Self {
        let mode = mode.resolve();
        let bar = (mode == ProgressMode::Tty).then(|| {
            let bar = lines().add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {wide_msg}").expect("a fixed template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress {
            mode,
            bar,
            label: label.into(),
            vertices: Mutex::new(HashMap::new()),
        }
    }

    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// Prints a line of dpy's own (not BuildKit's) unless quiet.
    pub fn note(&self, message: &str) {
        if self.mode != ProgressMode::Quiet {
            self.emit(&format!("[{}] {message}", self.label));
        }
    }

    /// Warnings are shown in every mode.
    pub fn warn(&self, message: &str) {
        self.emit(&format!("warning: [{}] {message}", self.label));
    }

    fn emit(&self, line: &str) {
        // Notes and warnings quote what the source wrote too (layout.json's warnings,
        // paths of its export): the last gate before the terminal. Idempotent, so text
        // made printable earlier passes as it is.
        let line = sanitize(line);
        match &self.bar {
            // Above every live line, which stay at the bottom.
            Some(_) => {
                let _ = lines().println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    fn status_line(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(line.to_string());
        }
    }

    /// Ends this build's live line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn update(&self, status: &StatusResponse) -> Vec<String> {
        let mut marked = Vec::new();
        let mut vertices = self.vertices.lock().expect("progress lock");
        for v in &status.vertexes {
            let state = vertices.entry(v.digest.clone()).or_default();
            // A step's name is the Dockerfile's command, but it can carry what the user
            // or the source named (an image reference), and its error quotes the step.
            let name = one_line(&v.name);
            state.name = name.clone();
            if !v.error.is_empty() {
                state.error = one_line(&v.error);
            }
            let internal = v.name.starts_with("[internal]") || v.name.starts_with("[auth]");
            if v.cached && !state.done {
                state.done = true;
                if self.mode == ProgressMode::Plain && !internal {
                    self.emit(&format!("[{}] CACHED {name}", self.label));
                }
                continue;
            }
            if v.started.is_some() && !state.started {
                state.started = true;
                match self.mode {
                    ProgressMode::Plain if !internal => {
                        self.emit(&format!("[{}] => {name}", self.label))
                    }
                    ProgressMode::Tty => self.status_line(&format!("[{}] => {name}", self.label)),
                    _ => {}
                }
            }
            if v.completed.is_some() && !state.done {
                state.done = true;
                let took = match (seconds!(v.started), seconds!(v.completed)) {
                    (Some(a), Some(b)) => format!(" {:.1}s", (b - a).max(0.0)),
                    _ => String::new(),
                };
                let show =
                    !internal && matches!(self.mode, ProgressMode::Plain | ProgressMode::Tty);
                if v.error.is_empty() && show {
                    self.emit(&format!("[{}] DONE {name}{took}", self.label));
                } else if !v.error.is_empty() && self.mode != ProgressMode::Quiet {
                    self.emit(&format!("[{}] ERROR {name}: {}", self.label, state.error));
                }
            }
        }
        for log in &status.logs {
            let state = vertices.entry(log.vertex.clone()).or_default();
            state.partial.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(pos) = state.partial.find('\n') {
                let line: String = state.partial.drain(..=pos).collect();
                // The source's own output: escapes in it must not act on the terminal.
                let line = sanitize(line.trim_end()).into_owned();
                if line.contains("DPY-ERROR") || line.contains("DPY-WARN") {
                    marked.push(line.clone());
                }
                if self.mode == ProgressMode::Plain {
                    self.emit(&format!("[{}]    {line}", self.label));
                }
                state.logs.push_back(line);
                if state.logs.len() > LOG_TAIL {
                    state.logs.pop_front();
                }
            }
        }
        marked
    }

    /// The step that failed, with its last log lines. BuildKit marks the failing
    /// vertex with an error; without one, the step that logged last is the best guess.
    pub fn failure(&self, error: &str) -> Option<FailedStep> {
        let vertices = self.vertices.lock().expect("progress lock");
        let candidate = vertices
            .values()
            .find(|v| !v.error.is_empty() && !v.logs.is_empty())
            .or_else(|| vertices.values().find(|v| !v.error.is_empty()))
            .or_else(|| {
                vertices
                    .values()
                    .filter(|v| v.started && !v.done && !v.logs.is_empty())
                    .max_by_key(|v| v.logs.len())
            })?;
        let mut tail: Vec<String> = candidate.logs.iter().cloned().collect();
        if !candidate.partial.is_empty() {
            tail.push(sanitize(candidate.partial.trim_end()).into_owned());
        }
        Some(FailedStep {
            name: candidate.name.clone(),
            error: if candidate.error.is_empty() {
                error.to_string()
            } else {
                candidate.error.clone()
            },
            tail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{Vertex, VertexLog};

    #[test]
    fn what_a_step_prints_is_kept_and_returned_sanitized() {
        let progress = Progress::new(ProgressMode::Quiet, "test");
        let status = StatusResponse {
            vertexes: vec![Vertex {
                digest: "sha256:1".into(),
                name: "[gather 2/2] RUN gather \u{202e}".into(),
                error: "exit code: 1\x1b]0;title\x07".into(),
                ..Vertex::default()
            }],
            logs: vec![VertexLog {
                vertex: "sha256:1".into(),
                msg: b"DPY-WARN \x1b[2Kfake\r\nplain\r\nDPY-ERROR x: \x1b]8;;http://e/\x1b\\no\nhalf \x9b"
                    .to_vec(),
                ..VertexLog::default()
            }],
            ..StatusResponse::default()
        };
        let marked = progress.update(&status);
        assert_eq!(
            marked,
            [
                "DPY-WARN \\x1b[2Kfake",
                "DPY-ERROR x: \\x1b]8;;http://e/\\x1b\\no"
            ]
        );
        let step = progress.failure("failed").unwrap();
        assert_eq!(step.name, "[gather 2/2] RUN gather \\u{202e}");
        assert_eq!(step.error, "exit code: 1\\x1b]0;title\\x07");
        // The unfinished last line too (a lone 0x9b byte is no UTF-8: U+FFFD).
        assert_eq!(
            step.tail,
            [
                "DPY-WARN \\x1b[2Kfake",
                "plain",
                "DPY-ERROR x: \\x1b]8;;http://e/\\x1b\\no",
                "half \u{fffd}"
            ]
        );
    }
}
