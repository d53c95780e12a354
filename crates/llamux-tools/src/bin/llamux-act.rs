//! `llamux-act`: carries out one allowlisted action for `llama`, confined. It checks that the
//! target is still the process that was measured (command name and start time), sets resource
//! limits, no new privileges, Landlock and a seccomp allowlist that permits only the one system
//! call (with its arguments pinned), then makes it.
//!
//! ```text
//! llamux-act signal PID SIGNAL COMM START_TIME
//! llamux-act renice PID NICE COMM START_TIME
//! llamux-act drop-caches
//! ```

use llamux_tools::confine::{self, Allowed};
use llamux_tools::probe;
use std::io::Write;
use std::process::ExitCode;

fn parse<T: std::str::FromStr>(s: Option<&String>, what: &str) -> Result<T, String> {
    s.and_then(|s| s.parse().ok()).ok_or_else(|| format!("missing or bad {what}"))
}

/// Refuses a pid that now names another process (it ended and the pid was reused).
fn same_process(pid: u32, comm: &str, start: u64) -> Result<(), String> {
    match probe::identity(pid) {
        Some((c, s)) if c == comm && s == start => Ok(()),
        Some((c, _)) => Err(format!("pid {pid} is now `{c}`, not the `{comm}` that was measured; nothing done")),
        None => Err(format!("pid {pid} (`{comm}`) has already ended; nothing done")),
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let usage = "usage: llamux-act signal PID SIGNAL COMM START | renice PID NICE COMM START | drop-caches";
    let verb = args.first().ok_or(usage)?;
    let allowed = match verb.as_str() {
        "signal" | "renice" => {
            if args.len() != 5 {
                return Err(usage.into());
            }
            let pid: u32 = parse(args.get(1), "pid")?;
            if pid <= 1 {
                return Err(format!("refusing to act on pid {pid}"));
            }
            let n: i32 = parse(args.get(2), if verb == "signal" { "signal" } else { "nice value" })?;
            same_process(pid, &args[3], parse(args.get(4), "start time")?)?;
            if verb == "signal" {
                if ![libc::SIGTERM, libc::SIGKILL, libc::SIGINT, libc::SIGSTOP, libc::SIGCONT].contains(&n) {
                    return Err(format!("signal {n} is not allowed"));
                }
                Allowed::Signal { pid, signal: n }
            } else {
                if !(0..=19).contains(&n) {
                    return Err(format!("nice value {n} is not allowed (0 to 19)"));
                }
                Allowed::Renice { pid }
            }
        }
        "drop-caches" if args.len() == 1 => Allowed::DropCaches,
        _ => return Err(usage.into()),
    };
    confine::limits()?;
    let report = confine::confine_thread(allowed)?;
    let how =
        format!("confined: no new privileges, seccomp allowlist, landlock {}, rlimits, no sockets", report.landlock);
    let os_err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    match allowed {
        Allowed::Signal { pid, signal } => {
            // SAFETY: kill takes plain integers.
            if unsafe { libc::kill(pid as i32, signal) } != 0 {
                return Err(os_err(&format!("kill({pid}, {signal})")));
            }
        }
        Allowed::Renice { pid } => {
            let nice: i32 = parse(args.get(2), "nice value")?;
            // SAFETY: setpriority takes plain integers.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, nice) } != 0 {
                return Err(os_err(&format!("setpriority({pid}, {nice})")));
            }
        }
        Allowed::DropCaches => {
            // SAFETY: sync has no arguments.
            unsafe { libc::sync() };
            // Neither created nor truncated: Landlock grants writing this file, nothing more.
            std::fs::OpenOptions::new()
                .write(true)
                .open(confine::DROP_CACHES)
                .and_then(|mut f| f.write_all(b"1"))
                .map_err(|e| format!("{}: {e}", confine::DROP_CACHES))?;
        }
    }
    Ok(how)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(how) => {
            let _ = writeln!(std::io::stdout(), "{how}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "llamux-act: error: {e}");
            ExitCode::FAILURE
        }
    }
}
