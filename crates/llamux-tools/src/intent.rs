//! What a request asks for, by rules: one of a short list of allowlisted actions, or a question.
//! The action's arguments (which process) come from the measurements, never from the model.

use crate::findings;
use crate::probe::{Proc, Snapshot};

/// Which process an action is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The one using the most CPU.
    TopCpu,
    /// The one holding the most memory.
    TopMemory,
    /// This pid.
    Pid(u32),
    /// The process with this command name.
    Name(String),
}

/// What the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Explain (no action).
    Question,
    /// Send a signal to a process.
    Signal {
        /// Which.
        target: Target,
        /// `SIGTERM` or `SIGKILL`.
        signal: i32,
    },
    /// Lower a process's priority.
    Renice {
        /// Which.
        target: Target,
        /// The new nice value.
        nice: i32,
    },
    /// Drop the page cache (`/proc/sys/vm/drop_caches`).
    DropCaches,
}

const QUESTION_WORDS: &[&str] =
    &["why", "what", "how", "when", "where", "which", "who", "is", "are", "does", "did", "should"];
const NEGATIONS: &[&str] = &["don't", "dont", "do not", "never", "not kill", "without killing"];
const KILL: &[&str] = &["kill", "stop", "terminate", "end", "quit", "murder", "get rid of", "shut down"];
const FORCE: &[&str] = &["force", "-9", "sigkill", "hard", "forcefully"];
const RENICE: &[&str] = &[
    "renice",
    "nice",
    "lower priority",
    "lower the priority",
    "lower its priority",
    "deprioritize",
    "deprioritise",
    "throttle",
];
const DROP: &[&str] = &[
    "drop cache",
    "drop caches",
    "drop the cache",
    "drop the page cache",
    "clear cache",
    "clear the cache",
    "free the page cache",
    "free page cache",
    "drop page cache",
    "clear page cache",
];
const MEMORY: &[&str] = &["memory", "ram", "rss", "swap", "mem"];

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\'' || c == '_' || c == '.'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn has_phrase(text: &str, ws: &[String], phrases: &[&str]) -> bool {
    phrases.iter().any(|p| if p.contains(' ') { text.contains(p) } else { ws.iter().any(|w| w == p) })
}

/// Maps a request onto an intent.
pub fn classify(request: &str, snap: &Snapshot, exclude: &[u32]) -> Intent {
    let text = request.to_lowercase();
    let ws = words(&text);
    let Some(first) = ws.first() else { return Intent::Question };
    if QUESTION_WORDS.contains(&first.as_str()) || has_phrase(&text, &ws, NEGATIONS) {
        return Intent::Question;
    }
    if has_phrase(&text, &ws, DROP) {
        return Intent::DropCaches;
    }
    let target = || {
        // An explicit pid ("pid 4242", or a number that is a live process).
        for (i, w) in ws.iter().enumerate() {
            if let Ok(n) = w.parse::<u32>() {
                let after_pid = i > 0 && ws[i - 1] == "pid";
                if after_pid || snap.procs.iter().any(|p| p.pid == n) {
                    return Target::Pid(n);
                }
            }
        }
        // A command name that is running.
        let names: Vec<&Proc> = findings::blameable(snap, exclude).collect();
        for w in &ws {
            if w.len() >= 2 && !KILL.contains(&w.as_str()) && names.iter().any(|p| p.comm.to_lowercase() == *w) {
                return Target::Name(w.clone());
            }
        }
        if has_phrase(&text, &ws, MEMORY) {
            Target::TopMemory
        } else {
            Target::TopCpu
        }
    };
    if has_phrase(&text, &ws, RENICE) {
        return Intent::Renice { target: target(), nice: 10 };
    }
    if has_phrase(&text, &ws, KILL) {
        let signal = if has_phrase(&text, &ws, FORCE) { libc::SIGKILL } else { libc::SIGTERM };
        return Intent::Signal { target: target(), signal };
    }
    Intent::Question
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let p = |pid, comm: &str| Proc {
            pid,
            ppid: 1,
            comm: comm.into(),
            cmdline: comm.into(),
            state: 'R',
            uid: 0,
            nice: 0,
            cpu_pct: 0.0,
            rss: 0,
            start_time: 0,
        };
        Snapshot { procs: vec![p(4242, "yes"), p(99, "firefox")], ..Snapshot::default() }
    }

    #[test]
    fn requests_map_onto_actions() {
        let s = snap();
        let c = |r| classify(r, &s, &[]);
        assert_eq!(c("why is my system slow?"), Intent::Question);
        assert_eq!(c("what should I kill?"), Intent::Question);
        assert_eq!(c("please don't kill anything"), Intent::Question);
        assert_eq!(c(""), Intent::Question);
        assert_eq!(
            c("kill the process eating my CPU"),
            Intent::Signal { target: Target::TopCpu, signal: libc::SIGTERM }
        );
        assert_eq!(c("Force kill the memory hog"), Intent::Signal { target: Target::TopMemory, signal: libc::SIGKILL });
        assert_eq!(c("stop pid 4242"), Intent::Signal { target: Target::Pid(4242), signal: libc::SIGTERM });
        assert_eq!(c("kill firefox"), Intent::Signal { target: Target::Name("firefox".into()), signal: libc::SIGTERM });
        assert_eq!(c("lower the priority of the CPU hog"), Intent::Renice { target: Target::TopCpu, nice: 10 });
        assert_eq!(c("drop the page cache"), Intent::DropCaches);
        assert_eq!(c("tell me a joke"), Intent::Question);
    }
}
