//! The allowlisted actions, with concrete arguments taken from the measurements, and their
//! execution: a separate small program, `llamux-act`, that checks the target is still the process
//! that was measured, confines itself (see [`crate::confine`]) and makes the one system call;
//! under `bubblewrap` as well (read-only root, no network) when it is installed and works.

use crate::findings;
use crate::intent::{Intent, Target};
use crate::probe::{Proc, Snapshot};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Send this signal.
    Signal(i32),
    /// Set this nice value.
    Renice(i32),
    /// Drop the page cache.
    DropCaches,
}

/// A concrete action.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// What.
    pub kind: Kind,
    /// The process, for signal and renice.
    pub target: Option<Proc>,
}

/// A signal's name.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGKILL => "SIGKILL",
        libc::SIGINT => "SIGINT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGCONT => "SIGCONT",
        _ => "signal",
    }
}

fn who(p: &Proc) -> String {
    format!("pid {} `{}` ({:.0}% of one CPU, {} resident)", p.pid, p.comm, p.cpu_pct, findings::human(p.rss))
}

/// The action an intent names, resolved against the measurements; `Err` says why there is none.
pub fn resolve(intent: &Intent, snap: &Snapshot, exclude: &[u32]) -> Result<Option<Action>, String> {
    let pick = |t: &Target| -> Result<Proc, String> {
        let found = match t {
            Target::TopCpu => findings::top_cpu(snap, exclude, 10.0)
                .ok_or_else(|| "no process is using much CPU (none above 10% of one CPU), so there is nothing to act on".to_string())?,
            Target::TopMemory => findings::top_rss(snap, exclude).ok_or_else(|| "no process to act on".to_string())?,
            Target::Pid(n) => findings::blameable(snap, exclude)
                .find(|p| p.pid == *n)
                .ok_or_else(|| format!("pid {n} is not a process this tool acts on (not running, a kernel thread, init, or this tool's own caller)"))?,
            Target::Name(name) => findings::blameable(snap, exclude)
                .filter(|p| p.comm.to_lowercase() == *name)
                .max_by(|a, b| a.cpu_pct.total_cmp(&b.cpu_pct))
                .ok_or_else(|| format!("no process named {name:?} to act on"))?,
        };
        Ok(found.clone())
    };
    Ok(match intent {
        Intent::Question => None,
        Intent::Signal { target, signal } => Some(Action { kind: Kind::Signal(*signal), target: Some(pick(target)?) }),
        Intent::Renice { target, nice } => {
            let p = pick(target)?;
            // Lowering a priority never raises it: past the asked value, the lowest there is.
            let to = if p.nice < *nice { *nice } else { 19 };
            if p.nice >= 19 {
                return Err(format!("pid {} `{}` already runs at the lowest priority (nice 19)", p.pid, p.comm));
            }
            Some(Action { kind: Kind::Renice(to), target: Some(p) })
        }
        Intent::DropCaches => Some(Action { kind: Kind::DropCaches, target: None }),
    })
}

impl Action {
    /// What it will do, in words.
    pub fn describe(&self) -> String {
        match (&self.kind, &self.target) {
            (Kind::Signal(s), Some(p)) => format!("send {} to {}", signal_name(*s), who(p)),
            (Kind::Renice(n), Some(p)) => format!("lower the priority of {} from nice {} to nice {n}", who(p), p.nice),
            (Kind::DropCaches, _) => "drop the page cache (sync, then write 1 to /proc/sys/vm/drop_caches)".into(),
            _ => "nothing".into(),
        }
    }

    /// The equivalent shell command.
    pub fn command(&self) -> String {
        match (&self.kind, &self.target) {
            (Kind::Signal(s), Some(p)) => format!("kill -{} {}", signal_name(*s).trim_start_matches("SIG"), p.pid),
            (Kind::Renice(n), Some(p)) => format!("renice -n {n} -p {}", p.pid),
            (Kind::DropCaches, _) => "sync; echo 1 > /proc/sys/vm/drop_caches".into(),
            _ => String::new(),
        }
    }

    /// The action as JSON, for the audit log.
    pub fn to_json(&self) -> Value {
        let (name, arg) = match self.kind {
            Kind::Signal(s) => ("signal", json!(signal_name(s))),
            Kind::Renice(n) => ("renice", json!(n)),
            Kind::DropCaches => ("drop_caches", Value::Null),
        };
        let mut v = json!({"action": name, "arg": arg, "command": self.command()});
        if let Some(p) = &self.target {
            v["pid"] = json!(p.pid);
            v["comm"] = json!(p.comm);
            v["cpu_pct"] = json!((p.cpu_pct * 10.0).round() / 10.0);
            v["rss"] = json!(p.rss);
        }
        v
    }

    /// `llamux-act`'s arguments.
    fn act_args(&self) -> Vec<String> {
        match (&self.kind, &self.target) {
            (Kind::Signal(s), Some(p)) => {
                vec!["signal".into(), p.pid.to_string(), s.to_string(), p.comm.clone(), p.start_time.to_string()]
            }
            (Kind::Renice(n), Some(p)) => {
                vec!["renice".into(), p.pid.to_string(), n.to_string(), p.comm.clone(), p.start_time.to_string()]
            }
            _ => vec!["drop-caches".into()],
        }
    }

    /// Runs the action confined; `Ok` with how it was confined, `Err` with why it failed.
    pub fn execute(&self, sandbox: &str) -> Result<String, String> {
        let act = act_binary()?;
        let use_bwrap = match sandbox {
            "builtin" => false,
            "bwrap" => {
                if !bwrap_works() {
                    return Err("tools.sandbox is bwrap, but bubblewrap is not installed or cannot run here".into());
                }
                true
            }
            _ => bwrap_works(),
        };
        let mut cmd = if use_bwrap {
            let mut c = Command::new("bwrap");
            c.args([
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--unshare-net",
                "--unshare-ipc",
                "--unshare-uts",
                "--die-with-parent",
                "--new-session",
            ]);
            if self.kind == Kind::DropCaches {
                c.args(["--bind", crate::confine::DROP_CACHES, crate::confine::DROP_CACHES]);
            }
            c.arg("--").arg(&act);
            c
        } else {
            Command::new(&act)
        };
        cmd.args(self.act_args()).stdin(std::process::Stdio::null());
        let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", act.display()))?;
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.status.success() {
            Ok(if use_bwrap { format!("bubblewrap; {said}") } else { said })
        } else {
            Err(if err.is_empty() { format!("llamux-act failed ({})", out.status) } else { err })
        }
    }
}

/// `llamux-act`: `$LLAMUX_ACT_BIN`, else beside this program, else on `PATH`.
fn act_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("LLAMUX_ACT_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) =
        std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("llamux-act"))).filter(|p| p.exists())
    {
        return Ok(p);
    }
    Ok(PathBuf::from("llamux-act"))
}

/// Whether bubblewrap is installed and can set up its sandbox here (it cannot in some containers).
fn bwrap_works() -> bool {
    Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-net", "--", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
