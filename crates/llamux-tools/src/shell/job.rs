//! Foreground jobs and the terminal. Interactively, `lsh` is in a process group of its own and
//! owns the terminal; each pipeline runs in a new process group that is handed the terminal
//! while it runs (by the shell and by the first child, so there is no race), so Ctrl-C and Ctrl-\
//! reach the job and not the shell; the shell takes the terminal back when the job ends. The shell
//! catches SIGINT (it only sets a flag, read to stop a model's answer) and ignores SIGQUIT,
//! SIGTSTP, SIGTTIN and SIGTTOU; children get the default dispositions back, except SIGTSTP:
//! `lsh` has no job control, so Ctrl-Z does not stop a job it could not resume.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether Ctrl-C was pressed since the last call (clears the flag).
pub fn take_interrupt() -> bool {
    INTERRUPTED.swap(false, Ordering::SeqCst)
}

/// The controlling terminal of an interactive shell.
pub struct Terminal {
    fd: OwnedFd,
    shell_pgid: libc::pid_t,
}

fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler is SIG_IGN, SIG_DFL
    // or `on_sigint`, which only stores to an atomic (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

impl Terminal {
    /// Takes the terminal on standard input, if it is one: waits to be in the foreground, sets the
    /// signal dispositions, moves the shell into a process group of its own and makes it the
    /// terminal's foreground group.
    pub fn take() -> Option<Terminal> {
        let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
        let raw = fd.as_raw_fd();
        // SAFETY: isatty, tcgetpgrp, getpgrp and kill take plain values; `raw` is open.
        unsafe {
            if libc::isatty(raw) != 1 {
                return None;
            }
            // Started in the background: stop until put in the foreground, as shells do.
            loop {
                let fg = libc::tcgetpgrp(raw);
                let me = libc::getpgrp();
                if fg < 0 || fg == me {
                    break;
                }
                libc::kill(-me, libc::SIGTTIN);
            }
        }
        set_disposition(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        for sig in [libc::SIGQUIT, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
            set_disposition(sig, libc::SIG_IGN);
        }
        // SAFETY: setpgid, getpid and tcsetpgrp take plain values. setpgid fails for a session
        // leader (a login shell), which is in a group of its own already.
        let shell_pgid = unsafe {
            libc::setpgid(0, 0);
            let pg = libc::getpgrp();
            libc::tcsetpgrp(raw, pg);
            pg
        };
        Some(Terminal { fd, shell_pgid })
    }

    /// Prepares `cmd` to run in the job's process group (`pgid` 0: a new group, led by it), to
    /// take the terminal, and with the default signal dispositions.
    pub fn prepare(&self, cmd: &mut Command, pgid: libc::pid_t) {
        cmd.process_group(pgid);
        let tty = self.fd.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // async-signal-safe functions (getpgrp, tcsetpgrp, sigaction) on plain values; `tty` is
        // a descriptor of the parent, still open in the child (it is closed on exec).
        unsafe {
            cmd.pre_exec(move || {
                // SIGTTOU is still ignored here, so a background group may take the terminal.
                libc::tcsetpgrp(tty, libc::getpgrp());
                for sig in [libc::SIGQUIT, libc::SIGTTIN, libc::SIGTTOU] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                Ok(())
            });
        }
    }

    /// Hands the terminal to a job's process group.
    pub fn give(&self, pgid: libc::pid_t) {
        // SAFETY: tcsetpgrp takes plain values; the descriptor is open.
        unsafe { libc::tcsetpgrp(self.fd.as_raw_fd(), pgid) };
    }

    /// Takes the terminal back for the shell.
    pub fn reclaim(&self) {
        self.give(self.shell_pgid);
    }
}
