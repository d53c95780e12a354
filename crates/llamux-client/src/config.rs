//! Configuration: built-in defaults, then `/etc/llamux/config.toml`, then
//! `~/.config/llamux/config.toml` (`$XDG_CONFIG_HOME/llamux/config.toml`), each overriding what it
//! sets; `LLAMUX_CONFIG=FILE` replaces both files (an empty value: defaults only). Command-line
//! flags override the result.
//!
//! ```toml
//! model = "smollm2-135m-instruct"   # a known name or a path
//! backend = "auto"                  # auto, kernel, serve, in-process
//! serve_url = "http://127.0.0.1:8080"
//! threads = 0                       # in-process: 0 = one per physical core
//! template = "chatml"               # chat format instead of the model's own (optional)
//! trusted_key = "/etc/llamux/models.pub"  # models must be signed by this key (64 hex digits or a file)
//!
//! [sampling]
//! temperature = 0.0
//! top_k = 40
//! top_p = 0.95
//! min_p = 0.05
//! repeat_penalty = 1.1
//! seed = 0
//!
//! [limits]
//! max_tokens = 160                  # longest answer
//! n_ctx = 1024                      # in-process context
//! max_prompt_bytes = 8192           # longer questions are refused
//! timeout_s = 60                    # serve: longest wait for an answer
//!
//! [tools]
//! audit_log = "/var/log/llamux/audit.log"
//! sandbox = "auto"                  # auto (bubblewrap when it works, else built-in), bwrap, builtin
//! sample_ms = 500                   # how long llama measures CPU use
//! ```

use crate::backend::BackendSelect;
use crate::error::{ClientError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The model the tools use unless told otherwise: small and instruction-tuned.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// Sampling settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sampling {
    /// Temperature (0 = greedy).
    #[serde(serialize_with = "short_f32")]
    pub temperature: f32,
    /// Top-k (0 = off).
    pub top_k: usize,
    /// Top-p (1 = off).
    #[serde(serialize_with = "short_f32")]
    pub top_p: f32,
    /// Min-p (0 = off).
    #[serde(serialize_with = "short_f32")]
    pub min_p: f32,
    /// Repetition penalty (1 = off).
    #[serde(serialize_with = "short_f32")]
    pub repeat_penalty: f32,
    /// Random seed.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 0.0, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1.1, seed: 0 }
    }
}

/// An f32 as its shortest decimal (0.95, not 0.949999988079071).
fn short_f32<S: serde::Serializer>(x: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(x.to_string().parse().unwrap_or(f64::from(*x)))
}

/// Limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Longest answer, in tokens.
    pub max_tokens: usize,
    /// Context of the in-process engine.
    pub n_ctx: usize,
    /// Longest prompt or question, in bytes.
    pub max_prompt_bytes: usize,
    /// Longest wait for a server's answer, in seconds.
    pub timeout_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_tokens: 160, n_ctx: 1024, max_prompt_bytes: 8192, timeout_s: 60 }
    }
}

/// Settings of the tools themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tools {
    /// Audit log (default: `/var/log/llamux/audit.log` for root, else under `$XDG_STATE_HOME`).
    pub audit_log: Option<PathBuf>,
    /// How actions are confined: `auto`, `bwrap` or `builtin`.
    pub sandbox: String,
    /// How long CPU use is sampled, in milliseconds.
    pub sample_ms: u64,
}

impl Default for Tools {
    fn default() -> Self {
        Tools { audit_log: None, sandbox: "auto".into(), sample_ms: 500 }
    }
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Model: a known name or a path.
    pub model: String,
    /// Which backend.
    pub backend: BackendSelect,
    /// Where `llamux serve` listens.
    pub serve_url: String,
    /// In-process threads (0 = one per physical core).
    pub threads: usize,
    /// Chat format overriding the model's own.
    pub template: Option<String>,
    /// The public key models must be signed with (64 hex digits, or a file holding them); see
    /// [`crate::models::trust`].
    pub trusted_key: Option<String>,
    /// Sampling.
    pub sampling: Sampling,
    /// Limits.
    pub limits: Limits,
    /// Tools.
    pub tools: Tools,
    /// The files that were read, in order.
    #[serde(skip)]
    pub sources: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: DEFAULT_MODEL.into(),
            backend: BackendSelect::Auto,
            serve_url: "http://127.0.0.1:8080".into(),
            threads: 0,
            template: None,
            trusted_key: None,
            sampling: Sampling::default(),
            limits: Limits::default(),
            tools: Tools::default(),
            sources: Vec::new(),
        }
    }
}

