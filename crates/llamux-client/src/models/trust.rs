//! Signed models on the host side: which key is trusted, where a model's signature lives, and
//! the check every userspace engine host (the `llamux` commands that run a model, `llamux
//! serve`, the tools' in-process backend) makes before using a model. The verification itself
//! is `llamux_trust::sign`, the code the kernel module runs too.
//!
//! The trusted key is `$LLAMUX_TRUSTED_KEY` when set (empty: none), else the configuration's
//! `trusted_key`; either is 64 hex digits or the path of a file holding them (`KEY.pub` from
//! `llamux keygen`). With a key, a model must have a signature `MODEL.sig` beside it made with
//! that key for the file as it is; without one, models are not checked.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use llamux_trust::sign::{self, SignError};
use std::io::Read;
use std::path::{Path, PathBuf};

pub use llamux_trust::sign::VerifyingKey;

/// Where the signature of `model` is kept: `MODEL.sig` beside it.
pub fn signature_path(model: &Path) -> PathBuf {
    let mut p = model.as_os_str().to_owned();
    p.push(".sig");
    PathBuf::from(p)
}

/// A key given as 64 hex digits, or as the path of a file holding them.
pub fn parse_key(spec: &str) -> Result<VerifyingKey> {
    let spec = spec.trim();
    if spec.len() == 64 && spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        return sign::parse_public_key(spec.as_bytes()).map_err(|e| anyhow::anyhow!("trusted key {spec}: {e}"));
    }
    let text = read_small(Path::new(spec), 4096).with_context(|| format!("cannot read the public key {spec}"))?;
    sign::parse_public_key(&text).map_err(|e| anyhow::anyhow!("{spec}: {e}"))
}

/// The trusted key configured (`$LLAMUX_TRUSTED_KEY`, else the configuration), if any.
pub fn configured_key() -> Result<Option<VerifyingKey>> {
    let spec = match std::env::var("LLAMUX_TRUSTED_KEY") {
        Ok(v) if v.trim().is_empty() => return Ok(None),
        Ok(v) => v,
        Err(_) => match Config::load().map_err(anyhow::Error::from)?.trusted_key {
            Some(k) => k,
            None => return Ok(None),
        },
    };
    parse_key(&spec).map(Some)
}

/// Reads a file of at most `max` bytes.
fn read_small(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut text = Vec::new();
    std::fs::File::open(path)?.take(max + 1).read_to_end(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("longer than {max} bytes")));
    }
    Ok(text)
}

/// Checks that `bytes`, the contents of the model file at `path`, are signed with `key` by the
/// signature at `signature` (default: [`signature_path`]).
pub fn verify(path: &Path, bytes: &[u8], key: &VerifyingKey, signature: Option<&Path>) -> Result<()> {
    let sig_path = signature.map_or_else(|| signature_path(path), Path::to_path_buf);
    let sig = match read_small(&sig_path, sign::MAX_SIGNATURE_FILE as u64) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{} is not signed (no {}) and a trusted key is configured", path.display(), sig_path.display())
        }
        Err(e) => bail!("cannot read the signature {}: {e}", sig_path.display()),
    };
    let digest = llamux_trust::sha256(bytes);
    sign::verify(key, &digest, &sig)
        .map_err(|e: SignError| anyhow::anyhow!("{}: signature refused: {e}", path.display()))
}

/// With a trusted key configured, refuses `bytes` (the model file at `path`) unless signed with it.
pub fn enforce(path: &Path, bytes: &[u8]) -> Result<()> {
    match configured_key()? {
        Some(key) => verify(path, bytes, &key, None),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llamux_trust::sign::{PublicKeyFile, Signature, SigningKey};

    #[test]
    fn signed_tampered_unsigned_and_foreign_models() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        let bytes = b"GGUF pretend model".to_vec();
        std::fs::write(&model, &bytes).unwrap();
        let k = SigningKey::from_bytes(&[5; 32]);
        let vk = k.verifying_key();
        let e = verify(&model, &bytes, &vk, None).unwrap_err().to_string();
        assert!(e.contains("is not signed (no ") && e.contains("m.gguf.sig"), "{e}");
        std::fs::write(signature_path(&model), Signature::sign(&k, &llamux_trust::sha256(&bytes)).to_string()).unwrap();
        verify(&model, &bytes, &vk, None).unwrap();
        let mut tampered = bytes.clone();
        tampered[3] ^= 1;
        let e = verify(&model, &tampered, &vk, None).unwrap_err().to_string();
        assert!(e.contains("signature refused: the model was changed after signing"), "{e}");
        let other = SigningKey::from_bytes(&[6; 32]).verifying_key();
        let e = verify(&model, &bytes, &other, None).unwrap_err().to_string();
        assert!(e.contains("not by the trusted key"), "{e}");
        // Keys by value and by file.
        let pubfile = dir.path().join("k.pub");
        std::fs::write(&pubfile, PublicKeyFile(&vk).to_string()).unwrap();
        assert_eq!(parse_key(pubfile.to_str().unwrap()).unwrap(), vk);
        assert_eq!(parse_key(PublicKeyFile(&vk).to_string().trim()).unwrap(), vk);
        assert!(parse_key("/nonexistent/k.pub").unwrap_err().to_string().contains("cannot read the public key"));
        assert!(parse_key(model.to_str().unwrap()).unwrap_err().to_string().contains("not an Ed25519 public key"));
    }
}
