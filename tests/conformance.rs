//! `dpy test`: what it refuses. (Passing runs are in build.rs and alpine.rs, on images
//! dpy has just built.)

use crate::common;
use crate::common::Test;

#[test]
fn an_absent_image_is_a_usage_error() {
    if !common::engine("conformance::absent") {
        return;
    }
    Test::new()
        .args(["test", "dpy-test/never-built:0"])
        .status(2)
        .stderr_contains("not in the local image store")
        .one_line_error()
        .run();
}

#[test]
fn an_unknown_profile_is_refused_before_the_engine_is_asked() {
    Test::new()
        .args(["test", "dpy-test/never-built:0", "--profile", "tiny"])
        .status(2)
        .stderr_contains("unknown profile \"tiny\": choose one of slim, standard")
        .one_line_error()
        .run();
}

#[test]
fn an_image_dpy_did_not_make_is_refused() {
    if !common::engine("conformance::foreign") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    Test::new()
        .args(["test", &source])
        .status(2)
        .stderr_contains("not a dpy runtime image")
        .one_line_error()
        .run();
}

#[test]
fn check_lines_are_parsed_strictly() {
    let results = dpy::conformance::parse_results(
        "{\"check\": \"a\", \"ok\": true, \"detail\": \"x\"}\nnoise\n{\"check\": \"b\", \"ok\": false}\n{\"ok\": true}\n",
    );
    let names: Vec<(&str, bool)> = results.iter().map(|r| (r.name.as_str(), r.ok)).collect();
    assert_eq!(names, [("a", true), ("b", false)]);
}
