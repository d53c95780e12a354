//! What `llama-mon` shows, measured: a [`Sample`] is the backend's status and counters and the
//! system's CPU and memory at one moment; two samples make a [`View`] — live tokens per second
//! (generated tokens between the samples over the time between them), first-token latency,
//! sessions and queue, KV-cache and model memory, quotas, the system's CPU use and memory, and
//! the last requests from the audit log. Each backend names its numbers differently (the
//! kernel's `/proc/llamux/stats`, the server's `/metrics`, the in-process counters); this is the
//! one place that maps them. A number a backend does not report is `None`, never made up.

use crate::{audit, probe};
use llamux_client::{Backend, BackendKind, ClientError, Config, Info};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::time::Instant;

/// The system's counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct System {
    /// `/proc/stat`: total and idle jiffies.
    cpu: Option<(u64, u64)>,
    /// Bytes.
    mem_total: u64,
    /// Bytes.
    mem_available: u64,
    /// Load averages.
    load: [f64; 3],
}

/// Reads the system's counters.
pub fn system() -> System {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cpu = read("/proc/stat").and_then(|s| probe::parse_cpu_line(&s)).map(|(t, i, w)| (t, i + w));
    let mem = read("/proc/meminfo").map(|s| probe::parse_meminfo(&s)).unwrap_or_default();
    System {
        cpu,
        mem_total: mem.get("MemTotal").copied().unwrap_or(0),
        mem_available: mem.get("MemAvailable").copied().unwrap_or(0),
        load: read("/proc/loadavg").map_or([0.0; 3], |s| probe::parse_loadavg(&s)),
    }
}

/// One moment.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    kind: BackendKind,
    status: Info,
    stats: Info,
    settings: Info,
    system: System,
}

/// Takes a sample of `backend` and the system.
pub fn sample(backend: &mut dyn Backend) -> Result<Sample, ClientError> {
    Ok(Sample {
        kind: backend.kind(),
        status: backend.status()?,
        stats: backend.stats()?,
        settings: backend.settings().unwrap_or_default(),
        system: system(),
        at: Instant::now(),
    })
}

fn get<'a>(info: &'a Info, key: &str) -> Option<&'a str> {
    info.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn num(info: &Info, key: &str) -> Option<f64> {
    get(info, key).and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite())
}

/// The system part of a view.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SystemView {
    /// CPU busy between the samples, percent of all CPUs (iowait counts as idle).
    pub cpu_pct: Option<f64>,
    /// CPUs.
    pub cpus: usize,
    /// Bytes.
    pub mem_total: u64,
    /// Bytes.
    pub mem_available: u64,
    /// Percent of memory in use.
    pub mem_used_pct: f64,
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
}

/// Everything shown, from two samples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct View {
    /// The backend.
    pub backend: String,
    /// Its model (a path or an id).
    pub model: Option<String>,
    /// Seconds between the two samples.
    pub interval_s: f64,
    /// Generated tokens per second between the samples (all sessions).
    pub tokens_per_s: Option<f64>,
    /// The backend's own decoding speed figure (kernel and in-process: over their lifetime;
    /// serve: the last 10 s).
    pub reported_tokens_per_s: Option<f64>,
    /// Mean time to first token, ms.
    pub first_token_ms: Option<f64>,
    /// Requests so far.
    pub requests: Option<u64>,
    /// Generated tokens so far.
    pub tokens: Option<u64>,
    /// Sessions generating now.
    pub sessions: Option<u64>,
    /// At most this many at once.
    pub max_sessions: Option<u64>,
    /// Requests waiting for a session.
    pub queue: Option<u64>,
    /// Memory of the sessions' KV caches and buffers (kernel: all the engine allocated).
    pub kv_bytes: Option<u64>,
    /// The model's bytes.
    pub model_bytes: Option<u64>,
    /// Limits: the configuration's, and the backend's own where it has them.
    pub quotas: BTreeMap<String, String>,
    /// The system.
    pub system: SystemView,
    /// The last entries of the audit log (newest last).
    pub recent: Vec<Value>,
}

/// The generated-token counter, the requests counter and the first-token sum and count (serve)
/// under each backend's names.
fn tokens_of(s: &Sample) -> Option<f64> {
    match s.kind {
        BackendKind::Serve => num(&s.stats, "llamux_generated_tokens_total"),
        _ => num(&s.stats, "tokens"),
    }
}

/// The sum of a Prometheus counter over its label sets.
fn metric_sum(info: &Info, name: &str) -> Option<f64> {
    let vals: Vec<f64> = info
        .iter()
        .filter(|(k, _)| k == name || k.strip_prefix(name).is_some_and(|r| r.starts_with('{')))
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .collect();
    (!vals.is_empty()).then(|| vals.iter().sum())
}

