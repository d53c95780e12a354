//! `lsh`, the Llama Shell: an interactive shell (history kept across sessions, completion,
//! Ctrl-R) that runs ordinary command lines; a line starting with `?` (or `llama `) is a request
//! in plain words, for which one command is proposed and shown; it runs only when the user
//! chooses `r` (or edits it and presses Enter). `lsh SCRIPT [ARGS…]` and `lsh -c LINE` run
//! without a terminal; there, requests are refused.

use clap::Parser;
use llamux_client::{state, Backend, ClientError, Config};
use llamux_tools::audit::Audit;
use llamux_tools::common::{self, CommonArgs};
use llamux_tools::shell::complete::LshHelper;
use llamux_tools::shell::exec::{Flow, Shell};
use llamux_tools::shell::job::{self, Terminal};
use llamux_tools::shell::request::{self, Proposal, Source};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Editor};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Large buffers (the weights' copy, the KV caches) in transparent huge pages.
#[cfg(not(test))]
#[global_allocator]
static ALLOC: llamux_client::models::huge_pages::HugePageAlloc = llamux_client::models::huge_pages::HugePageAlloc;

/// The Llama Shell: a command shell whose `?` lines ask the model for a command.
#[derive(Parser, Debug)]
#[command(name = "lsh", version)]
struct Args {
    /// Run this command line and exit.
    #[arg(short = 'c', value_name = "LINE")]
    command: Option<String>,
    /// A script to run (then its arguments, as $1, $2, …); without one, commands are read from the terminal.
    script: Option<PathBuf>,
    /// The script's arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let a = Args::parse();
    // The configuration is checked at start, so that a bad one is one line, not a surprise later.
    let cfg = match a.common.config() {
        Ok(c) => c,
        Err(e) => return common::fail("lsh", e),
    };
    let code = if let Some(line) = &a.command {
        let mut sh = Shell::new(vec!["lsh".into()], None);
        match run_script(&mut sh, line, "-c") {
            Ok(n) => n,
            Err(e) => return common::fail("lsh", e),
        }
    } else if let Some(path) = &a.script {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return common::fail("lsh", format!("cannot read {}: {e}", path.display())),
        };
        let mut argv = vec![path.display().to_string()];
        argv.extend(a.args.iter().cloned());
        let mut sh = Shell::new(argv, None);
        match run_script(&mut sh, &text, &path.display().to_string()) {
            Ok(n) => n,
            Err(e) => return common::fail("lsh", e),
        }
    } else if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            return common::fail("lsh", format!("cannot read standard input: {e}"));
        }
        let mut sh = Shell::new(vec!["lsh".into()], None);
        match run_script(&mut sh, &text, "stdin") {
            Ok(n) => n,
            Err(e) => return common::fail("lsh", e),
        }
    } else {
        match interactive(cfg) {
            Ok(n) => n,
            Err(e) => return common::fail("lsh", e),
        }
    };
    ExitCode::from((code & 0xff) as u8)
}

/// Runs a script's lines; a syntax error stops it (status 2), as in sh.
fn run_script(sh: &mut Shell, text: &str, name: &str) -> Result<i32, String> {
    for (n, line) in text.lines().enumerate() {
        if request::request_text(line).is_some() {
            eprintln!("lsh: {name}: line {}: requests (?) need an interactive terminal; not run", n + 1);
            sh.vars.status = 1;
            continue;
        }
        match sh.run_line(line) {
            Ok(Flow::Next) => {}
            Ok(Flow::Exit(code)) => return Ok(code),
            Err(e) => return Err(format!("{name}: line {}: {e}", n + 1)),
        }
    }
    Ok(sh.vars.status)
}

/// `$LSH_HISTORY`, else `lsh_history` in the state directory.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("LSH_HISTORY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| state::dir().map(|d| d.join("lsh_history")))
}

