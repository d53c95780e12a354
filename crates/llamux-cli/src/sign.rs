//! `llamux keygen`, `llamux sign`, `llamux verify`: Ed25519 signatures of model files (the format
//! and the check are `llamux_trust::sign`'s, shared with the kernel module; where keys and
//! signatures are found is `llamux_client::models::trust`'s, shared with the tools).

use anyhow::{bail, Context, Result};
use llamux_client::models::trust;
use llamux_trust::sign::{self, PublicKeyFile, SecretKeyFile, Signature, SigningKey};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Arguments of `llamux keygen`.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// The secret key file to write (mode 0600); the public key goes to KEY.pub.
    #[arg(short = 'o', long = "output", default_value = "llamux.key")]
    output: PathBuf,
}

/// Arguments of `llamux sign`.
#[derive(clap::Args)]
pub struct SignArgs {
    /// The model to sign (a path or a known name).
    #[arg(short = 'm', long = "model")]
    model: String,
    /// The secret key file (from `llamux keygen`).
    #[arg(long = "key")]
    key: PathBuf,
    /// Where to write the signature (default: MODEL.sig).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

/// Arguments of `llamux verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The model to check (a path or a known name).
    #[arg(short = 'm', long = "model")]
    model: String,
    /// The trusted public key: 64 hex digits or a KEY.pub file (default: the configured one,
    /// `$LLAMUX_TRUSTED_KEY` or `trusted_key` in the configuration).
    #[arg(long = "pubkey")]
    pubkey: Option<String>,
    /// The signature file (default: MODEL.sig).
    #[arg(long = "signature")]
    signature: Option<PathBuf>,
}

/// Creates `path` with `mode`, refusing to replace an existing file.
fn create_new(path: &Path, mode: u32, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `llamux keygen`.
pub fn keygen(a: KeygenArgs) -> Result<()> {
    let mut public = a.output.as_os_str().to_owned();
    public.push(".pub");
    let public = PathBuf::from(public);
    if a.output.exists() || public.exists() {
        bail!("{} or {} exists already; not replacing a key", a.output.display(), public.display());
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness from the system: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    create_new(&a.output, 0o600, &SecretKeyFile(&key).to_string())?;
    create_new(&public, 0o644, &PublicKeyFile(&key.verifying_key()).to_string())?;
    println!("secret key: {} (keep it private)", a.output.display());
    println!("public key: {} ({})", public.display(), PublicKeyFile(&key.verifying_key()).to_string().trim());
    Ok(())
}

/// Runs `llamux sign`.
pub fn sign(a: SignArgs) -> Result<()> {
    let path = crate::resolve_model(&a.model)?;
    let text = std::fs::read(&a.key).with_context(|| format!("cannot read the key {}", a.key.display()))?;
    let key = sign::parse_secret_key(&text).map_err(|e| anyhow::anyhow!("{}: {e}", a.key.display()))?;
    let file = crate::mapped::MappedFile::open(&path)?;
    let sig = Signature::sign(&key, &llamux_trust::sha256(file.bytes()));
    let out = a.output.unwrap_or_else(|| trust::signature_path(&path));
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Written beside, then renamed: a reader never sees half a signature.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(sig.to_string().as_bytes())?;
    tmp.persist(&out).with_context(|| format!("cannot store {}", out.display()))?;
    println!("{}: signed by {}, signature in {}", path.display(), llamux_trust::hex::Hex(&sig.key), out.display());
    Ok(())
}

/// Runs `llamux verify`: exit status 0 for a good signature, 1 (and why) otherwise.
pub fn verify(a: VerifyArgs) -> Result<()> {
    let path = crate::resolve_model(&a.model)?;
    let key = match &a.pubkey {
        Some(k) => trust::parse_key(k)?,
        None => trust::configured_key()?
            .context("no trusted key: give --pubkey, or set LLAMUX_TRUSTED_KEY or trusted_key in the configuration")?,
    };
    let file = crate::mapped::MappedFile::open(&path)?;
    trust::verify(&path, file.bytes(), &key, a.signature.as_deref())?;
    println!("{}: good signature by {}", path.display(), llamux_trust::hex::Hex(key.as_bytes()));
    Ok(())
}
