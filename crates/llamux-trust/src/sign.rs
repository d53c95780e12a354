//! Model signatures.
//!
//! A model is signed by its publisher with an Ed25519 key: the message signed is the 32 bytes of
//! the model file's SHA-256 (so a signature can be checked with any Ed25519 tool from
//! `sha256sum`'s output). The signature is kept beside the model, in `MODEL.sig`, four lines of
//! text:
//!
//! ```text
//! llamux-signature-v1
//! sha256 <64 hex digits: the SHA-256 of the model file>
//! key <64 hex digits: the signer's Ed25519 public key>
//! signature <128 hex digits: the Ed25519 signature of the 32 digest bytes>
//! ```
//!
//! Keys: a public key is 64 hex digits (the file `KEY.pub` holds them on one line, the kernel
//! module takes them as its `pubkey` parameter); a secret key file holds the line
//! `llamux-ed25519-secret-key-v1`, then the 32-byte seed in hex.
//!
//! [`verify`] checks a signature file against one trusted key: the digest it names must be the
//! file's, its key the trusted one, and the signature must verify (strictly: no weak keys, no
//! malleable signatures) with the trusted key.

use crate::hex::{self, Hex};
use core::fmt;
use ed25519_dalek::Signer;
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// First line of a signature file.
pub const SIGNATURE_MAGIC: &str = "llamux-signature-v1";
/// First line of a secret key file.
pub const SECRET_KEY_MAGIC: &str = "llamux-ed25519-secret-key-v1";
/// Longest signature file read (a valid one has 300 bytes or so).
pub const MAX_SIGNATURE_FILE: usize = 1024;

/// Why a key or signature was refused. Every variant prints as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// Not 64 hex digits, or not a point of the curve.
    BadPublicKey,
    /// Not a secret key file.
    BadSecretKey,
    /// The signature file is not in the format above.
    Malformed(&'static str),
    /// The model's SHA-256 is not the one that was signed.
    Tampered {
        /// The file's digest.
        file: [u8; 32],
        /// The signed digest.
        signed: [u8; 32],
    },
    /// Signed, but by another key than the trusted one.
    WrongKey {
        /// The trusted key.
        trusted: [u8; 32],
        /// The key the signature file names.
        signer: [u8; 32],
    },
    /// The signature does not verify with the trusted key.
    BadSignature,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::BadPublicKey => write!(f, "not an Ed25519 public key (64 hex digits)"),
            SignError::BadSecretKey => write!(f, "not a llamux secret key file ({SECRET_KEY_MAGIC})"),
            SignError::Malformed(what) => write!(f, "malformed signature file: {what}"),
            SignError::Tampered { file, signed } => write!(
                f,
                "the model was changed after signing: its SHA-256 is {}, the signed one {}",
                Hex(file),
                Hex(signed)
            ),
            SignError::WrongKey { trusted, signer } => {
                write!(f, "signed by key {}, not by the trusted key {}", Hex(signer), Hex(trusted))
            }
            SignError::BadSignature => write!(f, "the signature does not verify with the trusted key"),
        }
    }
}

/// Parses a public key: 64 hex digits, surrounding white space ignored.
pub fn parse_public_key(text: &[u8]) -> Result<VerifyingKey, SignError> {
    let bytes = hex::decode::<32>(text.trim_ascii()).ok_or(SignError::BadPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SignError::BadPublicKey)
}

/// Parses a secret key file.
pub fn parse_secret_key(text: &[u8]) -> Result<SigningKey, SignError> {
    let mut lines = text.trim_ascii().split(|&b| b == b'\n').map(<[u8]>::trim_ascii);
    if lines.next() != Some(SECRET_KEY_MAGIC.as_bytes()) {
        return Err(SignError::BadSecretKey);
    }
    let seed = lines.next().and_then(hex::decode::<32>).ok_or(SignError::BadSecretKey)?;
    if lines.next().is_some() {
        return Err(SignError::BadSecretKey);
    }
    Ok(SigningKey::from_bytes(&seed))
}

/// A public key file's text (`Display`): the key in hex and a newline.
pub struct PublicKeyFile<'a>(pub &'a VerifyingKey);

impl fmt::Display for PublicKeyFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", Hex(self.0.as_bytes()))
    }
}

/// A secret key file's text (`Display`).
pub struct SecretKeyFile<'a>(pub &'a SigningKey);

impl fmt::Display for SecretKeyFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{SECRET_KEY_MAGIC}\n{}", Hex(&self.0.to_bytes()))
    }
}

/// A signature file's contents. `Display` writes the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signed SHA-256 of the model file.
    pub sha256: [u8; 32],
    /// The signer's public key.
    pub key: [u8; 32],
    /// The Ed25519 signature of `sha256`.
    pub signature: [u8; 64],
}

impl Signature {
    /// Signs a model file's SHA-256.
    pub fn sign(key: &SigningKey, sha256: &[u8; 32]) -> Signature {
        Signature { sha256: *sha256, key: key.verifying_key().to_bytes(), signature: key.sign(sha256).to_bytes() }
    }

