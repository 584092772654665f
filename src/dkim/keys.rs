//! Key files: parsing PEM private keys, generating new keys and writing them
//! with owner-only permissions.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{Ed25519Key, HashContext as _, HashImpl as _, RsaKey, Sha256};
use mail_auth::common::headers::Writable;
use mail_auth::dkim::generate::DkimKeyPair;
use rsa::pkcs1;
use rsa::pkcs8::{self, EncodePublicKey as _, ObjectIdentifier};
use rustls_pki_types::pem::{PemObject as _, SectionKind};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

use super::{Algorithm, DkimError, check_dns_name};

/// The smallest RSA key accepted (RFC 8301 requires 1024; receivers such as
/// Gmail treat 2048 as the floor, and so does mailgate).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA key the signing library (ring) accepts.
pub const MAX_RSA_BITS: usize = 4096;
/// The size `mailgate dkim keygen --algorithm rsa` uses by default.
pub const RSA_DEFAULT_BITS: usize = 2048;

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// What is wrong with a key file's contents (the file and key are named by
/// [`DkimError::Key`] around it).
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    /// The file does not exist.
    #[error("the file does not exist")]
    Missing,
    /// The file exists but cannot be read (permissions, a directory, ...).
    #[error("cannot read the file: {0}")]
    Unreadable(std::io::Error),
    /// The file holds another kind of key than the configured algorithm.
    #[error("it holds {found}, but algorithm = \"{expected}\" is configured")]
    WrongType {
        /// The configured algorithm.
        expected: Algorithm,
        /// What the file holds, in words ("an RSA key").
        found: String,
    },
    /// An RSA key below [`MIN_RSA_BITS`].
    #[error(
        "the RSA key is {0} bits; at least 2048 are required \
         (make a new one with `mailgate dkim keygen --algorithm rsa`)"
    )]
    RsaTooSmall(usize),
    /// An RSA key above [`MAX_RSA_BITS`].
    #[error("the RSA key is {0} bits; at most 4096 are supported")]
    RsaTooLarge(usize),
    /// Not PEM, a PEM of something else, or a key the library rejects.
    #[error("not a usable PEM private key: {0}")]
    Unparsable(String),
}

/// A private key as mailgate signs with it: RSA through mail-auth (ring), Ed25519
/// through ed25519-dalek, which signs in three quarters of ring's time (12 against
/// 16 µs a signature on the benchmark machine; a signature is made per message).
pub(crate) enum SigningKey {
    Rsa(RsaKey<Sha256>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl mail_auth::common::crypto::SigningKey for SigningKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        match self {
            SigningKey::Rsa(key) => key.sign(input),
            SigningKey::Ed25519(key) => {
                // ed25519-sha256 (RFC 8463 §3): the SHA-256 digest is what is signed.
                let mut data = Sha256::hasher();
                input.write(&mut data);
                let digest = data.complete();
                Ok(ed25519_dalek::Signer::sign(key, digest.as_ref())
                    .to_bytes()
                    .to_vec())
            }
        }
    }

    fn algorithm(&self) -> mail_auth::common::crypto::Algorithm {
        match self {
            SigningKey::Rsa(key) => key.algorithm(),
            SigningKey::Ed25519(_) => mail_auth::common::crypto::Algorithm::Ed25519Sha256,
        }
    }
}

/// A parsed private key, ready to sign, with its public key for DNS.
pub(crate) struct LoadedKey {
    pub(crate) key: SigningKey,
    pub(crate) public_key_b64: String,
}

/// The DER of a private key found in a PEM file, by container format.
enum KeyDer {
    /// PKCS#1 `RSAPrivateKey`.
    RsaPkcs1(Vec<u8>),
    /// PKCS#8 wrapping an RSA key.
    RsaPkcs8(Vec<u8>),
    /// PKCS#8 wrapping an Ed25519 key (v1 or v2).
    Ed25519Pkcs8(Vec<u8>),
}

