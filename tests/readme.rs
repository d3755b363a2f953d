//! `dpy readme`: snapshots over fixture metadata, validity checked by docutils.

use crate::common::Test;
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/metadata-three-registries.json";

/// Parses `text` with docutils (Debian's python3-docutils) and fails on any warning.
pub(crate) fn assert_valid_rst(text: &str) {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("README.rst");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, docutils.core\n\
             text = open(sys.argv[1]).read()\n\
             docutils.core.publish_doctree(text, settings_overrides={'halt_level': 2, 'report_level': 2})\n",
        ])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "docutils rejected the README: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn three_registries_sorted_grouped_and_hidden() {
    let out = Test::new().args(["readme", "--metadata", FIXTURE]).run();
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("readme-three-registries", text);
    assert_valid_rst(&text);

    // Docker Hub: links to the tag page, newest Python first, no -buildroot.
    let hub_312 = text.find("acme/python:3.12-alpine3.20 <https://hub.docker.com/r/acme/python/tags?name=3.12-alpine3.20>").unwrap();
    let hub_39 = text.find("acme/python:3.9-alpine3.20 <").unwrap();
    assert!(hub_312 < hub_39);
    assert!(!text.contains("acme/python:3.12-alpine3.20-buildroot <"));
    // GHCR: the package page, no -buildroot.
    assert!(
        text.contains("https://github.com/users/acme/packages/container/package/images%2Fpython")
    );
    assert!(!text.contains("3.13-alpine3.21-buildroot <"));
    // Other registries: reference@digest (size), -buildroot included.
    assert!(text.contains("``localhost:5000/dpy/python:3.11-bookworm@sha256:7777777777777777777777777777777777777777777777777777777777777777`` (23.00 MiB)"));
    assert!(text.contains("localhost:5000/dpy/python:3.11-bookworm-buildroot@sha256:8888"));
    // The Development example names a real tag and its site-packages.
    assert!(text.contains("FROM acme/python:3.13-slim-bookworm-buildroot AS build"));
    assert!(text.contains("COPY --from=build /opt/buildroot-diff/ /"));
    assert!(
        !text.contains("github.com/dpy"),
        "no built-in project address"
    );
}

#[test]
fn no_images_is_a_readme_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.json");
    std::fs::write(&file, "{\"schema\": 1, \"images\": []}").unwrap();
    let out = Test::new()
        .args(["readme", "--metadata", file.to_str().unwrap()])
        .stdout_contains("No images have been built yet")
        .run();
    assert_valid_rst(&String::from_utf8(out.stdout).unwrap());
}

#[test]
fn output_goes_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("README.rst");
    Test::new()
        .args(["readme", "--metadata", FIXTURE, "-o", out.to_str().unwrap()])
        .stdout("")
        .run();
    assert!(std::fs::read_to_string(out)
        .unwrap()
        .contains("Other registries"));
}

#[test]
fn a_missing_metadata_file_is_named() {
    Test::new()
        .args(["readme", "--metadata", "no/such/file.json"])
        .status(20)
        .stderr_contains("no/such/file.json")
        .one_line_error()
        .run();
}

#[test]
fn invalid_json_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, "{\n \"schema\": 1,\n \"images\": [\n oops ]\n}\n").unwrap();
    Test::new()
        .args(["readme", "--metadata", file.to_str().unwrap()])
        .status(20)
        .stderr_contains("bad.json")
        .stderr_contains("line 4")
        .one_line_error()
        .run();
}

#[test]
fn a_record_missing_a_field_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("partial.json");
    let text = std::fs::read_to_string(FIXTURE).unwrap().replacen(
        "\"digest\": \"sha256:1111",
        "\"digestx\": \"sha256:1111",
        1,
    );
    std::fs::write(&file, text).unwrap();
    Test::new()
        .args(["readme", "--metadata", file.to_str().unwrap()])
        .status(20)
        .stderr_contains("missing field `digest`")
        .one_line_error()
        .run();
}

