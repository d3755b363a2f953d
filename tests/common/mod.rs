//! The test harness: `Test::new().args([..]).status(2).stderr_contains("..").run()`.
//!
//! Engine tests call `engine()` first. Without an engine they are skipped with a line on
//! stderr, unless DPY_REQUIRE_ENGINE=1 (CI sets it): then a missing engine fails them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub const BIN: &str = env!("CARGO_BIN_EXE_dpy");

/// The Debian-package source image the test bed builds (scripts/testbed).
pub fn debian_source() -> String {
    std::env::var("DPY_TEST_DEBIAN_SOURCE")
        .unwrap_or_else(|_| "dpy-testbed/python:3.11-bookworm-amd64".into())
}

/// The musl stand-in with the official Alpine layout (scripts/testbed-musl).
pub fn alpine_source(python: &str) -> String {
    format!("dpy-testbed/python:{python}-alpine3.20-amd64")
}

/// The stand-in with the official Debian layout (scripts/testbed-slim): CPython in
/// /usr/local with a shared libpython, on bookworm.
pub fn slim_source(python: &str) -> String {
    format!("dpy-testbed/python:{python}-slim-bookworm-amd64")
}

pub struct Test {
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    dir: Option<PathBuf>,
    status: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    stdout_exact: Option<String>,
    one_line_error: bool,
}