/// Parses a PEM private key of the configured `algorithm` and builds the
/// signing key (the expensive part, done once per key).
pub(crate) fn load_key(algorithm: Algorithm, pem: &[u8]) -> Result<LoadedKey, KeyProblem> {
    let der = find_private_key(pem)?;
    let found = match der {
        KeyDer::RsaPkcs1(_) | KeyDer::RsaPkcs8(_) => Algorithm::Rsa,
        KeyDer::Ed25519Pkcs8(_) => Algorithm::Ed25519,
    };
    if found != algorithm {
        return Err(KeyProblem::WrongType {
            expected: algorithm,
            found: match found {
                Algorithm::Rsa => "an RSA key".into(),
                Algorithm::Ed25519 => "an Ed25519 key".into(),
            },
        });
    }
    match der {
        KeyDer::RsaPkcs1(der) => {
            let public_key_b64 = rsa_public_key_b64(&der)?;
            let key =
                RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)))
                    .map_err(|e| rejected("RSA", e))?;
            Ok(LoadedKey {
                key: SigningKey::Rsa(key),
                public_key_b64,
            })
        }
        KeyDer::RsaPkcs8(der) => {
            let public_key_b64 = {
                let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| KeyProblem::Unparsable(format!("bad PKCS#8 structure: {e}")))?;
                rsa_public_key_b64(info.private_key)?
            };
            let key =
                RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
                    .map_err(|e| rejected("RSA", e))?;
            Ok(LoadedKey {
                key: SigningKey::Rsa(key),
                public_key_b64,
            })
        }
        KeyDer::Ed25519Pkcs8(der) => {
            // ring's plain `from_pkcs8` wants PKCS#8 v2 (with the public key);
            // OpenSSL writes v1, which the "maybe unchecked" variant accepts.
            // ring checks the document (and a v2 file's public key against the
            // private one); the signing key is then made from the seed.
            Ed25519Key::from_pkcs8_maybe_unchecked_der(&der).map_err(|e| rejected("Ed25519", e))?;
            let key = ed25519_signing_key(&der)?;
            Ok(LoadedKey {
                public_key_b64: BASE64.encode(key.verifying_key().as_bytes()),
                key: SigningKey::Ed25519(key),
            })
        }
    }
}

/// The Ed25519 private key in a PKCS#8 DER: a `CurvePrivateKey`, an OCTET STRING of
/// the 32-byte seed, inside the PKCS#8 private-key octets (RFC 8410 §7).
fn ed25519_signing_key(der: &[u8]) -> Result<ed25519_dalek::SigningKey, KeyProblem> {
    let info = pkcs8::PrivateKeyInfo::try_from(der)
        .map_err(|e| KeyProblem::Unparsable(format!("bad PKCS#8 structure: {e}")))?;
    match info.private_key {
        [0x04, 0x20, seed @ ..] => <&[u8; 32]>::try_from(seed)
            .map(ed25519_dalek::SigningKey::from_bytes)
            .map_err(|_| KeyProblem::Unparsable("the Ed25519 key is not 32 bytes".into())),
        _ => Err(KeyProblem::Unparsable(
            "the Ed25519 key is not a 32-byte octet string".into(),
        )),
    }
}

/// An Ed25519 seed as PKCS#8 v1 (RFC 8410 §7, the example of §10.3): version 0, the
/// algorithm id-Ed25519 (1.3.101.112) with no parameters, and the seed as a
/// `CurvePrivateKey` OCTET STRING. This is what `openssl genpkey -algorithm ed25519` writes,
/// and what OpenSSL and Python's cryptography read.
fn ed25519_pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, // SEQUENCE, 46 bytes
        0x02, 0x01, 0x00, // INTEGER 0 (v1)
        0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, // AlgorithmIdentifier id-Ed25519
        0x04, 0x22, 0x04, 0x20, // OCTET STRING { OCTET STRING, 32 bytes }
    ];
    [&PREFIX[..], seed].concat()
}

fn rejected(kind: &str, error: mail_auth::Error) -> KeyProblem {
    KeyProblem::Unparsable(format!(
        "the signing library rejected the {kind} key: {error}"
    ))
}

/// The base64 `p=` value for the private key in `pem`: for Ed25519 the raw
/// 32-byte public key (RFC 8463), for RSA the DER SubjectPublicKeyInfo (what
/// `opendkim-genkey` and `openssl rsa -pubout` publish).
///
/// `mailgate dns` uses this to print the records of the configured keys.
pub fn public_key_from_private(algorithm: Algorithm, pem: &[u8]) -> Result<String, KeyProblem> {
    load_key(algorithm, pem).map(|k| k.public_key_b64)
}

