//! The stdlib is laid out for a fast start: what a bare start imports is on disk in the
//! stdlib directory, so a start reads no zip, and the stdlib zip's directory comes from
//! an index, not from a read of every entry; in the stdlib zip the modules a start and
//! the common imports load are stored, the rest deflated, no directory entries; each
//! module is read once (`_dpy_zipimport`, which the encodings package imports at the
//! first import from the zip, not at start). A missing hook or index costs speed, never
//! an import.

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

/// What a start with `flags` running `code` reads, as -v reports it: the zip central
/// directories, as (entries, zip path) ("zipimport: found N names in"), and the files
/// it unmarshals code from ("code object from").
fn reads(image: &str, flags: &[&str], code: &str) -> (Vec<(usize, String)>, Vec<String>) {
    let mut args = flags.to_vec();
    args.extend(["-v", "-c", code]);
    let out = python_in(image, &args);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let directories = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("# zipimport: found "))
        .map(|rest| {
            let (count, path) = rest.split_once(" names in ").unwrap();
            (count.parse().unwrap(), path.trim_matches('\'').to_string())
        })
        .collect();
    let files = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("# code object from "))
        .map(|path| path.trim_matches('\'').to_string())
        .collect();
    (directories, files)
}

/// dpy's hook, on disk in the stdlib directory of the Debian stand-in.
const HOOK: &str = "/usr/lib/python3.11/_dpy_zipimport.pyc";

#[test]
fn a_bare_start_reads_no_zip_only_a_few_files_of_the_stdlib_directory() {
    let Some(image) = runtime() else { return };
    for flags in [&[][..], &["-S"][..], &["-I"][..]] {
        let (directories, files) = reads(image, flags, "import sys; print(sys.path)");
        assert_eq!(directories, [], "{flags:?}");
        assert!(files.contains(&"/usr/lib/python3.11/encodings/__init__.pyc".to_string()));
        assert!(!files.contains(&HOOK.to_string()), "{flags:?}: {files:?}");
        assert!(
            files.len() <= 10
                && files
                    .iter()
                    .all(|f| f.starts_with("/usr/lib/python3.11/") && !f.contains(".zip/")),
            "{flags:?}: {files:?}"
        );
    }
    // Importing from the stdlib zip imports the hook and reads no directory either: the
    // index gave it.
    let (directories, files) = reads(image, &[], "import json, email.message, xml.dom.minidom");
    assert_eq!(directories, []);
    assert!(files.contains(&HOOK.to_string()), "{files:?}");
    assert!(
        files.len() <= 10,
        "the stdlib zip's modules are no files: {files:?}"
    );
}

/// The runtime image with a start-up file of its stdlib directory changed by its own
/// interpreter: the hook removed (`hook`), or an index that is not marshal data (`index`).
fn damaged(image: &str, what: &str) -> String {
    common::image_from_dockerfile(
        &format!("damaged-{what}-{}", std::process::id()),
        &format!(
            "FROM {image}\nUSER root\nENV DPY_DAMAGE={what}\n\
             RUN [\"python3\", \"-c\", \"import encodings, os; home = os.path.dirname(os.path.dirname(encodings.__file__)); \
             what = os.environ['DPY_DAMAGE']; \
             os.remove(os.path.join(home, '_dpy_zipimport.pyc')) if what == 'hook' else \
             open(os.path.join(home, '_dpy_stdlib.index'), 'wb').write(b'not marshal data')\"]\n\
             USER 65532:65532\n"
        ),
    )
}

#[test]
fn a_missing_hook_or_index_costs_speed_never_an_import() {
    let Some(image) = runtime() else { return };
    for what in ["hook", "index"] {
        let image = damaged(image, what);
        // The stdlib zip's whole directory is read again at the first import from it (by
        // zipimport's own importer without the hook; a broken index is not used), and
        // everything imports: the stdlib-imports check imports each stdlib module.
        let (read, _) = reads(&image, &[], "import json");
        assert_eq!(read.len(), 1, "{what}: {read:?}");
        assert_eq!(read[0].1, "/usr/lib/python311-stdlib.zip");
        assert!(read[0].0 > 400, "{what}: {read:?}");
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
        // A bare start still reads no zip; without the hook each module is also read twice.
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
            .stdout_contains(
                "FAIL startup-zip: after a start (no flags) the stdlib zip is read False, on \
                 sys.path True, read after an import True, from its index False",
            )
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
    // PYTHONPATH comes before the stdlib directory: this _dpy_zipimport shadows dpy's
    // and raises.
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
