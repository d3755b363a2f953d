//! The Alpine (musl) family end to end, on the musl stand-ins of scripts/testbed-musl
//! (the official python:*-alpine layout, built from Debian sources: no Alpine image can
//! be pulled on the test bed).

use crate::common;
use crate::common::{docker_ok, Test};

fn build(target: &str, source: &str, repository: &str) -> std::process::Output {
    common::build_amd64(target, source, repository, &[])
        .any_status()
        .run()
}

fn end_to_end(python: &str) {
    let source = common::alpine_source(python);
    common::require_image(&source);
    let repository = common::unique_repository(&format!("alpine{}", python.replace('.', "")));
    let target = format!("{python}-alpine3.20");
    let out = build(&target, &source, &repository);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The stand-in has no apk database: said once, as a warning, and the build goes on
    // (the official image, when the test bed could pull it, has one: no warning).
    let has_database = common::docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &source,
        "-c",
        "test -f /lib/apk/db/installed",
    ])
    .status
    .success();
    let warnings = stderr
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("no apk package database"))
        .count();
    assert_eq!(warnings, usize::from(!has_database), "{stderr}");

    let image = format!("{repository}:{target}");
    // Parity checks included; musl's differences are expectations of the survey, not skips:
    // find_library("c") is None on musl in the source, so it must be None here too.
    let out = Test::new()
        .args(["test", &image, "--source-image", &source])
        .stdout_contains(" 0 failed")
        .stdout_contains("ok   find-library")
        .stdout_contains("ok   zoneinfo")
        .stdout_contains("ok   shell")
        .stdout_contains("ok   utf8")
        .run();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("ok   tls-trust"), "{report}");

    // The loader comes from the interpreter's PT_INTERP, not from a guess.
    let files = docker_ok(&[
        "run", "--rm", "--entrypoint", "/bin/sh", &image, "-c",
        "for f in /lib/ld-musl-x86_64.so.1 /usr/local/lib/libpython3.*.so.1.0 /etc/ssl/cert.pem; do [ -e $f ] && echo found $f; done",
    ]);
    assert_eq!(files.matches("found").count(), 3, "{files}");
    for tag in [image.clone(), format!("{image}-buildroot")] {
        docker_ok(&["image", "rm", &tag]);
    }
}

#[test]
fn python_3_13_alpine_builds_and_passes_conformance() {
    if !common::engine("alpine::3.13") {
        return;
    }
    end_to_end("3.13");
}

#[test]
fn python_3_11_alpine_builds_and_passes_conformance() {
    if !common::engine("alpine::3.11") {
        return;
    }
    end_to_end("3.11");
}

#[test]
fn an_alpine_target_refuses_a_glibc_source_and_the_reverse() {
    if !common::engine("alpine::mismatch") {
        return;
    }
    let musl = common::alpine_source("3.13");
    let glibc = common::debian_source();
    common::require_image(&musl);
    let repository = common::unique_repository("mismatch");
    for (target, source, wanted, found) in [
        ("3.13-alpine3.20", glibc.as_str(), "alpine (musl)", "glibc"),
        ("3.11-bookworm", musl.as_str(), "debian (glibc)", "musl"),
    ] {
        let before = common::containers();
        Test::new()
            .args([
                "build",
                target,
                "--progress",
                "quiet",
                "--metadata-file",
                "/dev/null",
            ])
            .args(["--repository", &repository, "--source-image", source])
            .status(12)
            .stderr_contains(wanted)
            .stderr_contains(found)
            .one_line_error()
            .run();
        assert!(common::images_of(&repository).is_empty());
        common::assert_no_new_containers(&before);
    }
}

#[test]
fn a_source_whose_loader_is_missing_is_named() {
    if !common::engine("alpine::no-loader") {
        return;
    }
    let base = common::alpine_source("3.13");
    common::require_image(&base);
    // busybox is static, so the shell still runs; only the interpreter cannot start.
    let source = &common::derived_image(
        "noloader",
        &base,
        "rm /lib/ld-musl-x86_64.so.1 /lib/libc.musl-x86_64.so.1",
    );
    let repository = common::unique_repository("noloader");
    Test::new()
        .args([
            "build",
            "3.13-alpine3.20",
            "--progress",
            "quiet",
            "--metadata-file",
            "/dev/null",
        ])
        .args(["--repository", &repository, "--source-image", source])
        .status(12)
        .stderr_contains("does not run")
        .one_line_error()
        .run();
    assert!(common::images_of(&repository).is_empty());
}

