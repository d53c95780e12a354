//! The backends: one trait, three hosts. [`connect`] picks one: the kernel module when
//! `/proc/llamux/prompt` is there, else a `llamux serve` answering at the configured URL, else the
//! engine in this process.

mod inproc;
mod kernel;
mod serve;

pub use inproc::InProcess;
pub use kernel::Kernel;
pub use serve::Serve;

use crate::config::{Config, Sampling};
use crate::error::{ClientError, Result};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// A concrete backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// `llamux.ko` through `/proc/llamux/*`.
    Kernel,
    /// A running `llamux serve`, over HTTP.
    Serve,
    /// The engine in this process, the model memory-mapped.
    InProcess,
}

impl BackendKind {
    /// The name used by `--backend` and the configuration.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Kernel => "kernel",
            BackendKind::Serve => "serve",
            BackendKind::InProcess => "in-process",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--backend` / `backend =`: a backend, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendSelect {
    /// Kernel if loaded, else serve if running, else in-process.
    Auto,
    /// Exactly this one.
    Only(BackendKind),
}

impl std::str::FromStr for BackendSelect {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.trim() {
            "auto" => BackendSelect::Auto,
            "kernel" => BackendSelect::Only(BackendKind::Kernel),
            "serve" | "http" => BackendSelect::Only(BackendKind::Serve),
            "in-process" | "inprocess" | "local" | "mmap" => BackendSelect::Only(BackendKind::InProcess),
            other => return Err(format!("unknown backend {other:?} (one of auto, kernel, serve, in-process)")),
        })
    }
}

impl BackendSelect {
    /// The backend this names, if it names one.
    pub fn kind(self) -> Option<BackendKind> {
        match self {
            BackendSelect::Auto => None,
            BackendSelect::Only(k) => Some(k),
        }
    }
}

impl Serialize for BackendSelect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.kind().map_or("auto", BackendKind::name))
    }
}

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message { role, content: content.into() }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Request {
    /// The conversation, formatted with the model's chat template; with `raw`, the messages'
    /// contents are concatenated and continued as plain text.
    pub messages: Vec<Message>,
    /// Plain continuation instead of chat.
    pub raw: bool,
    /// Longest answer, in tokens.
    pub max_tokens: usize,
    /// Sampling.
    pub sampling: Sampling,
    /// The answer ends where one of these begins (not included).
    pub stop: Vec<String>,
}

impl Request {
    /// A chat request with the configuration's sampling and limits.
    pub fn chat(cfg: &Config, messages: Vec<Message>) -> Self {
        Request {
            messages,
            raw: false,
            max_tokens: cfg.limits.max_tokens,
            sampling: cfg.sampling.clone(),
            stop: Vec::new(),
        }
    }

    /// Total prompt bytes.
    pub fn prompt_bytes(&self) -> usize {
        self.messages.iter().map(|m| m.content.len()).sum()
    }

    /// Refuses what no backend can answer: no text, or more than `max_bytes`.
    pub fn check(&self, max_bytes: usize) -> Result<()> {
        if self.messages.iter().all(|m| m.content.trim().is_empty()) {
            return Err(ClientError::BadInput("the prompt is empty".into()));
        }
        let n = self.prompt_bytes();
        if n > max_bytes {
            return Err(ClientError::BadInput(format!(
                "the prompt is {n} bytes; the limit is {max_bytes} (limits.max_prompt_bytes)"
            )));
        }
        if self.max_tokens == 0 {
            return Err(ClientError::BadInput("max_tokens must be at least 1".into()));
        }
        Ok(())
    }

    /// The plain text of a raw request.
    pub fn raw_text(&self) -> String {
        self.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n")
    }
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The model ended it, or a stop string did.
    Stop,
    /// `max_tokens`, or a full context.
    Length,
}

/// A finished answer.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Its whole text (what was streamed).
    pub text: String,
    /// Why it ended.
    pub finish: Finish,
    /// Prompt tokens (when the backend tells).
    pub prompt_tokens: Option<usize>,
    /// Generated tokens (when the backend tells).
    pub tokens: Option<usize>,
    /// Prompt tokens whose state came from a cache instead of being computed.
    pub cached_tokens: usize,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Named values, in order (status, statistics, settings).
pub type Info = Vec<(String, String)>;

/// Receives the answer's text as it is generated; an error stops generation.
pub type Sink<'a> = dyn FnMut(&str) -> Result<()> + 'a;

/// A host of the engine.
pub trait Backend {
    /// Which one.
    fn kind(&self) -> BackendKind;

    /// Generates an answer, handing its text to `sink` as it comes.
    fn generate(&mut self, req: &Request, sink: &mut Sink<'_>) -> Result<Outcome>;

    /// What is loaded and running.
    fn status(&mut self) -> Result<Info>;

    /// Counters: requests, tokens, speeds.
    fn stats(&mut self) -> Result<Info>;

    /// The backend's own settings (for the kernel: `/proc/llamux/config`).
    fn settings(&mut self) -> Result<Info>;

    /// Changes one of the backend's own settings.
    fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        let _ = (key, value);
        Err(ClientError::Unsupported {
            backend: self.kind(),
            what: "change settings (use the configuration file)".into(),
        })
    }

    /// Loads `model` where the backend keeps one loaded.
    fn load(&mut self, model: &str) -> Result<()> {
        let _ = model;
        Err(ClientError::Unsupported { backend: self.kind(), what: "load a model (it has no resident model)".into() })
    }

    /// Unloads the model where the backend keeps one loaded.
    fn unload(&mut self) -> Result<()> {
        Err(ClientError::Unsupported { backend: self.kind(), what: "unload a model (it has no resident model)".into() })
    }

    /// The engine's audit lines, oldest first (`llamux_trust::audit`'s format): the kernel's
    /// `/proc/llamux/audit` (root only). `llamux serve` writes its lines to its standard error.
    fn audit(&mut self) -> Result<String> {
        Err(ClientError::Unsupported {
            backend: self.kind(),
            what: "read an audit ring (llamux serve writes its audit lines to its standard error)".into(),
        })
    }
}

/// The backend `cfg` asks for (`auto`: kernel, then serve, then in-process).
pub fn connect(cfg: &Config) -> Result<Box<dyn Backend>> {
    match cfg.backend.kind() {
        Some(BackendKind::Kernel) => Ok(Box::new(Kernel::open(cfg)?)),
        Some(BackendKind::Serve) => Ok(Box::new(Serve::open(cfg)?)),
        Some(BackendKind::InProcess) => Ok(Box::new(InProcess::open(cfg)?)),
        None => {
            if Kernel::present() {
                return Ok(Box::new(Kernel::open(cfg)?));
            }
            if Serve::answers(&cfg.serve_url, Duration::from_millis(300)) {
                return Ok(Box::new(Serve::open(cfg)?));
            }
            Ok(Box::new(InProcess::open(cfg)?))
        }
    }
}

/// A message as the core's chat templates take it.
pub(crate) fn core_message(m: &Message) -> llamux_core::chat::Message {
    use llamux_core::chat;
    let role = match m.role {
        Role::System => chat::Role::System,
        Role::User => chat::Role::User,
        Role::Assistant => chat::Role::Assistant,
    };
    chat::Message { role, content: m.content.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("kernel".parse::<BackendSelect>().unwrap().kind(), Some(BackendKind::Kernel));
        assert_eq!("in-process".parse::<BackendSelect>().unwrap().kind(), Some(BackendKind::InProcess));
        assert_eq!("auto".parse::<BackendSelect>().unwrap().kind(), None);
        assert!("gpu".parse::<BackendSelect>().unwrap_err().contains("unknown backend \"gpu\""));
    }

    #[test]
    fn requests_are_checked() {
        let cfg = Config::default();
        let r = Request::chat(&cfg, vec![Message::new(Role::User, "  ")]);
        assert!(matches!(r.check(100), Err(ClientError::BadInput(_))));
        let r = Request::chat(&cfg, vec![Message::new(Role::User, "x".repeat(101))]);
        assert!(r.check(100).unwrap_err().to_string().contains("101 bytes"));
        let r = Request::chat(&cfg, vec![Message::new(Role::User, "hi")]);
        assert!(r.check(100).is_ok());
    }
}
