//! `llmctl`: status of the backend; show and set the configuration and limits (the configuration
//! file, and the backend's own settings where it has them: the kernel's `/proc/llamux/config`);
//! load and unload the model where the backend keeps one loaded (the kernel module); the engine's
//! audit trail (the kernel module's `/proc/llamux/audit`).

use clap::{Parser, Subcommand};
use llamux_client::backend::Kernel;
use llamux_client::{config, BackendKind, ClientError};
use llamux_tools::common::{self, CommonArgs};
use std::process::ExitCode;

/// Control the Llamux backend and configuration.
#[derive(Parser, Debug)]
#[command(name = "llmctl", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// JSON output (status, limits, settings).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Which backend answers, and what it has loaded.
    Status,
    /// The configuration.
    Config {
        #[command(subcommand)]
        action: ConfigCmd,
    },
    /// The limits in force: the configuration's and the backend's own settings.
    Limits,
    /// Set one of the backend's own settings (kernel: a /proc/llamux/config key, e.g. max_tokens 64).
    Set {
        /// Setting.
        key: String,
        /// Value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Load a model (kernel backend, module not loaded: modprobe llamux model=PATH).
    Load {
        /// Model file or known name (default: the configuration's).
        model: Option<String>,
    },
    /// Unload the model (kernel backend: rmmod llamux).
    Unload,
    /// The engine's audit trail: one line per request (kernel backend: /proc/llamux/audit, root only).
    Audit,
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// The effective configuration (TOML) and the files it came from.
    Show,
    /// Set KEY (model, backend, sampling.temperature, limits.max_tokens, …) in the user's configuration file.
    Set {
        /// Key, `section.name` for sampling, limits and tools.
        key: String,
        /// Value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// The files read, in order.
    Path,
}

fn main() -> ExitCode {
    common::main("llmctl", || run(Args::parse()))
}

fn run(a: Args) -> Result<(), ClientError> {
    let cfg = a.common.config()?;
    match a.command {
        Cmd::Config { action: ConfigCmd::Show } => {
            let files: Vec<String> = cfg.sources.iter().map(|p| p.display().to_string()).collect();
            println!("# from: {}", if files.is_empty() { "defaults".into() } else { files.join(", ") });
            print!("{}", cfg.to_toml());
        }
        Cmd::Config { action: ConfigCmd::Path } => {
            for p in config::config_files() {
                println!("{}{}", p.display(), if p.exists() { "" } else { " (missing)" });
            }
        }
        Cmd::Config { action: ConfigCmd::Set { key, value } } => {
            let file = config::writable_config_file()
                .ok_or_else(|| ClientError::Config("no configuration file to write (HOME is not set)".into()))?;
            config::set_in_file(&file, &key, &value)?;
            println!("{key} = {value} in {}", file.display());
        }
        Cmd::Status => {
            let mut b = common::connect(&cfg)?;
            common::print_info(&b.status()?, a.json);
        }
        Cmd::Limits => {
            let mut info = vec![
                ("max_tokens".to_string(), cfg.limits.max_tokens.to_string()),
                ("n_ctx".to_string(), cfg.limits.n_ctx.to_string()),
                ("max_prompt_bytes".to_string(), cfg.limits.max_prompt_bytes.to_string()),
                ("timeout_s".to_string(), cfg.limits.timeout_s.to_string()),
            ];
            let mut b = common::connect(&cfg)?;
            info.extend(b.settings()?.into_iter().map(|(k, v)| (format!("{}.{k}", b.kind()), v)));
            common::print_info(&info, a.json);
        }
        Cmd::Set { key, value } => {
            let mut b = common::connect(&cfg)?;
            b.set_setting(&key, &value)?;
            println!("{key}={value}");
        }
        Cmd::Load { model } => {
            if cfg.backend.kind() == Some(BackendKind::Kernel) && !Kernel::present() {
                Kernel::load_module(model.as_deref().unwrap_or(&cfg.model))?;
                println!("loaded");
                return Ok(());
            }
            let mut b = common::connect(&cfg)?;
            b.load(model.as_deref().unwrap_or(&cfg.model))?;
            println!("loaded");
        }
        Cmd::Unload => {
            let mut b = common::connect(&cfg)?;
            b.unload()?;
            println!("unloaded");
        }
        Cmd::Audit => {
            let mut b = common::connect(&cfg)?;
            print!("{}", b.audit()?);
        }
    }
    Ok(())
}
