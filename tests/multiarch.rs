//! Several platforms at once: linux/amd64 natively and linux/arm64 under qemu, built side
//! by side, tagged per platform only when every platform succeeded.

use crate::common;
use crate::common::{docker_ok, Test};

#[test]
fn amd64_and_arm64_build_together_and_pass_conformance() {
    if !common::engine("multiarch::both") {
        return;
    }
    for arch in ["amd64", "arm64"] {
        common::require_image(&format!("dpy-testbed/python:3.11-bookworm-{arch}"));
    }
    let repository = common::unique_repository("multiarch");
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(["--source-image", "dpy-testbed/python:3.11-bookworm-{arch}"])
        .args([
            "--repository",
            &repository,
            "--progress",
            "plain",
            "--metadata-file",
            "/dev/null",
        ])
        .stdout_contains(&format!("{repository}:3.11-bookworm-amd64"))
        .stdout_contains(&format!("{repository}:3.11-bookworm-arm64"))
        .run();
    // The emulated platform takes the native one's stored (hot) zip entries, and the
    // list of start-up files, along with its bytecode: both stdlib zips store the same
    // modules, and both stdlib directories hold the same start-up files.
    let ask = |arch: &str, code: &str| {
        docker_ok(&[
            "run",
            "--rm",
            "--platform",
            &format!("linux/{arch}"),
            &format!("{repository}:3.11-bookworm-{arch}"),
            "-c",
            code,
        ])
    };
    let stored = |arch: &str| {
        ask(
            arch,
            "import sys, zipfile; z = zipfile.ZipFile([p for p in sys.path if p.endswith('-stdlib.zip')][0]); \
             print(sorted(i.filename for i in z.infolist() if i.compress_type == 0))",
        )
    };
    let startup = |arch: &str| {
        ask(
            arch,
            "import os, sysconfig; home = sysconfig.get_paths()['stdlib']; \
             print(sorted(os.path.relpath(os.path.join(d, f), home) for d, _, fs in os.walk(home) \
             for f in fs if f.endswith('.pyc') and '/venv' not in d))",
        )
    };
    assert_eq!(startup("arm64"), startup("amd64"));
    assert!(startup("amd64").contains("'encodings/__init__.pyc'"));
    let native = stored("amd64");
    assert!(native.contains("'json/decoder.pyc'"), "{native}");
    // Modules named after the platform (_sysconfigdata__<triplet>) are its own.
    assert_eq!(
        stored("arm64"),
        native.replace("x86_64-linux-gnu", "aarch64-linux-gnu")
    );
    for arch in ["amd64", "arm64"] {
        let image = format!("{repository}:3.11-bookworm-{arch}");
        let found = docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", &image]);
        assert_eq!(found.trim(), arch);
        Test::new()
            .args([
                "test",
                &image,
                "--source-image",
                &format!("dpy-testbed/python:3.11-bookworm-{arch}"),
            ])
            .stdout_contains(" 0 failed")
            .run();
        docker_ok(&[
            "image",
            "rm",
            &image,
            &format!("{repository}:3.11-bookworm-buildroot-{arch}"),
        ]);
    }
}

#[test]
fn a_failing_platform_is_named_and_no_platform_is_tagged() {
    if !common::engine("multiarch::one-fails") {
        return;
    }
    common::require_image(&common::debian_source());
    // Only the amd64 source exists: arm64 fails, and the amd64 images must not be tagged.
    let repository = common::unique_repository("multifail");
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(["--source-image", "dpy-testbed/python:3.11-bookworm-{arch}x"])
        .args([
            "--repository",
            &repository,
            "--progress",
            "quiet",
            "--metadata-file",
            "/dev/null",
        ])
        .status(11)
        .stderr_contains("linux/")
        .stderr_contains("--source-image")
        .one_line_error()
        .run();
    let partial = common::derived_image("amd64only", &common::debian_source(), "true");
    let before = common::containers();
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(["--source-image", &partial])
        .args([
            "--repository",
            &repository,
            "--progress",
            "quiet",
            "--metadata-file",
            "/dev/null",
        ])
        .status(12)
        .stderr_contains("linux/arm64: source image dpy-test/amd64only:1 is linux/amd64")
        .one_line_error()
        .run();
    assert!(common::images_of(&repository).is_empty());
    common::assert_no_new_containers(&before);
}