/// `lsh:DIR$ ` (`# ` for root), the home directory shown as `~`.
fn prompt(sh: &Shell) -> String {
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| "?".into());
    let shown = match sh.vars.get("HOME").filter(|h| !h.is_empty() && h != "/") {
        Some(h) if cwd == h => "~".to_string(),
        Some(h) if cwd.starts_with(&format!("{h}/")) => format!("~{}", &cwd[h.len()..]),
        _ => cwd,
    };
    // SAFETY: geteuid has no preconditions.
    let sign = if unsafe { libc::geteuid() } == 0 { '#' } else { '$' };
    format!("lsh:{shown}{sign} ")
}

struct Session {
    sh: Shell,
    rl: Editor<LshHelper, FileHistory>,
    history: Option<PathBuf>,
    cfg: Config,
    backend: Option<Box<dyn Backend>>,
}

fn interactive(cfg: Config) -> Result<i32, String> {
    let term = Terminal::take();
    let mut sh = Shell::new(vec!["lsh".into()], term);
    sh.vars.set("SHELL", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "lsh".into()));
    let rcfg = rustyline::Config::builder()
        .max_history_size(5000)
        .map_err(|e| e.to_string())?
        .history_ignore_dups(true)
        .map_err(|e| e.to_string())?
        .completion_type(CompletionType::List)
        .build();
    let mut rl: Editor<LshHelper, FileHistory> =
        Editor::with_config(rcfg).map_err(|e| format!("cannot start the line editor: {e}"))?;
    rl.set_helper(Some(LshHelper::default()));
    let history = history_path();
    if let Some(p) = &history {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if p.exists() {
            if let Err(e) = rl.load_history(p) {
                eprintln!("lsh: cannot read the history {}: {e}", p.display());
            }
        }
    }
    let mut s = Session { sh, rl, history, cfg, backend: None };
    loop {
        let line = match s.rl.readline(&prompt(&s.sh)) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                s.sh.vars.status = 130;
                continue;
            }
            Err(ReadlineError::Eof) => return Ok(s.sh.vars.status),
            Err(e) => return Err(format!("reading the line: {e}")),
        };
        if line.trim().is_empty() {
            continue;
        }
        s.remember(&line);
        if let Some(req) = request::request_text(&line) {
            s.request(req);
            continue;
        }
        if let Some(code) = s.run(&line) {
            return Ok(code);
        }
    }
}

impl Session {
    /// Adds a line to the history, and to its file at once (a killed shell keeps it).
    fn remember(&mut self, line: &str) {
        if matches!(self.rl.add_history_entry(line), Ok(true)) {
            if let Some(p) = &self.history {
                if let Err(e) = self.rl.append_history(p) {
                    eprintln!("lsh: cannot write the history {}: {e}", p.display());
                }
            }
        }
    }

    /// Runs a command line; `Some(status)` when the shell is to exit.
    fn run(&mut self, line: &str) -> Option<i32> {
        match self.sh.run_line(line) {
            Ok(Flow::Next) => None,
            Ok(Flow::Exit(code)) => Some(code),
            Err(e) => {
                eprintln!("lsh: {e}");
                None
            }
        }
    }

    fn backend(&mut self) -> Result<&mut Box<dyn Backend>, ClientError> {
        if self.backend.is_none() {
            self.backend = Some(common::connect(&self.cfg)?);
        }
        self.backend.as_mut().ok_or_else(|| ClientError::Cancelled("no backend".into()))
    }

