//! The test harness, by concern:
//! - this file: the `Test` builder, which runs dpy and compares its outputs
//!   (`Test::new().args([..]).status(2).stderr_contains("..").run()`);
//! - `engine`: the gate every engine test passes first, and what a failed build must
//!   not leave in the engine;
//! - `docker`: Debian's docker CLI, to look at what dpy made;
//! - `sigstore`: signing keys, and signatures checked with skopeo and openssl;
//! - `testbed`: the test bed's source images, test repositories, and the one helper that
//!   spells `dpy build`.
//!
//! Engine tests call `engine()` first. Without an engine they are skipped with a line on
//! stderr, unless DPY_REQUIRE_ENGINE=1 (CI sets it): then a missing engine fails them.
mod docker;
mod engine;
mod sigstore;
mod testbed;

pub use docker::*;
pub use engine::*;
pub use sigstore::*;
pub use testbed::*;

use std::process::Output;

pub const BIN: &str = env!("CARGO_BIN_EXE_dpy");

pub struct Test {
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    status: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    stdout_exact: Option<String>,
    stderr_exact: Option<String>,
    one_line_error: bool,
}

impl Test {
    pub fn new() -> Self {
        Test {
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            status: Some(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_exact: None,
            stderr_exact: None,
            one_line_error: false,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.env_remove.push(key.into());
        self
    }

    /// Expected exit code (default 0).
    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    pub fn any_status(mut self) -> Self {
        self.status = None;
        self
    }

    pub fn stdout_contains(mut self, text: &str) -> Self {
        self.stdout.push(text.into());
        self
    }

    /// The whole of stdout.
    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout_exact = Some(text.into());
        self
    }

    /// The whole of stderr: where an error line is the specification.
    pub fn stderr(mut self, text: &str) -> Self {
        self.stderr_exact = Some(text.into());
        self
    }

    pub fn stderr_contains(mut self, text: &str) -> Self {
        self.stderr.push(text.into());
        self
    }

    /// The error is a single `dpy: error: ...` line.
    pub fn one_line_error(mut self) -> Self {
        self.one_line_error = true;
        self
    }

    pub fn run(self) -> Output {
        let mut command = std::process::Command::new(BIN);
        // No test answers a prompt: dpy reads nothing it was not given.
        command.args(&self.args).stdin(std::process::Stdio::null());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        for k in &self.env_remove {
            command.env_remove(k);
        }
        let output = command.output().expect("dpy runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let show = || {
            format!(
                "dpy {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                self.args
            )
        };
        if let Some(code) = self.status {
            assert_eq!(output.status.code(), Some(code), "exit code\n{}", show());
        }
        for text in &self.stdout {
            assert!(
                stdout.contains(text.as_str()),
                "stdout lacks {text:?}\n{}",
                show()
            );
        }
        if let Some(exact) = &self.stdout_exact {
            assert_eq!(&stdout, exact, "{}", show());
        }
        if let Some(exact) = &self.stderr_exact {
            assert_eq!(&stderr, exact, "{}", show());
        }
        for text in &self.stderr {
            assert!(
                stderr.contains(text.as_str()),
                "stderr lacks {text:?}\n{}",
                show()
            );
        }
        if self.one_line_error {
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("dpy: error:"))
                .collect();
            assert_eq!(errors.len(), 1, "one error line\n{}", show());
            assert!(
                stderr.trim_end().ends_with(errors[0]) && !errors[0].is_empty(),
                "the error is the last line\n{}",
                show()
            );
        }
        output
    }
}
