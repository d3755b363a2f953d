//! The CycloneDX 1.6 form of a runtime image's SBOM, for the registry: written from the
//! SPDX document the distill put into the image (`distill::sbom`), so both forms list the
//! same packages by the same identifiers. Scanners and policy tools that read only
//! CycloneDX (Trivy's attestation path, Dependency-Track) get it beside the SPDX form.
//!
//! Deterministic, as the SPDX document is: the serial number is a digest of the content
//! and the time is the document's own.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The media type of a CycloneDX JSON document (the artifact type of its referrer).
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// `spdx`, dpy's SPDX 2.3 document, as CycloneDX 1.6 JSON.
pub fn from_spdx(spdx: &str) -> Result<String> {
    let broken = |what: &str| Error::Distill(format!("the image's SBOM {what}"));
    let document: Value =
        serde_json::from_str(spdx).map_err(|e| broken(&format!("is not JSON: {e}")))?;
    let packages = document["packages"]
        .as_array()
        .ok_or_else(|| broken("lists no packages"))?;
    // The image itself is the BOM's subject (metadata.component), not one of its parts.
    let packages: Vec<&Value> = packages
        .iter()
        .filter(|p| p["SPDXID"] != crate::distill::sbom::IMAGE)
        .collect();
    let components: Vec<Value> = packages.iter().map(|p| component(p)).collect();
    // A name-based UUID (version 8 layout) from the content: the same content, the same
    // serial number.
    let digest = Sha256::digest(serde_json::to_vec(&components).expect("components serialize"));
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x80;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    let serial = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": document["creationInfo"]["created"],
            "tools": {"components": [{
                "type": "application",
                "name": "dpy",
                "version": env!("CARGO_PKG_VERSION")
            }]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": document["name"]
            }
        },
        "components": components,
        "dependencies": [{
            "ref": "image",
            "dependsOn": packages.iter().map(|p| bom_ref(p)).collect::<Vec<_>>()
        }]
    });
    Ok(serde_json::to_string_pretty(&bom).expect("the BOM serializes") + "\n")
}

fn bom_ref(package: &Value) -> Value {
    package["SPDXID"].clone()
}

/// One SPDX package as a CycloneDX component: its name, version, supplier, license, purl
/// and CPE, as the SPDX package states them (NOASSERTION is left out, not restated).
fn component(package: &Value) -> Value {
    let reference = |kind: &str| {
        package["externalRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["referenceType"] == kind)
            .and_then(|r| r["referenceLocator"].as_str())
            .map(str::to_string)
    };
    let mut component = json!({
        "type": match package["primaryPackagePurpose"].as_str() {
            Some("OPERATING-SYSTEM") => "operating-system",
            _ if package["SPDXID"] == "SPDXRef-Package-python" => "application",
            _ => "library",
        },
        "bom-ref": bom_ref(package),
        "name": package["name"],
        "version": package["versionInfo"],
    });
    if let Some(supplier) = package["supplier"]
        .as_str()
        .and_then(|s| s.strip_prefix("Organization: "))
    {
        component["supplier"] = json!({"name": supplier});
    }
    if let Some(license) = package["licenseDeclared"]
        .as_str()
        .filter(|l| *l != "NOASSERTION")
    {
        component["licenses"] = json!([{"expression": license}]);
    }
    if let Some(purl) = reference("purl") {
        component["purl"] = json!(purl);
    }
    if let Some(cpe) = reference("cpe23Type") {
        component["cpe"] = json!(cpe);
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPDX: &str = r#"{
      "spdxVersion": "SPDX-2.3", "name": "python-3.12.4-alpine-3.20",
      "creationInfo": {"created": "2024-06-01T12:00:00Z", "creators": ["Tool: dpy-1.0.0"]},
      "packages": [
        {"SPDXID": "SPDXRef-Package-python", "name": "python", "versionInfo": "3.12.4",
         "supplier": "Organization: Python Software Foundation", "licenseDeclared": "PSF-2.0",
         "externalRefs": [
           {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
            "referenceLocator": "pkg:generic/python@3.12.4"},
           {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
            "referenceLocator": "cpe:2.3:a:python:python:3.12.4:*:*:*:*:*:*:*"}]},
        {"SPDXID": "SPDXRef-Package-musl", "name": "musl", "versionInfo": "1.2.5-r0",
         "licenseDeclared": "NOASSERTION",
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
           "referenceLocator": "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20"}]},
        {"SPDXID": "SPDXRef-OperatingSystem", "name": "alpine", "versionInfo": "3.20.3",
         "primaryPackagePurpose": "OPERATING-SYSTEM", "licenseDeclared": "NOASSERTION"},
        {"SPDXID": "SPDXRef-Image", "name": "python-3.12.4-alpine-3.20",
         "primaryPackagePurpose": "CONTAINER", "licenseDeclared": "NOASSERTION"}
      ]}"#;

    #[test]
    fn every_spdx_package_is_a_component_with_its_identifiers() {
        let bom: Value = serde_json::from_str(&from_spdx(SPDX).unwrap()).unwrap();
        assert_eq!(bom["specVersion"], "1.6");
        assert_eq!(bom["metadata"]["timestamp"], "2024-06-01T12:00:00Z");
        // The image is the BOM's subject, not one of its components.
        let components = bom["components"].as_array().unwrap();
        assert_eq!(components.len(), 3);
        assert_eq!(
            components[0],
            json!({"type": "application", "bom-ref": "SPDXRef-Package-python",
                   "name": "python", "version": "3.12.4",
                   "supplier": {"name": "Python Software Foundation"},
                   "licenses": [{"expression": "PSF-2.0"}],
                   "purl": "pkg:generic/python@3.12.4",
                   "cpe": "cpe:2.3:a:python:python:3.12.4:*:*:*:*:*:*:*"})
        );
        assert_eq!(
            components[1],
            json!({"type": "library", "bom-ref": "SPDXRef-Package-musl", "name": "musl",
                   "version": "1.2.5-r0",
                   "purl": "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20"})
        );
        assert_eq!(
            components[2],
            json!({"type": "operating-system", "bom-ref": "SPDXRef-OperatingSystem",
                   "name": "alpine", "version": "3.20.3"})
        );
        assert_eq!(
            bom["dependencies"][0]["dependsOn"],
            json!([
                "SPDXRef-Package-python",
                "SPDXRef-Package-musl",
                "SPDXRef-OperatingSystem"
            ])
        );
        // The same document, the same bytes; another, another serial number.
        assert_eq!(from_spdx(SPDX).unwrap(), from_spdx(SPDX).unwrap());
        let other = from_spdx(&SPDX.replace("1.2.5-r0", "1.2.5-r1")).unwrap();
        let other: Value = serde_json::from_str(&other).unwrap();
        assert_ne!(other["serialNumber"], bom["serialNumber"]);
        assert!(bom["serialNumber"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:"));
    }

    #[test]
    fn a_document_that_is_not_dpys_is_refused() {
        assert!(from_spdx("not json").is_err());
        assert!(from_spdx("{}").is_err());
    }
}
