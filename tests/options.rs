//! Options that can be checked without the engine are refused before it is asked: each
//! with one line and the README's exit code, with no engine reachable at all (so a
//! check that ran after the first engine call would fail with 10 instead), and with an
//! existing metadata file left byte for byte as it was.

use crate::common::Test;

const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";

/// `dpy build 3.11-bookworm` with `extra`, against an engine that is not there.
fn build(extra: &[&str]) -> Test {
    Test::new()
        .args(["build", "3.11-bookworm", "--progress", "plain"])
        .args(extra)
        .env("DOCKER_HOST", NO_ENGINE)
        .one_line_error()
}

/// A metadata file as an earlier build left it.
fn existing_metadata(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("dpy-metadata.json");
    let text = b"{\n  \"schema\": 1,\n  \"images\": []\n}\n".to_vec();
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

#[test]
fn a_metadata_file_naming_a_directory_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    build(&["--metadata-file", dir.path().to_str().unwrap()])
        .status(20)
        .stderr_contains("is a directory, not a file")
        .run();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_metadata_file_in_a_missing_directory_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/m.json");
    build(&["--metadata-file", path.to_str().unwrap()])
        .status(20)
        .stderr_contains("does not exist; create it")
        .run();
    assert!(!dir.path().join("no").exists());
}

#[test]
fn a_metadata_file_that_is_not_metadata_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.json");
    std::fs::write(&path, "[1, 2]\n").unwrap();
    build(&["--metadata-file", path.to_str().unwrap()])
        .status(20)
        .stderr_contains("not a dpy metadata file")
        .run();
    assert_eq!(std::fs::read(&path).unwrap(), b"[1, 2]\n");
}

#[test]
fn repository_names_the_engine_cannot_tag_are_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let (metadata, before) = existing_metadata(dir.path());
    for (name, why) in [
        ("Bar/Bad", "it has upper-case letters"),
        ("bar/b ad", "it holds a space"),
        ("me/py:latest", "it holds a tag"),
    ] {
        build(&["--repository", name])
            .args(["--metadata-file", metadata.to_str().unwrap()])
            .status(2)
            .stderr_contains(&format!(
                "--repository {name:?} is not a repository name: {why}"
            ))
            .stderr_contains("a name takes lowercase letters, digits")
            .run();
        assert_eq!(std::fs::read(&metadata).unwrap(), before);
    }
    // `dpy render` takes the same option and the same rule.
    Test::new()
        .args(["render", "3.11-bookworm", "--repository", "Bar/Bad"])
        .status(2)
        .one_line_error()
        .stderr_contains("upper-case")
        .run();
}

#[test]
fn the_repository_error_is_exactly_one_line() {
    build(&["--repository", "Bar/Bad"])
        .status(2)
        .stderr("dpy: error: --repository \"Bar/Bad\" is not a repository name: it has upper-case letters; a name takes lowercase letters, digits and the separators . _ __ - inside /-separated parts, optionally after a registry host (e.g. dpy/python, ghcr.io/me/python, 127.0.0.1:5000/dpy/python)\n")
        .run();
}

#[test]
fn credentials_without_a_user_are_refused_before_building() {
    for auth in ["nocolon", ":password"] {
        build(&["--registry-auth", auth])
            .status(2)
            .stderr_contains("--registry-auth takes USER:PASSWORD")
            .run();
    }
}

#[test]
fn a_ca_bundle_that_is_missing_or_not_pem_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    build(&["--ca-bundle", bundle.to_str().unwrap()])
        .status(2)
        .stderr_contains("cannot read it")
        .run();
    std::fs::write(&bundle, "not a certificate\n").unwrap();
    build(&["--ca-bundle", bundle.to_str().unwrap()])
        .status(2)
        .stderr_contains("not a PEM bundle of certificates")
        .run();
}

/// mitmproxy's mitmproxy-ca.pem is its CA's key followed by its certificate: given as
/// the bundle, the key would be bind-mounted into steps that run the source image's code.
#[test]
fn a_ca_bundle_holding_a_private_key_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("mitmproxy-ca.pem");
    std::fs::write(
        &bundle,
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n\
         -----BEGIN CERTIFICATE-----\nMIIDoTCCAomgAwIBAgIGDTg0\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (metadata, before) = existing_metadata(dir.path());
    build(&["--ca-bundle", bundle.to_str().unwrap()])
        .args(["--metadata-file", metadata.to_str().unwrap()])
        .status(2)
        .stderr(&format!(
            "dpy: error: --ca-bundle {}: the file holds a private key; give a file of CA certificates only (e.g. mitmproxy-ca-cert.pem, not mitmproxy-ca.pem)\n",
            bundle.display()
        ))
        .run();
    assert_eq!(std::fs::read(&metadata).unwrap(), before);
}

#[test]
fn a_repeated_platform_is_merged_before_the_engine_is_asked() {
    // Merged while parsing: the one platform left is then checked against the engine,
    // which is not there (10), rather than refused as a bad list (2). The build on the
    // real engine with a repeated platform is in tests/build.rs.
    build(&["--platform", "linux/amd64,linux/amd64"])
        .status(10)
        .stderr_contains("is the Docker engine running?")
        .run();
}

#[test]
fn a_password_from_stdin_needs_its_user_and_no_second_password() {
    for (args, says) in [
        (
            &["--registry-password-stdin"][..],
            "--registry-password-stdin needs --registry-user USER",
        ),
        (
            &["--registry-user", "dpy"][..],
            "--registry-user goes with --registry-password-stdin",
        ),
        (
            &[
                "--registry-password-stdin",
                "--registry-user",
                "dpy",
                "--registry-auth",
                "a:b",
            ][..],
            "--registry-auth and --registry-password-stdin both give a password",
        ),
        (
            &["--registry-password-stdin", "--registry-user", "dpy"][..],
            "--registry-password-stdin read no password",
        ),
    ] {
        build(args).status(2).stderr_contains(says).run();
    }
}

/// A push hands the engine the registry credentials: an engine on another machine over
/// plain TCP would receive them in the clear. Refused before any engine is asked.
#[test]
fn a_push_with_credentials_refuses_a_plain_tcp_engine_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (metadata, before) = existing_metadata(dir.path());
    build(&[
        "--push",
        "--repository",
        "registry.example:5000/me/python",
        "--registry-auth",
        "me:secret",
        "--engine",
        "linux/amd64=tcp://build-host.example:2375",
    ])
    .args(["--metadata-file", metadata.to_str().unwrap()])
    .env_remove("DOCKER_CERT_PATH")
    .status(2)
    .stderr(
        "dpy: error: --push to registry.example:5000 would hand the registry credentials to the engine at tcp://build-host.example:2375 over plain TCP; reach it with TLS (DOCKER_CERT_PATH), ssh:// or a unix socket\n",
    )
    .run();
    assert_eq!(std::fs::read(&metadata).unwrap(), before);
}

/// The export's bounds come from the environment; a value that is no number is refused
/// before the engine is asked, not ignored.
#[test]
fn an_export_bound_that_is_no_number_is_refused_before_building() {
    for name in ["DPY_MAX_EXPORT_BYTES", "DPY_MAX_EXPORT_FILES"] {
        build(&[])
            .env(name, "4G")
            .status(2)
            .stderr(&format!(
                "dpy: error: {name}=\"4G\" is not a whole number; give a count (bytes or entries) or unset it\n"
            ))
            .run();
    }
}
