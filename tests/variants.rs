//! Variants: `--shell none` (a runtime with no shell at all) and `--variants` with the
//! -debug image (the runtime plus busybox, or the source's own tools).

use crate::common::{self, Test};

/// The musl stand-in built with `--shell none` and all three variants, one build:
/// - the runtime passes `dpy test` with the no-shell expectations (the image's
///   io.dpy.shell label), no file in it is named like a shell (read from `docker
///   export`, not from inside), and the -buildroot image's chroot-exec still runs;
/// - the -debug image opens a shell with the source's busybox, passes `dpy test` with
///   its own expectations (io.dpy.variant), and is the runtime's layer plus one.
#[test]
fn a_runtime_without_a_shell_and_its_debug_image_each_pass_their_own_conformance() {
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
        &["--shell", "none", "--variants", "runtime,buildroot,debug"],
    )
    .stdout_contains(&format!(
        "{repository}:3.13-alpine3.20 {repository}:3.13-alpine3.20-buildroot {repository}:3.13-alpine3.20-debug ("
    ))
    .run();
    let image = format!("{repository}:3.13-alpine3.20");
    let debug = format!("{image}-debug");
    common::assert_debug_image(&debug, &image, Some(&source), "(busybox /bin/busybox)");
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

/// A Debian source, whose package index answers on the test bed: the -debug image gets
/// Debian's busybox, and its package record: syft, reading the image, lists busybox in
/// the debug image (from dpkg's status and from the image's SBOM) and not in the runtime,
/// whose conformance (no shell tools) still passes.
#[test]
fn a_debian_debug_image_carries_the_familys_busybox_and_its_record() {
    if !common::engine("variants::debian-debug") {
        return;
    }
    let repository = common::unique_repository("debug");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("meta.json");
    let image = common::build_debian(
        &repository,
        &[
            "--variants",
            "runtime,debug",
            "--metadata-file",
            metadata.to_str().unwrap(),
        ],
    );
    let debug = format!("{image}-debug");
    // Recorded like the others: `dpy readme` lists it, and its SBOM is beside the file.
    Test::new()
        .args(["readme", "--metadata", metadata.to_str().unwrap()])
        .stdout_contains(&format!("{debug} <"))
        .run();
    let sbom = std::fs::read_to_string(
        dir.path()
            .join("dpy-sbom")
            .join(format!("{}.spdx.json", debug.replace(['/', ':'], "_"))),
    )
    .unwrap();
    assert!(sbom.contains("pkg:deb/debian/busybox@"), "{sbom}");
    common::assert_debug_image(&debug, &image, None, "(busybox /usr/bin/busybox)");
    Test::new()
        .args(["test", &image])
        .stdout_contains("ok   no-forbidden-binaries: none of bash, busybox")
        .stdout_contains(" 0 failed")
        .run();
    let names = |image: &str| -> Vec<(String, String)> {
        common::syft(image)
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap_or_default().to_string(),
                    a["foundBy"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let in_debug = names(&debug);
    for cataloger in ["dpkg-db-cataloger", "sbom-cataloger"] {
        assert!(
            in_debug.contains(&("busybox".to_string(), cataloger.to_string())),
            "syft lists no busybox by {cataloger} in {debug}: {in_debug:?}"
        );
    }
    assert!(!names(&image).iter().any(|(name, _)| name == "busybox"));
    let listed = common::assert_sbom_seen_by_syft(&debug);
    assert!(
        listed.iter().any(|(name, _, _)| name == "busybox"),
        "{listed:?}"
    );
}

/// A Debian source whose package index does not answer (its apt sources removed), and
/// only the debug variant asked for, with no shell in the runtime: the debug layer takes
/// the source's own /bin/sh and tools, with their packages' records, says which tools it
/// lacks, and passes its conformance; no runtime or -buildroot tag is made.
#[test]
fn offline_the_debug_image_takes_the_sources_own_tools() {
    if !common::engine("variants::debug-offline") {
        return;
    }
    let source = common::derived_image(
        "no-apt-sources",
        &common::debian_source(),
        "rm -rf /etc/apt/sources.list /etc/apt/sources.list.d",
    );
    let repository = common::unique_repository("debug-offline");
    common::build_amd64(
        "3.11-bookworm",
        &source,
        &repository,
        &["--variants", "debug", "--shell", "none"],
    )
    .stderr_contains("apt could not add busybox: the debug image gets the source's own tools")
    .stderr_contains(
        "debug layer: the source's own shell and tools; packages recorded: coreutils, dash",
    )
    .stdout_contains(&format!("{repository}:3.11-bookworm-debug ("))
    .run();
    let tags = common::docker_ok(&[
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        &format!("reference={repository}:*"),
    ]);
    assert_eq!(tags.trim(), format!("{repository}:3.11-bookworm-debug"));
    let debug = format!("{repository}:3.11-bookworm-debug");
    Test::new()
        .args(["test", &debug])
        .stdout_contains("ok   debug-tools: sh runs ls, cat, env, id (the source's own tools)")
        .stdout_contains("ok   shell: /bin/sh -> /usr/bin/dash")
        .stdout_contains(" 0 failed")
        .run();
}

#[test]
fn an_unknown_variant_is_refused_before_building() {
    Test::new()
        .args(["build", "3.13-alpine3.20", "--variants", "runtime,dev"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr_contains("invalid value 'dev' for '--variants <LIST>'")
        .stderr_contains("[possible values: runtime, buildroot, debug]")
        .run();
    Test::new()
        .args(["build", "3.13-alpine3.20-debug"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr("dpy: error: invalid target \"3.13-alpine3.20-debug\": a -debug tag is derived from a target, not a target itself; build \"3.13-alpine3.20\" with --variants runtime,buildroot,debug and dpy makes \"3.13-alpine3.20-debug\" alongside it\n")
        .run();
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
