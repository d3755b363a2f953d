//! Several engines: `--engine PLATFORM=ENDPOINT` builds a platform on another Docker
//! engine. The test bed (scripts/testbed-engines) runs a second dockerd, reachable over
//! TLS on tcp://127.0.0.1:2376, and sshd on 127.0.0.1:2222 (root's ssh config calls it
//! dpy-testbed-ssh) whose `docker system dial-stdio` reaches the first engine.

use std::process::Command;

use crate::common::{self, Test};

const SECOND_SOCKET: &str = "unix:///run/dpy-engine2/docker.sock";
const SECOND_TLS: &str = "tcp://127.0.0.1:2376";
const SSH: &str = "ssh://root@dpy-testbed-ssh";
const REGISTRY: &str = "127.0.0.1:5000";
const AUTH: &str = "dpy:dpy-test-password";

/// The client certificates of the second engine (DOCKER_CERT_PATH).
fn certs() -> String {
    std::env::var("DPY_TEST_ENGINE2_CERTS")
        .unwrap_or_else(|_| "/var/cache/dpy-testbed/engine2-client".into())
}

/// The docker CLI on the second engine.
fn docker2(args: &[&str]) -> std::process::Output {
    Command::new("/usr/bin/docker")
        .env("DOCKER_HOST", SECOND_SOCKET)
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// The first engine and the second answer, or the test fails (CI) or is skipped.
fn engines(test: &str) -> bool {
    if !common::engine(test) {
        return false;
    }
    let answered = docker2(&["version"]).status.success();
    assert!(
        answered,
        "{test}: no second engine at {SECOND_SOCKET}; run scripts/testbed"
    );
    true
}

/// 3.11-bookworm for amd64 and arm64, arm64 on the second engine over TLS, pushed: each
/// image is built and stays where its engine is, the bytecode compiled on the first
/// engine serves the second (compile once across engines), each engine pushes its own,
/// and one index joins them.
#[test]
fn a_platform_builds_on_a_second_engine_over_tls_and_one_index_joins_them() {
    if !engines("engines::tls") {
        return;
    }
    let repository = common::Repository::at(REGISTRY, "engines");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("m.json");
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(["--progress", "plain", "--push", "--registry-auth", AUTH])
        .args(["--source-image", "dpy-testbed/python:{target}-{arch}"])
        .args([
            "--repository",
            &repository,
            "--metadata-file",
            metadata.to_str().unwrap(),
        ])
        .args(["--engine", &format!("linux/arm64={SECOND_TLS}")])
        .env("DOCKER_CERT_PATH", &certs())
        .stderr_contains("[3.11-bookworm linux/arm64] compile once: ")
        .stdout_contains(&format!("{repository}:3.11-bookworm@sha256:"))
        .run();
    let arm64 = format!("{repository}:3.11-bookworm-arm64");
    let amd64 = format!("{repository}:3.11-bookworm-amd64");
    // Each image where its engine is, and only there.
    let on_second = |image: &str| docker2(&["image", "inspect", "-f", "{{.Architecture}}", image]);
    let on_first =
        |image: &str| common::docker(&["image", "inspect", "-f", "{{.Architecture}}", image]);
    assert_eq!(
        String::from_utf8_lossy(&on_second(&arm64).stdout).trim(),
        "arm64"
    );
    assert!(
        !on_first(&arm64).status.success(),
        "{arm64} is on the first engine too"
    );
    assert_eq!(
        String::from_utf8_lossy(&on_first(&amd64).stdout).trim(),
        "amd64"
    );
    assert!(
        !on_second(&amd64).status.success(),
        "{amd64} is on the second engine too"
    );
    // The arm64 runtime runs there.
    let ran = docker2(&[
        "run",
        "--rm",
        "--network",
        "none",
        &arm64,
        "-c",
        "import ssl, sqlite3, platform; print(platform.machine())",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        "aarch64",
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    // One index in the registry, with both.
    let raw = common::registry_manifest(&format!("{repository}:3.11-bookworm"), AUTH);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let arches: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    for tag in ["3.11-bookworm-arm64", "3.11-bookworm-buildroot-arm64"] {
        docker2(&["image", "rm", &format!("{repository}:{tag}")]);
    }
}

/// Offline: the second engine's containers have no network (scripts/testbed-engines), so
/// the builder's apt and PyPI answer nothing there. The sid source's python3 is Debian's
/// own, without pip, so the builder runs apt, which fetches nothing, and what apt leaves
/// behind (pkgcache.bin, its logs) goes: the places apt writes to are as in the source.
/// A --no-cache build gives the runtime and -buildroot ids of the build before it, which
/// BuildKit's cache answered (from an earlier run: made at another time). With
/// SOURCE_DATE_EPOCH, every time in both images is that time.
#[test]
fn offline_no_cache_builds_give_one_id_for_each_image() {
    if !engines("engines::offline") {
        return;
    }
    let source = common::sid_source("3.14");
    assert!(
        docker2(&["image", "inspect", &source]).status.success(),
        "{source} is not on the second engine; run scripts/testbed"
    );
    let repository = common::unique_repository("offline");
    let image = format!("{repository}:3.14-trixie");
    let buildroot = format!("{image}-buildroot");
    let on_second = |args: &[&str]| {
        let out = docker2(args);
        assert!(
            out.status.success(),
            "docker {args:?} on the second engine: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let apt_places =
        |image: &str| on_second(&common::run_args(image, "sh", &["-c", common::APT_PLACES]));
    let build = |cache: &[&str]| {
        common::build_amd64("3.14-trixie", &source, &repository, cache)
            .args(["--progress", "quiet"])
            .args(["--engine", &format!("linux/amd64={SECOND_SOCKET}")])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .run();
        // Nothing answered the builder: it has no pip.
        let origin = on_second(&common::run_args(
            &buildroot,
            "cat",
            &["/opt/dpy/builder-pip.json"],
        ));
        assert!(origin.contains(r#""origin": "none""#), "{origin}");
        assert_eq!(apt_places(&buildroot), apt_places(&source));
        let mut seen = Vec::new();
        for name in [&image, &buildroot] {
            seen.push(on_second(&[
                "image",
                "inspect",
                "-f",
                "{{.Id}} {{.Created}}",
                name,
            ]));
            seen.push(on_second(&["history", "--format", "{{.CreatedAt}}", name]));
        }
        docker2(&["image", "rm", &image, &buildroot]);
        seen.join(" ")
    };
    let (cached, fresh) = (build(&[]), build(&["--no-cache"]));
    assert_eq!(cached, fresh, "a build from the cache and one without it");
    let times: Vec<&str> = cached
        .split_whitespace()
        .filter(|t| !t.starts_with("sha256:"))
        .collect();
    assert!(times.len() >= 6, "{cached}");
    assert!(
        times.iter().all(|t| *t == "2023-11-14T22:13:20Z"),
        "{cached}"
    );
}

/// An ssh:// endpoint: the build runs through `docker system dial-stdio` on the far
/// side (here the first engine, over sshd on loopback); `dpy doctor` checks it and the
/// TLS engine as it checks the default one.
#[test]
fn an_engine_over_ssh_builds_and_doctor_checks_every_engine() {
    if !engines("engines::ssh") {
        return;
    }
    let source = common::alpine_source("3.13");
    common::require_image(&source);
    let repository = common::unique_repository("ssh");
    common::build_amd64(
        "3.13-alpine3.20",
        &source,
        &repository,
        &["--engine", &format!("linux/amd64={SSH}")],
    )
    .stdout_contains(&format!("{repository}:3.13-alpine3.20 "))
    .run();
    Test::new()
        .args(["doctor", "--engine", &format!("linux/amd64={SSH}")])
        .args(["--engine", &format!("linux/arm64={SECOND_TLS}")])
        .env("DOCKER_CERT_PATH", &certs())
        .stdout_contains(&format!("ok      engine {SSH} for linux/amd64: Docker "))
        .stdout_contains(&format!("ok      engine {SSH} for linux/amd64: buildkit: "))
        .stdout_contains(&format!(
            "ok      engine {SECOND_TLS} for linux/arm64: Docker "
        ))
        .stdout_contains(&format!(
            "ok      engine {SECOND_TLS} for linux/arm64: platform: emulated (binfmt)"
        ))
        .run();
}

/// An engine that does not answer is refused before anything is built, naming it; a
/// malformed --engine before the engine is asked at all.
#[test]
fn a_bad_or_silent_engine_is_refused_before_building() {
    Test::new()
        .args(["build", "3.13-alpine3.20", "--engine", "linux/arm64"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr_contains("--engine \"linux/arm64\": give PLATFORM=ENDPOINT")
        .one_line_error()
        .run();
    Test::new()
        .args([
            "build",
            "3.13-alpine3.20",
            "--engine",
            "linux/arm64=http://host",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr_contains("is not unix:///path, tcp://host:port or ssh://user@host")
        .one_line_error()
        .run();
    if !common::engine("engines::silent") {
        return;
    }
    let repository = common::unique_repository("silent");
    let before = common::Engine::now();
    common::build_amd64(
        "3.13-alpine3.20",
        &common::alpine_source("3.13"),
        &repository,
        &["--engine", "linux/amd64=unix:///nonexistent/engine.sock"],
    )
    .status(10)
    .stderr_contains("the engine at unix:///nonexistent/engine.sock")
    .one_line_error()
    .run();
    before.assert_nothing_left(&repository);
}

/// `--engine linux/amd64=unix://…` twice, the default engine and the second: two
/// targets take one each, and each image exists only on the engine that built it.
#[test]
fn two_engines_for_one_platform_take_a_target_each() {
    if !engines("engines::spread") {
        return;
    }
    for python in ["3.13", "3.11"] {
        common::require_image(&common::alpine_source(python));
    }
    let repository = common::unique_repository("spread");
    common::build_amd64(
        "3.13-alpine3.20",
        "dpy-testbed/python:{target}-{arch}",
        &repository,
        &["3.11-alpine3.20", "--jobs", "2"],
    )
    .args(["--engine", "linux/amd64=unix:///var/run/docker.sock"])
    .args(["--engine", &format!("linux/amd64={SECOND_SOCKET}")])
    .run();
    let (first, second) = (
        format!("{repository}:3.13-alpine3.20"),
        format!("{repository}:3.11-alpine3.20"),
    );
    let present = |out: std::process::Output| out.status.success();
    assert!(present(common::docker(&["image", "inspect", &first])));
    assert!(
        !present(docker2(&["image", "inspect", &first])),
        "{first} on the second engine"
    );
    assert!(present(docker2(&["image", "inspect", &second])));
    assert!(
        !present(common::docker(&["image", "inspect", &second])),
        "{second} on the first engine"
    );
    for tag in ["3.11-alpine3.20", "3.11-alpine3.20-buildroot"] {
        docker2(&["image", "rm", &format!("{repository}:{tag}")]);
    }
}

/// TLS is checked: client certificates signed by another CA are refused in one line,
/// before anything is built.
#[test]
fn an_engine_behind_tls_refuses_a_wrong_ca() {
    if !engines("engines::wrong-ca") {
        return;
    }
    let wrong = tempfile::tempdir().unwrap();
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(
            std::path::Path::new(&certs()).join(file),
            wrong.path().join(file),
        )
        .unwrap();
    }
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=another CA",
        ])
        .arg("-keyout")
        .arg(wrong.path().join("ca-key.pem"))
        .arg("-out")
        .arg(wrong.path().join("ca.pem"))
        .output()
        .unwrap();
    assert!(made.status.success());
    let repository = common::unique_repository("wrongca");
    let before = common::Engine::now();
    common::build_amd64(
        "3.13-alpine3.20",
        &common::alpine_source("3.13"),
        &repository,
        &["--engine", &format!("linux/amd64={SECOND_TLS}")],
    )
    .env("DOCKER_CERT_PATH", wrong.path().to_str().unwrap())
    .status(10)
    .stderr_contains(&format!("the Docker engine at {SECOND_TLS} did not answer"))
    .one_line_error()
    .run();
    before.assert_nothing_left(&repository);
}

/// Engine options refused before anything is built, each in one line: an unknown
/// platform, and a platform the named engine cannot run (one without a binfmt handler
/// here, s390x on the test bed); `--jobs 0`.
#[test]
fn engine_and_jobs_options_are_checked_before_building() {
    Test::new()
        .args([
            "build",
            "3.13-alpine3.20",
            "--engine",
            "linux/arm65=unix:///run/x.sock",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr_contains("unknown architecture \"arm65\"")
        .one_line_error()
        .run();
    Test::new()
        .args(["build", "3.13-alpine3.20", "--jobs", "0"])
        .status(2)
        .stderr_contains("invalid value '0' for '--jobs <N>'")
        .run();
    if !engines("engines::cannot-run") {
        return;
    }
    let Some(platform) = common::unrunnable_platform() else {
        common::cannot_test(
            "engines::cannot-run",
            "this machine runs every platform dpy knows",
        );
        return;
    };
    let repository = common::unique_repository("s390x");
    let before = common::Engine::now();
    common::build_amd64(
        "3.13-alpine3.20",
        &common::alpine_source("3.13"),
        &repository,
        &[],
    )
    .args(["--platform", platform])
    .args(["--engine", &format!("{platform}={SECOND_SOCKET}")])
    .status(2)
    .stderr_contains(&format!(
        "platform {platform} cannot run on this linux/amd64 machine"
    ))
    .one_line_error()
    .run();
    before.assert_nothing_left(&repository);
}