#[test]
fn chroot_apk_without_a_repository_fails_in_one_line_and_changes_nothing() {
    if !common::engine("alpine::chroot-apk") {
        return;
    }
    let source = common::alpine_source("3.13");
    common::require_image(&source);
    let repository = common::unique_repository("chrootapk");
    let out = build("3.13-alpine3.20", &source, &repository);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let buildroot = format!("{repository}:3.13-alpine3.20-buildroot");
    let script = "before=$(find \"$BUILD_ROOT\" | wc -l); \
                  chroot-apk add dash; echo \"exit=$?\"; \
                  after=$(find \"$BUILD_ROOT\" | wc -l); [ \"$before\" = \"$after\" ] && echo unchanged";
    // No network: no repository answers, wherever the test bed runs.
    let out = common::docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        &buildroot,
        "-c",
        script,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("exit=3") && stdout.contains("unchanged"),
        "{stdout}{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("chroot-apk:"), "{stderr}");
    let help = common::docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &buildroot,
        "-c",
        "chroot-apk -h; env -u BUILD_ROOT chroot-apk add x; echo exit=$?",
    ]);
    let help_out = String::from_utf8_lossy(&help.stdout);
    assert!(
        help_out.contains("usage: chroot-apk") && help_out.contains("exit=2"),
        "{help_out}"
    );
    for tag in [format!("{repository}:3.13-alpine3.20"), buildroot] {
        docker_ok(&["image", "rm", &tag]);
    }
}

#[test]
fn a_package_without_a_musl_wheel_fails_with_pips_own_error() {
    if !common::engine("alpine::no-wheel") {
        return;
    }
    let source = common::alpine_source("3.13");
    common::require_image(&source);
    let repository = common::unique_repository("nowheel");
    let out = build("3.13-alpine3.20", &source, &repository);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let buildroot = format!("{repository}:3.13-alpine3.20-buildroot");
    // psycopg2 ships only a source distribution, and the builder has no compiler (nor
    // pg_config): pip's build fails, and chroot-pip passes its error and status on.
    let script = "before=$(find \"$BUILD_ROOT\" | wc -l); \
                  chroot-pip install --no-cache-dir psycopg2==2.9.9; echo \"exit=$?\"; \
                  [ \"$before\" = \"$(find \"$BUILD_ROOT\" | wc -l)\" ] && echo unchanged";
    let out = common::docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &buildroot,
        "-c",
        script,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("exit=0") && stdout.contains("exit="),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("unchanged"), "{stdout}");
    assert!(
        stderr.contains("error: subprocess-exited-with-error") || stderr.contains("ERROR:"),
        "pip's own error: {stderr}"
    );
    for tag in [format!("{repository}:3.13-alpine3.20"), buildroot] {
        docker_ok(&["image", "rm", &tag]);
    }
}

/// The 3.13 stand-in with an apk database, as an Alpine image has one: its libraries
/// recorded (libffi as a package of its own, as on Alpine), plus two packages whose
/// files the runtime leaves behind. The stand-in itself has no database.
fn source_with_apk_database() -> String {
    let base = common::alpine_source("3.13");
    common::require_image(&base);
    common::derived_image(
        "apkdb",
        &base,
        "mkdir -p /lib/apk/db && { \
           printf 'C:Q1musl=\\nP:musl\\nV:1.2.5-r0\\nA:x86_64\\nF:lib\\n'; \
           for f in /lib/*.so*; do echo \"R:${f#/lib/}\"; done; echo; \
           printf 'P:libffi\\nV:3.4.6-r0\\nF:usr/lib\\n'; \
           for f in /usr/lib/libffi.so*; do echo \"R:${f#/usr/lib/}\"; done; echo; \
           printf 'P:stand-in-libs\\nV:1-r0\\nF:usr/lib\\n'; \
           for f in /usr/lib/*.so*; do case $f in */libffi.*) ;; *) echo \"R:${f#/usr/lib/}\";; esac; done; echo; \
           printf 'P:busybox\\nV:1.36.1-r29\\nF:bin\\nR:busybox\\n\\n'; \
           printf 'P:alpine-baselayout-data\\nV:3.6.5-r0\\nF:etc\\nR:fstab\\n\\n'; \
         } > /lib/apk/db/installed",
    )
}

