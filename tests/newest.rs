//! The newest Pythons, 3.14 and 3.15, in Debian's own layout (interpreter and stdlib
//! under /usr), from Debian unstable's packages (scripts/testbed-sid): each builds, and
//! `dpy test` passes every check on it, the stdlib zip's index among them (3.14's
//! zipimport lists a zip's implicit directories, and the index must be what it reads).
//! The checks of what 3.14 and 3.15 brought (compression.zstd, deferred annotations,
//! t-strings, the _pyrepl REPL, forkserver children, lazy imports, UTF-8 mode) pass here
//! and fail on an image that gets them wrong. 3.15 is built with the slim profile and
//! its -buildroot image, which chroot-pip extends with a package from the index; 3.14
//! with its -debug image, which apt gives Debian's busybox.

use crate::common;
use crate::common::Test;

/// Builds `<python>-trixie` from the sid stand-in with `extra` options and runs `dpy test`
/// on its runtime image; returns the repository (its images go when it is dropped), the
/// runtime image and what `dpy test` printed.
fn builds_and_passes(python: &str, extra: &[&str]) -> (common::Repository, String, String) {
    let source = common::sid_source(python);
    common::require_image(&source);
    let repository = common::unique_repository(&format!("newest{}", python.replace('.', "")));
    let target = format!("{python}-trixie");
    common::build_amd64(&target, &source, &repository, extra).run();
    let image = format!("{repository}:{target}");
    let out = Test::new()
        .args(["test", &image, "--source-image", &source])
        .stdout_contains(" 0 failed")
        .stdout_contains("ok   startup-zip")
        .run();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    (repository, image, report)
}

/// `image` with `lines` added (as root, then back to the image's user; the image has no
/// coreutils, so a change is Python's), and what `dpy test` says of it, which must fail
/// (exit 15); the derived image is removed again.
fn broken_variant(image: &str, source: &str, lines: &str) -> String {
    let tag = format!("{image}-broken");
    common::image_tagged(
        &tag,
        &format!("FROM {image}\nUSER 0\n{lines}\nUSER 65532\n"),
    );
    let out = Test::new()
        .args(["test", &tag, "--source-image", source])
        .status(15)
        .run();
    common::docker(&["image", "rm", &tag]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line `dpy test` printed for `check`.
fn line<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| l[5.min(l.len())..].starts_with(&format!("{check}: ")))
        .unwrap_or_else(|| panic!("no {check} line in: {report}"))
}

#[test]
fn python_3_14_builds_and_passes_dpy_test() {
    if !common::engine("newest::3.14") {
        return;
    }
    // With the -debug image: sid's package index gives it Debian's busybox, through this
    // machine's trust store.
    let (_repository, image, report) = builds_and_passes(
        "3.14",
        &[
            "--variants",
            "runtime,debug",
            "--ca-bundle",
            "/etc/ssl/certs/ca-certificates.crt",
        ],
    );
    // The source was surveyed for the runtime image just now: not again for this one.
    common::assert_debug_image(
        &format!("{image}-debug"),
        &image,
        None,
        "(busybox /usr/bin/busybox)",
    );
    let source = common::sid_source("3.14");
    // The index holds the implicit directories 3.14's zipimport adds (json/, ...), so
    // it has more names than the zip has entries.
    assert!(report.contains("equals zipimport's reading"), "{report}");
    let zip = "/usr/lib/python314-stdlib.zip/";
    for (check, says) in [
        ("compression", "compression.zstd 30000->".to_string()),
        ("multiprocessing", "default start method forkserver; pools of fork, forkserver, spawn each map and import json from the stdlib zip".to_string()),
        ("annotations", format!("annotationlib from {zip}annotationlib.pyc")),
        ("template-strings", format!("string.templatelib from {zip}string/templatelib.pyc")),
        ("repl", format!("_pyrepl from {zip}_pyrepl/__init__.pyc")),
        ("lazy-imports", "not applicable".to_string()),
    ] {
        let got = line(&report, check);
        assert!(got.starts_with("ok   ") && got.contains(&says), "{got}");
    }
    // Without libzstd, compression.zstd does not import: the check says so.
    let broken = broken_variant(
        &image,
        &source,
        r#"RUN ["python3", "-c", "import glob, os; [os.remove(p) for p in glob.glob('/usr/lib/*/libzstd.so*')]"]"#,
    );
    let got = line(&broken, "compression");
    assert!(
        got.starts_with("FAIL compression: ") && got.contains("libzstd"),
        "{got}"
    );
}

#[test]
fn python_3_15_builds_and_passes_dpy_test() {
    if !common::engine("newest::3.15") {
        return;
    }
    // The slim profile, and the -buildroot image beside the runtime one: this machine's
    // trust store lets the builder fetch pip from PyPI (sid's stand-in has none).
    let (_repository, image, report) = builds_and_passes(
        "3.15",
        &[
            "--profile",
            "slim",
            "--ca-bundle",
            "/etc/ssl/certs/ca-certificates.crt",
        ],
    );
    let zip = "/usr/lib/python315-stdlib.zip/";
    for (check, says) in [
        ("lazy-imports", format!("`lazy import` and `lazy from` import on first use, from {zip}decimal.pyc; -X lazy_imports=all (mode all) defers a plain import")),
        ("utf8-mode", "UTF-8 mode on by default and under LC_ALL=C (preferred utf-8, open() utf-8); off with PYTHONUTF8=0".to_string()),
        ("multiprocessing", "default start method forkserver".to_string()),
    ] {
        let got = line(&report, check);
        assert!(got.starts_with("ok   ") && got.contains(&says), "{got}");
    }
    // The SBOM names the interpreter's packages at the source's version.
    let sbom = Test::new().args(["sbom", &image]).run();
    let sbom: serde_json::Value = serde_json::from_slice(&sbom.stdout).unwrap();
    let names: Vec<String> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("python3.15-minimal 3.15.")),
        "{names:?}"
    );
    // The -buildroot image extends as the README says: chroot-pip installs HTTPie (from
    // the package index) with the builder's pip, and the runtime image runs it.
    let cli = format!("{image}-cli");
    let built = std::process::Command::new("/usr/bin/docker")
        .args([
            "build",
            "-q",
            "-t",
            &cli,
            "--build-arg",
            &format!("BASE={image}"),
        ])
        .args(["--secret", "id=ca,src=/etc/ssl/certs/ca-certificates.crt"])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cli"))
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    common::assert_cli_example_answers(&cli);
    common::docker(&["image", "rm", &cli]);
    // An image that turns UTF-8 mode off for its users fails the check.
    let source = common::sid_source("3.15");
    let broken = broken_variant(&image, &source, "ENV PYTHONUTF8=0");
    let got = line(&broken, "utf8-mode");
    assert!(
        got.starts_with("FAIL utf8-mode: UTF-8 mode is wrong under image, LC_ALL=C"),
        "{got}"
    );
}

/// A 3.15 source given for a 3.14 target is refused by the gather stage, naming both.
#[test]
fn a_3_15_source_is_not_built_as_3_14() {
    if !common::engine("newest::mislabel") {
        return;
    }
    let source = common::sid_source("3.15");
    common::require_image(&source);
    let repository = common::unique_repository("mislabel");
    let before = common::Engine::now();
    Test::new()
        .args(common::build_argv("3.14-trixie", &source, &repository))
        .args(["--metadata-file", "/dev/null"])
        .status(12)
        .stderr_contains(
            "the target is Python 3.14 but the source image's interpreter is Python 3.15.",
        )
        .one_line_error()
        .run();
    before.assert_nothing_left(&repository);
}
