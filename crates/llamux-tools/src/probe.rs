//! Facts about the system, read from procfs (and `statvfs`, `/dev/kmsg`): load and CPUs, CPU use
//! per process over a short sample, resident memory, memory and swap, pressure stalls, disk usage
//! and I/O wait, recent kernel errors. Nothing here fails: what cannot be read is left out.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// One process.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Parent's id.
    pub ppid: u32,
    /// Command name (`comm`).
    pub comm: String,
    /// Command line (arguments joined by spaces; empty for kernel threads).
    pub cmdline: String,
    /// State letter (`R`, `S`, `D`, …).
    pub state: char,
    /// Owner's user id.
    pub uid: u32,
    /// Nice value.
    pub nice: i32,
    /// CPU use over the sample, in percent of one CPU.
    pub cpu_pct: f64,
    /// Resident memory, bytes.
    pub rss: u64,
    /// Start time (clock ticks since boot), to recognize the same process later.
    pub start_time: u64,
}

/// Pressure-stall averages of one resource (`some` line), percent of time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    /// Over 10 s.
    pub avg10: f64,
    /// Over 60 s.
    pub avg60: f64,
}

/// One mounted file system.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    /// Mount point.
    pub mount: String,
    /// Size, bytes.
    pub total: u64,
    /// Available to unprivileged users, bytes.
    pub avail: u64,
}

impl Disk {
    /// Percent used.
    pub fn used_pct(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * (self.total - self.avail.min(self.total)) as f64 / self.total as f64
        }
    }
}

/// Everything measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Load averages (1, 5, 15 min).
    pub load: [f64; 3],
    /// Online CPUs.
    pub cpus: usize,
    /// Share of CPU time spent idle / waiting for I/O over the sample, percent of all CPUs.
    pub idle_pct: f64,
    /// I/O wait, percent of all CPUs.
    pub iowait_pct: f64,
    /// `MemTotal`, bytes.
    pub mem_total: u64,
    /// `MemAvailable`, bytes.
    pub mem_available: u64,
    /// `SwapTotal`, bytes.
    pub swap_total: u64,
    /// `SwapFree`, bytes.
    pub swap_free: u64,
    /// CPU, memory and I/O pressure (when the kernel has PSI).
    pub psi_cpu: Option<Pressure>,
    /// Memory pressure.
    pub psi_memory: Option<Pressure>,
    /// I/O pressure.
    pub psi_io: Option<Pressure>,
    /// File systems.
    pub disks: Vec<Disk>,
    /// Processes, by CPU use, highest first.
    pub procs: Vec<Proc>,
    /// Recent kernel messages of error priority or worse (when readable).
    pub kernel_errors: Option<Vec<String>>,
    /// How long CPU use was sampled.
    pub sample: Duration,
}

impl Snapshot {
    /// Percent of memory in use.
    pub fn mem_used_pct(&self) -> f64 {
        if self.mem_total == 0 {
            0.0
        } else {
            100.0 * (self.mem_total - self.mem_available.min(self.mem_total)) as f64 / self.mem_total as f64
        }
    }

    /// Percent of swap in use.
    pub fn swap_used_pct(&self) -> f64 {
        if self.swap_total == 0 {
            0.0
        } else {
            100.0 * (self.swap_total - self.swap_free.min(self.swap_total)) as f64 / self.swap_total as f64
        }
    }
}

fn read(p: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// `/proc/loadavg`.
pub fn parse_loadavg(s: &str) -> [f64; 3] {
    let mut it = s.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
    [it.next().unwrap_or(0.0), it.next().unwrap_or(0.0), it.next().unwrap_or(0.0)]
}

/// `/proc/meminfo`: key → bytes.
pub fn parse_meminfo(s: &str) -> HashMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let kb: u64 = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), kb.saturating_mul(1024)))
        })
        .collect()
}

/// The `some` line of a `/proc/pressure/*` file.
pub fn parse_pressure(s: &str) -> Option<Pressure> {
    let line = s.lines().find(|l| l.starts_with("some "))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')).and_then(|v| v.parse().ok()))
    };
    Some(Pressure { avg10: field("avg10")?, avg60: field("avg60")? })
}

