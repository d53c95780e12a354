//! `llamux.ko` through `/proc/llamux/*`: a prompt is written to a fresh open of `prompt` (one
//! session per open file) and the answer read from the same descriptor until end of file; closing
//! it early cancels the generation. Sampling and limits are the module's (`/proc/llamux/config`,
//! shared by every user), so a request's own sampling is not applied; its stop strings and
//! `max_tokens` are (a stop string or the limit ends the read, which cancels the rest). Chat
//! requests are formatted with the chat template of the module's model file when it is readable
//! here, else the configured `template`.

use super::{core_message, Backend, BackendKind, Finish, Info, Outcome, Request, Sink};
use crate::config::Config;
use crate::error::{ClientError, Result};
use crate::text::TextOut;
use llamux_core::chat::ChatTemplate;
use llamux_core::gguf::Gguf;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const B: BackendKind = BackendKind::Kernel;

/// The module's largest prompt (`LX_MAX_PROMPT`).
const MAX_PROMPT: usize = 64 * 1024;

/// The kernel backend.
pub struct Kernel {
    dir: PathBuf,
    template: Option<ChatTemplate>,
    max_prompt_bytes: usize,
}

fn io_err(what: &str, e: std::io::Error) -> ClientError {
    let hint = match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => " (root only)",
        Some(libc::EBUSY) => " (every session is in use: max_sessions)",
        Some(libc::EINVAL) => " (refused by the module; dmesg says why)",
        Some(libc::E2BIG) => " (longer than the module takes)",
        _ => "",
    };
    ClientError::backend(B, format!("{what}: {e}{hint}"))
}

/// `key: value` or `key=value` lines.
fn parse_pairs(text: &str) -> Info {
    text.lines()
        .filter_map(|l| l.split_once(": ").or_else(|| l.split_once('=')))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

impl Kernel {
    /// The module's directory: `$LLAMUX_PROC_DIR` (for tests), else `/proc/llamux`.
    fn proc_dir() -> PathBuf {
        std::env::var_os("LLAMUX_PROC_DIR").map_or_else(|| PathBuf::from("/proc/llamux"), PathBuf::from)
    }

    /// Whether the module is loaded.
    pub fn present() -> bool {
        Self::proc_dir().join("prompt").exists()
    }

    /// Loads the module with `model` (`modprobe llamux model=PATH`); for when it is not loaded, so
    /// that there is no backend to call yet.
    pub fn load_module(model: &str) -> Result<()> {
        let path = crate::models::registry::resolve(model).map_err(|e| ClientError::NoModel(format!("{e:#}")))?;
        let arg = format!("model={}", path.display());
        run(&["modprobe", "llamux", &arg])
    }

    /// The loaded module (its status must be readable).
    pub fn open(cfg: &Config) -> Result<Self> {
        let dir = Self::proc_dir();
        if !dir.join("prompt").exists() {
            return Err(ClientError::Unavailable {
                backend: B,
                reason: format!("{} is missing (is llamux.ko loaded?)", dir.display()),
            });
        }
        let mut me = Kernel { dir, template: None, max_prompt_bytes: cfg.limits.max_prompt_bytes.min(MAX_PROMPT) };
        me.template = match &cfg.template {
            Some(name) => Some(
                ChatTemplate::from_name(name)
                    .ok_or_else(|| ClientError::Config(format!("unknown chat template {name:?}")))?,
            ),
            None => me.model_template(),
        };
        Ok(me)
    }

    fn read(&self, name: &str) -> Result<String> {
        let p = self.dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| io_err(&p.display().to_string(), e))
    }

    /// The chat template of the module's model file, when this process can read it.
    fn model_template(&self) -> Option<ChatTemplate> {
        let status = parse_pairs(&self.read("status").ok()?);
        let path = status.iter().find(|(k, _)| k == "model").map(|(_, v)| PathBuf::from(v))?;
        template_of(&path)
    }
}

fn template_of(path: &Path) -> Option<ChatTemplate> {
    let map = crate::models::mapped::MappedFile::open(path).ok()?;
    let g = Gguf::parse(map.bytes()).ok()?;
    g.get_str("tokenizer.chat_template").and_then(ChatTemplate::detect)
}

