//! The test bed's source images (scripts/testbed*), one repository per test, and the
//! one helper that spells `dpy build`.

use super::{docker, Test};

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

/// A hostile source image of scripts/testbed-hostile: the Debian source with the hook of
/// `class` (tests/data/hostile/), for `arch` (`amd64`, `arm64`, or `{arch}`, which dpy
/// replaces by each platform's). Its tag carries the digest of the recipe as the script
/// computes it, so an image of another recipe is never used.
pub fn hostile_source(class: &str, arch: &str) -> String {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    // "<sha256 of the file> <name>" lines, in byte order of the names.
    let lines: String = names
        .iter()
        .map(|name| {
            let data = std::fs::read(dir.join(name)).unwrap();
            format!("{:x} {name}\n", Sha256::digest(&data))
        })
        .collect();
    let digest = format!("{:x}", Sha256::digest(lines.as_bytes()));
    format!("dpy-testbed/hostile:{class}-{}-{arch}", &digest[..12])
}

/// The stand-ins for the newest Pythons in Debian's layout, from Debian unstable's
/// packages (scripts/testbed-sid): `3.14` or `3.15`.
pub fn sid_source(python: &str) -> String {
    sid_source_of(python, "amd64")
}

/// The sid stand-in of `python` for `arch` (`amd64`, `arm64`, or `{arch}`, which dpy
/// replaces with each platform's).
pub fn sid_source_of(python: &str, arch: &str) -> String {
    format!("dpy-testbed/python:{python}-sid-{arch}")
}

/// Asserts the test-bed image exists when an engine is present.
pub fn require_image(image: &str) {
    let ok = docker(&["image", "inspect", image]).status.success();
    assert!(
        ok,
        "the test-bed image {image} is missing; run scripts/testbed"
    );
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
            .args([
                "image",
                "ls",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
            ])
            .output()
        else {
            return;
        };
        // Tags, and by id the images of the repository that lost their tag to a later
        // build but keep its name through a pushed digest (`repo:<none>`, as a push test
        // that builds again leaves them): either would outlive the test.
        let tags: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter_map(|line| {
                let (tag, id) = line.split_once(' ')?;
                let (repo, name) = tag.rsplit_once(':')?;
                self.owns(repo)
                    .then(|| if name == "<none>" { id } else { tag }.to_string())
            })
            .collect();
        if !tags.is_empty() {
            let _ = std::process::Command::new("/usr/bin/docker")
                .args(["image", "rm"])
                .args(&tags)
                .output();
        }
    }
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
        .args(build_argv(target, source, repository))
        .args(extra)
}

/// The arguments of `dpy build TARGET` for linux/amd64 from SOURCE into REPOSITORY, plain
/// progress, no metadata file: the one spelling of a test build. Later arguments override
/// these (`--platform`, `--progress` and `--metadata-file` take the last one given).
pub fn build_argv(target: &str, source: &str, repository: &str) -> Vec<String> {
    [
        "build",
        target,
        "--platform",
        "linux/amd64",
        "--progress",
        "plain",
        "--metadata-file",
        "/dev/null",
        "--repository",
        repository,
        "--source-image",
        source,
    ]
    .map(String::from)
    .to_vec()
}