#[test]
fn an_apk_database_keeps_the_records_of_what_the_runtime_carries() {
    if !common::engine("alpine::apk-db") {
        return;
    }
    let source = &source_with_apk_database();
    let repository = common::unique_repository("apkdb");
    let out = build("3.13-alpine3.20", source, &repository);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("no apk package database"), "{stderr}");
    let image = format!("{repository}:3.13-alpine3.20");
    let db = common::python_in(
        &image,
        &["-c", "print(open('/lib/apk/db/installed').read())"],
    );
    let db = String::from_utf8_lossy(&db.stdout);
    let names: Vec<&str> = db.lines().filter_map(|l| l.strip_prefix("P:")).collect();
    assert_eq!(names, ["musl", "libffi", "stand-in-libs"], "{db}");
    // The SBOM: CPython by purl, the carried apk records by theirs; syft reads it.
    let listed = common::assert_sbom_seen_by_syft(&image);
    common::assert_trivy_lists_the_sbom(&image, &listed);
    let purls: Vec<&str> = listed.iter().map(|(_, _, purl)| purl.as_str()).collect();
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:generic/python@3.13.")),
        "{purls:?}"
    );
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20")),
        "{purls:?}"
    );
    // package-db: every carried library is owned, and no record is of a package left out.
    Test::new()
        .args(["test", &image, "--source-image", source])
        .stdout_contains("ok   package-db: apk: 3 packages")
        .stdout_contains(" 0 failed")
        .run();

    // The check fails when a carried library loses its record: the loader's, here.
    let tampered = common::image_from_dockerfile(
        "apkdb-tampered",
        &format!(
            "FROM {image}\nUSER 0\nRUN [\"python3\", \"-c\", \"p = '/lib/apk/db/installed'; \
             s = open(p).read().split('\\\\n\\\\n'); open(p, 'w').write('\\\\n\\\\n'.join(x for x in s if 'P:musl' not in x))\"]\n\
             USER 65532:65532\n"
        ),
    );
    let out = Test::new()
        .args(["test", &tampered, "--source-image", source])
        .any_status()
        .run();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("FAIL package-db") && report.contains("ld-musl-x86_64.so.1"),
        "{report}"
    );
    for tag in [image.clone(), format!("{image}-buildroot"), tampered] {
        docker_ok(&["image", "rm", &tag]);
    }
}

#[test]
fn a_library_chroot_pip_grafts_brings_its_apk_record() {
    if !common::engine("alpine::apk-graft") {
        return;
    }
    let source = source_with_apk_database();
    let repository = common::unique_repository("apkgraft");
    let out = build("3.13-alpine3.20", &source, &repository);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A root without libffi, and an installed extension module that needs it, as
    // chroot-pip leaves them for its graft: the library comes from the builder, and its
    // package's record from the builder's database joins $BUILD_ROOT's.
    let grafted = common::image_from_dockerfile(
        "apkgraft",
        &format!(
            "FROM {repository}:3.13-alpine3.20-buildroot\n\
             RUN set -e; db=\"$BUILD_ROOT/lib/apk/db/installed\"; \
                 rm \"$BUILD_ROOT\"/usr/lib/libffi.so*; \
                 python3 -c \"import sys; p = sys.argv[1]; s = open(p).read().split('\\n\\n'); \
                     open(p, 'w').write('\\n\\n'.join(x for x in s if 'P:libffi' not in x))\" \"$db\"; \
                 ! grep -q '^P:libffi' \"$db\"; \
                 module=$(python3 -c 'import _ctypes; print(_ctypes.__file__)'); \
                 mkdir -p \"/tmp/stage$(dirname \"$module\")\"; cp \"$module\" \"/tmp/stage$module\"; \
                 python3 /opt/dpy/gather.py --graft /tmp/stage \"$BUILD_ROOT\" > /tmp/graft.log\n"
        ),
    );
    let shown = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &grafted,
        "-c",
        "cat /tmp/graft.log; echo ---; cat /tmp/stage/lib/apk/db/installed",
    ]);
    let (log, db) = shown.split_once("---\n").expect("log and database");
    assert!(
        log.contains("grafted libffi.so.8 from the builder"),
        "{log}"
    );
    assert!(
        log.contains("recorded the packages of what it added: libffi"),
        "{log}"
    );
    let names: Vec<&str> = db.lines().filter_map(|l| l.strip_prefix("P:")).collect();
    assert_eq!(names, ["musl", "stand-in-libs", "libffi"], "{db}");
    assert!(db.contains("F:usr/lib\nR:libffi.so.8"), "{db}");
    docker_ok(&["image", "rm", &grafted]);
}
