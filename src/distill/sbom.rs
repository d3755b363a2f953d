//! The runtime image's SBOM: SPDX 2.3 JSON, written into the root before it is archived.
//!
//! Scanners that read package databases only (Trivy) cannot see a CPython built into
//! /usr/local, so every runtime image says what it carries in a file both syft's SBOM
//! cataloger (`**/*.spdx.json`) and Trivy (`*.spdx.json`) read:
//! - CPython as `pkg:generic/python@X.Y.Z` with the CPE upstream advisories use, unless a
//!   carried OS package owns the interpreter (Debian's python3.X): then it is listed once,
//!   through that package's record, which advisories for the distribution match;
//! - every OS package whose record the image carries, with its distribution's purl.
//!
//! Deterministic: the time is the build's epoch, the namespace a digest of the content.
//! Every package it lists owns files in the image (the records are the carried ones).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::tree::Tree;

/// Where the SBOM sits in the runtime image.
pub const PATH: &str = "/usr/share/dpy/python.spdx.json";

/// The SPDXID of the package that stands for the image itself.
pub const IMAGE: &str = "SPDXRef-Image";

/// The media type of an SPDX JSON document (the artifact type of its referrer).
pub const MEDIA_TYPE: &str = "application/spdx+json";

const DPKG_STATUS: &str = "var/lib/dpkg/status";
const DPKG_INFO: &str = "var/lib/dpkg/info";
const APK_INSTALLED: &str = "lib/apk/db/installed";

/// One OS package record the root carries.
#[derive(Debug, Clone, PartialEq)]
struct OsPackage {
    name: String,
    version: String,
    arch: String,
    license: Option<String>,
    /// Paths it owns (from dpkg's .list files or apk's F:/R: lines).
    files: Vec<String>,
}

/// Writes the SBOM of `root` (the distilled runtime root) at [`PATH`] and returns it.
pub fn write(root: &Tree, layout: &Layout, created: &str) -> Result<String> {
    let packages = os_packages(root)?;
    let text = document(layout, &packages, created);
    write_into(root, &text)?;
    Ok(text)
}

/// Writes `text` at [`PATH`] in `root`, replacing whatever is there.
pub fn write_into(root: &Tree, text: &str) -> Result<()> {
    let path = crate::tree::inside(PATH);
    if let Some(dir) = path.parent() {
        root.create_dir_all(dir)?;
    }
    root.write(&path, 0o644, text.as_bytes())
}

/// The package records `root` carries. A database that is there but cannot be read
/// is an error: an SBOM that silently lists no OS packages would hide them from every
/// scanner.
fn os_packages(root: &Tree) -> Result<Vec<OsPackage>> {
    let read = |rel: &str| -> Result<Option<String>> {
        let Some(found) = root.resolve(&format!("/{rel}")) else {
            return Ok(None);
        };
        let bytes = root.read(&found).map_err(|e| {
            Error::Distill(format!("the package database /{rel} cannot be read: {e}"))
        })?;
        String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::Distill(format!(
                "the package database /{rel} is not UTF-8 text; the SBOM would miss its packages"
            ))
        })
    };
    // A package's file list is optional (older records have none): only its absence is
    // quiet.
    let list = |rel: &str| read(rel).ok().flatten();
    let records = if let Some(status) = read(DPKG_STATUS)? {
        dpkg_records(&status)
            .into_iter()
            .map(|mut record| {
                let arch = record.arch.clone().unwrap_or_default();
                let list = list(&format!("{DPKG_INFO}/{}.list", record.name))
                    .or_else(|| list(&format!("{DPKG_INFO}/{}:{arch}.list", record.name)))
                    .unwrap_or_default();
                record.files = list.lines().map(str::to_string).collect();
                record
            })
            .collect()
    } else if let Some(installed) = read(APK_INSTALLED)? {
        apk_records(&installed)
    } else {
        Vec::new()
    };
    // An SBOM names a package by its version: a record without one lists nothing.
    Ok(records
        .into_iter()
        .filter_map(|r| {
            Some(OsPackage {
                version: r.version?,
                name: r.name,
                arch: r.arch.unwrap_or_default(),
                license: r.license,
                files: r.files,
            })
        })
        .collect())
}