/// The fields of `/proc/PID/stat` after the command: `(comm, fields from state on)`.
pub fn parse_stat(s: &str) -> Option<(String, Vec<&str>)> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = s[open + 1..close].to_string();
    let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
    if rest.len() < 22 {
        return None;
    }
    Some((comm, rest))
}

/// The aggregate `cpu` line of `/proc/stat`: (total jiffies, idle, iowait).
pub fn parse_cpu_line(s: &str) -> Option<(u64, u64, u64)> {
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    Some((total, v[3], v[4]))
}

struct Raw {
    ppid: u32,
    comm: String,
    state: char,
    nice: i32,
    ticks: u64,
    rss_pages: u64,
    start_time: u64,
}

fn raw_proc(pid: u32) -> Option<Raw> {
    let s = read(format!("/proc/{pid}/stat"))?;
    let (comm, f) = parse_stat(&s)?;
    // After the command: state(0) ppid(1) … utime(11) stime(12) … nice(16) … starttime(19) vsize(20) rss(21).
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    Some(Raw {
        ppid: num(1) as u32,
        comm,
        state: f[0].chars().next().unwrap_or('?'),
        nice: f.get(16).and_then(|x| x.parse().ok()).unwrap_or(0),
        ticks: num(11) + num(12),
        rss_pages: num(21),
        start_time: num(19),
    })
}

fn pids() -> Vec<u32> {
    let Ok(d) = std::fs::read_dir("/proc") else { return Vec::new() };
    d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

fn uid_of(pid: u32) -> u32 {
    read(format!("/proc/{pid}/status"))
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(u32::MAX)
}

fn cmdline_of(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            let parts: Vec<String> = b
                .split(|&c| c == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let s = parts.join(" ");
            if s.chars().count() > 120 {
                s.chars().take(117).collect::<String>() + "..."
            } else {
                s
            }
        })
        .unwrap_or_default()
}

/// Mounted file systems worth reporting (real devices, not pseudo file systems).
fn disks() -> Vec<Disk> {
    let Some(mounts) = read("/proc/mounts") else { return Vec::new() };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let (dev, mount, fstype) = (f[0], f[1].replace("\\040", " "), f[2]);
        let real = matches!(
            fstype,
            "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" | "f2fs" | "vfat" | "exfat" | "zfs" | "overlay"
        ) || (fstype != "tmpfs" && dev.starts_with("/dev/"));
        if !real || !seen.insert(dev.to_string()) {
            continue;
        }
        let Ok(c) = std::ffi::CString::new(mount.as_bytes()) else { continue };
        // SAFETY: statvfs is plain integers, for which all-zero bytes are a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a NUL-terminated path alive for the call; `st` is a valid, writable statvfs.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            continue;
        }
        let frsize = st.f_frsize as u64;
        out.push(Disk { mount, total: st.f_blocks as u64 * frsize, avail: st.f_bavail as u64 * frsize });
    }
    out
}

