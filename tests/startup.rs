//! The stdlib is laid out for a fast start: the zip sys.path names first holds only what
//! a bare start imports, and the stdlib zip's directory comes from an index, not from a
//! read of every entry; in the stdlib zip the modules a start and the common imports
//! load are stored, the rest deflated, no directory entries; each module is read once
//! (`_dpy_zipimport`, imported by the first zip's encodings package). A missing hook or
//! index costs speed, never an import.

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
archive = zipfile.ZipFile([p for p in sys.path if p.endswith("-stdlib.zip")][0])
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

/// The central directories a bare start reads, as zipimport reports them with -v:
/// (entries, zip path).
fn directories_read(image: &str, flags: &[&str], code: &str) -> Vec<(usize, String)> {
    let mut args = flags.to_vec();
    args.extend(["-v", "-c", code]);
    let out = python_in(image, &args);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("# zipimport: found "))
        .map(|rest| {
            let (count, path) = rest.split_once(" names in ").unwrap();
            (count.parse().unwrap(), path.trim_matches('\'').to_string())
        })
        .collect()
}

#[test]
fn a_bare_start_reads_only_the_first_zips_small_directory() {
    let Some(image) = runtime() else { return };
    for flags in [&[][..], &["-S"][..], &["-I"][..]] {
        let read = directories_read(image, flags, "import sys; print(sys.path)");
        assert_eq!(read.len(), 1, "{flags:?}: {read:?}");
        let (count, path) = &read[0];
        assert_eq!(path, "/usr/lib/python311.zip", "{flags:?}");
        assert!(*count <= 10, "{flags:?}: {count} entries");
    }
    // Importing from the stdlib zip reads no directory either: the index gave it.
    let out = python_in(
        image,
        &["-v", "-c", "import json, email.message, xml.dom.minidom"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(!stderr.contains("python311-stdlib.zip'\n"), "{stderr}");
    assert_eq!(stderr.matches("# zipimport: found ").count(), 1);
}

/// The runtime image with its first zip rewritten by its own interpreter: without the
/// hook (`hook`), or with an index that is not marshal data (`index`).
fn damaged(image: &str, what: &str) -> String {
    common::image_from_dockerfile(
        &format!("damaged-{what}-{}", std::process::id()),
        &format!(
            "FROM {image}\nUSER root\nENV DPY_DAMAGE={what}\n\
             RUN [\"python3\", \"-c\", \"import os, sys, zipfile; p = [e for e in sys.path if e.endswith('.zip')][0]; \
             what = os.environ['DPY_DAMAGE']; old = zipfile.ZipFile(p); \
             items = [(i, old.read(i)) for i in old.infolist()]; old.close(); new = zipfile.ZipFile(p, 'w'); \
             [new.writestr(i, b'not marshal data' if what == 'index' and i.filename.endswith('.index') else d) \
             for i, d in items if not (what == 'hook' and i.filename.startswith('_dpy_zipimport'))]; new.close()\"]\n\
             USER 65532:65532\n"
        ),
    )
}

#[test]
fn a_missing_hook_or_index_costs_speed_never_an_import() {
    let Some(image) = runtime() else { return };
    for what in ["hook", "index"] {
        let image = damaged(image, what);
        // The stdlib zip's whole directory is read again at the first import from it,
        // and everything imports: the stdlib-imports check imports each stdlib module.
        let read = directories_read(&image, &[], "import json");
        assert_eq!(read.len(), 2, "{what}: {read:?}");
        assert_eq!(read[1].1, "/usr/lib/python311-stdlib.zip");
        assert!(read[1].0 > 400, "{what}: {read:?}");
        let out = python_in(
            &image,
            &[
                "-c",
                "import encodings.cp1252, json, ssl, asyncio; print('started')",
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "started\n",
            "{what}: {out:?}"
        );
        let failing = if what == "hook" {
            "zip-reads-once, startup-zip"
        } else {
            "startup-zip"
        };
        Test::new()
            .args(["test", &image, "--skip-structure"])
            .status(15)
            .stdout_contains("ok   stdlib-imports: all ")
            // encodings' resources are read from the stdlib zip by encodings' fallback.
            .stdout_contains("ok   stdlib-resources: ")
            .stdout_contains("FAIL startup-zip: a bare start (no flags) read the directories of ")
            .stderr_contains(&format!(
                "conformance checks failed on {image}: {failing}\n"
            ))
            .one_line_error()
            .run();
        docker_ok(&["image", "rm", &image]);
    }
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
    let out = python_in(
        &broken,
        &["-c", "import json, ssl, encodings.cp1252; print('started')"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert!(out.status.success());
    // And the conformance suite notices that modules are read twice again, and that
    // the start read the stdlib zip's directory.
    Test::new()
        .args(["test", &broken, "--skip-structure"])
        .status(15)
        .stdout_contains("FAIL zip-reads-once")
        .stdout_contains("FAIL startup-zip")
        .stdout_contains("ok   stdlib-resources: ")
        .stderr_contains("zip-reads-once, startup-zip")
        .one_line_error()
        .run();
    docker_ok(&["image", "rm", &broken]);
}