/// One record of a package database. How a database is read into records is one rule
/// with dpy_gather/pkgdb.py's, and tests/data/package_db_cases.json is its table.
#[derive(Debug, Default, serde::Serialize)]
struct Record {
    name: String,
    version: Option<String>,
    arch: Option<String>,
    license: Option<String>,
    files: Vec<String>,
}

/// dpkg's status file: each stanza that names its Package. A line that starts with a
/// space or a tab continues the field above and is no field of its own.
fn dpkg_records(text: &str) -> Vec<Record> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
            for line in stanza.split('\n') {
                if line.starts_with([' ', '\t']) {
                    continue;
                }
                if let Some((key, value)) = line.split_once(':') {
                    fields.insert(key.trim(), value.trim());
                }
            }
            let field = |key: &str| fields.get(key).map(|v| v.to_string());
            Some(Record {
                name: field("Package").filter(|name| !name.is_empty())?,
                version: field("Version"),
                arch: field("Architecture"),
                ..Record::default()
            })
        })
        .collect()
}

/// apk's installed database: `P:` name, `V:` version, `A:` arch, `L:` license, `F:` a
/// directory and the `R:` files in it.
fn apk_records(text: &str) -> Vec<Record> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let mut record = Record::default();
            let mut directory = "";
            for line in stanza.split('\n') {
                let (key, value) = line.split_once(':').unwrap_or((line, ""));
                match key {
                    "P" => record.name = value.to_string(),
                    "V" => record.version = Some(value.to_string()),
                    "A" => record.arch = Some(value.to_string()),
                    "L" => record.license = Some(value.to_string()),
                    "F" => directory = value,
                    "R" => record.files.push(
                        [directory, value]
                            .iter()
                            .filter(|part| !part.is_empty())
                            .fold(String::new(), |path, part| path + "/" + part),
                    ),
                    _ => {}
                }
            }
            (!record.name.is_empty()).then_some(record)
        })
        .collect()
}

/// A purl of an OS package: `pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12`.
fn purl(layout: &Layout, package: &OsPackage) -> String {
    let (kind, namespace) = match layout.os.family.as_str() {
        "alpine" => ("apk", "alpine"),
        _ => ("deb", layout.os.id.as_deref().unwrap_or("debian")),
    };
    let distro = format!(
        "{}-{}",
        layout.os.id.as_deref().unwrap_or(namespace),
        layout.os.version_id.as_deref().unwrap_or("unknown")
    );
    // Qualifiers in key order, an empty one left out.
    let arch = if package.arch.is_empty() {
        String::new()
    } else {
        format!("arch={}&", package.arch)
    };
    format!(
        "pkg:{kind}/{namespace}/{}@{}?{arch}distro={distro}",
        package.name,
        encode(&package.version)
    )
}

/// Percent-encodes what a purl version may not hold as is (`+`, `:`, ...).
fn encode(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' | '~' => c.to_string(),
            c => format!("%{:02X}", c as u32),
        })
        .collect()
}

fn spdx_id(kind: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{kind}-{clean}")
}

