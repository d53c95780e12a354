//! Confinement of an executed action (inside `llamux-act`, before it acts): resource limits, no
//! new privileges, a Landlock ruleset where the kernel offers it (no file access at all, except
//! `/proc/sys/vm/drop_caches` for dropping caches; no TCP where the ABI covers it), then a seccomp
//! BPF allowlist: the few system calls a finished Rust program needs, plus exactly the one the
//! action makes, with its arguments pinned (`kill(pid, sig)` for that pid and signal only);
//! everything else, `socket()` included, fails with `EPERM`.

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use std::collections::BTreeMap;

/// What the confined process may still do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// `kill(pid, signal)`.
    Signal {
        /// Target.
        pid: u32,
        /// Signal number.
        signal: i32,
    },
    /// `setpriority(PRIO_PROCESS, pid, _)`.
    Renice {
        /// Target.
        pid: u32,
    },
    /// `sync()`, and writing `/proc/sys/vm/drop_caches`.
    DropCaches,
}

/// The path dropping caches writes.
pub const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// How the confinement went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Landlock: `full`, `partial` or `unavailable`.
    pub landlock: &'static str,
}

/// Per-process limits: no core files, few descriptors, little memory and CPU time, no children.
pub fn limits() -> Result<(), String> {
    let set = |res, cur: u64, name: &str| {
        let lim = libc::rlimit { rlim_cur: cur as libc::rlim_t, rlim_max: cur as libc::rlim_t };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(format!("setrlimit({name}): {}", std::io::Error::last_os_error()));
        }
        Ok(())
    };
    set(libc::RLIMIT_CORE, 0, "RLIMIT_CORE")?;
    set(libc::RLIMIT_NOFILE, 32, "RLIMIT_NOFILE")?;
    set(libc::RLIMIT_NPROC, 0, "RLIMIT_NPROC")?;
    set(libc::RLIMIT_CPU, 5, "RLIMIT_CPU")?;
    set(libc::RLIMIT_FSIZE, 1 << 20, "RLIMIT_FSIZE")?;
    set(libc::RLIMIT_AS, 1 << 30, "RLIMIT_AS")?;
    Ok(())
}

fn cond(arg: u8, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value).map_err(|e| e.to_string())
}

/// The seccomp filter for `allowed`.
pub fn filter(allowed: Allowed) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for sc in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_close,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigaction,
        libc::SYS_sigaltstack,
        libc::SYS_futex,
        libc::SYS_brk,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_sched_yield,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_clock_gettime,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_lseek,
    ] {
        rules.insert(sc, Vec::new());
    }
    let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| e.to_string());
    match allowed {
        Allowed::Signal { pid, signal } => {
            rules.insert(libc::SYS_kill, vec![rule(vec![cond(0, u64::from(pid))?, cond(1, signal as u32 as u64)?])?]);
        }
        Allowed::Renice { pid } => {
            let who = vec![cond(0, libc::PRIO_PROCESS as u64)?, cond(1, u64::from(pid))?];
            rules.insert(libc::SYS_setpriority, vec![rule(who.clone())?]);
            rules.insert(libc::SYS_getpriority, vec![rule(who)?]);
        }
        Allowed::DropCaches => {
            rules.insert(libc::SYS_sync, Vec::new());
            rules.insert(libc::SYS_openat, Vec::new()); // which files: Landlock's rules
        }
    }
    let arch = std::env::consts::ARCH.try_into().map_err(|e| format!("seccomp: {e:?}"))?;
    let f = SeccompFilter::new(rules, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, arch)
        .map_err(|e| format!("seccomp: {e}"))?;
    f.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))
}

/// No new privileges, Landlock, seccomp — for the calling thread (and what it executes). Call
/// [`limits`] too for the process-wide resource limits.
pub fn confine_thread(allowed: Allowed) -> Result<Report, String> {
    let prog = filter(allowed)?;
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("PR_SET_NO_NEW_PRIVS: {}", std::io::Error::last_os_error()));
    }
    let abi = ABI::V5;
    let ruleset = || -> Result<RulesetStatus, landlock::RulesetError> {
        let created = Ruleset::default()
            .handle_access(AccessFs::from_all(abi))?
            .handle_access(AccessNet::from_all(abi))?
            .create()?;
        let created = match allowed {
            Allowed::DropCaches => created.add_rules(path_beneath_rules([DROP_CACHES], AccessFs::WriteFile))?,
            _ => created,
        };
        Ok(created.restrict_self()?.ruleset)
    };
    let landlock = match ruleset().map_err(|e| format!("landlock: {e}"))? {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "unavailable",
    };
    seccompiler::apply_filter(&prog).map_err(|e| format!("seccomp: {e}"))?;
    Ok(Report { landlock })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A confined thread cannot open sockets or files, nor signal any process but its target, and
    /// can signal its target with the allowed signal only.
    #[test]
    fn a_confined_thread_can_do_only_its_action() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let other_pid = other.id();
        let t = std::thread::spawn(move || {
            let report = confine_thread(Allowed::Signal { pid, signal: libc::SIGTERM }).unwrap();
            let errno = || std::io::Error::last_os_error().raw_os_error();
            // SAFETY: plain system calls with integer arguments or a NUL-terminated path.
            unsafe {
                let sock = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                let sock_err = errno();
                let fd = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY);
                let open_err = errno();
                let wrong_pid = libc::kill(other_pid as i32, libc::SIGTERM);
                let wrong_sig = libc::kill(pid as i32, libc::SIGKILL);
                let right = libc::kill(pid as i32, libc::SIGTERM);
                (report, sock, sock_err, fd, open_err, wrong_pid, wrong_sig, right)
            }
        });
        let (report, sock, sock_err, fd, open_err, wrong_pid, wrong_sig, right) = t.join().unwrap();
        let mut other = other;
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!((sock, sock_err), (-1, Some(libc::EPERM)), "socket() must be denied");
        assert_eq!((fd, open_err), (-1, Some(libc::EPERM)), "open() must be denied");
        assert_eq!(wrong_pid, -1, "kill() of another pid must be denied");
        assert_eq!(wrong_sig, -1, "kill() with another signal must be denied");
        assert_eq!(right, 0, "the allowed kill() must work");
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(["full", "partial", "unavailable"].contains(&report.landlock));
    }
}