fn find_private_key(pem: &[u8]) -> Result<KeyDer, KeyProblem> {
    // Labels the PEM parser skips silently but deserve a precise answer.
    for (marker, reason) in [
        (
            &b"-----BEGIN ENCRYPTED PRIVATE KEY-----"[..],
            "the key is encrypted; store it unencrypted (`openssl pkey -in OLD -out NEW`) \
             in a file only mailgate's user can read",
        ),
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----",
            "an OpenSSH key; DKIM needs a PEM key (`mailgate dkim keygen` writes one)",
        ),
    ] {
        if contains(pem, marker) {
            return Err(KeyProblem::Unparsable(reason.into()));
        }
    }
    let mut saw_public = false;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let (kind, der) = section.map_err(|e| KeyProblem::Unparsable(format!("bad PEM: {e}")))?;
        match kind {
            SectionKind::RsaPrivateKey => return Ok(KeyDer::RsaPkcs1(der)),
            SectionKind::PrivateKey => return classify_pkcs8(der),
            SectionKind::EcPrivateKey => {
                return Err(KeyProblem::Unparsable(
                    "an EC (ECDSA) key, which DKIM does not use".into(),
                ));
            }
            SectionKind::PublicKey => saw_public = true,
            _ => {}
        }
    }
    Err(KeyProblem::Unparsable(if saw_public {
        "it holds only a public key; configure the private key".into()
    } else {
        "no PEM private key found (expected -----BEGIN PRIVATE KEY----- \
         or -----BEGIN RSA PRIVATE KEY-----)"
            .into()
    }))
}

fn classify_pkcs8(der: Vec<u8>) -> Result<KeyDer, KeyProblem> {
    let oid = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
        .map_err(|e| KeyProblem::Unparsable(format!("bad PKCS#8 structure: {e}")))?
        .algorithm
        .oid;
    let found = match oid {
        OID_RSA_ENCRYPTION => return Ok(KeyDer::RsaPkcs8(der)),
        OID_ED25519 => return Ok(KeyDer::Ed25519Pkcs8(der)),
        OID_EC_PUBLIC_KEY => "an EC (ECDSA) key, which DKIM does not use".to_string(),
        OID_ED448 => "an Ed448 key, which DKIM does not use".to_string(),
        OID_RSA_PSS => "an RSA-PSS key, which DKIM does not use".to_string(),
        other => format!("a key of unknown type (OID {other})"),
    };
    Err(KeyProblem::Unparsable(found))
}

