//! The official Debian layout end to end (python:<X.Y>-slim-bookworm): CPython in
//! /usr/local with a shared libpython found through ld.so.cache, the libraries as Debian
//! packages. The stand-in comes from scripts/testbed-slim; the test takes it with one
//! library removed (libuuid), as vendors' and pyenv builds often miss one, so that the
//! one build shows both the layout and a source whose `_uuid` does not import.

use crate::common;
use crate::common::{docker_ok, Test};

#[test]
fn python_3_13_slim_bookworm_builds_and_passes_conformance() {
    if !common::engine("official-debian::3.13") {
        return;
    }
    let standin = common::slim_source("3.13");
    common::require_image(&standin);
    let source = common::derived_image(
        "slim-without-libuuid",
        &standin,
        "rm -f $(find / -xdev -name 'libuuid.so.1*') && ! python3 -c 'import _uuid'",
    );
    let repository = common::unique_repository("slimbookworm");
    let target = "3.13-slim-bookworm";
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("meta.json");
    let out = common::build_amd64(target, &source, &repository, &[])
        .args(["--metadata-file", metadata.to_str().unwrap()])
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One warning, for the module that does not import in the source; the source keeps
    // a dpkg database, so nothing else to warn about.
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("the stdlib module _uuid is left out: it does not import in the source either (libuuid.so.1, needed by _uuid.cpython-313-x86_64-linux-gnu.so, is not in the source image)"),
        "{stderr}"
    );

    let image = format!("{repository}:{target}");
    Test::new()
        .args(["test", &image, "--source-image", &source])
        .stdout_contains(" 0 failed")
        .stdout_contains("ok   broken-modules: absent as the build recorded, not importable in the source either: _uuid")
        .stdout_contains("ok   find-library")
        .stdout_contains("ok   package-db: dpkg:")
        .stdout_contains("ok   venv")
        .run();
    // The SBOM names CPython in /usr/local as advisories do, and syft reads it.
    let listed = common::assert_sbom_seen_by_syft(&image);
    common::assert_trivy_lists_the_sbom(&image, &listed);
    assert!(
        listed
            .iter()
            .any(|(_, _, purl)| purl == "pkg:generic/python@3.13.5"),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|(name, _, purl)| name == "libssl3"
            && purl.starts_with("pkg:deb/debian/libssl3@")
            && purl.ends_with("?arch=amd64&distro=debian-12")),
        "{listed:?}"
    );
    let cpe = common::syft(&image)
        .into_iter()
        .find(|a| a["purl"] == "pkg:generic/python@3.13.5")
        .map(|a| a["cpes"].to_string())
        .unwrap_or_default();
    assert!(cpe.contains("cpe:2.3:a:python:python:3.13.5:"), "{cpe}");

    // Recorded in the image's labels and in the metadata of the runtime image.
    let label = docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{ index .Config.Labels \"io.dpy.modules.broken\" }}",
        &image,
    ]);
    assert_eq!(label.trim(), "_uuid");
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    let runtime = records["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "runtime")
        .unwrap();
    assert_eq!(runtime["broken_modules"], serde_json::json!(["_uuid"]));

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
