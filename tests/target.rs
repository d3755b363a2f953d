//! The target grammar at the command line: every bad input is one line, exit 2.

use crate::common::Test;

#[test]
fn bad_targets_are_usage_errors_naming_the_accepted_forms() {
    for target in [
        "3.12",
        "alpine3.20",
        "3-alpine3.20",
        "3.12-centos7",
        "3.12-alpine3.x",
        "",
        " 3.12-alpine3.20",
        "2.7-alpine3.20",
    ] {
        Test::new()
            .args(["render", target])
            .status(2)
            .stderr_contains("expected <python>-<os>")
            .one_line_error()
            .run();
    }
}

#[test]
fn a_buildroot_tag_is_not_a_target() {
    Test::new()
        .args(["render", "3.12-alpine3.20-buildroot"])
        .status(2)
        .stderr_contains("derived from a target")
        .one_line_error()
        .run();
}

#[test]
fn a_target_outside_the_matrix_lists_what_exists() {
    Test::new()
        .args(["render", "3.8-alpine3.23"])
        .status(2)
        .stderr_contains("outside the support matrix")
        .stderr_contains("Python 3.9, 3.10, 3.11, 3.12, 3.13, 3.14, 3.15 on alpine3.20")
        .one_line_error()
        .run();
    Test::new()
        .args(["render", "3.14-alpine3.20"])
        .status(2)
        .stderr_contains("no Python 3.14 on alpine3.20")
        .one_line_error()
        .run();
}

#[test]
fn build_checks_every_target_before_touching_the_engine() {
    // A bad second target fails at once, with no engine needed.
    Test::new()
        .args(["build", "3.12-alpine3.20", "3.12-centos7"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr_contains("3.12-centos7")
        .one_line_error()
        .run();
}

#[test]
fn good_targets_render() {
    for target in [
        "3.12-alpine3.20",
        "3.12-alpine",
        "3.13.1-slim-trixie",
        "3.9-bookworm",
    ] {
        Test::new()
            .args(["render", target])
            .stdout_contains("Dockerfile.buildroot")
            .run();
    }
}