fn document(layout: &Layout, packages: &[OsPackage], created: &str) -> String {
    let version = &layout.python.version;
    let interpreter = &layout.python.executable;
    let python_owned = packages
        .iter()
        .any(|p| p.files.iter().any(|f| f == interpreter));
    let mut entries: Vec<Value> = Vec::new();
    if !python_owned {
        entries.push(json!({
            "SPDXID": "SPDXRef-Package-python",
            "name": "python",
            "versionInfo": version,
            "supplier": "Organization: Python Software Foundation",
            "downloadLocation": format!("https://www.python.org/ftp/python/{version}/"),
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "PSF-2.0",
            "copyrightText": "NOASSERTION",
            "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": format!("pkg:generic/python@{version}")},
                {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                 "referenceLocator": format!("cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*")}
            ]
        }));
    }
    for package in packages {
        entries.push(json!({
            "SPDXID": spdx_id("Package", &package.name),
            "name": package.name,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": package.license.clone().unwrap_or_else(|| "NOASSERTION".into()),
            "copyrightText": "NOASSERTION",
            "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": purl(layout, package)}
            ]
        }));
    }
    // The distribution itself, as scanners read it from an SBOM (Trivy by this SPDXID and
    // purpose): without it, one that scans the SBOM alone (`trivy image --sbom-sources
    // oci`) knows no OS, and matches none of the packages above against its advisories.
    if let (Some(id), Some(version_id)) = (&layout.os.id, &layout.os.version_id) {
        entries.push(json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": id,
            "versionInfo": version_id,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION"
        }));
    }
    // The namespace names the content, so the same content gives the same document.
    let digest = Sha256::digest(serde_json::to_vec(&entries).expect("entries serialize"));
    let name = format!("python-{version}-{}", layout.os_name());
    // The document describes one thing, the image, which contains the packages: a scanner
    // takes what a document describes as its subject (Trivy took the first of many
    // described packages for the image and left it out of its list).
    let mut relationships = vec![json!({"spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES", "relatedSpdxElement": IMAGE})];
    relationships.extend(entries.iter().map(|p| {
        json!({"spdxElementId": IMAGE, "relationshipType": "CONTAINS",
               "relatedSpdxElement": p["SPDXID"]})
    }));
    entries.push(json!({
        "SPDXID": IMAGE,
        "name": name,
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION"
    }));
    let document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://spdx.dpy.invalid/python/{version}/{digest:x}"),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: dpy-{}", env!("CARGO_PKG_VERSION"))]
        },
        "packages": entries,
        "relationships": relationships
    });
    serde_json::to_string_pretty(&document).expect("the SBOM serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(family: &str, id: &str, version_id: &str, executable: &str) -> Layout {
        let mut value: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/layout-official-alpine.json"
        ))
        .unwrap();
        value["os"]["family"] = json!(family);
        value["os"]["id"] = json!(id);
        value["os"]["version_id"] = json!(version_id);
        value["python"]["executable"] = json!(executable);
        value["python"]["version"] = json!("3.12.4");
        serde_json::from_value(value).unwrap()
    }

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn packages(sbom: &str) -> Vec<(String, String, Vec<String>)> {
        let doc: Value = serde_json::from_str(sbom).unwrap();
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["SPDXID"] != IMAGE)
            .map(|p| {
                let refs = p["externalRefs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r["referenceLocator"].as_str().unwrap().to_string())
                    .collect();
                (
                    p["name"].as_str().unwrap().into(),
                    p["versionInfo"].as_str().unwrap().into(),
                    refs,
                )
            })
            .collect()
    }

    #[test]
    fn cpython_in_usr_local_is_named_for_advisories_and_packages_by_purl() {
        let root = root_with(&[
            (DPKG_STATUS, "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u7\nDescription: x\n continued: line\n\nPackage: zlib1g\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n"),
            ("var/lib/dpkg/info/libc6:amd64.list", "/lib/x86_64-linux-gnu/libc.so.6\n"),
            ("var/lib/dpkg/info/zlib1g:amd64.list", "/lib/x86_64-linux-gnu/libz.so.1\n"),
        ]);
        let layout = layout("debian", "debian", "12", "/usr/local/bin/python3.12");
        let sbom = write(
            &Tree::open(root.path()).unwrap(),
            &layout,
            "2024-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(
            packages(&sbom),
            [
                (
                    "python".into(),
                    "3.12.4".into(),
                    vec![
                        "pkg:generic/python@3.12.4".to_string(),
                        "cpe:2.3:a:python:python:3.12.4:*:*:*:*:*:*:*".into()
                    ]
                ),
                (
                    "libc6".into(),
                    "2.36-9+deb12u7".into(),
                    vec![
                        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12"
                            .to_string()
                    ]
                ),
                (
                    "zlib1g".into(),
                    "1:1.2.13.dfsg-1".into(),
                    vec![
                        "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12"
                            .to_string()
                    ]
                ),
                // The distribution, which scanners read as the image's OS.
                ("debian".into(), "12".into(), vec![]),
            ]
        );
        let doc: Value = serde_json::from_str(&sbom).unwrap();
        assert_eq!(doc["packages"][3]["SPDXID"], "SPDXRef-OperatingSystem");
        assert_eq!(
            doc["packages"][3]["primaryPackagePurpose"],
            "OPERATING-SYSTEM"
        );
        // The document describes the image alone, and the image contains the rest.
        assert_eq!(doc["packages"][4]["SPDXID"], IMAGE);
        assert_eq!(doc["packages"][4]["primaryPackagePurpose"], "CONTAINER");
        let relationships = doc["relationships"].as_array().unwrap();
        assert_eq!(
            relationships[0],
            json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                   "relatedSpdxElement": IMAGE})
        );
        assert_eq!(relationships.len(), 5);
        assert!(relationships[1..]
            .iter()
            .all(|r| r["spdxElementId"] == IMAGE && r["relationshipType"] == "CONTAINS"));
        assert_eq!(
            std::fs::read_to_string(root.path().join(PATH.trim_start_matches('/'))).unwrap(),
            sbom
        );
        // The same content at the same epoch: the same bytes.
        assert_eq!(
            write(
                &Tree::open(root.path()).unwrap(),
                &layout,
                "2024-01-01T00:00:00Z"
            )
            .unwrap(),
            sbom
        );
    }

    #[test]
    fn a_packaged_interpreter_is_listed_once_through_its_package() {
        let root = root_with(&[
            (
                DPKG_STATUS,
                "Package: python3.11-minimal\nArchitecture: amd64\nVersion: 3.11.2-6+deb12u6\n",
            ),
            (
                "var/lib/dpkg/info/python3.11-minimal.list",
                "/usr/bin/python3.11\n",
            ),
        ]);
        let layout = layout("debian", "debian", "12", "/usr/bin/python3.11");
        let sbom = write(
            &Tree::open(root.path()).unwrap(),
            &layout,
            "2024-01-01T00:00:00Z",
        )
        .unwrap();
        let names: Vec<String> = packages(&sbom).into_iter().map(|p| p.0).collect();
        assert_eq!(names, ["python3.11-minimal", "debian"]);
    }

    /// The table dpy_gather/pkgdb.py runs too (tests/gather_py.rs).
    #[test]
    fn package_databases_are_read_by_the_shared_table() {
        let cases: Value =
            serde_json::from_str(include_str!("../../tests/data/package_db_cases.json")).unwrap();
        for (kind, read) in [
            ("dpkg", dpkg_records as fn(&str) -> Vec<Record>),
            ("apk", apk_records),
        ] {
            for case in cases[kind].as_array().unwrap() {
                let got = serde_json::to_value(read(case["text"].as_str().unwrap())).unwrap();
                assert_eq!(got, case["records"], "{kind}: {}", case["why"]);
            }
        }
    }

    #[test]
    fn apk_records_carry_their_license() {
        let root = root_with(&[(
            APK_INSTALLED,
            "C:Q1x\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\nF:lib\nR:ld-musl-x86_64.so.1\n\nP:zlib\nV:1.3.1-r1\nA:x86_64\nL:Zlib\nF:lib\nR:libz.so.1\n",
        )]);
        let layout = layout("alpine", "alpine", "3.20.3", "/usr/local/bin/python3.12");
        let sbom = write(
            &Tree::open(root.path()).unwrap(),
            &layout,
            "2024-01-01T00:00:00Z",
        )
        .unwrap();
        let doc: Value = serde_json::from_str(&sbom).unwrap();
        assert_eq!(doc["packages"][1]["licenseDeclared"], "MIT");
        assert_eq!(
            doc["packages"][1]["externalRefs"][0]["referenceLocator"],
            "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"
        );
        assert_eq!(doc["creationInfo"]["created"], "2024-01-01T00:00:00Z");
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    }
}