/// The view from `prev` (if any) to `cur`.
pub fn view(cfg: &Config, prev: Option<&Sample>, cur: &Sample, recent: Vec<Value>) -> View {
    let dt = prev.map_or(0.0, |p| cur.at.duration_since(p.at).as_secs_f64());
    let tokens_per_s = match (prev.and_then(tokens_of), tokens_of(cur)) {
        (Some(a), Some(b)) if dt > 0.0 => Some(((b - a).max(0.0) / dt * 100.0).round() / 100.0),
        _ => None,
    };
    let st = &cur.stats;
    let as_u = |v: Option<f64>| v.map(|x| x.max(0.0) as u64);
    let (reported, ttft, requests, sessions, max_sessions, queue, kv, model_bytes) = match cur.kind {
        BackendKind::Serve => {
            let ttft = match (
                num(st, "llamux_time_to_first_token_seconds_sum"),
                num(st, "llamux_time_to_first_token_seconds_count"),
            ) {
                (Some(s), Some(n)) if n > 0.0 => Some(s / n * 1000.0),
                _ => None,
            };
            (
                num(st, "llamux_tokens_per_second"),
                ttft,
                as_u(metric_sum(st, "llamux_requests_total")),
                as_u(num(st, "llamux_active_sessions")),
                as_u(num(st, "llamux_max_sessions")),
                as_u(num(st, "llamux_queue_depth")),
                None,
                None,
            )
        }
        BackendKind::Kernel => {
            let max = get(&cur.status, "sessions").and_then(|s| s.split_once('/')).and_then(|(_, m)| m.parse().ok());
            (
                num(st, "tokens_per_s"),
                num(st, "first_token_ms"),
                as_u(num(st, "requests")),
                as_u(num(st, "live_sessions")),
                max,
                None,
                as_u(num(st, "engine_bytes")),
                as_u(num(st, "model_bytes")),
            )
        }
        BackendKind::InProcess => (
            num(st, "tokens_per_s"),
            num(st, "first_token_ms"),
            as_u(num(st, "requests")),
            None,
            Some(1),
            None,
            None,
            as_u(num(st, "model_bytes")),
        ),
    };
    let mut quotas = BTreeMap::from([
        ("max_tokens".to_string(), cfg.limits.max_tokens.to_string()),
        ("n_ctx".to_string(), cfg.limits.n_ctx.to_string()),
        ("max_prompt_bytes".to_string(), cfg.limits.max_prompt_bytes.to_string()),
    ]);
    if cur.kind == BackendKind::Kernel {
        for (k, v) in &cur.settings {
            if matches!(k.as_str(), "n_ctx" | "max_tokens" | "timeout") {
                quotas.insert(format!("kernel {k}"), v.clone());
            }
        }
    }
    let sys = &cur.system;
    let cpu_pct = match (prev.and_then(|p| p.system.cpu), sys.cpu) {
        (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
            let busy = (t1 - t0).saturating_sub(i1.saturating_sub(i0));
            Some((1000.0 * busy as f64 / (t1 - t0) as f64).round() / 10.0)
        }
        _ => None,
    };
    let mem_used_pct = if sys.mem_total > 0 {
        (1000.0 * sys.mem_total.saturating_sub(sys.mem_available) as f64 / sys.mem_total as f64).round() / 10.0
    } else {
        0.0
    };
    View {
        backend: cur.kind.name().to_string(),
        model: get(&cur.status, "model").map(str::to_string),
        interval_s: (dt * 1000.0).round() / 1000.0,
        tokens_per_s,
        reported_tokens_per_s: reported,
        first_token_ms: ttft,
        requests,
        tokens: as_u(tokens_of(cur)),
        sessions,
        max_sessions,
        queue,
        kv_bytes: kv,
        model_bytes,
        quotas,
        system: SystemView {
            cpu_pct,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: sys.mem_total,
            mem_available: sys.mem_available,
            mem_used_pct,
            load: sys.load,
        },
        recent,
    }
}

/// The last `n` entries of the audit log (nothing when there is none or it is unreadable; only
/// its last 64 KiB are read).
pub fn recent_audit(cfg: &Config, n: usize) -> Vec<Value> {
    let Some(path) = audit::path(cfg) else { return Vec::new() };
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    let len = f.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut mid-line
    }
    let mut out: Vec<Value> = lines.iter().rev().filter_map(|l| serde_json::from_str(l).ok()).take(n).collect();
    out.reverse();
    out
}