/// Checks the size of a PKCS#1 RSA private key and returns its public key as
/// base64 DER SubjectPublicKeyInfo.
fn rsa_public_key_b64(pkcs1_der: &[u8]) -> Result<String, KeyProblem> {
    let key = pkcs1::RsaPrivateKey::try_from(pkcs1_der)
        .map_err(|e| KeyProblem::Unparsable(format!("bad RSA key structure: {e}")))?;
    let n = key.modulus.as_bytes();
    let bits = match n.first() {
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if bits < MIN_RSA_BITS {
        return Err(KeyProblem::RsaTooSmall(bits));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyProblem::RsaTooLarge(bits));
    }
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(key.public_exponent.as_bytes()),
    )
    .map_err(|e| KeyProblem::Unparsable(format!("bad RSA public key: {e}")))?;
    let spki = public
        .to_public_key_der()
        .map_err(|e| KeyProblem::Unparsable(format!("cannot encode the RSA public key: {e}")))?;
    Ok(BASE64.encode(spki.as_bytes()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A freshly generated key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The private key as PEM: PKCS#8 (`BEGIN PRIVATE KEY`) for Ed25519,
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`) for RSA.
    pub private_pem: String,
    /// The `p=` value of the TXT record (see [`public_key_from_private`]).
    pub public_key_b64: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("private_pem", &"<redacted>")
            .field("public_key_b64", &self.public_key_b64)
            .finish()
    }
}

/// Generates a key. `bits` applies to RSA only (2048, 3072 or 4096; use
/// [`RSA_DEFAULT_BITS`] by default) and is ignored for Ed25519.
///
/// The key is parsed back as [`Signers::load`](super::Signers::load) would,
/// so a generated key always loads. RSA generation takes a moment
/// (about a second for 2048 bits in a release build).
pub fn generate(algorithm: Algorithm, bits: usize) -> Result<GeneratedKey, DkimError> {
    let private_pem = match algorithm {
        Algorithm::Ed25519 => {
            let pair =
                DkimKeyPair::generate_ed25519().map_err(|e| DkimError::Generate(e.to_string()))?;
            // ring writes PKCS#8 v2 (RFC 5958, with the public key), which OpenSSL 3.0 and
            // Python's cryptography refuse; keep only the seed, as RFC 8410 v1.
            let seed = ed25519_signing_key(pair.private_key())
                .map_err(|e| DkimError::Generate(e.to_string()))?
                .to_bytes();
            pem_encode("PRIVATE KEY", &ed25519_pkcs8_v1(&seed))
        }
        Algorithm::Rsa => {
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(DkimError::Generate(format!(
                    "RSA keys of {bits} bits are not supported: choose 2048, 3072 or 4096"
                )));
            }
            let pair =
                DkimKeyPair::generate_rsa(bits).map_err(|e| DkimError::Generate(e.to_string()))?;
            pem_encode("RSA PRIVATE KEY", pair.private_key())
        }
    };
    let public_key_b64 = public_key_from_private(algorithm, private_pem.as_bytes())
        .map_err(|e| DkimError::Generate(format!("the new key does not load: {e}")))?;
    Ok(GeneratedKey {
        algorithm,
        private_pem,
        public_key_b64,
    })
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes `key` to `<dir>/<selector>.pem` and returns that path.
///
/// The file is created with mode 0600 (never readable by others, not even
/// for a moment) and an existing file is never overwritten: a key in use must
/// not be replaced by accident; rotate with a new selector instead. A missing
/// `dir` is created with mode 0700.
pub fn write_key_file(
    dir: &Path,
    selector: &str,
    key: &GeneratedKey,
) -> Result<PathBuf, DkimError> {
    check_dns_name(selector).map_err(|reason| DkimError::InvalidName {
        what: "selector",
        value: selector.into(),
        reason,
    })?;
    let path = dir.join(format!("{selector}.pem"));
    let write_error = |source| DkimError::Write {
        path: path.clone(),
        source,
    };
    if !dir.as_os_str().is_empty() && !dir.is_dir() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(write_error)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(DkimError::Exists { path });
        }
        Err(e) => return Err(write_error(e)),
    };
    let written = file
        .write_all(key.private_pem.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(write_error(e));
    }
    Ok(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ed25519 key as `openssl genpkey -algorithm ed25519` writes it
    /// (PKCS#8 v1, no public key inside); the seed is RFC 8032's test 1.
    pub(crate) const ED25519_OPENSSL_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn ed25519_openssl_v1_loads_with_rfc8032_public_key() {
        let public = public_key_from_private(Algorithm::Ed25519, ED25519_OPENSSL_PEM.as_bytes())
            .expect("loads");
        // RFC 8032 §7.1 test 1 public key, as in RFC 8463's example.
        assert_eq!(public, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    }

    #[test]
    fn ed25519_signs_as_ring_does_and_a_public_key_of_another_key_is_refused() {
        use mail_auth::common::crypto::SigningKey as _;
        // A PKCS#8 v2 file, as `dkim keygen` wrote before it wrote v1: it must still load.
        let der = DkimKeyPair::generate_ed25519()
            .unwrap()
            .private_key()
            .to_vec();
        assert_eq!(der[2..5], [0x02, 0x01, 0x01], "a v2 document (version 1)");
        let v2_pem = pem_encode("PRIVATE KEY", &der);
        let loaded = load_key(Algorithm::Ed25519, v2_pem.as_bytes()).unwrap();
        assert!(matches!(loaded.key, SigningKey::Ed25519(_)));
        let ring = Ed25519Key::from_pkcs8_der(&der).unwrap();
        assert_eq!(
            loaded.public_key_b64,
            public_key_from_private(Algorithm::Ed25519, v2_pem.as_bytes()).unwrap()
        );
        let data = b"relaxed header fields and the signature with an empty b=".as_slice();
        assert_eq!(loaded.key.sign(data).unwrap(), ring.sign(data).unwrap());

        // The v2 document ends with the public key: change its last byte.
        let mut other = der.clone();
        *other.last_mut().unwrap() ^= 1;
        let pem = pem_encode("PRIVATE KEY", &other);
        match load_key(Algorithm::Ed25519, pem.as_bytes()) {
            Err(KeyProblem::Unparsable(why)) => {
                assert!(why.contains("InconsistentComponents"), "{why}")
            }
            other => panic!("{:?}", other.map(|k| k.public_key_b64)),
        }
    }

    #[test]
    fn generated_keys_load_both_ways() {
        let ed = generate(Algorithm::Ed25519, 0).unwrap();
        assert!(ed.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // PKCS#8 v1 (RFC 8410), 48 bytes, as OpenSSL writes it.
        match find_private_key(ed.private_pem.as_bytes()).unwrap() {
            KeyDer::Ed25519Pkcs8(der) => {
                assert_eq!(der.len(), 48);
                assert_eq!(der[..16], ed25519_pkcs8_v1(&[0; 32])[..16]);
            }
            _ => panic!("an Ed25519 key"),
        }
        let loaded = load_key(Algorithm::Ed25519, ed.private_pem.as_bytes()).unwrap();
        assert_eq!(loaded.public_key_b64, ed.public_key_b64);
        assert_eq!(BASE64.decode(&ed.public_key_b64).unwrap().len(), 32);
        assert!(
            !format!("{ed:?}").contains("BEGIN"),
            "Debug must not show the key"
        );

        let rsa = generate(Algorithm::Rsa, RSA_DEFAULT_BITS).unwrap();
        assert!(
            rsa.private_pem
                .starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
        );
        // SubjectPublicKeyInfo of a 2048-bit key starts like this.
        assert!(
            rsa.public_key_b64
                .starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
        );

        // The same RSA key as PKCS#8 loads too, with the same public key.
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::pkcs8::EncodePrivateKey as _;
        let pkcs8 = rsa::RsaPrivateKey::from_pkcs1_pem(&rsa.private_pem)
            .unwrap()
            .to_pkcs8_pem(Default::default())
            .unwrap();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            public_key_from_private(Algorithm::Rsa, pkcs8.as_bytes()).unwrap(),
            rsa.public_key_b64
        );
    }

    #[test]
    fn generate_rejects_odd_rsa_sizes() {
        for bits in [0, 1024, 2047, 2500, 8192] {
            assert!(matches!(
                generate(Algorithm::Rsa, bits),
                Err(DkimError::Generate(_))
            ));
        }
    }

    #[test]
    fn unusable_pem_contents() {
        let cases: &[(&str, &str)] = &[
            ("", "no PEM private key found"),
            ("garbage\x00\x01\u{fffd}", "no PEM private key found"),
            (
                "-----BEGIN PRIVATE KEY-----\nnot base64!!\n-----END PRIVATE KEY-----\n",
                "bad PEM",
            ),
            ("-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n", "bad PEM"),
            (
                "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----\n",
                "bad PKCS#8",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMC4CAQAw\n-----END RSA PRIVATE KEY-----\n",
                "bad RSA key structure",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMC4=\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nMC4=\n-----END OPENSSH PRIVATE KEY-----\n",
                "OpenSSH",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n",
                "only a public key",
            ),
        ];
        for (pem, expected) in cases {
            for algorithm in [Algorithm::Ed25519, Algorithm::Rsa] {
                if pem.contains("BEGIN RSA") && algorithm == Algorithm::Ed25519 {
                    // The label alone says RSA: reported as the wrong type.
                    assert!(matches!(
                        load_key(algorithm, pem.as_bytes()),
                        Err(KeyProblem::WrongType { .. })
                    ));
                    continue;
                }
                match load_key(algorithm, pem.as_bytes()) {
                    Err(KeyProblem::Unparsable(reason)) => {
                        assert!(reason.contains(expected), "{pem:?}: {reason}")
                    }
                    Err(other) => panic!("{pem:?}: unexpected {other}"),
                    Ok(_) => panic!("{pem:?}: loaded"),
                }
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_0600_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("new").join("keys");
        let key = generate(Algorithm::Ed25519, 0).unwrap();
        let path = write_key_file(&sub, "2025-11", &key).unwrap();
        assert_eq!(path, sub.join("2025-11.pem"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        let dir_mode = std::fs::metadata(&sub).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0, "dir mode {dir_mode:o}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), key.private_pem);

        let again = generate(Algorithm::Ed25519, 0).unwrap();
        assert!(matches!(
            write_key_file(&sub, "2025-11", &again),
            Err(DkimError::Exists { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), key.private_pem);

        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(
                matches!(
                    write_key_file(&sub, bad, &key),
                    Err(DkimError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
