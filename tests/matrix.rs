//! The matrix: `dpy list`, target patterns and `--all` for `dpy build`, and shell
//! completions. None of it needs the engine: a pattern is resolved, or refused, before
//! the engine is asked anything.

use crate::common::Test;

const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";

#[test]
fn list_prints_the_targets_a_pattern_matches_with_their_family_and_source() {
    Test::new()
        .args(["list", "3.13-*alpine*", "3.12-slim-trixie"])
        .stdout(
            "TARGET            FAMILY  SOURCE
3.13-alpine3.20   alpine  python:3.13-alpine3.20
3.13-alpine3.21   alpine  python:3.13-alpine3.21
3.13-alpine3.22   alpine  python:3.13-alpine3.22
3.13-alpine3.23   alpine  python:3.13-alpine3.23
3.12-slim-trixie  debian  python:3.12-slim-trixie
",
        )
        .run();
}

#[test]
fn list_json_has_the_same_rows() {
    let out = Test::new().args(["list", "--json", "3.1?-trixie"]).run();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "3.10-trixie",
            "3.11-trixie",
            "3.12-trixie",
            "3.13-trixie",
            "3.14-trixie"
        ]
    );
    assert_eq!(rows[0]["family"], "debian");
    assert_eq!(rows[0]["source_image"], "python:3.10-trixie");
}

#[test]
fn list_without_patterns_is_the_whole_matrix_without_its_holes() {
    let out = Test::new().args(["list", "--json"]).run();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&"3.9-alpine3.20"));
    assert!(
        !targets.contains(&"3.14-alpine3.20"),
        "excluded in images/matrix.toml"
    );
    assert!(
        !targets.contains(&"3.9-alpine3.23"),
        "excluded in images/matrix.toml"
    );
}

#[test]
fn a_pattern_that_matches_nothing_is_refused_before_the_engine_with_the_closest_targets() {
    Test::new()
        .args(["build", "3.13-alpin3.2*", "--progress", "plain"])
        .env("DOCKER_HOST", NO_ENGINE)
        .status(2)
        .stderr(
            "dpy: error: the pattern \"3.13-alpin3.2*\" matches no target; closest: 3.13-alpine3.20, 3.13-alpine3.21, 3.13-alpine3.22; `dpy list` shows them all\n",
        )
        .run();
}

#[test]
fn all_and_targets_together_are_refused() {
    Test::new()
        .args(["build", "--all", "3.12-alpine3.20"])
        .env("DOCKER_HOST", NO_ENGINE)
        .status(2)
        .stderr_contains("give targets or --all, not both")
        .one_line_error()
        .run();
}

#[test]
fn completions_offer_the_targets_and_the_options() {
    // clap_complete's fish script completes options and subcommands, not positionals.
    let everything = [
        "3.12-alpine3.20",
        "3.13-slim-bookworm",
        "sign-key",
        "keygen",
    ];
    for (shell, words) in [
        ("bash", &everything[..]),
        ("zsh", &everything[..]),
        ("fish", &["sign-key", "keygen", "source-image"][..]),
    ] {
        let out = Test::new().args(["completions", shell]).run();
        let script = String::from_utf8(out.stdout).unwrap();
        for word in words {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    // The bash script is one bash accepts.
    let out = Test::new().args(["completions", "bash"]).run();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dpy.bash");
    std::fs::write(&path, &out.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(check.success());
}

/// Three targets two at a time, from one `{target}` source pattern: the one whose
/// source is not there fails, the other two build, and a table says so. The exit code
/// is the failure's; the failed target leaves nothing behind.
#[test]
fn a_failed_target_does_not_stop_the_others() {
    if !crate::common::engine("matrix::keep-going") {
        return;
    }
    for python in ["3.11", "3.13"] {
        crate::common::require_image(&crate::common::alpine_source(python));
    }
    let repository = crate::common::unique_repository("matrix");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("m.json");
    let before = crate::common::Engine::now();
    let out = Test::new()
        .args([
            "build",
            "3.13-alpine3.20",
            "3.12-alpine3.20",
            "3.11-alpine3.20",
        ])
        .args([
            "--jobs",
            "2",
            "--platform",
            "linux/amd64",
            "--progress",
            "plain",
        ])
        .args(["--source-image", "dpy-testbed/python:{target}-{arch}"])
        .args(["--repository", &repository])
        .args(["--metadata-file", metadata.to_str().unwrap()])
        .status(11)
        .stdout_contains(&format!("{repository}:3.13-alpine3.20 "))
        .stdout_contains(&format!("{repository}:3.11-alpine3.20 "))
        .stderr_contains(
            "dpy: error: 3.12-alpine3.20: source image dpy-testbed/python:3.12-alpine3.20-amd64",
        )
        .run();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let table: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("TARGET "))
        .collect();
    assert_eq!(table.len(), 5, "a header, three rows, the error: {stderr}");
    assert!(
        table[1].starts_with("3.13-alpine3.20  sha256:") && table[1].ends_with("  built"),
        "{stderr}"
    );
    assert!(
        table[2].starts_with("3.12-alpine3.20  - ") && table[2].contains("  failed (exit 11): "),
        "{stderr}"
    );
    assert!(
        table[3].starts_with("3.11-alpine3.20  sha256:") && table[3].ends_with("  built"),
        "{stderr}"
    );
    // Plain progress names each target on its lines.
    assert!(
        stderr.contains("[3.11-alpine3.20 linux/amd64] "),
        "{stderr}"
    );
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    let tags: Vec<&str> = records["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
    assert!(!tags.iter().any(|t| t.starts_with("3.12")), "{tags:?}");
    let left =
        crate::common::docker_ok(&["images", "-q", &format!("{repository}:3.12-alpine3.20*")]);
    assert_eq!(left.trim(), "");
    before.assert_no_new_dangling();
}

/// `--if-changed` against the metadata file: a second build of the same inputs is
/// skipped with the id it kept and the records left as they were; a source that moved
/// is built again, and dpy says what moved.
#[test]
fn if_changed_skips_a_target_whose_inputs_did_not_move() {
    use crate::common;
    if !common::engine("matrix::if-changed") {
        return;
    }
    let base = common::alpine_source("3.13");
    common::require_image(&base);
    let name = format!("ifchanged{}", std::process::id());
    let source = common::image_from_dockerfile(&name, &format!("FROM {base}\n"));
    let repository = common::unique_repository("ifchanged");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("m.json");
    let build = || {
        common::build_amd64(
            "3.13-alpine3.20",
            &source,
            &repository,
            &[
                "--if-changed",
                "--metadata-file",
                metadata.to_str().unwrap(),
            ],
        )
    };
    let image = format!("{repository}:3.13-alpine3.20");
    build().stdout_contains(&format!("{image} ")).run();
    let recorded = std::fs::read(&metadata).unwrap();
    let id = common::docker_ok(&["image", "inspect", "-f", "{{.Id}}", &image]);
    build()
        .stdout(&format!("{image} unchanged ({})\n", id.trim()))
        .run();
    assert_eq!(std::fs::read(&metadata).unwrap(), recorded);

    let old = common::docker_ok(&["image", "inspect", "-f", "{{.Id}}", &source]);
    common::image_from_dockerfile(&name, &format!("FROM {base}\nLABEL io.dpy.test.moved=1\n"));
    let new = common::docker_ok(&["image", "inspect", "-f", "{{.Id}}", &source]);
    build()
        .stderr_contains(&format!(
            "rebuilding: source {} → {}",
            old.trim(),
            new.trim()
        ))
        .stdout_contains(&format!("{image} "))
        .run();
    common::docker_ok(&["image", "rm", &source]);
}
