//! `--profile`: `standard` keeps everything the source can import; `slim` also leaves out
//! a documented list (images/strip.toml) and the libraries only those modules load, and
//! each module it leaves out fails to import with an error that names the profile.

use crate::common;
use crate::common::{docker_ok, python_in, Test};

fn size(image: &str) -> u64 {
    docker_ok(&["image", "inspect", "-f", "{{.Size}}", image])
        .trim()
        .parse()
        .unwrap()
}

/// Whether `path` exists in the image (dash's `test -e` through the image's /bin/sh).
fn has(image: &str, path: &str) -> bool {
    common::docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        &format!("test -e {path}"),
    ])
    .status
    .success()
}

#[test]
fn slim_leaves_out_its_list_and_their_libraries_and_says_so() {
    if !common::engine("profiles::slim") {
        return;
    }
    let repository = common::unique_repository("profiles");
    let standard = common::build_debian(&format!("{repository}-standard"), &[]);
    let slim = common::build_debian(&format!("{repository}-slim"), &["--profile", "slim"]);
    assert!(size(&slim) < size(&standard), "slim is smaller");

    // `dpy test` takes the profile from the image's label and holds it to that profile.
    let source = common::debian_source();
    for image in [&standard, &slim] {
        Test::new()
            .args(["test", image.as_str(), "--source-image", &source])
            .stdout_contains(" 0 failed")
            .run();
    }

    let out = python_in(&slim, &["-c", "import readline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "ModuleNotFoundError: No module named 'readline': dpy's slim profile leaves it out"
        ),
        "{stderr}"
    );
    // Code that tries and falls back still works: dbm picks dbm.dumb without _dbm.
    let out = python_in(
        &slim,
        &["-c", "import dbm; d = dbm.open('/tmp/x', 'c'); d[b'k'] = b'v'; d.close(); print(dbm.whichdb('/tmp/x'))"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "dbm.dumb\n");
    let out = python_in(&standard, &["-c", "import readline, dbm.ndbm; print('ok')"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");

    // Libraries only the left-out modules load go with them (Berkeley DB for _dbm,
    // Kerberos for nis); the zones counting leap seconds too.
    for path in [
        "/usr/lib/x86_64-linux-gnu/libdb-5.3.so",
        "/usr/lib/x86_64-linux-gnu/libkrb5.so.3",
        "/usr/share/zoneinfo/right",
    ] {
        assert!(has(&standard, path), "standard has {path}");
        assert!(!has(&slim, path), "slim has no {path}");
    }
    assert!(has(&slim, "/usr/share/zoneinfo/Europe/Paris"));
    for image in [standard, slim] {
        for tag in [image.clone(), format!("{image}-buildroot")] {
            docker_ok(&["image", "rm", &tag]);
        }
    }
}

#[test]
fn an_unknown_profile_is_one_line_naming_the_profiles() {
    let repository = common::unique_repository("profiles-bad");
    // Refused before the engine is asked: the same answer with no engine at all.
    Test::new()
        .args(["build", "3.11-bookworm", "--profile", "tiny"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr("dpy: error: unknown profile \"tiny\": choose one of slim, standard\n")
        .run();
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--profile",
            "tiny",
            "--repository",
            &repository,
            "--source-image",
            &common::debian_source(),
        ])
        .status(2)
        .stderr_contains("unknown profile \"tiny\": choose one of slim, standard")
        .one_line_error()
        .run();
    if common::engine("profiles::unknown") {
        assert!(common::images_of(&repository).is_empty());
    }
}
