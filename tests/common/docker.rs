//! Debian's docker CLI, to look at what dpy made and to make defective sources.

use std::path::Path;
use std::process::Output;

/// Runs Debian's docker CLI (the tests use it only to inspect what dpy made).
pub fn docker(args: &[&str]) -> Output {
    let cli = if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    std::process::Command::new(cli)
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Image ids with this repository, for "nothing left behind" assertions.
pub fn images_of(repository: &str) -> Vec<String> {
    docker_ok(&[
        "image",
        "ls",
        "-q",
        "--filter",
        &format!("reference={repository}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// The diff ids of `image`'s layers, bottom first.
pub fn layers(image: &str) -> Vec<String> {
    docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{range .RootFS.Layers}}{{.}} {{end}}",
        image,
    ])
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

pub fn containers() -> Vec<String> {
    docker_ok(&["ps", "-aq"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `base` plus one `RUN`, built with Debian's docker CLI and tagged `dpy-test/<name>:1`:
/// source images with a defect made on purpose.
pub fn derived_image(name: &str, base: &str, run: &str) -> String {
    image_from_dockerfile(name, &format!("FROM {base}\nRUN {run}\n"))
}

/// An image built from `dockerfile` with Debian's docker CLI, tagged `dpy-test/<name>:1`.
pub fn image_from_dockerfile(name: &str, dockerfile: &str) -> String {
    image_tagged(&format!("dpy-test/{name}:1"), dockerfile)
}

/// An image built from `dockerfile` with Debian's docker CLI, tagged `tag`.
pub fn image_tagged(tag: &str, dockerfile: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let tag = tag.to_string();
    let out = std::process::Command::new("/usr/bin/docker")
        .args(["build", "-q", "-t", &tag, dir.path().to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

/// The runtime image's interpreter run with `args` (`docker run --rm IMAGE ARGS...`).
pub fn python_in(image: &str, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm", "--network", "none", image];
    all.extend_from_slice(args);
    docker(&all)
}

/// What syft (Anchore's binary, scanning the local engine's image offline, its SBOM
/// cataloger on) lists in `image`: its JSON artifacts.
pub fn syft(image: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("syft")
        .args(["scan", &format!("docker:{image}")])
        .args(["--select-catalogers", "+sbom-cataloger", "-o", "json", "-q"])
        .output()
        .expect("syft runs (scripts/testbed installs it)");
    assert!(
        out.status.success(),
        "syft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["artifacts"].as_array().unwrap().clone()
}

/// What Trivy (Aqua's binary, offline: listing packages needs no vulnerability database)
/// lists for `command` (`image` or `sbom`) and `args` (what it reads and how), as
/// CycloneDX JSON, and what it logged. `auth` is `user:password` for a registry.
pub fn trivy(subcommand: &str, args: &[&str], auth: Option<&str>) -> (serde_json::Value, String) {
    let cache = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new("trivy");
    command
        .args([subcommand, "--format", "cyclonedx", "--cache-dir"])
        .arg(cache.path())
        .args(args);
    if let Some((user, password)) = auth.and_then(|a| a.split_once(':')) {
        command
            .env("TRIVY_USERNAME", user)
            .env("TRIVY_PASSWORD", password);
    }
    let out = command
        .output()
        .expect("trivy runs (scripts/testbed installs it)");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "trivy {args:?}: {log}");
    (serde_json::from_slice(&out.stdout).unwrap(), log)
}

/// Checks the SBOM `dpy sbom` prints for `image` against what syft reads from the image,
/// and returns the SBOM's packages as (name, version, purl).
pub fn assert_sbom_seen_by_syft(image: &str) -> Vec<(String, String, String)> {
    let out = super::Test::new().args(["sbom", image]).run();
    let sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    // The distribution's entry and the image's own name no package (neither has a purl).
    let listed: Vec<(String, String, String)> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            !matches!(
                p["primaryPackagePurpose"].as_str(),
                Some("OPERATING-SYSTEM" | "CONTAINER")
            )
        })
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap().to_string(),
                p["externalRefs"][0]["referenceLocator"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let artifacts = syft(image);
    for (name, version, purl) in &listed {
        let seen = artifacts.iter().find(|a| {
            a["foundBy"] == "sbom-cataloger"
                && a["name"] == name.as_str()
                && a["version"] == version.as_str()
        });
        let seen = seen.unwrap_or_else(|| panic!("syft does not list {name} {version}"));
        // syft writes the purl back in its own escaping (`1:1.2` for `1%3A1.2`).
        assert_eq!(
            unescape(seen["purl"].as_str().unwrap()),
            unescape(purl),
            "{seen}"
        );
    }
    listed
}

/// What Trivy lists in `image` (scanning the local engine's image, offline) against
/// `listed`, the SBOM's packages (assert_sbom_seen_by_syft): every package the SBOM names
/// by an OS purl, and nothing else. CPython by `pkg:generic` is not among them: Trivy
/// drops every purl type it has no ecosystem for (README.rst, "Scanners").
pub fn assert_trivy_lists_the_sbom(image: &str, listed: &[(String, String, String)]) {
    let (found, log) = trivy("image", &["--image-src", "docker", image], None);
    let by_sbom: std::collections::BTreeSet<String> = listed
        .iter()
        .map(|(_, _, purl)| purl.as_str())
        .filter(|purl| !purl.starts_with("pkg:generic/"))
        .map(bare_purl)
        .collect();
    assert_eq!(listed_by_trivy(&found), by_sbom, "trivy on {image}: {log}");
}

/// The purls of the components of Trivy's CycloneDX report, in bare_purl's spelling.
pub fn listed_by_trivy(report: &serde_json::Value) -> std::collections::BTreeSet<String> {
    report["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["purl"].as_str())
        .map(|purl| {
            // Trivy moves a Debian epoch out of the version into a qualifier.
            let epoch = purl
                .split_once('?')
                .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("epoch=")));
            match (epoch, bare_purl(purl).split_once('@')) {
                (Some(epoch), Some((name, version))) => format!("{name}@{epoch}:{version}"),
                _ => bare_purl(purl),
            }
        })
        .collect()
}

/// A purl without its qualifiers and with its escapes decoded, for comparing dpy's
/// spelling of one with another tool's.
pub fn bare_purl(purl: &str) -> String {
    unescape(purl.split('?').next().unwrap_or(purl))
}

/// A purl with its percent escapes decoded, for comparing two spellings of one purl.
fn unescape(purl: &str) -> String {
    let bytes = purl.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], purl.get(i + 1..i + 3)) {
            (b'%', Some(hex)) if u8::from_str_radix(hex, 16).is_ok() => {
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `sha256:<hex>` of `bytes`: the digest a registry names a manifest or a blob by.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", <sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// `repository:sha256-<hex>`, the tag that cosign's legacy signatures (`.sig`, `.att`
/// after it) and the referrers tag schema's index hang off `digest`.
pub fn digest_tag(repository: &str, digest: &str) -> String {
    format!("{repository}:{}", digest.replacen(':', "-", 1))
}

/// The raw manifest (or index) the test bed's registry serves for `reference`, read with
/// skopeo and `auth` (USER:PASSWORD).
pub fn registry_manifest(reference: &str, auth: &str) -> Vec<u8> {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds", auth])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs; run scripts/testbed");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One entry of one layer of a saved image: its path, mode bits and kind.
pub struct LayerEntry {
    pub path: String,
    pub mode: u32,
    pub kind: tar::EntryType,
}

/// The blobs of `image` as `docker save` writes them: (name in the archive, bytes).
fn saved_blobs(image: &str) -> Vec<(String, Vec<u8>)> {
    let saved = docker(&["save", image]);
    assert!(
        saved.status.success(),
        "docker save {image}: {}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let mut archive = tar::Archive::new(saved.stdout.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            (name, data)
        })
        .collect()
}

/// A tar by its header's magic (layers are saved uncompressed; their names vary with the
/// engine's save format).
fn is_tar(data: &[u8]) -> bool {
    data.len() >= 512 && &data[257..262] == b"ustar"
}

/// Every entry of every layer of `image`.
pub fn layer_entries(image: &str) -> Vec<LayerEntry> {
    let mut entries = Vec::new();
    for (_, blob) in saved_blobs(image).into_iter().filter(|(_, b)| is_tar(b)) {
        let mut layer = tar::Archive::new(blob.as_slice());
        for entry in layer.entries().unwrap() {
            let entry = entry.unwrap();
            entries.push(LayerEntry {
                path: entry.path().unwrap().display().to_string(),
                mode: entry.header().mode().unwrap(),
                kind: entry.header().entry_type(),
            });
        }
    }
    entries
}

/// Where `needle` shows in `image`: its config and history, every file of every layer,
/// and every member of a zip archive among those files (the stdlib zip deflates most of
/// its members), as `blob:path` or `blob:path!member`. Empty when nowhere.
pub fn found_in_image(image: &str, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, blob) in saved_blobs(image) {
        scan(&name, &blob, needle, &mut found);
    }
    let history = docker_ok(&["history", "--no-trunc", image]);
    let inspect = docker_ok(&["image", "inspect", image]);
    for (what, text) in [("history", history), ("inspect", inspect)] {
        if holds(text.as_bytes(), needle) {
            found.push(what.to_string());
        }
    }
    found
}

fn scan(name: &str, data: &[u8], needle: &[u8], found: &mut Vec<String>) {
    if let Some(files) = tar_files(data) {
        for (path, body) in files {
            scan(&format!("{name}:{path}"), &body, needle, found);
        }
        return;
    }
    if holds(data, needle) {
        found.push(name.to_string());
    }
    if data.starts_with(b"PK\x03\x04") {
        if let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(data)) {
            for i in 0..zip.len() {
                let mut member = zip.by_index(i).unwrap();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut member, &mut body).unwrap();
                if holds(&body, needle) {
                    let member = member.name().map(|n| n.into_owned());
                    found.push(format!(
                        "{name}!{}",
                        member.unwrap_or_else(|_| i.to_string())
                    ));
                }
            }
        }
    }
}

/// The files of `data` when it is a whole tar archive (a layer, or a tar in one).
fn tar_files(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if !is_tar(data) {
        return None;
    }
    let mut files = Vec::new();
    for entry in tar::Archive::new(data).entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.display().to_string();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut body).ok()?;
        files.push((path, body));
    }
    Some(files)
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs the image built from examples/cli (HTTPie as its entrypoint) offline, and asserts
/// it prints the request it would send.
pub fn assert_cli_example_answers(image: &str) {
    let out = docker(&[
        "run",
        "--rm",
        image,
        "--offline",
        "--print=H",
        "GET",
        "example.org/dpy",
    ]);
    let request = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && request.contains("GET /dpy HTTP/1.1")
            && request.contains("Host: example.org"),
        "{image}: {request}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What every -debug image must show: `sh -c 'ls / && ps && id'` as the runtime's user
/// (where the tools have ps), `dpy test` with the debug expectations, and the runtime's
/// layers first, then one of its own.
pub fn assert_debug_image(debug: &str, runtime: &str, source: Option<&str>, tools: &str) {
    let with_ps = tools.contains("busybox");
    let script = if with_ps {
        "ls / && ps && id"
    } else {
        "ls / && id"
    };
    let out = docker_ok(&run_args(debug, "sh", &["-c", script]));
    assert!(out.contains("\netc\n"), "ls / printed: {out}");
    assert!(
        out.contains("uid=65532(nonroot) gid=65532(nonroot)"),
        "{out}"
    );
    if with_ps {
        assert!(out.contains(&format!("nonroot  sh -c {script}")), "{out}");
    }
    let mut test = super::Test::new().args(["test", debug]);
    if let Some(source) = source {
        test = test.args(["--source-image", source]);
    }
    test.stdout_contains("ok   debug-tools: sh runs ls, cat, env, id")
        .stdout_contains(tools)
        .stdout_contains("ok   structure: ")
        .stdout_contains(" 0 failed")
        .run();
    let layers = |image: &str| -> Vec<String> {
        docker_ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image])
            .trim()
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let (runtime_layers, debug_layers) = (layers(runtime), layers(debug));
    assert_eq!(debug_layers.len(), runtime_layers.len() + 1);
    assert_eq!(debug_layers[..runtime_layers.len()], runtime_layers[..]);
}

/// `docker run` arguments that run `entrypoint` with `args` in `image`, offline and
/// removed after: for the docker CLI of whichever engine holds the image.
pub fn run_args<'a>(image: &'a str, entrypoint: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        entrypoint,
        image,
    ];
    all.extend_from_slice(args);
    all
}

/// A shell command that lists what is under the places apt writes to besides the
/// packages it installs (its caches, lists and logs), by name, size and kind, without
/// times: a -buildroot image must show what its source shows.
pub const APT_PLACES: &str =
    "ls -lRn --time-style=+ /var/cache/apt /var/lib/apt/lists /var/log 2>&1";