/// One audit entry as a line: when, tool, decision, command or request.
pub fn audit_line(v: &Value) -> String {
    let ts = v["ts"].as_f64().unwrap_or(0.0) as i64;
    let (h, m, s) = ((ts / 3600) % 24, (ts / 60) % 60, ts % 60);
    let what = v["command"]
        .as_str()
        .or_else(|| v["action"]["command"].as_str())
        .or_else(|| v["request"].as_str())
        .unwrap_or("");
    format!(
        "{h:02}:{m:02}:{s:02} UTC {:<6} {:<15} {what}",
        v["tool"].as_str().unwrap_or("?"),
        v["decision"].as_str().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn info(pairs: &[(&str, &str)]) -> Info {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn at(kind: BackendKind, t: Instant, status: Info, stats: Info, cpu: (u64, u64)) -> Sample {
        let system = System { cpu: Some(cpu), mem_total: 1000, mem_available: 250, load: [1.0, 0.5, 0.25] };
        Sample { at: t, kind, status, stats, settings: info(&[("n_ctx", "256"), ("temp", "0")]), system }
    }

    #[test]
    fn kernel_numbers() {
        let t0 = Instant::now();
        let st = info(&[("model", "/m.gguf"), ("sessions", "3/32")]);
        let s0 = at(BackendKind::Kernel, t0, st.clone(), info(&[("tokens", "100")]), (1000, 600));
        let s1 = at(
            BackendKind::Kernel,
            t0 + Duration::from_secs(2),
            st,
            info(&[
                ("requests", "7"),
                ("tokens", "150"),
                ("tokens_per_s", "30.5"),
                ("first_token_ms", "12"),
                ("live_sessions", "3"),
                ("engine_bytes", "4096"),
                ("model_bytes", "9999"),
            ]),
            (1200, 650),
        );
        let v = view(&Config::default(), Some(&s0), &s1, Vec::new());
        assert_eq!(v.tokens_per_s, Some(25.0));
        assert_eq!(v.reported_tokens_per_s, Some(30.5));
        assert_eq!((v.sessions, v.max_sessions, v.requests), (Some(3), Some(32), Some(7)));
        assert_eq!((v.kv_bytes, v.model_bytes, v.queue), (Some(4096), Some(9999), None));
        assert_eq!(v.system.cpu_pct, Some(75.0));
        assert_eq!(v.system.mem_used_pct, 75.0);
        assert_eq!(v.quotas.get("kernel n_ctx").map(String::as_str), Some("256"));
        assert_eq!(v.model.as_deref(), Some("/m.gguf"));
        // One sample: no rates.
        let v = view(&Config::default(), None, &s1, Vec::new());
        assert_eq!((v.tokens_per_s, v.system.cpu_pct), (None, None));
    }

    #[test]
    fn serve_numbers() {
        let t0 = Instant::now();
        let stats = |tok: &str| {
            info(&[
                ("llamux_requests_total{endpoint=\"chat\",status=\"200\"}", "3"),
                ("llamux_requests_total{endpoint=\"completions\",status=\"200\"}", "2"),
                ("llamux_generated_tokens_total", tok),
                ("llamux_active_sessions", "2"),
                ("llamux_max_sessions", "8"),
                ("llamux_queue_depth", "1"),
                ("llamux_time_to_first_token_seconds_sum", "0.5"),
                ("llamux_time_to_first_token_seconds_count", "5"),
            ])
        };
        let s0 = at(BackendKind::Serve, t0, Info::new(), stats("10"), (0, 0));
        let s1 = at(BackendKind::Serve, t0 + Duration::from_millis(500), Info::new(), stats("20"), (0, 0));
        let v = view(&Config::default(), Some(&s0), &s1, Vec::new());
        assert_eq!(v.tokens_per_s, Some(20.0));
        assert_eq!(v.requests, Some(5));
        assert_eq!((v.sessions, v.max_sessions, v.queue), (Some(2), Some(8), Some(1)));
        assert!((v.first_token_ms.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(v.system.cpu_pct, None);
    }

    #[test]
    fn audit_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let mut text = String::from("not json\n");
        for i in 0..20 {
            text.push_str(&format!("{{\"tool\":\"lsh\",\"decision\":\"run\",\"command\":\"echo {i}\",\"ts\":3661}}\n"));
        }
        std::fs::write(&log, text).unwrap();
        let cfg = Config {
            tools: llamux_client::config::Tools { audit_log: Some(log), ..Default::default() },
            ..Default::default()
        };
        // LLAMUX_AUDIT_LOG would win over the configuration.
        if std::env::var_os("LLAMUX_AUDIT_LOG").is_some() {
            return;
        }
        let r = recent_audit(&cfg, 3);
        assert_eq!(r.len(), 3);
        assert_eq!(r[2]["command"], "echo 19");
        assert_eq!(audit_line(&r[0]), "01:01:01 UTC lsh    run             echo 17");
    }
}
