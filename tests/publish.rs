//! `dpy build --push`: per-platform images and one index per tag in a real registry
//! (Debian's docker-registry with htpasswd auth on 127.0.0.1:5000, from scripts/testbed),
//! then `dpy readme` over the metadata the push recorded.

use crate::common;
use crate::common::{docker_ok, Test};
use std::process::Command;

const REGISTRY: &str = "127.0.0.1:5000";
const AUTH: &str = "dpy:dpy-test-password";

/// The test bed's registry answers (401 without credentials) or the test fails/skips.
fn registry(test: &str) -> bool {
    if !common::engine(test) {
        return false;
    }
    let answer = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{REGISTRY}/v2/"),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert_eq!(
        answer, "401",
        "{test}: no registry with auth on {REGISTRY}; run scripts/testbed"
    );
    true
}

/// `dpy build 3.11-bookworm` for amd64 and arm64 from the test bed, pushed to
/// `repository`, its records in `metadata`; the epoch is the source's own.
fn push_two_platforms(repository: &str, metadata: &std::path::Path, key: &std::path::Path) -> Test {
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(["--push", "--progress", "quiet"])
        .args(["--source-image", "dpy-testbed/python:{target}-{arch}"])
        .args(["--repository", repository, "--registry-auth", AUTH])
        .args(["--metadata-file", metadata.to_str().unwrap()])
        .args(["--sign-key", key.to_str().unwrap()])
        .env("DPY_KEY_PASSPHRASE", common::PASSPHRASE)
        .env_remove("SOURCE_DATE_EPOCH")
}

