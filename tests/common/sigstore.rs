//! Signatures checked by tools dpy did not write: skopeo with a `sigstoreSigned`
//! policy, openssl for the DSSE signature of an attestation, sigstore-js and cosign v3
//! for the Sigstore bundles.
//!
//! Bookworm's own skopeo 1.9 is built with sigstore disabled (a Debian-local change),
//! so scripts/testbed installs trixie's skopeo 1.18 as `skopeo-sigstore`, and sid's
//! cosign (bookworm has none, trixie's is 2.5).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Test;

/// The passphrase of every test key: given through the environment, as CI would.
pub const PASSPHRASE: &str = "test-passphrase";

/// `dpy keygen` under `dir`: returns (PREFIX.key, PREFIX.pub).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    Test::new()
        .args(["keygen", "--output-prefix", prefix.to_str().unwrap()])
        .env("DPY_KEY_PASSPHRASE", PASSPHRASE)
        .stdout_contains("wrote ")
        .run();
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// Copies `reference` out of the registry with a policy that requires a sigstore
/// signature by `public_key` for everything under `registry`; Err with skopeo's
/// message when the policy refuses it.
pub fn skopeo_verify(
    registry: &str,
    auth: &str,
    reference: &str,
    public_key: &Path,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {registry: [{
                "type": "sigstoreSigned",
                "keyPath": public_key,
                "signedIdentity": {"type": "matchRepository"},
            }]}},
        })
        .to_string(),
    )
    .unwrap();
    let registries_d = dir.path().join("registries.d");
    std::fs::create_dir(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("test.yaml"),
        format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    let out = Command::new("skopeo-sigstore")
        .arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&registries_d)
        .args(["copy", "--src-tls-verify=false", "--src-creds", auth])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", dir.path().join("image").display()))
        .output()
        .expect("skopeo-sigstore runs; run scripts/testbed");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Sigstore's cosign with `args` (a subcommand and its options; the registry is plain
/// HTTP), logged in to `registry` as `auth` (`user:password`) through a Docker config of
/// its own: Ok with its standard output, or Err with its standard error when it refuses.
/// With a key and `--insecure-ignore-tlog=true` it asks nothing but the registry (strace
/// shows no other connection: no TUF root, no log).
pub fn cosign(registry: &str, auth: &str, args: &[&str]) -> Result<String, String> {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode(auth);
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::json!({"auths": {registry: {"auth": token}}}).to_string(),
    )
    .unwrap();
    let out = Command::new("cosign")
        .args(args)
        .arg("--allow-http-registry")
        .env("DOCKER_CONFIG", dir.path())
        .output()
        .expect("cosign runs; run scripts/testbed");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The attestations pushed for `digest`, oldest first: their in-toto statements, after
/// openssl checked each envelope's signature with `public_key`.
pub fn verified_attestations(
    auth: &str,
    repository: &str,
    digest: &str,
    public_key: &Path,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let attestations = format!("{}.att", super::digest_tag(repository, digest));
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            auth,
        ])
        .arg(format!("docker://{attestations}"))
        .arg(format!("dir:{}", dir.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let mut statements = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        statements.push(verified_statement(dir.path(), layer, public_key));
    }
    statements
}

/// One attestation layer (in `dir`, as skopeo copied it), its signature checked.
fn verified_statement(dir: &Path, layer: &serde_json::Value, public_key: &Path) -> String {
    assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
    assert_eq!(
        layer["annotations"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    let hex = layer["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(hex)).unwrap()).unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let decode = |text: &serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_str().unwrap())
            .unwrap()
    };
    let statement = decode(&envelope["payload"]);
    // DSSE's pre-authentication encoding, spelled out here from the specification.
    let mut pae = format!(
        "DSSEv1 28 application/vnd.in-toto+json {} ",
        statement.len()
    )
    .into_bytes();
    pae.extend_from_slice(&statement);
    std::fs::write(dir.join("pae"), &pae).unwrap();
    std::fs::write(
        dir.join("sig.der"),
        decode(&envelope["signatures"][0]["sig"]),
    )
    .unwrap();
    let check = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public_key)
        .arg("-signature")
        .arg(dir.join("sig.der"))
        .arg(dir.join("pae"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "openssl: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    String::from_utf8(statement).unwrap()
}

/// A blob of `repository` (`host/name`) in the test bed's registry, read with curl.
pub fn registry_blob(repository: &str, digest: &str, auth: &str) -> Vec<u8> {
    let (host, name) = repository.split_once('/').unwrap();
    let out = Command::new("curl")
        .args(["-sSf", "-u", auth])
        .arg(format!("http://{host}/v2/{name}/blobs/{digest}"))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The Sigstore bundles attached to `digest` (through the referrers tag schema's index),
/// each as (predicate type of its referrer, the bundle's bytes).
pub fn attached_bundles(repository: &str, digest: &str, auth: &str) -> Vec<(String, Vec<u8>)> {
    let tag = super::digest_tag(repository, digest);
    let index: serde_json::Value =
        serde_json::from_slice(&super::registry_manifest(&tag, auth)).unwrap();
    let mut bundles = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        if entry["artifactType"] != "application/vnd.dev.sigstore.bundle.v0.3+json" {
            continue;
        }
        let by_digest = format!("{repository}@{}", entry["digest"].as_str().unwrap());
        let referrer: serde_json::Value =
            serde_json::from_slice(&super::registry_manifest(&by_digest, auth)).unwrap();
        assert_eq!(referrer["subject"]["digest"], digest);
        assert_eq!(
            referrer["annotations"]["dev.sigstore.bundle.content"],
            "dsse-envelope"
        );
        let layer = referrer["layers"][0]["digest"].as_str().unwrap();
        bundles.push((
            referrer["annotations"]["dev.sigstore.bundle.predicateType"]
                .as_str()
                .unwrap()
                .to_string(),
            registry_blob(repository, layer, auth),
        ));
    }
    bundles
}

/// sigstore-js's verdict on `bundle` for `digest` with `public_key`
/// (tests/data/verify_bundle.js): the statement's predicate type, or why it refused.
pub fn sigstore_js_verify(
    bundle: &[u8],
    public_key: &Path,
    digest: &str,
) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, bundle).unwrap();
    let modules = std::env::var("DPY_TEST_SIGSTORE_JS")
        .unwrap_or_else(|_| "/var/cache/dpy-testbed/sigstore-js/node_modules".into());
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/verify_bundle.js"
        ))
        .arg(&path)
        .arg(public_key)
        .arg(digest)
        .env("NODE_PATH", modules)
        .output()
        .expect("node runs (scripts/testbed installs sigstore-js)");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}
