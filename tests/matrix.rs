//! The matrix: `dpy list`, target patterns and `--all` for `dpy build`, and shell
//! completions. None of it needs the engine: a pattern is resolved, or refused, before
//! the engine is asked anything.

use crate::common::Test;

const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";
/// Holds the month that retirement is judged in still, so the statuses below do not
/// change as Pythons reach their end of life.
const MONTH: &str = "DPY_MONTH";

#[test]
fn list_prints_the_targets_a_pattern_matches_with_their_family_status_and_source() {
    Test::new()
        .args(["list", "3.13-*alpine*", "3.12-slim-trixie", "3.9-bookworm"])
        .env(MONTH, "2026-12")
        .stdout(
            "TARGET            FAMILY  STATUS        SOURCE
3.13-alpine3.20   alpine  unmaintained  python:3.13-alpine3.20
3.13-alpine3.21   alpine  unmaintained  python:3.13-alpine3.21
3.13-alpine3.22   alpine  unmaintained  python:3.13-alpine3.22
3.13-alpine3.23   alpine  supported     python:3.13-alpine3.23
3.13-alpine3.24   alpine  supported     python:3.13-alpine3.24
3.12-slim-trixie  debian  supported     python:3.12-slim-trixie
3.9-bookworm      debian  end-of-life   python:3.9-bookworm
",
        )
        .run();
}

#[test]
fn include_retired_without_all_is_refused_before_the_engine() {
    Test::new()
        .args(["build", "--include-retired", "3.13-trixie"])
        .env("DOCKER_HOST", NO_ENGINE)
        .status(2)
        .stderr(
            "dpy: error: --include-retired widens --all; named targets and patterns are built whether retired or not, so drop it or add --all\n",
        )
        .run();
}

/// `dpy list --json ARGS`: its rows, and their targets.
fn listed(args: &[&str]) -> (serde_json::Value, Vec<String>) {
    let out = Test::new()
        .args(["list", "--json"])
        .args(args)
        .env(MONTH, "2026-12")
        .run();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap().to_string())
        .collect();
    (rows, targets)
}

#[test]
fn list_json_has_the_same_rows() {
    let (rows, targets) = listed(&["3.1?-trixie"]);
    assert_eq!(
        targets,
        [
            "3.10-trixie",
            "3.11-trixie",
            "3.12-trixie",
            "3.13-trixie",
            "3.14-trixie",
            "3.15-trixie"
        ]
    );
    assert_eq!(rows[0]["family"], "debian");
    assert_eq!(rows[0]["source_image"], "python:3.10-trixie");
    // 3.10's end of life (2026-10) is past; 3.15's (2031-10) is years away.
    assert_eq!(rows[0]["status"], "end-of-life");
    assert_eq!(rows[0]["python_end_of_life"], "2026-10");
    assert_eq!(rows[5]["status"], "supported");
    assert_eq!(rows[5]["python_end_of_life"], "2031-10");
}

