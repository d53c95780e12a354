//! The one error type every backend reports, so that a tool says the same thing whichever host
//! ran the model.

use crate::backend::BackendKind;
use std::fmt;

/// What went wrong, as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// A configuration file or value is invalid.
    Config(String),
    /// The request itself is unusable (empty, too long, …).
    BadInput(String),
    /// The model cannot be found, read or loaded.
    NoModel(String),
    /// The backend is not there (module not loaded, server not running, …).
    Unavailable {
        /// Which backend.
        backend: BackendKind,
        /// Why.
        reason: String,
    },
    /// The backend cannot do this.
    Unsupported {
        /// Which backend.
        backend: BackendKind,
        /// What was asked.
        what: String,
    },
    /// The backend failed while working on a request.
    Backend {
        /// Which backend.
        backend: BackendKind,
        /// Its message.
        message: String,
    },
    /// The consumer of the stream stopped it (for example, stdout was closed).
    Cancelled(String),
}

impl ClientError {
    /// A failure of `backend` with `message`.
    pub fn backend(backend: BackendKind, message: impl Into<String>) -> Self {
        ClientError::Backend { backend, message: message.into() }
    }
}

/// Newlines would break the one-line promise: they become `; `.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, l) in s.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(l);
    }
    out
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ClientError::Config(m) => format!("configuration: {m}"),
            ClientError::BadInput(m) => m.clone(),
            ClientError::NoModel(m) => format!("no model: {m}"),
            ClientError::Unavailable { backend, reason } => format!("the {backend} backend is unavailable: {reason}"),
            ClientError::Unsupported { backend, what } => format!("the {backend} backend cannot {what}"),
            ClientError::Backend { backend, message } => format!("{backend} backend: {message}"),
            ClientError::Cancelled(m) => format!("cancelled: {m}"),
        };
        f.write_str(&one_line(&s))
    }
}

impl std::error::Error for ClientError {}

/// Results of the client library.
pub type Result<T> = std::result::Result<T, ClientError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let e = ClientError::backend(BackendKind::Serve, "first\n\n  second\n");
        assert_eq!(e.to_string(), "serve backend: first; second");
        let e = ClientError::Unsupported { backend: BackendKind::InProcess, what: "unload the model".into() };
        assert_eq!(e.to_string(), "the in-process backend cannot unload the model");
    }
}