    /// A `?` request: propose, show, and ask.
    fn request(&mut self, req: &str) {
        self.sh.vars.status = 1;
        if req.is_empty() {
            eprintln!("lsh: the request is empty (write it after the ?)");
            return;
        }
        if req.len() > self.cfg.limits.max_prompt_bytes {
            eprintln!(
                "lsh: the request is {} bytes; the limit is {} (limits.max_prompt_bytes)",
                req.len(),
                self.cfg.limits.max_prompt_bytes
            );
            return;
        }
        // No log, no proposal.
        let mut audit = match Audit::open(&self.cfg) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("lsh: {e}");
                return;
            }
        };
        println!("(asking for a command…)");
        let cfg = self.cfg.clone();
        let proposal = match self.backend().and_then(|b| request::propose(&cfg, b.as_mut(), req)) {
            Ok(Ok(p)) => p,
            Ok(Err(why)) => {
                println!("No command: {why}.");
                return;
            }
            Err(e) => {
                eprintln!("lsh: {}", one_line(&e.to_string()));
                return;
            }
        };
        let source = match &proposal.source {
            Source::Measured(what) => format!("measured: {what}"),
            Source::Model => "proposed by the model".to_string(),
        };
        let log = |audit: &mut Audit, decision: &str, command: &str, status: Option<i32>| {
            let ev = json!({"tool": "lsh", "request": req, "command": command, "source": source,
                            "decision": decision, "status": status});
            if let Err(e) = audit.record(ev) {
                eprintln!("lsh: {e}");
                return false;
            }
            true
        };
        if !log(&mut audit, "proposed", &proposal.command, None) {
            return;
        }
        self.show(&proposal);
        loop {
            let choice = match self.rl.readline("Run it? [r]un, [e]dit, e[x]plain, [a]bort (default abort): ") {
                Ok(c) => c.trim().to_lowercase(),
                Err(_) => String::new(),
            };
            match choice.as_str() {
                "r" | "run" | "y" | "yes" => {
                    log(&mut audit, "run", &proposal.command, None);
                    self.remember(&proposal.command);
                    let exit = self.run(&proposal.command);
                    log(&mut audit, "finished", &proposal.command, Some(self.sh.vars.status));
                    if let Some(code) = exit {
                        std::process::exit(code);
                    }
                    return;
                }
                "e" | "edit" => {
                    let edited = match self.rl.readline_with_initial(&prompt(&self.sh), (&proposal.command, "")) {
                        Ok(l) if !l.trim().is_empty() => l,
                        _ => {
                            log(&mut audit, "aborted", &proposal.command, None);
                            println!("Not run.");
                            return;
                        }
                    };
                    log(&mut audit, "edited-and-run", &edited, None);
                    self.remember(&edited);
                    let exit = self.run(&edited);
                    log(&mut audit, "finished", &edited, Some(self.sh.vars.status));
                    if let Some(code) = exit {
                        std::process::exit(code);
                    }
                    return;
                }
                "x" | "explain" => self.explain(&proposal.command),
                _ => {
                    log(&mut audit, "aborted", &proposal.command, None);
                    println!("Not run.");
                    return;
                }
            }
        }
    }

    fn show(&self, p: &Proposal) {
        println!("Proposed command:\n    {}", p.command);
        match &p.source {
            Source::Measured(what) => println!("  (from the measurements: {what})"),
            Source::Model => println!("  (proposed by the model; check it before running it)"),
        }
        if let Some(why) = request::caution(&p.command) {
            println!("  caution: {why}");
        }
    }

    fn explain(&mut self, command: &str) {
        let cfg = self.cfg.clone();
        let mut out = std::io::stdout();
        let _ = job::take_interrupt();
        let mut printed = false;
        let r = self.backend().and_then(|b| {
            request::explain(&cfg, b.as_mut(), command, &mut |t| {
                if job::take_interrupt() {
                    return Err(ClientError::Cancelled("interrupted".into()));
                }
                printed |= !t.trim().is_empty();
                let _ = out.write_all(t.as_bytes()).and_then(|()| out.flush());
                Ok(())
            })
        });
        println!();
        match r {
            Ok(()) if !printed => println!("(the model gave no explanation)"),
            Ok(()) => {}
            Err(e) => eprintln!("lsh: {}", one_line(&e.to_string())),
        }
    }
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}