/// One file's settings: everything optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    model: Option<String>,
    backend: Option<String>,
    serve_url: Option<String>,
    threads: Option<usize>,
    template: Option<String>,
    trusted_key: Option<String>,
    #[serde(default)]
    sampling: SamplingLayer,
    #[serde(default)]
    limits: LimitsLayer,
    #[serde(default)]
    tools: ToolsLayer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplingLayer {
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsLayer {
    max_tokens: Option<usize>,
    n_ctx: Option<usize>,
    max_prompt_bytes: Option<usize>,
    timeout_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsLayer {
    audit_log: Option<PathBuf>,
    sandbox: Option<String>,
    sample_ms: Option<u64>,
}

macro_rules! set {
    ($dst:expr, $src:expr) => {
        if let Some(v) = $src {
            $dst = v;
        }
    };
}

impl Config {
    /// Defaults, then the configuration files.
    pub fn load() -> Result<Config> {
        let mut cfg = Config::default();
        for path in config_files() {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    cfg.apply_toml(&text).map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
                    cfg.sources.push(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ClientError::Config(format!("cannot read {}: {e}", path.display()))),
            }
        }
        Ok(cfg)
    }

    /// Applies one file's settings over these, when the result is valid (else nothing changes).
    pub fn apply_toml(&mut self, text: &str) -> std::result::Result<(), String> {
        let mut next = self.clone();
        next.apply_layer(text)?;
        *self = next;
        Ok(())
    }

    fn apply_layer(&mut self, text: &str) -> std::result::Result<(), String> {
        let l: Layer = toml::from_str(text).map_err(|e| e.message().to_string())?;
        set!(self.model, l.model);
        if let Some(b) = l.backend {
            self.backend = b.parse()?;
        }
        set!(self.serve_url, l.serve_url);
        set!(self.threads, l.threads);
        if l.template.is_some() {
            self.template = l.template;
        }
        if l.trusted_key.is_some() {
            self.trusted_key = l.trusted_key;
        }
        let s = &mut self.sampling;
        set!(s.temperature, l.sampling.temperature);
        set!(s.top_k, l.sampling.top_k);
        set!(s.top_p, l.sampling.top_p);
        set!(s.min_p, l.sampling.min_p);
        set!(s.repeat_penalty, l.sampling.repeat_penalty);
        set!(s.seed, l.sampling.seed);
        let m = &mut self.limits;
        set!(m.max_tokens, l.limits.max_tokens);
        set!(m.n_ctx, l.limits.n_ctx);
        set!(m.max_prompt_bytes, l.limits.max_prompt_bytes);
        set!(m.timeout_s, l.limits.timeout_s);
        if l.tools.audit_log.is_some() {
            self.tools.audit_log = l.tools.audit_log;
        }
        set!(self.tools.sandbox, l.tools.sandbox);
        set!(self.tools.sample_ms, l.tools.sample_ms);
        self.validate()
    }

    /// Checks every value's range.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.model.trim().is_empty() {
            return Err("model is empty".into());
        }
        let s = &self.sampling;
        if !(0.0..=10.0).contains(&s.temperature) {
            return Err(format!("sampling.temperature {} is out of range (0 to 10)", s.temperature));
        }
        if !(0.0..=1.0).contains(&s.top_p) || !(0.0..=1.0).contains(&s.min_p) {
            return Err("sampling.top_p and sampling.min_p must be between 0 and 1".into());
        }
        if !(0.0..=10.0).contains(&s.repeat_penalty) || s.repeat_penalty == 0.0 {
            return Err(format!("sampling.repeat_penalty {} is out of range (above 0, at most 10)", s.repeat_penalty));
        }
        let m = &self.limits;
        if m.max_tokens == 0 || m.max_tokens > 65_536 {
            return Err(format!("limits.max_tokens {} is out of range (1 to 65536)", m.max_tokens));
        }
        if !(64..=32_768).contains(&m.n_ctx) {
            return Err(format!("limits.n_ctx {} is out of range (64 to 32768)", m.n_ctx));
        }
        if m.max_prompt_bytes == 0 || m.max_prompt_bytes > 64 << 10 {
            return Err(format!("limits.max_prompt_bytes {} is out of range (1 to 65536)", m.max_prompt_bytes));
        }
        if m.timeout_s == 0 || m.timeout_s > 3600 {
            return Err(format!("limits.timeout_s {} is out of range (1 to 3600)", m.timeout_s));
        }
        if !["auto", "bwrap", "builtin"].contains(&self.tools.sandbox.as_str()) {
            return Err(format!("tools.sandbox {:?} is not one of auto, bwrap, builtin", self.tools.sandbox));
        }
        if !(50..=10_000).contains(&self.tools.sample_ms) {
            return Err(format!("tools.sample_ms {} is out of range (50 to 10000)", self.tools.sample_ms));
        }
        if self.trusted_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err("trusted_key is empty".into());
        }
        if self.threads > 1024 {
            return Err(format!("threads {} is out of range (0 to 1024)", self.threads));
        }
        Ok(())
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// The files read, in order: `$LLAMUX_CONFIG` alone when set, else the system file then the user's.
pub fn config_files() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("LLAMUX_CONFIG") {
        return if p.is_empty() { Vec::new() } else { vec![PathBuf::from(p)] };
    }
    let mut files = vec![PathBuf::from("/etc/llamux/config.toml")];
    files.extend(user_config_file());
    files
}

