//! Several platforms at once: linux/amd64 natively and linux/arm64 under qemu, built side
//! by side, tagged per platform only when every platform succeeded.

use crate::common;
use crate::common::{docker_ok, Test};

/// Builds `target` for linux/amd64 and linux/arm64 at once from `source` (`{arch}` stands
/// for each platform's) with `extra` options, and holds the pair to compile-once: the
/// emulated platform takes the native one's stored (hot) zip entries and the list of
/// start-up files along with its bytecode, so both stdlib zips store the same modules and
/// both stdlib directories hold the same start-up files. `dpy test` passes on each.
fn builds_for_both_platforms(target: &str, source: &str, extra: &[&str]) {
    for arch in ["amd64", "arm64"] {
        common::require_image(&source.replace("{arch}", arch));
    }
    // One repository per target: the tests run side by side.
    let repository = common::unique_repository(&format!("multiarch{}", target.replace('.', "")));
    Test::new()
        .args(["build", target, "--platform", "linux/amd64,linux/arm64"])
        .args(["--source-image", source])
        .args([
            "--repository",
            &repository,
            "--progress",
            "plain",
            "--metadata-file",
            "/dev/null",
        ])
        .args(extra)
        .stdout_contains(&format!("{repository}:{target}-amd64"))
        .stdout_contains(&format!("{repository}:{target}-arm64"))
        .run();
    let ask = |arch: &str, code: &str| {
        docker_ok(&[
            "run",
            "--rm",
            "--platform",
            &format!("linux/{arch}"),
            &format!("{repository}:{target}-{arch}"),
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
    // The -buildroot's pip: natively builder-pip.sh answers, under qemu the gather asked
    // the same question in its own process (dpy_gather's own_pip). Both say the same.
    if !extra.contains(&"--variants") {
        let pip = |arch: &str| {
            docker_ok(&common::run_args(
                &format!("{repository}:{target}-buildroot-{arch}"),
                "cat",
                &["/opt/dpy/builder-pip.json"],
            ))
        };
        let native = pip("amd64");
        assert!(
            native.starts_with(r#"{"origin": "source", "version": ""#),
            "{native}"
        );
        assert_eq!(pip("arm64"), native);
    }
    for arch in ["amd64", "arm64"] {
        let image = format!("{repository}:{target}-{arch}");
        let source = source.replace("{arch}", arch);
        let found = docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", &image]);
        assert_eq!(found.trim(), arch);
        let test = Test::new().args(["test", &image, "--source-image", &source]);
        if has_terminals(&source, arch) {
            test.stdout_contains(" 0 failed").run();
        } else {
            // Under this machine's qemu (7.2, no TCGETS2) a newer glibc's isatty() is
            // false even on a pseudo-terminal, in the source as in the image: the REPL
            // check says so, and it is the only one that fails.
            test.status(15)
                .stdout_contains("FAIL repl: a pseudo-terminal is not a terminal here")
                .stdout_contains(" passed, 1 failed")
                .run();
        }
    }
}

/// Whether a pseudo-terminal is a terminal (isatty) to `source`'s Python on `arch`.
fn has_terminals(source: &str, arch: &str) -> bool {
    let said = docker_ok(&[
        "run",
        "--rm",
        "--platform",
        &format!("linux/{arch}"),
        source,
        "python3",
        "-c",
        "import os, pty; print(os.isatty(pty.openpty()[1]))",
    ]);
    match said.trim() {
        "True" => true,
        "False" => false,
        other => panic!("{source} on {arch} said {other:?}"),
    }
}

#[test]
fn amd64_and_arm64_build_together_and_pass_conformance() {
    if !common::engine("multiarch::both") {
        return;
    }
    builds_for_both_platforms(
        "3.11-bookworm",
        "dpy-testbed/python:3.11-bookworm-{arch}",
        &[],
    );
}

/// The newest Pythons' bytecode and zip index (3.14's zipimport lists implicit
/// directories) go to the emulated platform as they do to the native one.
fn newest_for_both_platforms(python: &str) {
    if !common::engine(&format!("multiarch::{python}")) {
        return;
    }
    builds_for_both_platforms(
        &format!("{python}-trixie"),
        &common::sid_source_of(python, "{arch}"),
        &["--variants", "runtime"],
    );
}

#[test]
fn python_3_14_builds_for_amd64_and_arm64() {
    newest_for_both_platforms("3.14");
}

#[test]
fn python_3_15_builds_for_amd64_and_arm64() {
    newest_for_both_platforms("3.15");
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

/// Compile once takes the native bytecode only for sources that are the same, byte for
/// byte: an emulated stdlib with one module patched is gathered again, compiling there,
/// so that module's bytecode is of its own source (the hash in its header says which).
#[test]
fn an_emulated_stdlib_that_differs_is_compiled_there() {
    if !common::engine("multiarch::stdlib-differs") {
        return;
    }
    for arch in ["amd64", "arm64"] {
        common::require_image(&format!("dpy-testbed/python:3.11-bookworm-{arch}"));
    }
    let amd64 = common::image_tagged(
        "dpy-test/stdlib-differs-amd64:1",
        "FROM dpy-testbed/python:3.11-bookworm-amd64\n",
    );
    let arm64 = common::image_tagged(
        "dpy-test/stdlib-differs-arm64:1",
        "FROM --platform=linux/arm64 dpy-testbed/python:3.11-bookworm-arm64\n\
         RUN echo '# patched on arm64' >> /usr/lib/python3.11/json/encoder.py\n",
    );
    assert_eq!(
        amd64.replace("amd64", "{arch}"),
        arm64.replace("arm64", "{arch}")
    );
    let repository = common::unique_repository("stdlibdiffers");
    Test::new()
        .args(["build", "3.11-bookworm", "--platform", "linux/amd64,linux/arm64"])
        .args(["--source-image", &amd64.replace("amd64", "{arch}")])
        .args(["--repository", &repository, "--variants", "runtime"])
        .args(["--progress", "plain", "--metadata-file", "/dev/null"])
        .stderr_contains(
            "[3.11-bookworm linux/arm64] compile once: the stdlib differs from the native one; compiling here",
        )
        .stdout_contains(&format!("{repository}:3.11-bookworm-arm64"))
        .run();
    // The source hash in each .pyc's header (unchecked-hash bytecode), from the zip.
    let hashes = |arch: &str| {
        docker_ok(&[
            "run",
            "--rm",
            "--platform",
            &format!("linux/{arch}"),
            &format!("{repository}:3.11-bookworm-{arch}"),
            "-c",
            "import json, sys, zipfile; z = zipfile.ZipFile([p for p in sys.path if p.endswith('-stdlib.zip')][0]); \
             print({n: z.read(n)[8:16].hex() for n in ('json/encoder.pyc', 'json/decoder.pyc')}); \
             assert json.dumps({'a': [1]}) == '{\"a\": [1]}'",
        ])
    };
    let (native, emulated) = (hashes("amd64"), hashes("arm64"));
    let field = |said: &str, name: &str| {
        said.split(&format!("'{name}': '"))
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no {name} in {said}"))
            .to_string()
    };
    assert_ne!(
        field(&native, "json/encoder.pyc"),
        field(&emulated, "json/encoder.pyc"),
        "arm64's encoder.pyc is of its own, patched source"
    );
    assert_eq!(
        field(&native, "json/decoder.pyc"),
        field(&emulated, "json/decoder.pyc")
    );
}
