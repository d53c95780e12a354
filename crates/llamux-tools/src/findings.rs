//! Deterministic findings: what the measurements say, ranked, each one line with its numbers
//! ("pid 4242 `yes` uses 99% of one CPU"). The model only explains these; it never adds to them.

use crate::probe::{Proc, Snapshot};
use serde::Serialize;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A process using much CPU.
    CpuHog,
    /// A process holding much memory.
    MemoryHog,
    /// More runnable work than CPUs.
    Load,
    /// Little memory available.
    Memory,
    /// Swap in use.
    Swap,
    /// Time lost waiting (pressure stall information).
    Pressure,
    /// CPUs waiting for I/O.
    IoWait,
    /// A file system nearly full.
    Disk,
    /// Recent kernel errors.
    KernelErrors,
    /// Nothing stands out.
    AllClear,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What it is about.
    pub kind: Kind,
    /// How much it matters (higher first).
    pub score: f64,
    /// The line shown, with its numbers.
    pub text: String,
    /// The process it is about.
    pub pid: Option<u32>,
}

/// Bytes as GiB or MiB.
pub fn human(bytes: u64) -> String {
    let g = bytes as f64 / (1u64 << 30) as f64;
    if g >= 1.0 {
        format!("{g:.1} GiB")
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Processes a tool may blame: not kernel threads, not init, not the tool or its callers.
pub fn blameable<'a>(s: &'a Snapshot, exclude: &'a [u32]) -> impl Iterator<Item = &'a Proc> + 'a {
    s.procs
        .iter()
        .filter(move |p| p.pid > 1 && p.ppid != 2 && p.pid != 2 && !p.cmdline.is_empty() && !exclude.contains(&p.pid))
}

/// The process using the most CPU, when it uses at least `min_pct` of one CPU.
pub fn top_cpu<'a>(s: &'a Snapshot, exclude: &'a [u32], min_pct: f64) -> Option<&'a Proc> {
    blameable(s, exclude).filter(|p| p.cpu_pct >= min_pct).max_by(|a, b| a.cpu_pct.total_cmp(&b.cpu_pct))
}

/// The process holding the most memory.
pub fn top_rss<'a>(s: &'a Snapshot, exclude: &'a [u32]) -> Option<&'a Proc> {
    blameable(s, exclude).max_by_key(|p| p.rss)
}

/// The findings, ranked.
pub fn analyze(s: &Snapshot, exclude: &[u32]) -> Vec<Finding> {
    let mut out = Vec::new();
    let cpus = s.cpus.max(1) as f64;
    for p in blameable(s, exclude).filter(|p| p.cpu_pct >= 20.0).take(3) {
        out.push(Finding {
            kind: Kind::CpuHog,
            score: 50.0 + p.cpu_pct / cpus,
            text: format!(
                "pid {} `{}` uses {:.0}% of one CPU ({:.0}% of all {} CPUs)",
                p.pid,
                p.comm,
                p.cpu_pct,
                p.cpu_pct / cpus,
                s.cpus
            ),
            pid: Some(p.pid),
        });
    }
    let per_cpu = s.load[0] / cpus;
    if per_cpu >= 0.8 {
        out.push(Finding {
            kind: Kind::Load,
            score: 30.0 + 20.0 * per_cpu.min(4.0),
            text: format!("load average {:.2} on {} CPUs ({:.1} runnable tasks per CPU)", s.load[0], s.cpus, per_cpu),
            pid: None,
        });
    }
    let used = s.mem_used_pct();
    if used >= 85.0 {
        out.push(Finding {
            kind: Kind::Memory,
            score: 40.0 + (used - 85.0) * 3.0,
            text: format!("memory {:.0}% used: {} available of {}", used, human(s.mem_available), human(s.mem_total)),
            pid: None,
        });
    }
    if let Some(p) = top_rss(s, exclude) {
        let share = if s.mem_total > 0 { 100.0 * p.rss as f64 / s.mem_total as f64 } else { 0.0 };
        if share >= 20.0 {
            out.push(Finding {
                kind: Kind::MemoryHog,
                score: 30.0 + share / 2.0,
                text: format!("pid {} `{}` holds {} resident ({:.0}% of memory)", p.pid, p.comm, human(p.rss), share),
                pid: Some(p.pid),
            });
        }
    }
    let swap = s.swap_used_pct();
    if s.swap_total > 0 && swap >= 25.0 {
        out.push(Finding {
            kind: Kind::Swap,
            score: 20.0 + swap / 4.0,
            text: format!("swap {:.0}% used ({} of {})", swap, human(s.swap_total - s.swap_free), human(s.swap_total)),
            pid: None,
        });
    }
    for (name, p) in [("CPU", s.psi_cpu), ("memory", s.psi_memory), ("I/O", s.psi_io)] {
        if let Some(p) = p.filter(|p| p.avg10 >= 10.0) {
            out.push(Finding {
                kind: Kind::Pressure,
                score: 25.0 + p.avg10 / 2.0,
                text: format!("{name} pressure: tasks stalled waiting for {name} {:.0}% of the last 10 s ({:.0}% of the last minute)", p.avg10, p.avg60),
                pid: None,
            });
        }
    }
    if s.iowait_pct >= 10.0 {
        out.push(Finding {
            kind: Kind::IoWait,
            score: 30.0 + s.iowait_pct / 2.0,
            text: format!("CPUs waited for I/O {:.0}% of the time", s.iowait_pct),
            pid: None,
        });
    }
    for d in s.disks.iter().filter(|d| d.used_pct() >= 90.0) {
        out.push(Finding {
            kind: Kind::Disk,
            score: 30.0 + (d.used_pct() - 90.0) * 3.0,
            text: format!("{} is {:.0}% full ({} free of {})", d.mount, d.used_pct(), human(d.avail), human(d.total)),
            pid: None,
        });
    }
    if let Some(errs) = s.kernel_errors.as_ref().filter(|e| !e.is_empty()) {
        let last = errs.last().map(String::as_str).unwrap_or("");
        out.push(Finding {
            kind: Kind::KernelErrors,
            score: 20.0,
            text: format!("{} recent kernel error message(s), latest: {}", errs.len(), clip(last, 100)),
            pid: None,
        });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    if out.is_empty() {
        out.push(Finding {
            kind: Kind::AllClear,
            score: 0.0,
            text: format!(
                "nothing stands out: load {:.2} on {} CPUs, CPUs {:.0}% idle, memory {:.0}% used",
                s.load[0], s.cpus, s.idle_pct, used
            ),
            pid: None,
        });
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "..."
    }
}

/// The facts for the model: the findings and a summary line, short (a few hundred tokens).
pub fn facts_text(s: &Snapshot, findings: &[Finding]) -> String {
    let mut t = String::new();
    for f in findings.iter().take(6) {
        t.push_str("- ");
        t.push_str(&f.text);
        t.push('\n');
    }
    t.push_str(&format!(
        "- overall: load {:.2}/{:.2}/{:.2} on {} CPUs, CPUs {:.0}% idle, memory {:.0}% used ({} available), swap {:.0}% used\n",
        s.load[0],
        s.load[1],
        s.load[2],
        s.cpus,
        s.idle_pct,
        s.mem_used_pct(),
        human(s.mem_available),
        s.swap_used_pct()
    ));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Proc;

    fn proc(pid: u32, comm: &str, cpu: f64, rss: u64) -> Proc {
        Proc {
            pid,
            ppid: 100,
            comm: comm.into(),
            cmdline: comm.into(),
            state: 'R',
            uid: 0,
            nice: 0,
            cpu_pct: cpu,
            rss,
            start_time: 1,
        }
    }

    #[test]
    fn hogs_rank_first_with_their_numbers() {
        let s = Snapshot {
            load: [2.5, 1.0, 0.5],
            cpus: 2,
            idle_pct: 10.0,
            mem_total: 8 << 30,
            mem_available: 6 << 30,
            procs: vec![
                proc(4242, "yes", 99.4, 1 << 20),
                proc(77, "me", 150.0, 1 << 20),
                proc(5, "idle", 0.0, 1 << 20),
            ],
            ..Snapshot::default()
        };
        let f = analyze(&s, &[77]);
        assert_eq!(f[0].kind, Kind::CpuHog);
        assert_eq!(f[0].text, "pid 4242 `yes` uses 99% of one CPU (50% of all 2 CPUs)");
        assert!(f.iter().any(|x| x.kind == Kind::Load && x.text.contains("2.50 on 2 CPUs")));
        assert!(!f.iter().any(|x| x.pid == Some(77)), "excluded processes are never blamed");
        assert_eq!(top_cpu(&s, &[77], 10.0).map(|p| p.pid), Some(4242));
        let facts = facts_text(&s, &f);
        assert!(facts.contains("pid 4242") && facts.len() < 1200);
    }

    #[test]
    fn a_quiet_system_says_so() {
        let s = Snapshot {
            load: [0.1, 0.1, 0.1],
            cpus: 4,
            idle_pct: 98.0,
            mem_total: 8 << 30,
            mem_available: 7 << 30,
            ..Snapshot::default()
        };
        let f = analyze(&s, &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, Kind::AllClear);
        assert!(f[0].text.contains("load 0.10 on 4 CPUs"));
        assert!(top_cpu(&s, &[], 10.0).is_none());
    }
}
