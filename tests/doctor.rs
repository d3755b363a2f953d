//! `dpy doctor` on the real engine, and without one.

mod common;
use common::Test;

#[test]
fn doctor_passes_on_a_prepared_machine() {
    if !common::engine("doctor::pass") {
        return;
    }
    let source = common::debian_source();
    Test::new()
        .args(["doctor", "3.11-bookworm", "--source-image", &source])
        .stdout_contains("ok      engine: Docker")
        .stdout_contains("ok      buildkit")
        .stdout_contains("ok      platform linux/amd64")
        .stdout_contains(&format!("ok      source {source}"))
        .run();
}

#[test]
fn doctor_without_an_engine_says_how_to_start_one() {
    Test::new()
        .args(["doctor"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(16)
        .stdout_contains("MISSING engine")
        .stdout_contains("start one")
        .one_line_error()
        .run();
}

#[test]
fn doctor_reports_a_missing_source_image() {
    if !common::engine("doctor::missing-source") {
        return;
    }
    Test::new()
        .args([
            "doctor",
            "3.12-alpine3.20",
            "--source-image",
            "dpy-test/absent:0",
        ])
        .status(16)
        .stdout_contains("MISSING source dpy-test/absent:0")
        .run();
}
