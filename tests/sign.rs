//! Signing keys: `dpy keygen`, and `--sign-key` refused before anything is built when
//! the key cannot sign. Each refusal is one line with exit 18 (2 for a misuse of the
//! option), with no engine reachable at all: a check that ran after the first engine
//! call would fail with 10 instead, and nothing can have been built or pushed.
//! The signatures themselves are checked by skopeo in `publish`.

use crate::common::{self, Test};

const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";

/// `dpy build … --push --sign-key KEY` against an engine that is not there.
fn signed_push(key: &std::path::Path) -> Test {
    Test::new()
        .args(["build", "3.11-bookworm", "--progress", "plain", "--push"])
        .args(["--repository", "127.0.0.1:5000/dpy-test/signed"])
        .args(["--registry-auth", "dpy:dpy-test-password"])
        .args(["--metadata-file", "/dev/null", "--sign-key"])
        .args([key.to_str().unwrap()])
        .env("DOCKER_HOST", NO_ENGINE)
        .one_line_error()
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keygen(dir.path(), "k");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert!(!text.contains(common::PASSPHRASE));
    // openssl reads the public key as a P-256 key.
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(&public)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("NIST CURVE: P-256"));
}

#[test]
fn keygen_never_overwrites_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "k");
    let before = std::fs::read(&key).unwrap();
    Test::new()
        .args(["keygen", "--output-prefix"])
        .args([dir.path().join("k").to_str().unwrap()])
        .env("DPY_KEY_PASSPHRASE", "another")
        .status(20)
        .stderr_contains("exists already; move it away or give another prefix")
        .one_line_error()
        .run();
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn keygen_needs_a_passphrase_and_never_takes_it_as_an_argument() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("k");
    Test::new()
        .args(["keygen", "--output-prefix"])
        .args([prefix.to_str().unwrap()])
        .env_remove("DPY_KEY_PASSPHRASE")
        .status(18)
        .stderr_contains("no passphrase for the signing key: set DPY_KEY_PASSPHRASE")
        .one_line_error()
        .run();
    Test::new()
        .args(["keygen", "--output-prefix"])
        .args([prefix.to_str().unwrap()])
        .env("DPY_KEY_PASSPHRASE", "")
        .status(18)
        .stderr_contains("an empty passphrase would leave the key unprotected")
        .one_line_error()
        .run();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    Test::new()
        .args(["keygen", "--passphrase", "x"])
        .status(2)
        .stderr_contains("unexpected argument '--passphrase'")
        .run();
}

#[test]
fn a_sign_key_without_push_is_refused() {
    Test::new()
        .args(["build", "3.11-bookworm", "--sign-key", "k.key"])
        .env("DOCKER_HOST", NO_ENGINE)
        .status(2)
        .stderr_contains("--sign-key signs what is pushed; add --push")
        .one_line_error()
        .run();
}

#[test]
fn a_missing_key_file_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    signed_push(&dir.path().join("absent.key"))
        .env("DPY_KEY_PASSPHRASE", common::PASSPHRASE)
        .status(18)
        .stderr_contains("cannot read the signing key")
        .run();
}

#[test]
fn a_file_that_is_not_a_private_key_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = common::keygen(dir.path(), "k");
    signed_push(&public)
        .env("DPY_KEY_PASSPHRASE", common::PASSPHRASE)
        .status(18)
        .stderr_contains("is not an encrypted cosign private key: it holds a PUBLIC KEY block")
        .run();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    signed_push(&text)
        .env("DPY_KEY_PASSPHRASE", common::PASSPHRASE)
        .status(18)
        .stderr_contains("is not an encrypted cosign private key: it is not a PEM file")
        .run();
}

#[test]
fn a_wrong_or_missing_passphrase_is_refused_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "k");
    signed_push(&key)
        .env("DPY_KEY_PASSPHRASE", "not the passphrase")
        .status(18)
        .stderr_contains("the passphrase does not open the signing key")
        .run();
    signed_push(&key)
        .env_remove("DPY_KEY_PASSPHRASE")
        .status(18)
        .stderr_contains("no passphrase for the signing key")
        .run();
}