#[test]
fn list_without_patterns_is_the_whole_matrix_without_its_holes() {
    let (_, targets) = listed(&[]);
    let has = |t: &str| targets.iter().any(|x| x == t);
    assert!(has("3.9-alpine3.20"));
    assert!(!has("3.14-alpine3.20"), "excluded in images/matrix.toml");
    assert!(!has("3.9-alpine3.23"), "excluded in images/matrix.toml");
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

/// Source images for `targets` under one `{target}` pattern (`dpy-test/<name>:{target}-amd64`):
/// each the test bed's musl stand-in of its Python, with `extra` Dockerfile lines for
/// the targets named there. Removed again with [`remove_sources`].
fn sources(name: &str, targets: &[&str], extra: &[(&str, &str)]) -> String {
    for target in targets {
        let python = target.split('-').next().unwrap();
        let base = crate::common::alpine_source(python);
        crate::common::require_image(&base);
        let lines = extra
            .iter()
            .filter(|(t, _)| t == target)
            .map(|(_, line)| format!("{line}\n"))
            .collect::<String>();
        crate::common::image_tagged(
            &format!("dpy-test/{name}:{target}-amd64"),
            &format!("FROM {base}\n{lines}"),
        );
    }
    format!("dpy-test/{name}:{{target}}-{{arch}}")
}

fn remove_sources(name: &str, targets: &[&str]) {
    for target in targets {
        crate::common::docker(&["image", "rm", &format!("dpy-test/{name}:{target}-amd64")]);
    }
}

/// Three targets two at a time, one of them from a source without Python: the other two
/// build and are tagged, the table at the end names the failure, and the exit code is
/// that failure's (12). The failed target leaves nothing behind.
#[test]
fn a_failed_target_does_not_stop_the_others() {
    if !crate::common::engine("matrix::keep-going") {
        return;
    }
    let name = format!("keep{}", std::process::id());
    let targets = ["3.13-alpine3.20", "3.12-alpine3.20", "3.11-alpine3.20"];
    // 3.12's source is the 3.13 stand-in without its interpreter.
    let source = {
        let base = crate::common::alpine_source("3.13");
        crate::common::require_image(&base);
        crate::common::image_tagged(
            &format!("dpy-test/{name}:3.12-alpine3.20-amd64"),
            &format!("FROM {base}\nRUN rm -f /usr/local/bin/python3* /usr/local/bin/python\n"),
        );
        sources(&name, &["3.13-alpine3.20", "3.11-alpine3.20"], &[])
    };
    let repository = crate::common::unique_repository("matrix");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("m.json");
    let before = crate::common::Engine::now();
    let out = crate::common::build_amd64(targets[0], &source, &repository, &targets[1..])
        .args(["--jobs", "2", "--metadata-file", metadata.to_str().unwrap()])
        .status(12)
        .stdout_contains(&format!("{repository}:3.13-alpine3.20 "))
        .stdout_contains(&format!("{repository}:3.11-alpine3.20 "))
        .stderr_contains("dpy: error: 3.12-alpine3.20: ")
        .stderr_contains("no python3 on PATH")
        .run();
    remove_sources(&name, &targets);
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Alpine 3.20 is retired upstream: each target's build warns, once.
    for target in targets {
        let warning = format!(
            "dpy: warning: {target} is retired: the official images no longer update alpine3.20, so its source gets no more fixes; build {}-alpine3.24 instead\n",
            target.split('-').next().unwrap()
        );
        assert_eq!(stderr.matches(&warning).count(), 1, "{stderr}");
    }
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
        table[2].starts_with("3.12-alpine3.20  - ") && table[2].contains("  failed (exit 12): "),
        "{stderr}"
    );
    assert!(
        table[3].starts_with("3.11-alpine3.20  sha256:") && table[3].ends_with("  built"),
        "{stderr}"
    );
    assert!(
        table[4].starts_with("dpy: error: 3.12-alpine3.20: "),
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

/// `--if-changed` over a two-target push to the loopback registry, all three variants:
/// each -debug image is pushed under its index and recorded; a second run builds
/// and pushes nothing and prints `unchanged` for both; after one source is rebuilt
/// under the same tag, only that target is built and pushed; with the metadata file
/// deleted, the registry's labels alone say the same. `dpy readme` over the records
/// lists both tags.
#[test]
fn if_changed_over_a_two_target_push_rebuilds_only_what_moved() {
    use crate::common;
    if !common::engine("matrix::if-changed-push") {
        return;
    }
    let name = format!("ifcpush{}", std::process::id());
    let targets = ["3.13-alpine3.20", "3.11-alpine3.20"];
    let source = sources(&name, &targets, &[]);
    let repository = common::Repository::at("127.0.0.1:5000", "ifchanged");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("m.json");
    let push = || {
        Test::new()
            .args(["build"])
            .args(targets)
            .args([
                "--platform",
                "linux/amd64",
                "--progress",
                "plain",
                "--push",
                "--if-changed",
                "--variants",
                "runtime,buildroot,debug",
            ])
            .args(["--registry-auth", "dpy:dpy-test-password"])
            .args(["--source-image", &source, "--repository", &repository])
            .args(["--metadata-file", metadata.to_str().unwrap()])
    };
    let first = push().run();
    let first_out = String::from_utf8(first.stdout).unwrap();
    let digest_of = |out: &str, target: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{repository}:{target}@")))
            .map(String::from)
            .unwrap_or_else(|| panic!("no {target} index in {out}"))
    };
    let (d13, d11) = (
        digest_of(&first_out, targets[0]),
        digest_of(&first_out, targets[1]),
    );
    let recorded = std::fs::read(&metadata).unwrap();
    // The -debug images are pushed under one index each and recorded like the others.
    for target in targets {
        let debug = format!("{repository}:{target}-debug");
        let index: serde_json::Value =
            serde_json::from_slice(&common::registry_manifest(&debug, "dpy:dpy-test-password"))
                .unwrap();
        // An index of one platform's manifest (dpy pushes Docker's manifest list type).
        assert_eq!(
            index["manifests"].as_array().map(Vec::len),
            Some(1),
            "{index}"
        );
        assert!(
            index["mediaType"].as_str().is_some_and(
                |t| t.ends_with("manifest.list.v2+json") || t.ends_with("image.index.v1+json")
            ),
            "{index}"
        );
        let records: serde_json::Value = serde_json::from_slice(&recorded).unwrap();
        assert!(
            records["images"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "debug" && r["reference"] == debug.as_str()),
            "{records}"
        );
    }

    // Nothing moved: nothing built, nothing pushed, both unchanged with their digests.
    let again = push()
        .stdout(&format!(
            "{repository}:3.13-alpine3.20 unchanged ({d13})\n{repository}:3.11-alpine3.20 unchanged ({d11})\n"
        ))
        .run();
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert!(!stderr.contains("pushed "), "{stderr}");
    assert_eq!(std::fs::read(&metadata).unwrap(), recorded);

    // 3.11's source moves: only 3.11 is built and pushed.
    let old = common::docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        &format!("dpy-test/{name}:3.11-alpine3.20-amd64"),
    ]);
    common::image_tagged(
        &format!("dpy-test/{name}:3.11-alpine3.20-amd64"),
        &format!(
            "FROM {}\nLABEL io.dpy.test.moved=1\n",
            common::alpine_source("3.11")
        ),
    );
    let moved = push()
        .stdout_contains(&format!("{repository}:3.13-alpine3.20 unchanged ({d13})\n"))
        .stdout_contains(&format!("{repository}:3.11-alpine3.20@sha256:"))
        .stderr_contains(&format!(
            "[3.11-alpine3.20 linux/amd64] rebuilding: source {}",
            old.trim()
        ))
        .run();
    let stderr = String::from_utf8(moved.stderr).unwrap();
    assert!(
        stderr.contains(&format!("pushed {repository}:3.11-alpine3.20-amd64 ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("pushed {repository}:3.13-alpine3.20")),
        "{stderr}"
    );
    let d11_new = digest_of(&String::from_utf8(moved.stdout).unwrap(), targets[1]);
    assert_ne!(d11_new, d11);

    // The records: both tags, each with its Python, platform, size and digest.
    let readme = Test::new()
        .args(["readme", "--metadata", metadata.to_str().unwrap()])
        .run();
    let text = String::from_utf8(readme.stdout).unwrap();
    for (target, digest, python) in [(targets[0], &d13, "3.13"), (targets[1], &d11_new, "3.11")] {
        assert!(
            text.contains(&format!("``{repository}:{target}@{digest}``")),
            "{target}: {text}"
        );
        assert!(text.contains(python), "{text}");
    }
    assert!(text.contains("linux/amd64"), "{text}");
    assert!(
        text.contains("COPY --from=build /opt/buildroot-diff/ /"),
        "{text}"
    );
    assert!(
        !text.contains("github.com"),
        "no built-in project address: {text}"
    );
    crate::readme::assert_valid_rst(&text);

    // Without the metadata file, the registry's labels alone: both unchanged.
    std::fs::remove_file(&metadata).unwrap();
    push()
        .stdout(&format!(
            "{repository}:3.13-alpine3.20 unchanged ({d13})\n{repository}:3.11-alpine3.20 unchanged ({d11_new})\n"
        ))
        .run();
    assert!(!metadata.exists());
    remove_sources(&name, &targets);
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

    // The images the rebuild below replaces lose their tags, as any rebuilt tag's do:
    // removed at the end, so that no test sees them as dangling.
    let replaced = common::docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        &image,
        &format!("{image}-buildroot"),
    ]);
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
    let replaced: Vec<&str> = replaced.split_whitespace().collect();
    assert_eq!(replaced.len(), 2);
    common::docker(&[&["image", "rm"][..], &replaced[..]].concat());
}

