//! The official Debian layout end to end (python:<X.Y>-slim-bookworm): CPython in
//! /usr/local with a shared libpython found through ld.so.cache, the libraries as Debian
//! packages. The stand-in comes from scripts/testbed-slim.

mod common;
use common::{docker_ok, Test};

#[test]
fn python_3_13_slim_bookworm_builds_and_passes_conformance() {
    if !common::engine("official-debian::3.13") {
        return;
    }
    let source = common::slim_source("3.13");
    common::require_image(&source);
    let repository = common::unique_repository("slimbookworm");
    let target = "3.13-slim-bookworm";
    let out = common::build_amd64(target, &source, &repository, &[]).run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The source keeps a dpkg database: nothing to warn about.
    assert!(!stderr.contains("warning:"), "{stderr}");

    let image = format!("{repository}:{target}");
    Test::new()
        .args(["test", &image, "--source-image", &source])
        .stdout_contains(" 0 failed")
        .stdout_contains("ok   find-library")
        .stdout_contains("ok   package-db: dpkg:")
        .stdout_contains("ok   venv")
        .run();

    // The interpreter loads the libpython it was built with, from /usr/local/lib, and
    // the runtime's ld.so.cache lists it there, as the source's does (what finds it for a
    // program embedding Python; the interpreter itself has RUNPATH $ORIGIN/../lib).
    let loaded = common::python_in(
        &image,
        &[
            "-c",
            "import sysconfig; \
             print(sysconfig.get_config_var('Py_ENABLE_SHARED')); \
             print(*sorted({l.split()[-1] for l in open('/proc/self/maps') if 'libpython' in l}))",
        ],
    );
    let loaded = String::from_utf8_lossy(&loaded.stdout);
    assert_eq!(
        loaded.lines().collect::<Vec<_>>(),
        ["1", "/usr/local/lib/libpython3.13.so.1.0"],
        "{loaded}"
    );
    let cache = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/sbin/ldconfig",
        &image,
        "-p",
    ]);
    assert!(
        cache
            .contains("libpython3.13.so.1.0 (libc6,x86-64) => /usr/local/lib/libpython3.13.so.1.0"),
        "{cache}"
    );
    for tag in [image.clone(), format!("{image}-buildroot")] {
        docker_ok(&["image", "rm", &tag]);
    }
}
