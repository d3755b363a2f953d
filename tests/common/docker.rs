//! Debian's docker CLI, to look at what dpy made and to make defective sources.

use std::path::Path;
use std::process::Output;

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

/// The runtime image's interpreter run with `args` (`docker run --rm IMAGE ARGS...`).
pub fn python_in(image: &str, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm", "--network", "none", image];
    all.extend_from_slice(args);
    docker(&all)
}
