//! The thread pool for a command: thread count (default: physical cores) and optional pinning.

use anyhow::{bail, Context, Result};
use llamux_core::platform::Threads;
use std::collections::BTreeSet;

/// Physical cores among the online CPUs (SMT siblings counted once), from sysfs; falls back to
/// the number of CPUs this process may run on.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cores = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") else { return logical };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("cpu")) else { continue };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let topo = e.path().join("topology");
        let read = |f: &str| std::fs::read_to_string(topo.join(f)).ok().map(|s| s.trim().to_string());
        if let (Some(pkg), Some(core)) = (read("physical_package_id"), read("core_id")) {
            cores.insert((pkg, core));
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

/// Parses a CPU mask: hexadecimal (`0x3`, `f0`) — bit `i` is CPU `i`.
pub fn parse_cpu_mask(s: &str) -> Result<Vec<usize>> {
    let hex = s.trim().trim_start_matches("0x").trim_start_matches("0X");
    if hex.is_empty() || hex.len() > 256 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--cpu-mask {s:?}: expected a hexadecimal mask such as 0x3");
    }
    let mut cpus = Vec::new();
    for (i, c) in hex.bytes().rev().enumerate() {
        let v = (c as char).to_digit(16).unwrap_or(0);
        for b in 0..4 {
            if v & (1 << b) != 0 {
                cpus.push(i * 4 + b);
            }
        }
    }
    if cpus.is_empty() {
        bail!("--cpu-mask {s:?} selects no CPU");
    }
    Ok(cpus)
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: `set` is a plain bit set on the stack; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pool of `threads` threads (0 = physical cores), pinned one per CPU of `cpu_mask` (the calling
/// thread takes the first) when a mask is given.
pub fn threads(threads: usize, cpu_mask: Option<&str>) -> Result<Threads> {
    let Some(mask) = cpu_mask else {
        return Ok(Threads::new(if threads == 0 { physical_cores() } else { threads }));
    };
    let cpus = parse_cpu_mask(mask)?;
    let n = if threads == 0 { cpus.len() } else { threads };
    pin(cpus[0]).with_context(|| format!("cannot pin to CPU {} (--cpu-mask {mask})", cpus[0]))?;
    let worker_cpus = cpus.clone();
    // Workers that cannot be pinned run unpinned (their CPU may be offline); the caller's pin is checked above.
    Ok(Threads::with_setup(n, move |w| {
        let _ = pin(worker_cpus[w % worker_cpus.len()]);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_parse() {
        assert_eq!(parse_cpu_mask("0x3").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_mask("a").unwrap(), vec![1, 3]);
        assert_eq!(parse_cpu_mask("0x10").unwrap(), vec![4]);
        assert!(parse_cpu_mask("0x0").is_err());
        assert!(parse_cpu_mask("zz").is_err());
        assert!(parse_cpu_mask("").is_err());
        assert!(physical_cores() >= 1);
    }
}
