//! `dpy doctor` on the real engine, and without one.

use crate::common;
use crate::common::Test;

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

/// Sixty BuildKit probes from four processes side by side, as the issue that found the
/// partial exports ran them: each probe's exported tar holds its file. Without the wait
/// for the end-of-archive marker (engine::export), 3 of 480 such probes failed here.
#[test]
fn sixty_probes_side_by_side_each_export_whole() {
    if !common::engine("doctor::concurrent-probes") {
        return;
    }
    let loops: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                (0..15)
                    .map(|_| {
                        let out = std::process::Command::new(common::BIN)
                            .arg("doctor")
                            .output()
                            .unwrap();
                        String::from_utf8_lossy(&out.stdout)
                            .lines()
                            .find(|l| l.contains("buildkit"))
                            .unwrap_or("no buildkit line")
                            .to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let lines: Vec<String> = loops.into_iter().flat_map(|l| l.join().unwrap()).collect();
    assert_eq!(lines.len(), 60);
    let bad: Vec<&String> = lines
        .iter()
        .filter(|l| !l.starts_with("ok      buildkit"))
        .collect();
    assert!(bad.is_empty(), "{} of 60 probes: {bad:?}", bad.len());
}