#[test]
fn two_platforms_pushed_under_one_index_pull_and_pass() {
    if !registry("publish::e2e") {
        return;
    }
    let repository = common::Repository::at(REGISTRY, "e2e");
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("meta.json");
    let (key, public) = common::keygen(dir.path(), "signer");
    push_two_platforms(&repository, &metadata, &key)
        .stdout_contains(&format!("{repository}:3.11-bookworm@sha256:"))
        .run();

    // The index, through the registry API.
    let raw = common::registry_manifest(&format!("{repository}:3.11-bookworm"), AUTH);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let arches: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"], "{index}");

    // Pull each platform by the plain tag and run the conformance suite on it.
    let client = tempfile::tempdir().unwrap();
    let image = format!("{repository}:3.11-bookworm");
    for arch in ["arm64", "amd64"] {
        logged_in_docker(
            client.path(),
            &["pull", "--platform", &format!("linux/{arch}"), &image],
        );
        let found = docker_ok(&["image", "inspect", "-f", "{{.Architecture}}", &image]);
        assert_eq!(found.trim(), arch);
        Test::new()
            .args([
                "test",
                &image,
                "--source-image",
                &format!("dpy-testbed/python:3.11-bookworm-{arch}"),
            ])
            .stdout_contains(" 0 failed")
            .run();
    }

    // The metadata has the index digest; the README lists it with its registry size.
    let meta = std::fs::read_to_string(&metadata).unwrap();
    let records: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let runtime = records["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reference"] == image.as_str())
        .expect("a record of the pushed index");
    let digest = runtime["digest"].as_str().unwrap();
    assert_eq!(runtime["manifests"].as_array().unwrap().len(), 2);
    // Its provenance: an in-toto statement whose subjects are the pushed index and the
    // manifest of each platform, as the registry holds them.
    let provenance: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(runtime["provenance"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(provenance["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        provenance["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    let subjects: Vec<String> = provenance["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()))
        .collect();
    let mut pushed = vec![digest.to_string()];
    pushed.extend(
        runtime["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string()),
    );
    assert_eq!(subjects, pushed);
    let index_digest = common::sha256_digest(&raw);
    assert_eq!(subjects[0], index_digest, "the index the registry serves");
    let parameters = &provenance["predicate"]["buildDefinition"]["externalParameters"];
    assert_eq!(parameters["target"], "3.11-bookworm");
    assert_eq!(
        parameters["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert!(
        !meta.contains("dpy-test-password"),
        "credentials never reach metadata"
    );
    let readme = Test::new()
        .args(["readme", "--metadata", metadata.to_str().unwrap()])
        .run();
    let text = String::from_utf8(readme.stdout).unwrap();
    let size = dpy::readme::mib(runtime["size"].as_u64().unwrap());
    assert!(
        text.contains(&format!("``{image}@{digest}`` ({size})")),
        "{text}"
    );

    // Each platform's SBOM, in SPDX and in CycloneDX, attached to its manifest as an OCI
    // referrer. This registry has no referrers API, so they are listed in the referrers
    // tag schema's index, `sha256-<hex>` of the manifest, which skopeo reads as any other.
    let sbom = std::fs::read(dir.path().join(runtime["sbom"].as_str().unwrap())).unwrap();
    let manifests: Vec<String> = runtime["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    let mut referrers = Vec::new();
    let mut cyclonedx = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        let raw = common::registry_manifest(&common::digest_tag(&repository, manifest), AUTH);
        let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let mut types: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["artifactType"].as_str().unwrap())
            .collect();
        types.sort();
        // Four Sigstore bundles besides (signed with the key: see below).
        let bundle = "application/vnd.dev.sigstore.bundle.v0.3+json";
        assert_eq!(
            types,
            [
                "application/spdx+json",
                "application/vnd.cyclonedx+json",
                bundle,
                bundle,
                bundle,
                bundle
            ]
        );
        for entry in index["manifests"].as_array().unwrap() {
            let by_digest = format!("{repository}@{}", entry["digest"].as_str().unwrap());
            let referrer: serde_json::Value =
                serde_json::from_slice(&common::registry_manifest(&by_digest, AUTH)).unwrap();
            assert_eq!(referrer["subject"]["digest"], manifest.as_str());
            assert_eq!(referrer["artifactType"], entry["artifactType"]);
            // The index lists each manifest's annotations, as the referrers API would.
            assert_eq!(referrer["annotations"], entry["annotations"]);
            assert_eq!(referrer["layers"][0]["mediaType"], entry["artifactType"]);
            // The first platform's SPDX document is the one written beside the metadata.
            if i == 0 && entry["artifactType"] == "application/spdx+json" {
                assert_eq!(
                    referrer["layers"][0]["digest"],
                    common::sha256_digest(&sbom)
                );
            }
            if i == 0 && entry["artifactType"] == "application/vnd.cyclonedx+json" {
                let layer = referrer["layers"][0]["digest"].as_str().unwrap();
                cyclonedx = common::registry_blob(&repository, layer, AUTH);
            }
        }
        referrers.push(raw);
    }
    // Trivy, asked for the registry's SBOM of the amd64 image instead of scanning it,
    // finds it among the referrers and lists every package the SBOM names by purl, under
    // the distribution the SBOM names.
    let amd64 = format!("{repository}@{}", manifests[0]);
    let (listed, log) = common::trivy(
        "image",
        &[
            "--sbom-sources",
            "oci",
            "--image-src",
            "remote",
            "--insecure",
            &amd64,
        ],
        Some(AUTH),
    );
    assert!(log.contains("Found SBOM in the OCI referrers"), "{log}");
    assert!(log.contains(r#"family="debian""#), "{log}");
    let spdx: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let in_sbom: std::collections::BTreeSet<String> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["referenceType"] == "purl")
        .filter_map(|r| r["referenceLocator"].as_str().map(common::bare_purl))
        .collect();
    assert_eq!(common::listed_by_trivy(&listed), in_sbom);
    // Which of the referrers Trivy takes is its choice: each form, read by itself, lists
    // the same (the SPDX document beside the metadata, the CycloneDX one as attached).
    let spdx_file = dir.path().join(runtime["sbom"].as_str().unwrap());
    let (from_spdx, log) = common::trivy("sbom", &[spdx_file.to_str().unwrap()], None);
    assert!(log.contains(r#"family="debian""#), "{log}");
    assert_eq!(common::listed_by_trivy(&from_spdx), in_sbom);
    let cdx_file = dir.path().join("sbom.cdx.json");
    std::fs::write(&cdx_file, &cyclonedx).unwrap();
    let (from_cdx, log) = common::trivy("sbom", &[cdx_file.to_str().unwrap()], None);
    assert_eq!(common::listed_by_trivy(&from_cdx), in_sbom, "{log}");

    // Built again from nothing (--no-cache) and pushed again: the same runtime manifests
    // and the same index, byte for byte in the registry.
    let again = dir.path().join("again.json");
    let sig_tag = |digest: &str| format!("{}.sig", common::digest_tag(&repository, digest));
    let signatures_before = common::registry_manifest(&sig_tag(digest), AUTH);
    push_two_platforms(&repository, &again, &key)
        .args(["--no-cache"])
        .run();
    let records_again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    let record = |records: &serde_json::Value, reference: &str| {
        records["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reference"] == reference)
            .cloned()
            .expect("a record of the pushed index")
    };
    let rebuilt = record(&records_again, &image);
    assert_eq!(rebuilt["digest"], runtime["digest"]);
    assert_eq!(rebuilt["manifests"], runtime["manifests"]);
    // The -buildroot image too: its index and both manifests.
    let buildroot = format!("{image}-buildroot");
    let (first, second) = (
        record(&records, &buildroot),
        record(&records_again, &buildroot),
    );
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(first["manifests"], second["manifests"]);
    let raw_again = common::registry_manifest(&format!("{repository}:3.11-bookworm"), AUTH);
    assert_eq!(raw_again, raw, "the index in the registry");
    // Asked again with --if-changed: the registry's label says nothing moved, so nothing
    // is built or pushed, and the index stays.
    push_two_platforms(&repository, &dir.path().join("third.json"), &key)
        .args(["--if-changed"])
        .stdout(&format!("{image} unchanged ({digest})\n"))
        .run();
    assert!(!dir.path().join("third.json").exists());
    // The referrers too: the same SBOMs and signature bundles, attached once. The one
    // new referrer of each manifest is the provenance of the --no-cache build, which
    // says so (a new statement, appended as the .att tag appends it).
    let entries = |raw: &[u8]| -> Vec<serde_json::Value> {
        let index: serde_json::Value = serde_json::from_slice(raw).unwrap();
        index["manifests"].as_array().unwrap().clone()
    };
    for (manifest, before) in manifests.iter().zip(&referrers) {
        let (before, after) = (
            entries(before),
            entries(&common::registry_manifest(
                &common::digest_tag(&repository, manifest),
                AUTH,
            )),
        );
        assert!(
            before.iter().all(|e| after.contains(e)),
            "{before:?} {after:?}"
        );
        let added: Vec<_> = after.iter().filter(|e| !before.contains(e)).collect();
        assert_eq!(added.len(), 1, "{added:?}");
        assert_eq!(
            added[0]["artifactType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
    }
    // Signing the same digest again adds nothing: the signature manifest is unchanged.
    assert_eq!(
        common::registry_manifest(&sig_tag(digest), AUTH),
        signatures_before
    );
    // Pushed once more exactly as the first time (from BuildKit's cache): every tag the
    // push writes, the referrers' indexes among them, stays byte for byte.
    let tags: Vec<String> = [digest.to_string()]
        .iter()
        .chain(&manifests)
        .flat_map(|d| {
            [
                common::digest_tag(&repository, d),
                sig_tag(d),
                sig_tag(d).replace(".sig", ".att"),
            ]
        })
        .chain([
            image.clone(),
            format!("{image}-amd64"),
            format!("{image}-arm64"),
        ])
        .collect();
    let read_all = || -> Vec<Vec<u8>> {
        tags.iter()
            .map(|t| common::registry_manifest(t, AUTH))
            .collect()
    };
    let before_repush = read_all();
    let elsewhere = tempfile::tempdir().unwrap();
    push_two_platforms(&repository, &elsewhere.path().join("fourth.json"), &key).run();
    assert!(
        read_all() == before_repush,
        "a tag moved on an unchanged push"
    );

    // The signatures, checked by skopeo against a policy that requires the key: the
    // index and each platform's tag pass; another key, an unsigned image, and the tag
    // moved to another digest are refused.
    common::skopeo_verify(REGISTRY, AUTH, &image, &public).unwrap();
    for arch in ["amd64", "arm64"] {
        common::skopeo_verify(REGISTRY, AUTH, &format!("{image}-{arch}"), &public).unwrap();
    }
    let (_, other) = common::keygen(dir.path(), "other");
    let refused = common::skopeo_verify(REGISTRY, AUTH, &image, &other).unwrap_err();
    assert!(
        refused.contains("signature verification failed"),
        "{refused}"
    );
    let unsigned = format!("{repository}:unsigned");
    copy_to_registry("dpy-testbed/python:3.13-alpine3.20-amd64", &unsigned);
    let refused = common::skopeo_verify(REGISTRY, AUTH, &unsigned, &public).unwrap_err();
    assert!(refused.contains("no signature exists"), "{refused}");
    copy_to_registry("dpy-testbed/python:3.13-alpine3.20-amd64", &image);
    let refused = common::skopeo_verify(REGISTRY, AUTH, &image, &public).unwrap_err();
    assert!(refused.contains("no signature exists"), "{refused}");

    // The Sigstore bundles, as cosign v3 signs and attests, attached as referrers:
    // sigstore-js verifies each with the public key. Each platform's manifest has its
    // signature, its provenance and its SBOM in both forms; the index, its signature and
    // provenance. Another key, or another digest than the bundle's subject, is refused,
    // and an unsigned image has none.
    for (subject, expected) in [
        (manifests[0].as_str(), 4),
        (manifests[1].as_str(), 4),
        (digest, 2),
    ] {
        let bundles = common::attached_bundles(&repository, subject, AUTH);
        let mut types: Vec<String> = Vec::new();
        for (predicate_type, bundle) in &bundles {
            let verified = common::sigstore_js_verify(bundle, &public, subject).unwrap();
            assert_eq!(&verified, predicate_type);
            types.push(verified);
        }
        // Two provenance statements: one per push, as above.
        types.sort();
        types.dedup();
        let mut want = vec![
            "https://sigstore.dev/cosign/sign/v1",
            "https://slsa.dev/provenance/v1",
            "https://cyclonedx.org/bom",
            "https://spdx.dev/Document",
        ];
        want.truncate(expected);
        want.sort();
        assert_eq!(types, want, "the bundles of {subject}");
        // The signature's statement names its one subject (the provenance names them all).
        let (_, bundle) = bundles
            .iter()
            .find(|(t, _)| t == "https://sigstore.dev/cosign/sign/v1")
            .unwrap();
        let refused = common::sigstore_js_verify(bundle, &other, subject).unwrap_err();
        assert!(refused.starts_with("refused: "), "{refused}");
        let elsewhere = if subject == digest {
            manifests[0].as_str()
        } else {
            digest
        };
        let refused = common::sigstore_js_verify(bundle, &public, elsewhere).unwrap_err();
        assert_eq!(
            refused,
            format!("refused: the statement is not about {elsewhere}")
        );
    }
    let unsigned_digest = common::sha256_digest(&common::registry_manifest(&unsigned, AUTH));
    // cosign v3 itself, offline with the public key (a key-signed bundle has no log
    // entry): the index and each platform's manifest verify, with a signature statement
    // about that digest among what it verified (cosign v3 lists every bundle it finds);
    // each platform's SPDX and CycloneDX attestations verify and carry the SBOM about
    // that manifest. Another key, and an unsigned image, are refused.
    let cosign = |args: &[&str]| common::cosign(REGISTRY, AUTH, args);
    let public_key = public.to_str().unwrap();
    let other_key = other.to_str().unwrap();
    // `verify` or `verify-attestation` with a key: offline, as README says.
    let verify = |command: &str, key: &str, extra: &[&str], at: &str| {
        let offline = ["--key", key, "--insecure-ignore-tlog=true"];
        cosign(&[&[command][..], &offline, extra, &[at]].concat())
    };
    for subject in manifests.iter().map(String::as_str).chain([digest]) {
        let at = format!("{repository}@{subject}");
        let verified = verify("verify", public_key, &[], &at)
            .unwrap_or_else(|e| panic!("cosign verify {at}: {e}"));
        let verified: serde_json::Value = serde_json::from_str(verified.trim()).unwrap();
        assert!(
            verified.as_array().unwrap().iter().any(|claim| {
                claim["critical"]["type"] == "https://sigstore.dev/cosign/sign/v1"
                    && claim["critical"]["image"]["docker-manifest-digest"] == subject
            }),
            "{verified}"
        );
        let refused = verify("verify", other_key, &[], &at).unwrap_err();
        assert!(refused.contains("failed to verify signature"), "{refused}");
    }
    for (subject, kind, predicate, format_field) in [
        (
            &manifests[0],
            "spdxjson",
            "https://spdx.dev/Document",
            "spdxVersion",
        ),
        (
            &manifests[1],
            "cyclonedx",
            "https://cyclonedx.org/bom",
            "bomFormat",
        ),
    ] {
        let at = format!("{repository}@{subject}");
        // `cosign download attestation` finds the bundle by its predicate type.
        let downloaded = cosign(&[
            "download",
            "attestation",
            "--predicate-type",
            predicate,
            &at,
        ])
        .unwrap_or_else(|e| panic!("cosign download attestation {at}: {e}"));
        let downloaded: Vec<serde_json::Value> = downloaded
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(downloaded.len(), 1, "{downloaded:?}");
        assert_eq!(
            downloaded[0]["mediaType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        let envelope = verify("verify-attestation", public_key, &["--type", kind], &at)
            .unwrap_or_else(|e| panic!("cosign verify-attestation --type {kind} {at}: {e}"));
        let envelope: serde_json::Value =
            serde_json::from_str(envelope.lines().next().unwrap()).unwrap();
        use base64::Engine as _;
        let statement: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(envelope["payload"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(statement["subject"][0]["digest"]["sha256"], subject[7..]);
        assert!(
            !statement["predicate"][format_field].is_null(),
            "{statement}"
        );
    }
    let refused = verify(
        "verify",
        public_key,
        &[],
        &format!("{repository}@{unsigned_digest}"),
    )
    .unwrap_err();
    assert!(refused.contains("no signatures found"), "{refused}");
    let no_referrers = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds", AUTH])
        .arg(format!(
            "docker://{}",
            common::digest_tag(&repository, &unsigned_digest)
        ))
        .output()
        .unwrap();
    assert!(
        !no_referrers.status.success(),
        "an unsigned image has no referrers"
    );

    // The provenance attestations of the index, one per push (cosign appends, too):
    // each signed (openssl checks it with the public key); the first is the first push's
    // statement, the last is the one now written beside the metadata, byte for byte.
    let attested = common::verified_attestations(AUTH, &repository, digest, &public);
    assert_eq!(attested.len(), 2, "{attested:?}");
    assert!(
        attested[0].contains("\"no_cache\": false"),
        "{}",
        attested[0]
    );
    assert_eq!(
        attested[1],
        std::fs::read_to_string(dir.path().join(runtime["provenance"].as_str().unwrap())).unwrap()
    );
    assert_eq!(
        runtime["signed_with"].as_str().unwrap(),
        common::sha256_digest(&public_der(&public))
    );
}

/// Copies an engine image to `reference` in the registry, unsigned.
fn copy_to_registry(image: &str, reference: &str) {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            AUTH,
        ])
        .arg(format!("docker-daemon:{image}"))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The DER of a `PUBLIC KEY` PEM, as openssl reads it.
fn public_der(pem: &std::path::Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn a_wrong_password_is_named_and_not_retried() {
    if !registry("publish::wrong-password") {
        return;
    }
    // That it is asked once, not retried, is counted against the fake registry in
    // publish's own tests (refused_credentials_are_asked_once_...).
    let out = Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--push",
            "--registry-auth",
            "dpy:wrong",
        ])
        .args(["--repository", &format!("{REGISTRY}/dpy-test/wrong")])
        .args(["--source-image", &common::debian_source()])
        .status(17)
        .stderr_contains(&format!(
            "registry {REGISTRY} refused the credentials of dpy"
        ))
        .one_line_error()
        .run();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("wrong"),
        "the password is never printed"
    );
}

#[test]
fn a_registry_that_does_not_answer_is_tried_a_bounded_number_of_times() {
    if !common::engine("publish::not-listening") {
        return;
    }
    Test::new()
        .args(["build", "3.11-bookworm", "--push", "--registry-auth", AUTH])
        .args(["--repository", "127.0.0.1:5999/dpy-test/none"])
        .args(["--source-image", &common::debian_source()])
        .status(17)
        .stderr_contains("registry 127.0.0.1:5999: no answer after 3 attempts")
        .one_line_error()
        .run();
    assert!(
        common::images_of("127.0.0.1:5999/dpy-test/none").is_empty(),
        "refused before building"
    );
}

#[test]
fn push_needs_a_repository_with_a_registry_host() {
    for repository in [None, Some("dpy/python")] {
        let mut test = Test::new()
            .args(["build", "3.11-bookworm", "--push"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
        if let Some(r) = repository {
            test = test.args(["--repository", r]);
        }
        test.status(2)
            .stderr_contains("--push needs a repository with a registry host")
            .one_line_error()
            .run();
    }
}

#[test]
fn an_interrupted_push_leaves_no_tag_and_a_rerun_succeeds() {
    if !registry("publish::interrupted") {
        return;
    }
    let repository = common::Repository::at(REGISTRY, "interrupted");
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "build",
            "3.11-bookworm",
            "--platform",
            "linux/amd64,linux/arm64",
            "--push",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(
            ["--source-image", "dpy-testbed/python:3.11-bookworm-{arch}"].map(String::from),
        );
        args.extend(["--repository", &repository, "--registry-auth", AUTH].map(String::from));
        args.extend(["--progress", "quiet", "--metadata-file", "/dev/null"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut child = Command::new(common::BIN)
        .args(args(&[]))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed as a crash would kill it, once the first platform's image is in the registry.
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap() == 0 {
            panic!("dpy ended before pushing anything");
        }
        if line.starts_with("pushed ") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let index = |tag: &str| {
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", "--creds", AUTH])
            .arg(format!("docker://{repository}:{tag}"))
            .output()
            .unwrap()
    };
    assert!(
        !index("3.11-bookworm").status.success(),
        "no index was written for the plain tag"
    );
    Test::new().args(args(&[])).run();
    let raw = index("3.11-bookworm");
    assert!(raw.status.success());
    assert!(String::from_utf8_lossy(&raw.stdout).contains("arm64"));
}

#[test]
fn credentials_come_from_the_docker_config_when_not_given() {
    if !registry("publish::docker-config") {
        return;
    }
    // What `docker login` writes: an auths entry with base64("user:password").
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(
            "{{\"auths\": {{\"{REGISTRY}\": {{\"auth\": \"{}\"}}}}}}",
            "ZHB5OmRweS10ZXN0LXBhc3N3b3Jk" // dpy:dpy-test-password
        ),
    )
    .unwrap();
    let repository = common::Repository::at(REGISTRY, "config");
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--platform",
            "linux/amd64",
            "--push",
        ])
        .args([
            "--source-image",
            &common::debian_source(),
            "--repository",
            &repository,
        ])
        .args(["--progress", "quiet", "--metadata-file", "/dev/null"])
        .env("DOCKER_CONFIG", config.path().to_str().unwrap())
        .env_remove("DPY_REGISTRY_AUTH")
        .stdout_contains(&format!("{repository}:3.11-bookworm@sha256:"))
        .run();
    // And without any credentials the registry refuses, naming itself.
    let empty = tempfile::tempdir().unwrap();
    Test::new()
        .args([
            "build",
            "3.11-bookworm",
            "--push",
            "--repository",
            &repository,
        ])
        .args(["--source-image", &common::debian_source()])
        .env("DOCKER_CONFIG", empty.path().to_str().unwrap())
        .env("HOME", empty.path().to_str().unwrap())
        .env_remove("DPY_REGISTRY_AUTH")
        .status(17)
        .stderr_contains(&format!("registry {REGISTRY} refused anonymous access"))
        .one_line_error()
        .run();
}

/// `dpy build ... --registry-user dpy --registry-password-stdin` with `password` on stdin.
fn with_password_on_stdin(password: &str, source: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(common::BIN)
        .args([
            "build",
            "3.11-bookworm",
            "--push",
            "--platform",
            "linux/amd64",
        ])
        .args(["--registry-user", "dpy", "--registry-password-stdin"])
        .args(["--repository", &format!("{REGISTRY}/dpy-test/stdin")])
        .args(["--source-image", source, "--metadata-file", "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_password_on_stdin_is_used_and_never_shown() {
    if !registry("publish::password-stdin") {
        return;
    }
    // The registry takes it: the build goes past the registry check and stops at the
    // source, which does not exist (11), instead of at the credentials (17).
    let out = with_password_on_stdin("dpy-test-password", "dpy-test/does-not-exist:0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{stderr}");
    // A wrong one is refused before anything is built, and never printed.
    let out = with_password_on_stdin("not-the-password", &common::debian_source());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(17), "{stderr}");
    assert!(
        stderr.contains("refused the credentials of dpy"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

/// `docker ARGS` as a client logged in to the test bed's registry, with its own config
/// (`config`), so the user's docker config is never touched.
fn logged_in_docker(config: &std::path::Path, args: &[&str]) -> String {
    let run = |args: &[&str]| {
        let out = Command::new("/usr/bin/docker")
            .env("DOCKER_CONFIG", config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    if !config.join("config.json").exists() {
        run(&["login", REGISTRY, "-u", "dpy", "-p", "dpy-test-password"]);
    }
    run(args)
}

/// The record of `reference` in the metadata file at `path`.
fn record_in(path: &std::path::Path, reference: &str) -> serde_json::Value {
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    records["images"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["reference"] == reference)
        .cloned()
        .unwrap_or_else(|| panic!("no record of {reference} in {records}"))
}

#[test]
fn zstd_layers_are_reproducible_smaller_and_pulled_by_the_engine() {
    if !registry("publish::zstd") {
        return;
    }
    let source = common::alpine_source("3.13");
    common::require_image(&source);
    let (first, second) = (
        common::Repository::at(REGISTRY, "zstd"),
        common::Repository::at(REGISTRY, "zstd-again"),
    );
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("meta.json");
    let push = |repository: &str, cache: &std::path::Path, extra: &[&str]| {
        common::build_amd64("3.13-alpine3.20", &source, repository, extra)
            .args(["--variants", "runtime", "--push", "--registry-auth", AUTH])
            .args(["--metadata-file", metadata.to_str().unwrap()])
            // No blob remembered from an earlier push: each push compresses afresh.
            .env("XDG_CACHE_HOME", cache.to_str().unwrap())
    };
    let (cache, other_cache) = (dir.path().join("cache"), dir.path().join("other-cache"));
    push(&first, &cache, &["--compression", "zstd"]).run();
    push(&second, &other_cache, &["--compression", "zstd"]).run();

    // Reproducible: compressed twice, apart, the same index and manifest.
    let index = |repository: &str| {
        common::registry_manifest(&format!("{repository}:3.13-alpine3.20"), AUTH)
    };
    assert_eq!(index(&first), index(&second));
    let index: serde_json::Value = serde_json::from_slice(&index(&first)).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&common::registry_manifest(
        &format!("{first}:3.13-alpine3.20-amd64"),
        AUTH,
    ))
    .unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for layer in layers {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{manifest}"
        );
    }
    // The config is the engine's own: its digest is the built image's id.
    let built = docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        &format!("{first}:3.13-alpine3.20-amd64"),
    ]);
    assert_eq!(manifest["config"]["digest"], built.trim());

    // skopeo checks each blob's digest and decompresses every layer to its diff_id (it
    // names the decompressed file by its new digest, so the content is hashed here).
    let copied = dir.path().join("copied");
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--dest-decompress"])
        .args(["--src-tls-verify=false", "--src-creds", AUTH])
        .arg(format!("docker://{second}:3.13-alpine3.20"))
        .arg(format!("dir:{}", copied.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let hex = |digest: &str| digest.trim_start_matches("sha256:").to_string();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copied.join(hex(config_digest))).unwrap()).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), layers.len());
    for diff_id in diff_ids {
        let plain = std::fs::read(copied.join(hex(diff_id.as_str().unwrap()))).unwrap();
        let digest = common::sha256_digest(&plain);
        assert_eq!(digest, diff_id.as_str().unwrap());
    }

    // The engine pulls it (Docker 20.10 reads zstd), as the built image, and runs it.
    let client = tempfile::tempdir().unwrap();
    let pulled = format!("{second}:3.13-alpine3.20");
    logged_in_docker(client.path(), &["pull", &pulled]);
    let id = logged_in_docker(
        client.path(),
        &["image", "inspect", "-f", "{{.Id}}", &pulled],
    );
    assert_eq!(id.trim(), built.trim());
    let ran = logged_in_docker(
        client.path(),
        &[
            "run",
            "--rm",
            &pulled,
            "-c",
            "import ssl, zoneinfo, json; print('ran')",
        ],
    );
    assert_eq!(ran, "ran\n");

    // Asked again: unchanged. Asked for gzip: pushed again, through the engine, and the
    // zstd pull is the smaller one.
    let zstd_record = record_in(&metadata, &pulled.replace(&*second, &first));
    assert_eq!(zstd_record["compression"], "zstd");
    let zstd_size = zstd_record["size"].as_u64().unwrap();
    let readme = Test::new()
        .args(["readme", "--metadata", metadata.to_str().unwrap()])
        .run();
    let listed = format!(
        "``{pulled}@{}`` ({}, zstd)",
        zstd_record["digest"].as_str().unwrap(),
        dpy::readme::mib(zstd_size)
    );
    assert!(
        String::from_utf8_lossy(&readme.stdout).contains(&listed),
        "{listed} in {}",
        String::from_utf8_lossy(&readme.stdout)
    );
    push(&first, &cache, &["--compression", "zstd", "--if-changed"])
        .stdout_contains(&format!("{first}:3.13-alpine3.20 unchanged (sha256:"))
        .run();
    push(&first, &cache, &["--if-changed"])
        .stderr_contains("rebuilding: the registry's layers are zstd, --compression gzip asks")
        .run();
    let gzip_manifest = common::registry_manifest(&format!("{first}:3.13-alpine3.20-amd64"), AUTH);
    assert!(
        String::from_utf8_lossy(&gzip_manifest).contains("diff.tar.gzip"),
        "{}",
        String::from_utf8_lossy(&gzip_manifest)
    );
    let gzip_record = record_in(&metadata, &format!("{first}:3.13-alpine3.20"));
    assert_eq!(gzip_record["compression"], "gzip");
    let gzip_size = gzip_record["size"].as_u64().unwrap();
    assert!(
        zstd_size < gzip_size,
        "zstd {zstd_size} bytes, gzip {gzip_size}"
    );
}

#[test]
fn compression_without_push_is_refused_before_anything_is_built() {
    Test::new()
        .args(["build", "3.11-bookworm", "--compression", "zstd"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .status(2)
        .stderr(
            "dpy: error: --compression zstd sets how pushed layers are compressed; add --push (and a registry repository)\n",
        )
        .run();
    Test::new()
        .args(["build", "3.11-bookworm", "--push", "--compression", "lz4"])
        .status(2)
        .stderr_contains("invalid value 'lz4' for '--compression <ALGORITHM>'")
        .run();
}

/// A proxy in front of the test bed's registry that answers a GET of one manifest path
/// with what the registry holds at another: what another push to the tag, or a registry
/// that changes what it is given, would make dpy read back after the engine's push.
/// Every request it passes is recorded (`METHOD path`, as asked), so a test counts them.
struct Swapping {
    address: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Swapping {
    fn start(path: &str, instead: &str) -> Swapping {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, path, instead) = (requests.clone(), path.to_string(), instead.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (log, path, instead) = (log.clone(), path.clone(), instead.clone());
                std::thread::spawn(move || pass(client, &log, &path, &instead));
            }
        });
        Swapping { address, requests }
    }

    fn count(&self, method: &str, path: &str) -> usize {
        let requests = self.requests.lock().unwrap();
        let asked = format!("{method} {path}");
        requests.iter().filter(|r| r.starts_with(&asked)).count()
    }
}

/// One request through the proxy: its head, rewritten to close the connection after the
/// answer (so the next request comes on a new one and has its head read here too), then
/// the bytes both ways until the registry closes.
fn pass(
    mut client: std::net::TcpStream,
    log: &std::sync::Mutex<Vec<String>>,
    path: &str,
    instead: &str,
) {
    use std::io::{Read, Write};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).ok() != Some(1) {
            return;
        }
        // The engine tries TLS first: answered as a plain-HTTP registry answers it, so
        // that it falls back to HTTP.
        if head.is_empty() && byte[0] == 0x16 {
            let _ = client.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().splitn(3, ' ');
    let (method, target, version) = (
        request.next().unwrap_or_default(),
        request.next().unwrap_or_default(),
        request.next().unwrap_or_default(),
    );
    log.lock().unwrap().push(format!("{method} {target}"));
    let target = if method == "GET" && target == path {
        instead
    } else {
        target
    };
    let mut out = format!("{method} {target} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let Ok(mut upstream) = std::net::TcpStream::connect(REGISTRY) else {
        return;
    };
    if upstream.write_all(out.as_bytes()).is_err() {
        return;
    }
    let (mut from_client, mut to_upstream) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let body = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_upstream);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = upstream.shutdown(std::net::Shutdown::Both);
    let _ = body.join();
}

#[test]
fn a_registry_that_serves_another_image_under_the_pushed_tag_gets_no_signature() {
    if !registry("publish::served-otherwise") {
        return;
    }
    let source = common::debian_source();
    common::require_image(&source);
    let name = format!("dpy-test/otherwise{}", std::process::id());
    // What the tag will hold instead: another image, pushed to the same repository.
    copy_to_registry(&source, &format!("{REGISTRY}/{name}:other"));
    let other = common::registry_manifest(&format!("{REGISTRY}/{name}:other"), AUTH);
    let proxy = Swapping::start(
        &format!("/v2/{name}/manifests/3.11-bookworm-amd64"),
        &format!("/v2/{name}/manifests/other"),
    );
    let repository = common::Repository::at(&proxy.address, "otherwise");
    assert_eq!(&*repository, format!("{}/{name}", proxy.address));
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "signer");
    let out = common::build_amd64("3.11-bookworm", &source, &repository, &[])
        .args(["--variants", "runtime", "--push", "--registry-auth", AUTH])
        .args(["--sign-key", key.to_str().unwrap()])
        .env("DPY_KEY_PASSPHRASE", common::PASSPHRASE)
        .status(17)
        .one_line_error()
        .run();
    // The engine's push reached the registry; what dpy read back was the other image.
    let pushed = common::registry_manifest(&format!("{REGISTRY}/{name}:3.11-bookworm-amd64"), AUTH);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "dpy: error: registry {} serves 3.11-bookworm-amd64 as {}, not as the {} the engine pushed",
            proxy.address,
            common::sha256_digest(&other),
            common::sha256_digest(&pushed)
        )),
        "{stderr}"
    );
    // Read back once; nothing written after: no index, no signature, no attestation.
    let manifests = format!("/v2/{name}/manifests/");
    assert_eq!(
        proxy.count("GET", &format!("{manifests}3.11-bookworm-amd64")),
        1
    );
    assert_eq!(
        proxy.count("PUT", &manifests),
        1,
        "the engine's manifest only"
    );
    let listed = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false", "--creds", AUTH])
        .arg(format!("docker://{REGISTRY}/{name}"))
        .output()
        .unwrap();
    let tags: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mut tags: Vec<&str> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["3.11-bookworm-amd64", "other"]);
}
