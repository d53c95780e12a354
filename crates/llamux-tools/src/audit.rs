//! The audit log: one JSON object per line for every proposal, decision and result. It is at
//! `$LLAMUX_AUDIT_LOG`, else the configuration's `tools.audit_log`, else
//! `/var/log/llamux/audit.log` for root, else `audit.log` in the state directory
//! (`$XDG_STATE_HOME/llamux`). An action whose proposal cannot be logged is not offered.

use llamux_client::{state, Config};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// An open audit log.
pub struct Audit {
    path: PathBuf,
    file: std::fs::File,
}

/// Where the log goes.
pub fn path(cfg: &Config) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LLAMUX_AUDIT_LOG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = &cfg.tools.audit_log {
        return Some(p.clone());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Some(PathBuf::from("/var/log/llamux/audit.log"));
    }
    state::dir().map(|d| d.join("audit.log"))
}

impl Audit {
    /// Opens (creating, mode 0600) the log for appending.
    pub fn open(cfg: &Config) -> Result<Audit, String> {
        let path = path(cfg).ok_or("no audit log: set LLAMUX_AUDIT_LOG or tools.audit_log")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the audit log directory {}: {e}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))?;
        Ok(Audit { path, file })
    }

    /// The log's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Appends `event` with the time, user and process.
    pub fn record(&mut self, mut event: Value) -> Result<(), String> {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        if let Some(o) = event.as_object_mut() {
            o.insert("ts".into(), json!(ts));
            // SAFETY: getuid has no preconditions.
            o.insert("uid".into(), json!(unsafe { libc::getuid() }));
            o.insert("tool_pid".into(), json!(std::process::id()));
        }
        let mut line = event.to_string();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("cannot write the audit log {}: {e}", self.path.display()))
    }
}