    /// Parses a signature file: the four lines in order (a final newline optional, nothing else).
    pub fn parse(text: &[u8]) -> Result<Signature, SignError> {
        if text.len() > MAX_SIGNATURE_FILE {
            return Err(SignError::Malformed("longer than 1024 bytes"));
        }
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let mut lines = text.split(|&b| b == b'\n');
        if lines.next() != Some(SIGNATURE_MAGIC.as_bytes()) {
            return Err(SignError::Malformed("the first line is not llamux-signature-v1"));
        }
        fn field<'a>(line: Option<&'a [u8]>, name: &[u8]) -> Option<&'a [u8]> {
            line?.strip_prefix(name)?.strip_prefix(b" ")
        }
        let sha256 = field(lines.next(), b"sha256")
            .and_then(hex::decode::<32>)
            .ok_or(SignError::Malformed("line 2 is not sha256 and 64 hex digits"))?;
        let key = field(lines.next(), b"key")
            .and_then(hex::decode::<32>)
            .ok_or(SignError::Malformed("line 3 is not key and 64 hex digits"))?;
        let signature = field(lines.next(), b"signature")
            .and_then(hex::decode::<64>)
            .ok_or(SignError::Malformed("line 4 is not signature and 128 hex digits"))?;
        if lines.next().is_some() {
            return Err(SignError::Malformed("more than four lines"));
        }
        Ok(Signature { sha256, key, signature })
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{SIGNATURE_MAGIC}")?;
        writeln!(f, "sha256 {}", Hex(&self.sha256))?;
        writeln!(f, "key {}", Hex(&self.key))?;
        writeln!(f, "signature {}", Hex(&self.signature))
    }
}

/// Checks that `signature_file` signs a model whose SHA-256 is `sha256` with the `trusted` key.
pub fn verify(trusted: &VerifyingKey, sha256: &[u8; 32], signature_file: &[u8]) -> Result<(), SignError> {
    let sig = Signature::parse(signature_file)?;
    if sig.sha256 != *sha256 {
        return Err(SignError::Tampered { file: *sha256, signed: sig.sha256 });
    }
    if sig.key != trusted.to_bytes() {
        return Err(SignError::WrongKey { trusted: trusted.to_bytes(), signer: sig.key });
    }
    let s = ed25519_dalek::Signature::from_bytes(&sig.signature);
    trusted.verify_strict(sha256, &s).map_err(|_| SignError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_then_verify_and_every_tampering_is_refused() {
        let k = key(7);
        let digest = crate::sha256(b"a model");
        let text = Signature::sign(&k, &digest).to_string();
        assert_eq!(text.lines().count(), 4);
        let vk = k.verifying_key();
        assert_eq!(verify(&vk, &digest, text.as_bytes()), Ok(()));
        // Another file.
        let other = crate::sha256(b"a modem");
        assert!(matches!(verify(&vk, &other, text.as_bytes()), Err(SignError::Tampered { .. })));
        // Another trusted key.
        let wrong = key(8).verifying_key();
        assert!(matches!(verify(&wrong, &digest, text.as_bytes()), Err(SignError::WrongKey { .. })));
        // The digest line changed to the other file's: the signature no longer verifies.
        let forged = text.replace(&Hex(&digest).to_string(), &Hex(&other).to_string());
        assert_eq!(verify(&vk, &other, forged.as_bytes()), Err(SignError::BadSignature));
        // One bit of the signature flipped.
        let mut sig = Signature::parse(text.as_bytes()).unwrap();
        sig.signature[10] ^= 1;
        assert_eq!(verify(&vk, &digest, sig.to_string().as_bytes()), Err(SignError::BadSignature));
        // The signer's key replaced by the trusted one's does not help a foreign signature.
        let foreign = Signature::sign(&key(9), &digest);
        let relabelled = Signature { key: vk.to_bytes(), ..foreign };
        assert_eq!(verify(&vk, &digest, relabelled.to_string().as_bytes()), Err(SignError::BadSignature));
    }

    #[test]
    fn malformed_files_are_refused_with_a_reason() {
        let k = key(1);
        let digest = crate::sha256(b"m");
        let good = Signature::sign(&k, &digest).to_string();
        let vk = k.verifying_key();
        assert_eq!(verify(&vk, &digest, good.trim_end().as_bytes()), Ok(()));
        for bad in [
            String::new(),
            "llamux-signature-v2\n".to_string() + &good[20..],
            good.replacen("sha256 ", "sha256  ", 1),
            good.replacen("key ", "kee ", 1),
            good.clone() + "extra\n",
            good.replacen("signature ", "signature 00", 1),
            "x".repeat(2000),
            good.replace('\n', "\r\n"),
        ] {
            let e = verify(&vk, &digest, bad.as_bytes()).unwrap_err();
            assert!(matches!(e, SignError::Malformed(_)), "{bad:?}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn key_files_round_trip() {
        let k = key(3);
        let secret = SecretKeyFile(&k).to_string();
        assert_eq!(parse_secret_key(secret.as_bytes()).unwrap().to_bytes(), k.to_bytes());
        let public = PublicKeyFile(&k.verifying_key()).to_string();
        assert_eq!(public.len(), 65);
        assert_eq!(parse_public_key(public.as_bytes()).unwrap(), k.verifying_key());
        // A secret key file is not a public key, nor the reverse.
        assert_eq!(parse_public_key(secret.as_bytes()), Err(SignError::BadPublicKey));
        assert!(matches!(parse_secret_key(public.as_bytes()), Err(SignError::BadSecretKey)));
        assert_eq!(parse_public_key(b"zz"), Err(SignError::BadPublicKey));
        // 64 hex digits that are not a curve point.
        let mut not_a_point = [2u8; 32];
        not_a_point[31] = 0x02;
        assert_eq!(parse_public_key(Hex(&not_a_point).to_string().as_bytes()), Err(SignError::BadPublicKey));
    }
}