impl Test {
    pub fn new() -> Self {
        Test {
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            dir: None,
            status: Some(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_exact: None,
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

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
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

    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout_exact = Some(text.into());
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
        command.args(&self.args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        for k in &self.env_remove {
            command.env_remove(k);
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
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

/// Whether the tests must find an engine (CI) rather than skip.
pub fn engine_required() -> bool {
    std::env::var("DPY_REQUIRE_ENGINE").is_ok_and(|v| v == "1")
}

/// `true` when a Docker engine answers. Without one: fails when required, else skips.
pub fn engine(test: &str) -> bool {
    let answered = std::process::Command::new(BIN)
        .args(["doctor"])
        .output()
        .map(|o| {
            o.status.code() != Some(10)
                && !String::from_utf8_lossy(&o.stdout).contains("MISSING engine")
        })
        .unwrap_or(false);
    if !answered {
        assert!(
            !engine_required(),
            "{test}: DPY_REQUIRE_ENGINE=1 but no Docker engine answers; run scripts/testbed"
        );
        eprintln!("SKIPPED {test}: no Docker engine (set DPY_REQUIRE_ENGINE=1 to fail instead)");
    }
    answered
}

/// Asserts the test-bed image exists when an engine is present.
pub fn require_image(image: &str) {
    let ok = docker(&["image", "inspect", image]).status.success();
    assert!(
        ok,
        "the test-bed image {image} is missing; run scripts/testbed"
    );
}

/// Runs Debian's docker CLI (the tests use it only to inspect what dpy made).
pub fn docker(args: &[&str]) -> Output {
    let cli = if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    std::process::Command::new(cli)
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Image ids with this repository, for "nothing left behind" assertions.
pub fn images_of(repository: &str) -> Vec<String> {
    docker_ok(&[
        "image",
        "ls",
        "-q",
        "--filter",
        &format!("reference={repository}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

pub fn containers() -> Vec<String> {
    docker_ok(&["ps", "-aq"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// A repository name unique to one test, so tests never see each other's tags.
pub fn unique_repository(test: &str) -> Repository {
    Repository(format!("dpy-test/{test}-{}", std::process::id()))
}

/// A test's repository. When the test ends, pass or fail, every image tagged in it is
/// untagged: under its name, under a registry host (`127.0.0.1:5000/<name>`), and in the
/// repositories derived from it (`<name>-flask`), so runs of the suite do not pile up
/// images in the engine.
pub struct Repository(String);

impl Repository {
    /// A repository under a registry host, e.g. `127.0.0.1:5000/dpy-test/e2e<pid>`.
    pub fn at(registry: &str, test: &str) -> Self {
        Repository(format!("{registry}/dpy-test/{test}{}", std::process::id()))
    }

    fn owns(&self, repository: &str) -> bool {
        let name = &self.0;
        repository == name
            || repository.starts_with(&format!("{name}-"))
            || repository.ends_with(&format!("/{name}"))
    }
}

impl std::ops::Deref for Repository {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        // No panics here (a failing test is already unwinding): an engine that does not
        // answer simply leaves nothing to clean.
        let Ok(listed) = std::process::Command::new("/usr/bin/docker")
            .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
        else {
            return;
        };
        let tags: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter(|tag| {
                tag.rsplit_once(':')
                    .is_some_and(|(repo, _)| self.owns(repo))
            })
            .map(str::to_string)
            .collect();
        if !tags.is_empty() {
            let _ = std::process::Command::new("/usr/bin/docker")
                .args(["image", "rm"])
                .args(&tags)
                .output();
        }
    }
}

/// `base` plus one `RUN`, built with Debian's docker CLI and tagged `dpy-test/<name>:1`:
/// source images with a defect made on purpose.
pub fn derived_image(name: &str, base: &str, run: &str) -> String {
    image_from_dockerfile(name, &format!("FROM {base}\nRUN {run}\n"))
}

/// An image built from `dockerfile` with Debian's docker CLI, tagged `dpy-test/<name>:1`.
pub fn image_from_dockerfile(name: &str, dockerfile: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let tag = format!("dpy-test/{name}:1");
    let out = std::process::Command::new("/usr/bin/docker")
        .args(["build", "-q", "-t", &tag, dir.path().to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

/// Builds `3.11-bookworm` from the Debian test-bed source for linux/amd64 into
/// `repository` with `extra` arguments; returns the runtime image's tag.
pub fn build_debian(repository: &str, extra: &[&str]) -> String {
    let source = debian_source();
    require_image(&source);
    build_amd64("3.11-bookworm", &source, repository, extra).run();
    format!("{repository}:3.11-bookworm")
}

/// `dpy build TARGET` for linux/amd64 from SOURCE into REPOSITORY with EXTRA arguments
/// (plain progress, no metadata file), ready for the caller's expectations and `run()`.
pub fn build_amd64(target: &str, source: &str, repository: &str, extra: &[&str]) -> Test {
    Test::new()
        .args([
            "build",
            target,
            "--platform",
            "linux/amd64",
            "--progress",
            "plain",
        ])
        .args(["--metadata-file", "/dev/null"])
        .args(["--repository", repository, "--source-image", source])
        .args(extra)
}

/// The runtime image's interpreter run with `args` (`docker run --rm IMAGE ARGS...`).
pub fn python_in(image: &str, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm", "--network", "none", image];
    all.extend_from_slice(args);
    docker(&all)
}

/// What the engine holds that a failed build must not add to: containers, and untagged
/// images that dpy built (they carry its io.dpy.profile label; a test-bed image left
/// untagged by a rebuild does not count).
pub struct Engine {
    containers: Vec<String>,
    dangling: Vec<String>,
}

fn dpy_dangling() -> Vec<String> {
    docker_ok(&[
        "image",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        "dangling=true",
        "--filter",
        "label=io.dpy.profile",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

impl Engine {
    pub fn now() -> Self {
        Engine {
            containers: containers(),
            dangling: dpy_dangling(),
        }
    }

    /// No tag in `repository`, no new container, no new dangling image of dpy's.
    pub fn assert_nothing_left(&self, repository: &str) {
        assert!(
            images_of(repository).is_empty(),
            "no image tagged in {repository}"
        );
        assert_no_new_containers(&self.containers);
        self.assert_no_new_dangling();
    }

    /// The engine creates a built image before it tags it, so another test's build in
    /// flight shows an untagged image for a moment: one still there after 20 s is a leak.
    pub fn assert_no_new_dangling(&self) {
        let mut new = Vec::new();
        for _ in 0..40 {
            new = dpy_dangling()
                .into_iter()
                .filter(|i| !self.dangling.contains(i))
                .collect();
            if new.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("dangling images left: {new:?}");
    }
}

/// No container created since `before` is left. Tests run two at a time and the other
/// one may have a short-lived container of its own running (dpy test removes its
/// containers when they exit): a container still there after 20 s is a leak.
pub fn assert_no_new_containers(before: &[String]) {
    let mut new = Vec::new();
    for _ in 0..40 {
        new = containers()
            .into_iter()
            .filter(|c| !before.contains(c))
            .collect();
        if new.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("stray containers: {new:?}");
}