/// The file `llmctl config set` writes: `$LLAMUX_CONFIG` when set, else the user's file.
pub fn writable_config_file() -> Option<PathBuf> {
    match std::env::var_os("LLAMUX_CONFIG") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        Some(_) => None,
        None => user_config_file(),
    }
}

fn user_config_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|p| !p.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("llamux").join("config.toml"))
}

/// Sets `key` (`model`, `sampling.temperature`, `limits.max_tokens`, …) to `value` in the file
/// at `path`, keeping its other settings; the file must still be a valid configuration after.
pub fn set_in_file(path: &Path, key: &str, value: &str) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ClientError::Config(format!("cannot read {}: {e}", path.display()))),
    };
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| ClientError::Config(format!("{}: {}", path.display(), e.message())))?;
    // The value as TOML (numbers, booleans), else as a string.
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let (leaf, sections) = match parts.split_last() {
        Some((leaf, sections)) if !leaf.is_empty() && sections.len() <= 1 => (*leaf, sections),
        _ => return Err(ClientError::Config(format!("{key:?} is not a configuration key"))),
    };
    let mut at = &mut table;
    for s in sections {
        let entry = at.entry(s.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = entry.as_table_mut().ok_or_else(|| ClientError::Config(format!("{s} is not a section")))?;
    }
    // Floats written as integers (`temperature = 1`) stay floats where the key wants one.
    let parsed = match parsed {
        toml::Value::Integer(i) if is_float_key(leaf) => toml::Value::Float(i as f64),
        v => v,
    };
    at.insert(leaf.to_string(), parsed);
    let out = toml::to_string(&table).map_err(|e| ClientError::Config(e.to_string()))?;
    Config::default().apply_toml(&out).map_err(|e| ClientError::Config(format!("{key} = {value}: {e}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClientError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, out).map_err(|e| ClientError::Config(format!("cannot write {}: {e}", path.display())))
}

fn is_float_key(k: &str) -> bool {
    matches!(k, "temperature" | "top_p" | "min_p" | "repeat_penalty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_and_typos_are_refused() {
        let mut c = Config::default();
        c.apply_toml("model = \"x.gguf\"\n[sampling]\ntemperature = 0.5\n").unwrap();
        assert_eq!(c.model, "x.gguf");
        assert_eq!(c.sampling.temperature, 0.5);
        assert_eq!(c.sampling.top_k, 40);
        c.apply_toml("[limits]\nmax_tokens = 7\n").unwrap();
        assert_eq!((c.model.as_str(), c.limits.max_tokens), ("x.gguf", 7));
        assert!(c.apply_toml("modle = \"y\"").unwrap_err().contains("modle"));
        assert!(c.apply_toml("backend = \"carrier-pigeon\"").unwrap_err().contains("carrier-pigeon"));
        assert!(c.apply_toml("[limits]\nmax_tokens = 0").is_err());
        assert!(c.apply_toml("[tools]\nsandbox = \"none\"").is_err());
        c.apply_toml("backend = \"in-process\"").unwrap();
        assert_eq!(c.backend.kind(), Some(crate::backend::BackendKind::InProcess));
    }

    #[test]
    fn set_keeps_other_keys_and_checks_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/config.toml");
        set_in_file(&f, "model", "a.gguf").unwrap();
        set_in_file(&f, "sampling.temperature", "1").unwrap();
        set_in_file(&f, "limits.max_tokens", "32").unwrap();
        let mut c = Config::default();
        c.apply_toml(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!((c.model.as_str(), c.sampling.temperature, c.limits.max_tokens), ("a.gguf", 1.0, 32));
        assert!(set_in_file(&f, "limits.max_tokens", "0").is_err());
        assert!(set_in_file(&f, "nonsense", "1").is_err());
        assert!(set_in_file(&f, "a.b.c", "1").is_err());
        c.apply_toml(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(c.limits.max_tokens, 32);
    }
}
