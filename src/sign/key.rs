//! Signing keys in cosign's format, so that a key made by `dpy keygen` works with
//! cosign, and one made by `cosign generate-key-pair` works with dpy.
//!
//! The private key is an ECDSA P-256 key in PKCS#8, sealed with NaCl secretbox under
//! a key that scrypt derives from the passphrase, and stored as a PEM block
//! `ENCRYPTED SIGSTORE PRIVATE KEY` whose body is a small JSON document naming the
//! KDF, its parameters and salt, the cipher and its nonce, and the ciphertext. The
//! public key is a plain `PUBLIC KEY` PEM (SubjectPublicKeyInfo), which skopeo's
//! `sigstoreSigned` policy reads as it is.
//!
//! Every primitive comes from a RustCrypto crate; only the envelope is ours. The
//! sigstore crate has the envelope too, but it cannot be built without OpenSSL or
//! aws-lc as its crypto backend, a second C crypto library next to ring.

use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::SigningKey;
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// The PEM label cosign 2 writes; cosign 1 wrote the second, which is still read.
const LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const OLD_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// scrypt's cost as cosign sets it (N = 2^15, r = 8, p = 1). Reading accepts 2^16 too,
/// and nothing else, so a crafted file cannot make dpy spend minutes or gigabytes.
const LOG_N: u8 = 15;
const ACCEPTED_N: [u64; 2] = [1 << 15, 1 << 16];

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "base64_bytes")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "base64_bytes")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "base64_bytes")]
    nonce: Vec<u8>,
}

/// Go's encoding/json writes `[]byte` as standard base64, and so must we.
mod base64_bytes {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Why a key file could not be opened; the caller names the file.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not an encrypted cosign key at all (another PEM, not PEM, bad JSON).
    NotAKey(String),
    /// The passphrase does not open it.
    WrongPassphrase,
}

fn derive(passphrase: &[u8], salt: &[u8], log_n: u8) -> [u8; 32] {
    let params = scrypt::Params::new(log_n, 8, 1, 32).expect("fixed scrypt parameters are valid");
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase, salt, &params, &mut key).expect("a 32-byte output is valid");
    key
}

/// A new key pair: the encrypted private key PEM and the public key PEM.
pub fn generate(passphrase: &[u8]) -> (String, String) {
    let key = SigningKey::random(&mut OsRng);
    (seal(&key, passphrase), public_pem(&key))
}

/// The private key, sealed under `passphrase`, as cosign writes it.
pub fn seal(key: &SigningKey, passphrase: &[u8]) -> String {
    let mut salt = vec![0u8; 32];
    let mut nonce = vec![0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let der = key.to_pkcs8_der().expect("a P-256 key encodes as PKCS#8");
    let box_key = derive(passphrase, &salt, LOG_N);
    let ciphertext = XSalsa20Poly1305::new(&box_key.into())
        .encrypt(nonce.as_slice().into(), der.as_bytes())
        .expect("sealing in memory does not fail");
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1 << LOG_N,
                r: 8,
                p: 1,
            },
            salt,
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce,
        },
        ciphertext,
    };
    let body = serde_json::to_vec(&sealed).expect("the envelope serializes");
    pem::encode_string(LABEL, LineEnding::LF, &body).expect("PEM of bytes")
}

/// Opens an encrypted cosign private key.
pub fn open(text: &[u8], passphrase: &[u8]) -> Result<SigningKey, KeyError> {
    let (label, body) =
        pem::decode_vec(text).map_err(|_| KeyError::NotAKey("it is not a PEM file".into()))?;
    if label != LABEL && label != OLD_LABEL {
        return Err(KeyError::NotAKey(format!(
            "it holds a {label} block, not an {LABEL}"
        )));
    }
    let sealed: Sealed = serde_json::from_slice(&body)
        .map_err(|e| KeyError::NotAKey(format!("its body is not a sealed key: {e}")))?;
    let KdfParams { n, r, p } = sealed.kdf.params;
    if sealed.kdf.name != "scrypt"
        || sealed.cipher.name != "nacl/secretbox"
        || !ACCEPTED_N.contains(&n)
        || (r, p) != (8, 1)
        || sealed.cipher.nonce.len() != 24
    {
        return Err(KeyError::NotAKey(format!(
            "it is sealed with {} (N={n}, r={r}, p={p}) and {}, not cosign's scrypt and nacl/secretbox",
            sealed.kdf.name, sealed.cipher.name
        )));
    }
    let box_key = derive(passphrase, &sealed.kdf.salt, n.trailing_zeros() as u8);
    let der = XSalsa20Poly1305::new(&box_key.into())
        .decrypt(
            sealed.cipher.nonce.as_slice().into(),
            sealed.ciphertext.as_slice(),
        )
        .map_err(|_| KeyError::WrongPassphrase)?;
    SigningKey::from_pkcs8_der(&der)
        .map_err(|e| KeyError::NotAKey(format!("it opens, but holds no P-256 key: {e}")))
}

/// The public key as a `PUBLIC KEY` PEM.
pub fn public_pem(key: &SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-256 public key encodes")
}

/// `sha256:` of the public key's DER: how records name the key that signed.
pub fn fingerprint(key: &SigningKey) -> String {
    format!("sha256:{:x}", public_key_digest(key))
}

/// The public key's hint in a Sigstore bundle: the standard base64 of the same digest,
/// as cosign and sigstore-go compute it.
pub fn hint(key: &SigningKey) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(public_key_digest(key))
}

/// The sha256 of the public key's DER (SubjectPublicKeyInfo).
fn public_key_digest(key: &SigningKey) -> sha2::digest::Output<sha2::Sha256> {
    use sha2::{Digest, Sha256};
    let der = key
        .verifying_key()
        .to_public_key_der()
        .expect("a P-256 public key encodes");
    Sha256::digest(der.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_only() {
        let (private, public) = generate(b"correct horse");
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = open(private.as_bytes(), b"correct horse").unwrap();
        assert_eq!(public_pem(&key), public);
        assert_eq!(
            open(private.as_bytes(), b"wrong").unwrap_err(),
            KeyError::WrongPassphrase
        );
    }

    #[test]
    fn the_envelope_is_cosigns() {
        let (private, _) = generate(b"pw");
        let (_, body) = pem::decode_vec(private.as_bytes()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(json["kdf"]["params"]["N"], 32768);
        assert_eq!(json["kdf"]["params"]["r"], 8);
        assert_eq!(json["kdf"]["params"]["p"], 1);
        assert_eq!(
            BASE64
                .decode(json["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            BASE64
                .decode(json["cipher"]["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            24
        );
    }

    #[test]
    fn what_is_not_a_key_is_told_apart_from_a_wrong_passphrase() {
        let (_, public) = generate(b"pw");
        for text in ["hello", public.as_str()] {
            assert!(
                matches!(open(text.as_bytes(), b"pw"), Err(KeyError::NotAKey(_))),
                "{text}"
            );
        }
        let costly = pem::encode_string(
            LABEL,
            LineEnding::LF,
            br#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#,
        )
        .unwrap();
        assert!(matches!(
            open(costly.as_bytes(), b"pw"),
            Err(KeyError::NotAKey(_))
        ));
    }
}