#[test]
fn a_template_syntax_error_names_template_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("mine.rst.tera");
    std::fs::write(
        &template,
        "Title\n=====\n\n{% for image in images %}\n{{ image.tag \n",
    )
    .unwrap();
    Test::new()
        .args([
            "readme",
            "--metadata",
            FIXTURE,
            "--template",
            template.to_str().unwrap(),
        ])
        .status(3)
        .stderr_contains("mine.rst.tera")
        .stderr_contains("--> 6:1")
        .one_line_error()
        .run();
}

/// A template from a repository CI checked out must not publish the runner's secrets:
/// `get_env` (and the clock, and randomness) is refused in one line naming the template.
#[test]
fn a_template_cannot_read_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "dpy-test-secret-3f9a";
    let out = dir.path().join("README.rst");
    for (file, call, says) in [
        (
            "env.rst.tera",
            "Token: {{ get_env(name=\"HOME\") }}\n",
            "get_env is not available",
        ),
        (
            "env-default.rst.tera",
            "{% set t = get_env(name=\"DPY_TOKEN\", default=\"none\") %}{{ t }}\n",
            "get_env is not available",
        ),
        (
            "now.rst.tera",
            "Built {{ now() }}\n",
            "now is not available",
        ),
    ] {
        let template = dir.path().join(file);
        std::fs::write(&template, call).unwrap();
        let output = Test::new()
            .args([
                "readme",
                "--metadata",
                FIXTURE,
                "--template",
                template.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ])
            .env("HOME", secret)
            .env("DPY_TOKEN", secret)
            .status(3)
            .stderr_contains(&format!("dpy: error: template {}", template.display()))
            .stderr_contains(says)
            .stderr_contains("dpy's templates see only the values dpy gives them")
            .one_line_error()
            .run();
        assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
        assert!(output.stdout.is_empty());
        assert!(!out.exists(), "nothing is written");
    }
}

#[test]
fn a_custom_template_gets_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("list.tera");
    std::fs::write(
        &template,
        "{% for image in images %}{{ image.reference }} {{ image.size | mib }}\n{% endfor %}",
    )
    .unwrap();
    let out = Test::new()
        .args([
            "readme",
            "--metadata",
            FIXTURE,
            "--template",
            template.to_str().unwrap(),
        ])
        .run();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 8);
}

#[test]
fn the_project_readme_is_valid_rst() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.rst")).unwrap();
    assert_valid_rst(&text);
    for example in ["simple-flask", "cli"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example)
            .join("README.rst");
        assert_valid_rst(&std::fs::read_to_string(path).unwrap());
    }
}

/// A newcomer on a fresh machine runs the getting-started block: two commands, the main
/// job and the tests, the latter being what CI runs.
#[test]
fn the_project_readme_starts_with_two_commands() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.rst")).unwrap();
    let start = text
        .find("Getting started\n===")
        .expect("a Getting started section");
    let block = text[start..]
        .split(".. code-block:: sh\n\n")
        .nth(1)
        .expect("a code block")
        .split("\n\n")
        .next()
        .unwrap();
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(commands, ["scripts/demo", "scripts/test"], "{block}");
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test"),
        ".ci/run runs the README's test command"
    );
}

#[test]
fn modules_left_out_for_not_importing_in_the_source_are_listed() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let mut with_broken = fixture.clone();
    for image in with_broken["images"].as_array_mut().unwrap() {
        if image["reference"] == "localhost:5000/dpy/python:3.11-bookworm"
            || image["reference"] == "localhost:5000/dpy/python:3.11-bookworm-buildroot"
        {
            image["broken_modules"] = serde_json::json!(["_gdbm", "nis"]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, with_broken.to_string()).unwrap();
    let out = Test::new()
        .args(["readme", "--metadata", file.to_str().unwrap()])
        .run();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_valid_rst(&text);
    assert!(
        text.contains("Modules left out\n----------------"),
        "{text}"
    );
    assert!(
        text.contains("- ``localhost:5000/dpy/python:3.11-bookworm``: _gdbm, nis\n"),
        "{text}"
    );
    // Runtime images only, and only those that left something out.
    assert_eq!(text.matches(": _gdbm, nis").count(), 1, "{text}");
    let plain = Test::new().args(["readme", "--metadata", FIXTURE]).run();
    assert!(!String::from_utf8(plain.stdout)
        .unwrap()
        .contains("Modules left out"));
}
