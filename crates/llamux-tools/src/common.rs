//! What every tool shares: the backend and model flags, loading the configuration, reading a
//! prompt (an argument, or `-` for standard input) within the limit, and one-line errors.

use llamux_client::{backend, Backend, BackendSelect, ClientError, Config};
use std::io::Read;
use std::process::ExitCode;

/// Flags every tool takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Backend: auto (kernel if loaded, else a running llamux serve, else in-process), kernel, serve, in-process.
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Model file or known model name (default: the configuration's, smollm2-135m-instruct).
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub model: Option<String>,
    /// URL of llamux serve (default: the configuration's, http://127.0.0.1:8080).
    #[arg(long = "url", value_name = "URL")]
    pub url: Option<String>,
}

impl CommonArgs {
    /// The configuration with these flags applied.
    pub fn config(&self) -> Result<Config, ClientError> {
        let mut cfg = Config::load()?;
        if let Some(b) = &self.backend {
            cfg.backend = b.parse::<BackendSelect>().map_err(ClientError::Config)?;
        }
        if let Some(m) = &self.model {
            if m.trim().is_empty() {
                return Err(ClientError::NoModel("the model name is empty".into()));
            }
            cfg.model = m.clone();
        }
        if let Some(u) = &self.url {
            cfg.serve_url = u.clone();
        }
        Ok(cfg)
    }
}

/// Connects the configured backend.
pub fn connect(cfg: &Config) -> Result<Box<dyn Backend>, ClientError> {
    backend::connect(cfg)
}

/// The prompt from an argument, or from standard input for `-`: refused when empty or longer
/// than `max` bytes (reading stops there).
pub fn prompt_text(arg: Option<&str>, max: usize, what: &str) -> Result<String, ClientError> {
    let text = match arg {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .take(max as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| ClientError::BadInput(format!("cannot read the {what} from standard input: {e}")))?;
            if buf.len() > max {
                return Err(ClientError::BadInput(format!(
                    "the {what} is longer than {max} bytes (limits.max_prompt_bytes)"
                )));
            }
            String::from_utf8(buf).map_err(|_| ClientError::BadInput(format!("the {what} is not UTF-8")))?
        }
        Some(s) => s.to_string(),
        None => return Err(ClientError::BadInput(format!("no {what} given (see --help)"))),
    };
    if text.trim().is_empty() {
        return Err(ClientError::BadInput(format!("the {what} is empty")));
    }
    if text.len() > max {
        return Err(ClientError::BadInput(format!(
            "the {what} is {} bytes; the limit is {max} (limits.max_prompt_bytes)",
            text.len()
        )));
    }
    Ok(text)
}

/// Prints `tool: error: …` (one line) and returns failure.
pub fn fail(tool: &str, e: impl std::fmt::Display) -> ExitCode {
    let msg = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    eprintln!("{tool}: error: {msg}");
    ExitCode::FAILURE
}

/// A tool's `main`: quiet on a closed stdout, `run`'s error as one line and a failure.
pub fn main<E: std::fmt::Display>(tool: &str, run: impl FnOnce() -> Result<(), E>) -> ExitCode {
    quiet_on_closed_stdout();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(tool, e),
    }
}

/// A reader that went away (`llminfer … | head -1`) ends the program quietly, as Unix tools do.
pub fn quiet_on_closed_stdout() {
    // SAFETY: sets the default disposition of one signal, before any thread is started.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Prints named values as `key: value` lines, or one JSON object.
pub fn print_info(info: &[(String, String)], json: bool) {
    if json {
        let mut m = serde_json::Map::new();
        for (k, v) in info {
            let val = v
                .parse::<i64>()
                .map(serde_json::Value::from)
                .or_else(|_| v.parse::<f64>().map(serde_json::Value::from))
                .unwrap_or_else(|_| serde_json::Value::from(v.as_str()));
            m.insert(k.clone(), val);
        }
        println!("{}", serde_json::Value::Object(m));
    } else {
        for (k, v) in info {
            println!("{k}: {v}");
        }
    }
}