/// Error-or-worse kernel messages from `/dev/kmsg` (the last `keep`), `None` when unreadable.
fn kernel_errors(keep: usize) -> Option<Vec<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").ok()?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    // Each read returns one record; EAGAIN at the end.
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                let Some((head, msg)) = rec.split_once(';') else { continue };
                let prio: u32 = head.split(',').next().and_then(|p| p.parse().ok()).unwrap_or(7);
                if prio & 7 <= 3 {
                    out.push(msg.lines().next().unwrap_or("").trim().to_string());
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    let n = out.len();
    Some(out.split_off(n.saturating_sub(keep)))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Measures the system, sampling CPU use for `sample`.
pub fn snapshot(sample: Duration) -> Snapshot {
    let before: HashMap<u32, (u64, u64)> =
        pids().into_iter().filter_map(|p| raw_proc(p).map(|r| (p, (r.ticks, r.start_time)))).collect();
    let cpu0 = read("/proc/stat").and_then(|s| parse_cpu_line(&s));
    let t0 = Instant::now();
    std::thread::sleep(sample);
    let dt = t0.elapsed().as_secs_f64().max(1e-3);
    let cpu1 = read("/proc/stat").and_then(|s| parse_cpu_line(&s));
    let hz = clock_ticks();
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let mut procs = Vec::new();
    for pid in pids() {
        let Some(r) = raw_proc(pid) else { continue };
        let ticks = match before.get(&pid) {
            Some(&(t, start)) if start == r.start_time => r.ticks.saturating_sub(t),
            _ => 0,
        };
        procs.push(Proc {
            pid,
            ppid: r.ppid,
            comm: r.comm,
            cmdline: cmdline_of(pid),
            state: r.state,
            uid: uid_of(pid),
            nice: r.nice,
            cpu_pct: 100.0 * ticks as f64 / hz / dt,
            rss: r.rss_pages * page,
            start_time: r.start_time,
        });
    }
    procs.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(b.rss.cmp(&a.rss)));
    let (idle_pct, iowait_pct) = match (cpu0, cpu1) {
        (Some((t0, i0, w0)), Some((t1, i1, w1))) if t1 > t0 => {
            let d = (t1 - t0) as f64;
            (100.0 * i1.saturating_sub(i0) as f64 / d, 100.0 * w1.saturating_sub(w0) as f64 / d)
        }
        _ => (100.0, 0.0),
    };
    let mem = read("/proc/meminfo").map(|s| parse_meminfo(&s)).unwrap_or_default();
    let m = |k: &str| mem.get(k).copied().unwrap_or(0);
    Snapshot {
        load: read("/proc/loadavg").map_or([0.0; 3], |s| parse_loadavg(&s)),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        idle_pct,
        iowait_pct,
        mem_total: m("MemTotal"),
        mem_available: m("MemAvailable"),
        swap_total: m("SwapTotal"),
        swap_free: m("SwapFree"),
        psi_cpu: read("/proc/pressure/cpu").and_then(|s| parse_pressure(&s)),
        psi_memory: read("/proc/pressure/memory").and_then(|s| parse_pressure(&s)),
        psi_io: read("/proc/pressure/io").and_then(|s| parse_pressure(&s)),
        disks: disks(),
        procs,
        kernel_errors: kernel_errors(5),
        sample: Duration::from_secs_f64(dt),
    }
}

/// The chain of parents of `pid` (itself first), to keep a tool from blaming its own callers.
pub fn ancestors(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut at = pid;
    for _ in 0..64 {
        let Some(r) = raw_proc(at) else { break };
        if r.ppid == 0 || out.contains(&r.ppid) {
            break;
        }
        out.push(r.ppid);
        at = r.ppid;
    }
    out
}

/// `(comm, start_time)` of a live process, to check it is still the one that was measured.
pub fn identity(pid: u32) -> Option<(String, u64)> {
    raw_proc(pid).map(|r| (r.comm, r.start_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfs_formats_parse() {
        assert_eq!(parse_loadavg("1.50 0.75 0.25 2/300 4242\n"), [1.5, 0.75, 0.25]);
        let m = parse_meminfo("MemTotal:        8000000 kB\nMemAvailable:    2000000 kB\nHugePages_Total:       0\n");
        assert_eq!(m["MemTotal"], 8_000_000 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
        let p = parse_pressure(
            "some avg10=12.50 avg60=3.00 avg300=1.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        assert_eq!(p, Pressure { avg10: 12.5, avg60: 3.0 });
        assert_eq!(parse_pressure("garbage"), None);
        let stat = "4242 (my (odd) cmd) R 1 4242 4242 0 -1 4194304 100 0 0 0 150 50 0 0 20 5 1 0 9999 1000000 250 18446744073709551615";
        let (comm, f) = parse_stat(stat).unwrap();
        assert_eq!(comm, "my (odd) cmd");
        assert_eq!((f[0], f[1], f[11], f[12], f[16], f[19], f[21]), ("R", "1", "150", "50", "5", "9999", "250"));
        assert!(parse_stat("1 (x) R").is_none());
        assert_eq!(parse_cpu_line("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 2 3 4 5\n"), Some((100, 80, 5)));
    }

    #[test]
    fn this_process_is_seen() {
        let s = snapshot(Duration::from_millis(50));
        let me = std::process::id();
        let p = s.procs.iter().find(|p| p.pid == me).unwrap();
        assert!(p.rss > 0);
        assert!(s.cpus >= 1 && s.mem_total > 0);
        assert_eq!(ancestors(me)[0], me);
        assert!(identity(me).is_some());
    }
}
