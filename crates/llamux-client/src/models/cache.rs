//! Where downloaded models and assets live: `$LLAMUX_CACHE`, else `$XDG_CACHE_HOME/llamux`, else
//! `~/.cache/llamux`.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// The cache root (not created).
pub fn root() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LLAMUX_CACHE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p).join("llamux"));
    }
    let home = std::env::var_os("HOME")
        .filter(|p| !p.is_empty())
        .context("neither LLAMUX_CACHE, XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("llamux"))
}

/// A subdirectory of the cache, created if missing.
pub fn dir(name: &str) -> Result<PathBuf> {
    let d = root()?.join(name);
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create cache directory {}", d.display()))?;
    Ok(d)
}
