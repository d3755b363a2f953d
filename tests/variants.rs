//! Variants of the runtime image: `--shell none`, a runtime with no shell at all.

use crate::common::{self, Test};

/// The musl stand-in built with `--shell none`: `dpy test` passes with the no-shell
/// expectations (the image's io.dpy.shell label), no file in the image is named like a
/// shell (read from `docker export`, not from inside), and the -buildroot image's
/// chroot-exec still runs the runtime's interpreter.
#[test]
fn a_runtime_without_a_shell_passes_its_own_conformance_and_has_no_shell_file() {
    if !common::engine("variants::shell-none") {
        return;
    }
    let source = common::alpine_source("3.13");
    common::require_image(&source);
    let repository = common::unique_repository("noshell");
    common::build_amd64(
        "3.13-alpine3.20",
        &source,
        &repository,
        &["--shell", "none"],
    )
    .run();
    let image = format!("{repository}:3.13-alpine3.20");
    assert_eq!(
        common::docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"io.dpy.shell\"}}",
            &image
        ])
        .trim(),
        "none"
    );
    Test::new()
        .args(["test", &image, "--source-image", &source])
        .stdout_contains("ok   shell: no shell: ")
        .stdout_contains(" 0 failed")
        .run();

    let container = common::docker_ok(&["create", &image]);
    let export = std::process::Command::new("/usr/bin/docker")
        .args(["export", container.trim()])
        .output()
        .unwrap();
    common::docker_ok(&["rm", container.trim()]);
    assert!(export.status.success());
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    let mut shells = Vec::new();
    let mut count = 0;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let name = path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if ["sh", "dash", "bash", "busybox"].contains(&name.as_str()) {
            shells.push(path);
        }
        count += 1;
    }
    assert!(count > 1000, "the export holds the image: {count} entries");
    assert_eq!(shells, Vec::<String>::new());

    let out = common::docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &format!("{image}-buildroot"),
        "chroot-exec",
        "python3",
        "-c",
        "import ssl, json; print('runs')",
    ]);
    assert_eq!(out.trim(), "runs");
}

#[test]
fn an_unknown_shell_is_refused_before_building() {
    Test::new()
        .args(["build", "3.13-alpine3.20", "--shell", "bash"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr_contains("invalid value 'bash' for '--shell <SHELL>'")
        .run();
}
