//! Debug info out of the runtime root (distill::strip), on the test bed's official-layout
//! CPython relinked without --strip-all (scripts/testbed-slim --debuginfo), checked with
//! binutils' readelf, which dpy does not use.

use std::path::Path;
use std::process::Command;

use crate::common::{self, docker_ok, Test};

const LIBPYTHON: &str = "/usr/local/lib/libpython3.13.so.1.0";

/// `readelf ARGS FILE`'s output.
fn readelf(args: &[&str], file: &Path) -> String {
    let out = Command::new("readelf")
        .args(args)
        .arg(file)
        .output()
        .expect("readelf runs (binutils)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bytes of the sections named like debug info or the static symbol table, from
/// `readelf -S -W`: `[Nr] Name Type Address Off Size ...`.
fn debug_bytes(file: &Path) -> u64 {
    readelf(&["-S", "-W"], file)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(']').nth(1)?.split_whitespace().collect();
            let (name, size) = (fields.first()?, fields.get(4)?);
            (name.starts_with(".debug") || *name == ".symtab" || *name == ".strtab")
                .then(|| u64::from_str_radix(size, 16).ok())?
        })
        .sum()
}

/// Copies `path` out of `image` into `dir`.
fn copy_out(image: &str, path: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let container = docker_ok(&["create", image]);
    let to = dir.join(name);
    docker_ok(&[
        "cp",
        "-L",
        &format!("{}:{path}", container.trim()),
        to.to_str().unwrap(),
    ]);
    docker_ok(&["rm", container.trim()]);
    to
}

/// A source whose interpreter, libpython and extension modules carry debug sections:
/// the runtime's libpython has none of them, its program headers are readelf's same,
/// the metadata names what dpy removed (at least libpython's debug sections) and by
/// what, `dpy test` passes, and the -debug image keeps the symbols.
#[test]
fn a_source_with_debug_info_gives_a_stripped_runtime_and_a_debug_image_with_symbols() {
    if !common::engine("strip::debuginfo") {
        return;
    }
    let source = "dpy-testbed/python:3.13-slim-bookworm-debuginfo-amd64";
    common::require_image(source);
    let repository = common::unique_repository("strip");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("meta.json");
    common::build_amd64(
        "3.13-slim-bookworm",
        source,
        &repository,
        &[
            "--variants",
            "runtime,debug",
            "--metadata-file",
            metadata.to_str().unwrap(),
        ],
    )
    .stderr_contains("MB of debug sections removed from ")
    .stderr_contains(" ELF files (the -debug image keeps them)")
    .run();
    let runtime = format!("{repository}:3.13-slim-bookworm");

    let before = copy_out(source, LIBPYTHON, dir.path(), "source.so");
    let after = copy_out(&runtime, LIBPYTHON, dir.path(), "runtime.so");
    let kept = copy_out(
        &format!("{runtime}-debug"),
        LIBPYTHON,
        dir.path(),
        "debug.so",
    );
    let in_source = debug_bytes(&before);
    assert!(
        in_source > 10_000_000,
        "libpython's debug sections: {in_source}"
    );
    assert_eq!(debug_bytes(&after), 0);
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        std::fs::read(&before).unwrap()
    );
    let smaller =
        std::fs::metadata(&before).unwrap().len() - std::fs::metadata(&after).unwrap().len();
    assert!(smaller >= in_source, "{smaller} < {in_source}");
    // Segments and their file offsets, as readelf reads them.
    let segments = |file: &Path| -> Vec<String> {
        readelf(&["-l", "-W"], file)
            .lines()
            .filter(|l| l.trim_start().starts_with("LOAD") || l.trim_start().starts_with("DYNAMIC"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(segments(&after), segments(&before));
    assert!(!segments(&before).is_empty());

    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    let record = records["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "runtime")
        .unwrap();
    let stripped = &record["debug_info_stripped"];
    assert_eq!(stripped["by"], "dpy (distill::strip)");
    assert!(
        stripped["bytes"].as_u64().unwrap() >= in_source,
        "{stripped}"
    );
    let files: Vec<&str> = stripped["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.contains(&LIBPYTHON.trim_start_matches('/')),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.contains("/lib-dynload/_ssl.")),
        "{files:?}"
    );

    Test::new()
        .args(["test", &runtime, "--source-image", source])
        .stdout_contains(" 0 failed")
        .run();
}

/// The official-layout stand-in is stripped already: nothing is removed, so the metadata
/// records nothing and no file of the root changed (the layer is what it was).
#[test]
fn a_stripped_source_is_left_as_it_is() {
    if !common::engine("strip::stripped") {
        return;
    }
    let source = common::slim_source("3.13");
    common::require_image(&source);
    let repository = common::unique_repository("nostrip");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("meta.json");
    let out = common::build_amd64(
        "3.13-slim-bookworm",
        &source,
        &repository,
        &[
            "--variants",
            "runtime",
            "--metadata-file",
            metadata.to_str().unwrap(),
        ],
    )
    .run();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("debug sections removed"));
    let records = std::fs::read_to_string(&metadata).unwrap();
    assert!(!records.contains("debug_info_stripped"), "{records}");
}