/// The whole matrix as `dpy list` prints it in December 2026: a snapshot, so a change to
/// images/matrix.toml shows here as the targets it adds, removes or retires.
#[test]
fn list_of_the_whole_matrix() {
    let out = Test::new().args(["list"]).env(MONTH, "2026-12").run();
    insta::assert_snapshot!("list-all", String::from_utf8(out.stdout).unwrap());
}

/// `--if-changed` compares with the metadata file, so one that cannot be read as
/// metadata is refused before anything is built, and left as it was.
#[test]
fn if_changed_with_an_unreadable_metadata_file_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    std::fs::write(&path, "{ not json\n").unwrap();
    Test::new()
        .args(["build", "3.13-alpine3.20", "--if-changed"])
        .args(["--metadata-file", path.to_str().unwrap()])
        .env("DOCKER_HOST", NO_ENGINE)
        .status(20)
        .stderr_contains("not a dpy metadata file")
        .one_line_error()
        .run();
    assert_eq!(std::fs::read(&path).unwrap(), b"{ not json\n");
}

#[test]
fn the_readme_support_table_is_what_the_matrix_says() {
    let out = Test::new().args(["list", "--rst"]).run();
    let table = String::from_utf8(out.stdout).unwrap();
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.rst"),
    )
    .unwrap();
    let block: String = readme
        .lines()
        .skip_while(|l| *l != ".. support-table: begin")
        .skip(1)
        .take_while(|l| *l != ".. support-table: end")
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        block, table,
        "README.rst's support table is not images/matrix.toml's: run scripts/support-table"
    );
}

#[test]
fn the_month_statuses_are_judged_in_can_be_named() {
    // In November 2027, 3.11 is past its end of life too.
    let out = Test::new()
        .args(["list", "3.11-trixie", "3.12-trixie"])
        .env(MONTH, "2027-11")
        .stdout(
            "TARGET       FAMILY  STATUS        SOURCE
3.11-trixie  debian  end-of-life   python:3.11-trixie
3.12-trixie  debian  supported     python:3.12-trixie
",
        )
        .run();
    drop(out);
    Test::new()
        .args(["list"])
        .env(MONTH, "November")
        .status(2)
        .stderr("dpy: error: DPY_MONTH=\"November\" is not a month: write it YYYY-MM (2027-11), or unset it for the current month\n")
        .run();
}

#[test]
fn rst_takes_no_patterns() {
    Test::new()
        .args(["list", "--rst", "3.13-*"])
        .status(2)
        .stderr("dpy: error: --rst prints the whole support table; give no patterns with it\n")
        .run();
}
