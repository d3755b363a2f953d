//! Signatures and attestations for pushed images, in cosign's format.
//!
//! With `--sign-key`, every pushed manifest and index gets a signature under the tag
//! `sha256-<hex>.sig`, and an in-toto provenance attestation under `sha256-<hex>.att`,
//! next to it in the same repository. cosign, skopeo/podman (`sigstoreSigned` with
//! `use-sigstore-attachments`) and policy controllers read them there.
//!
//! The key is opened before anything is built, so a missing key, a file that is not
//! one, or a wrong passphrase fails at once and pushes nothing. The passphrase comes
//! from DPY_KEY_PASSPHRASE or the terminal, never from an argument, and is dropped
//! once the key is open.

pub mod bundle;
pub mod key;
pub mod payload;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

use crate::error::{Error, Result};

/// The environment variable that holds the key's passphrase.
pub const PASSPHRASE_ENV: &str = "DPY_KEY_PASSPHRASE";

/// An opened signing key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    /// `sha256:` of the public key: recorded with what it signed.
    pub fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint)
    }
}

/// One layer of a `.sig` or `.att` manifest: its bytes, type and annotations.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub media_type: &'static str,
    pub data: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

impl Signer {
    /// Opens the key at `path` with the passphrase from the environment or terminal.
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| {
            Error::SigningKey(format!(
                "cannot read the signing key {}: {e}; give the private key `dpy keygen` or `cosign generate-key-pair` wrote",
                path.display()
            ))
        })?;
        let passphrase = passphrase(&format!("Passphrase for {}: ", path.display()), false)?;
        let key = key::open(&text, passphrase.as_bytes()).map_err(|e| match e {
            key::KeyError::WrongPassphrase => Error::SigningKey(format!(
                "the passphrase does not open the signing key {}; check {PASSPHRASE_ENV}",
                path.display()
            )),
            key::KeyError::NotAKey(why) => Error::SigningKey(format!(
                "{} is not an encrypted cosign private key: {why}; give the .key file `dpy keygen` wrote, not the .pub",
                path.display()
            )),
        })?;
        Ok(Signer {
            fingerprint: key::fingerprint(&key),
            key,
        })
    }

    fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(bytes);
        signature.to_der().as_bytes().to_vec()
    }

    /// The signature layer for `repository@digest`.
    pub fn signature(&self, repository: &str, digest: &str) -> Attachment {
        let data = payload::simple_signing(repository, digest, &creator());
        let signature = self.sign(&data);
        Attachment {
            media_type: payload::SIMPLE_SIGNING,
            annotations: BTreeMap::from([(
                payload::SIGNATURE_ANNOTATION.to_string(),
                base64_encode(&signature),
            )]),
            data,
        }
    }

    /// `statement` (in-toto JSON) signed in a Sigstore bundle (`bundle`).
    pub fn bundle(&self, statement: &[u8]) -> Vec<u8> {
        let signature = self.sign(&payload::pae(payload::IN_TOTO, statement));
        bundle::bundle(statement, &signature, &key::hint(&self.key))
    }

    /// The attestation layer: `statement` (in-toto JSON) in a signed DSSE envelope.
    pub fn attestation(&self, statement: &[u8], predicate_type: &str) -> Attachment {
        let signature = self.sign(&payload::pae(payload::IN_TOTO, statement));
        Attachment {
            media_type: payload::DSSE,
            annotations: BTreeMap::from([
                (payload::SIGNATURE_ANNOTATION.to_string(), String::new()),
                ("predicateType".to_string(), predicate_type.to_string()),
            ]),
            data: payload::envelope(statement, &signature),
        }
    }
}

fn creator() -> String {
    format!("dpy {}", env!("CARGO_PKG_VERSION"))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The passphrase: DPY_KEY_PASSPHRASE, or asked on the terminal (twice when `confirm`).
pub fn passphrase(prompt: &str, confirm: bool) -> Result<String> {
    if let Ok(value) = std::env::var(PASSPHRASE_ENV) {
        return Ok(value);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::SigningKey(format!(
            "no passphrase for the signing key: set {PASSPHRASE_ENV}, or run on a terminal to be asked"
        )));
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| Error::SigningKey(format!("reading the passphrase: {e}")))
    };
    let first = read(prompt)?;
    if confirm && read("Again: ")? != first {
        return Err(Error::SigningKey(
            "the two passphrases differ; run again".into(),
        ));
    }
    Ok(first)
}

/// `dpy keygen`: writes PREFIX.key (encrypted, mode 0600) and PREFIX.pub.
pub fn keygen(prefix: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let private = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    for path in [&private, &public] {
        if path.exists() {
            return Err(Error::io(
                path,
                "exists already; move it away or give another prefix",
            ));
        }
    }
    let passphrase = passphrase("Passphrase for the new key: ", true)?;
    if passphrase.is_empty() {
        return Err(Error::SigningKey(format!(
            "an empty passphrase would leave the key unprotected; set {PASSPHRASE_ENV} or type one"
        )));
    }
    let (sealed, public_pem) = key::generate(passphrase.as_bytes());
    write_new(&private, &sealed, 0o600)?;
    write_new(&public, &public_pem, 0o644)?;
    Ok((private, public))
}

/// Creates `path` (never over an existing file) with `mode`, and writes `text`.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    fn signer() -> Signer {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        Signer {
            fingerprint: key::fingerprint(&key),
            key,
        }
    }

    #[test]
    fn a_signature_covers_its_payload_and_is_the_same_each_time() {
        let s = signer();
        let a = s.signature("r/x", "sha256:00");
        assert_eq!(a.data, s.signature("r/x", "sha256:00").data);
        assert_eq!(a.annotations, s.signature("r/x", "sha256:00").annotations);
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(&a.annotations[payload::SIGNATURE_ANNOTATION])
            .unwrap();
        let verifying = VerifyingKey::from(&s.key);
        verifying
            .verify(&a.data, &Signature::from_der(&der).unwrap())
            .unwrap();
        assert!(verifying
            .verify(
                &payload::simple_signing("r/x", "sha256:01", &creator()),
                &Signature::from_der(&der).unwrap()
            )
            .is_err());
    }

    #[test]
    fn an_attestation_signs_the_pae_of_its_statement() {
        let s = signer();
        let a = s.attestation(b"{}", "https://slsa.dev/provenance/v1");
        let envelope: serde_json::Value = serde_json::from_slice(&a.data).unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let statement = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
        let der = b64
            .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        VerifyingKey::from(&s.key)
            .verify(
                &payload::pae(payload::IN_TOTO, &statement),
                &Signature::from_der(&der).unwrap(),
            )
            .unwrap();
    }
}
