//! Where the tools keep state: `$LLAMUX_STATE_DIR`, else `$XDG_STATE_HOME/llamux`, else
//! `~/.local/state/llamux`; and the in-process backend's lifetime counters kept there (the kernel
//! module and the server count in memory; an in-process engine lives one command, so its counters
//! live in a file).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The state directory (not created).
pub fn dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LLAMUX_STATE_DIR").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p).join("llamux"));
    }
    let home = std::env::var_os("HOME").filter(|p| !p.is_empty())?;
    Some(PathBuf::from(home).join(".local").join("state").join("llamux"))
}

/// Counters of every in-process generation.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    /// Requests answered.
    pub requests: u64,
    /// Prompt tokens, cached ones included.
    pub prompt_tokens: u64,
    /// Prompt tokens whose state came from the prompt cache.
    pub cached_prompt_tokens: u64,
    /// Generated tokens.
    pub tokens: u64,
    /// Time spent on prompts, in microseconds.
    pub prompt_us: u64,
    /// Time spent decoding, in microseconds.
    pub decode_us: u64,
    /// First-token latencies added up, in microseconds.
    pub first_token_us: u64,
}

impl Counters {
    fn path() -> Option<PathBuf> {
        dir().map(|d| d.join("inprocess-stats.json"))
    }

    /// The counters so far (zero when there are none yet or the file is unreadable).
    pub fn read() -> Counters {
        Self::path()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Adds `d` to the stored counters. Best effort: statistics never fail a request.
    pub fn add(d: &Counters) {
        let Some(path) = Self::path() else { return };
        let Some(parent) = path.parent() else { return };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        let mut c = Self::read();
        c.requests += d.requests;
        c.prompt_tokens += d.prompt_tokens;
        c.cached_prompt_tokens += d.cached_prompt_tokens;
        c.tokens += d.tokens;
        c.prompt_us += d.prompt_us;
        c.decode_us += d.decode_us;
        c.first_token_us += d.first_token_us;
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(parent) else { return };
        if serde_json::to_writer(tmp.as_file_mut(), &c).is_ok() {
            let _ = tmp.persist(&path);
        }
    }
}