impl Backend for Kernel {
    fn kind(&self) -> BackendKind {
        B
    }

    fn generate(&mut self, req: &Request, sink: &mut Sink<'_>) -> Result<Outcome> {
        req.check(self.max_prompt_bytes)?;
        let text = if req.raw {
            req.raw_text()
        } else {
            let t = self.template.ok_or_else(|| {
                ClientError::BadInput(
                    "the module's model has no known chat template (set `template` in the configuration)".into(),
                )
            })?;
            t.apply(&req.messages.iter().map(core_message).collect::<Vec<_>>(), true)
        };
        if text.len() > MAX_PROMPT {
            return Err(ClientError::BadInput(format!(
                "the prompt is {} bytes; the module takes {MAX_PROMPT}",
                text.len()
            )));
        }
        let t0 = Instant::now();
        let p = self.dir.join("prompt");
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .map_err(|e| io_err("opening the prompt file", e))?;
        f.write_all(text.as_bytes()).map_err(|e| io_err("writing the prompt", e))?;
        let mut out = TextOut::new(req.stop.iter().map(|s| s.as_bytes().to_vec()).collect());
        let mut all = String::new();
        let mut buf = [0u8; 1024];
        // Without token counts, max_tokens is approximated by bytes (about four per token).
        let byte_limit = req.max_tokens.saturating_mul(4).max(16);
        let mut read = 0usize;
        let mut finish = Finish::Stop;
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("reading the answer", e)),
            };
            read += n;
            let s = out.push(&buf[..n]);
            if !s.is_empty() {
                all.push_str(&s);
                sink(&s)?;
            }
            if out.stopped() {
                break;
            }
            if read >= byte_limit {
                finish = Finish::Length;
                break;
            }
        }
        // Dropping the file cancels whatever is left.
        let rest = out.finish();
        if !rest.is_empty() {
            all.push_str(&rest);
            sink(&rest)?;
        }
        Ok(Outcome { text: all, finish, prompt_tokens: None, tokens: None, cached_tokens: 0, elapsed: t0.elapsed() })
    }

    fn status(&mut self) -> Result<Info> {
        let mut out = vec![("backend".to_string(), B.name().to_string())];
        out.extend(parse_pairs(&self.read("status")?));
        Ok(out)
    }

    fn stats(&mut self) -> Result<Info> {
        Ok(parse_pairs(&self.read("stats")?))
    }

    fn settings(&mut self) -> Result<Info> {
        Ok(parse_pairs(&self.read("config")?))
    }

    fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() || key.contains(['=', ' ', '\n']) || value.contains([' ', '\n']) {
            return Err(ClientError::BadInput(format!("{key}={value}: not a key=value setting")));
        }
        let p = self.dir.join("config");
        std::fs::write(&p, format!("{key}={value}\n")).map_err(|e| io_err(&format!("setting {key}={value}"), e))
    }

    fn load(&mut self, model: &str) -> Result<()> {
        // Loaded already: another model means unloading first.
        Err(ClientError::backend(B, format!("llamux.ko is loaded already; `llmctl unload` first to load {model}")))
    }

    fn unload(&mut self) -> Result<()> {
        run(&["rmmod", "llamux"])
    }

    fn audit(&mut self) -> Result<String> {
        self.read("audit")
    }
}

fn run(argv: &[&str]) -> Result<()> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| ClientError::backend(B, format!("cannot run {}: {e}", argv[0])))?;
    if out.status.success() {
        return Ok(());
    }
    Err(ClientError::backend(B, format!("{} failed: {}", argv.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let s = parse_pairs("model: /lib/firmware/llamux/model.gguf\nsessions: 0/32\nengine: one step\n");
        assert_eq!(s[0], ("model".into(), "/lib/firmware/llamux/model.gguf".into()));
        assert_eq!(s[1], ("sessions".into(), "0/32".into()));
        let c = parse_pairs("n_ctx=512\ntemp=0.000\n");
        assert_eq!(c, vec![("n_ctx".into(), "512".into()), ("temp".into(), "0.000".into())]);
    }
}
