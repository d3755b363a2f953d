//! The stdlib zip is laid out for a fast start: the modules a start and the common
//! imports load are stored, the rest deflated, no directory entries; and each module is
//! read from it once (`_dpy_zipimport`, imported by the zip's encodings package).

use crate::common;
use crate::common::{docker_ok, python_in, Test};
use std::sync::OnceLock;

/// One build for the whole file: the tests only read the image. A fixed repository, so
/// that each run replaces the last one's images instead of adding to them.
fn runtime() -> Option<&'static str> {
    static IMAGE: OnceLock<String> = OnceLock::new();
    if !common::engine("startup") {
        return None;
    }
    Some(IMAGE.get_or_init(|| common::build_debian("dpy-test/startup", &[])))
}

/// The compression method of each named zip entry, and the count of directory entries.
const ZIP_PROBE: &str = r#"
import sys, zipfile
archive = zipfile.ZipFile([p for p in sys.path if p.endswith(".zip")][0])
methods = {i.filename: i.compress_type for i in archive.infolist()}
print(" ".join("%s=%s" % (n, methods.get(n)) for n in sys.argv[1:]))
print("dirs=%d" % sum(n.endswith("/") for n in methods))
"#;

#[test]
fn hot_modules_are_stored_and_the_rest_deflated() {
    let Some(image) = runtime() else { return };
    let out = python_in(
        image,
        &[
            "-c",
            ZIP_PROBE,
            "encodings/__init__.pyc",
            "json/decoder.pyc",
            "ssl.pyc",
            "_dpy_zipimport.pyc",
            "ftplib.pyc",
            "xml/dom/minidom.pyc",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // zipfile: 0 is stored, 8 deflated.
    for stored in [
        "encodings/__init__.pyc",
        "json/decoder.pyc",
        "ssl.pyc",
        "_dpy_zipimport.pyc",
    ] {
        assert!(
            text.contains(&format!("{stored}=0")),
            "{stored} stored: {text}"
        );
    }
    for deflated in ["ftplib.pyc", "xml/dom/minidom.pyc"] {
        assert!(
            text.contains(&format!("{deflated}=8")),
            "{deflated} deflated: {text}"
        );
    }
    assert!(text.contains("dirs=0"), "no directory entries: {text}");
}

#[test]
fn the_hook_keeps_encodings_line_numbers() {
    let Some(image) = runtime() else { return };
    let probe = "import encodings; print(encodings.search_function.__code__.co_firstlineno, encodings.__doc__.split()[0])";
    let here = String::from_utf8_lossy(&python_in(image, &["-c", probe]).stdout).into_owned();
    let source = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        &common::debian_source(),
        "-c",
        probe,
    ]);
    assert!(!here.trim().is_empty());
    assert_eq!(
        here, source,
        "encodings' code keeps its lines and docstring"
    );
}

#[test]
fn a_broken_hook_costs_speed_never_the_interpreter() {
    let Some(image) = runtime() else { return };
    // PYTHONPATH comes before the zip: this _dpy_zipimport shadows dpy's and raises.
    // (No shell tools in a distroless image: python3 makes the file.)
    let broken = common::image_from_dockerfile(
        &format!("broken-hook-{}", std::process::id()),
        &format!(
            "FROM {image}\n\
             RUN [\"python3\", \"-c\", \"import os; os.mkdir('/tmp/shadow'); open('/tmp/shadow/_dpy_zipimport.py', 'w').write('raise RuntimeError()')\"]\n\
             ENV PYTHONPATH=/tmp/shadow\n"
        ),
    );
    let out = python_in(&broken, &["-c", "import json, ssl; print('started')"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert!(out.status.success());
    // And the conformance suite notices that modules are read twice again.
    Test::new()
        .args(["test", &broken, "--skip-structure"])
        .status(15)
        .stdout_contains("FAIL zip-reads-once")
        .stderr_contains("zip-reads-once")
        .one_line_error()
        .run();
    docker_ok(&["image", "rm", &broken]);
}
