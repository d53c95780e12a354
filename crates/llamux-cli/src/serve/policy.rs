//! Per-client quotas and the audit trail of `llamux serve`, with the limiter and the record of
//! `llamux_trust` (the kernel module's too). A client is its IP address (the server has no user
//! ids or API keys): at most `--quota-sessions` requests at once and `--quota-tokens-per-min`
//! tokens (prompt and generated) per minute each, refused with 429 (`quota_exceeded`) beyond.
//! Every generation request that reaches admission ends in one audit line on stderr.

use llamux_trust::audit::{Line, Outcome, Record};
use llamux_trust::quota::{Limits, Quota, QuotaError};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The quotas and the audit sequence.
pub struct Policy {
    quota: Mutex<Quota<IpAddr>>,
    start: Instant,
    seq: AtomicU64,
}

impl Policy {
    /// Quotas with `limits` for up to `clients` clients counted at once.
    pub fn new(limits: Limits, clients: usize) -> anyhow::Result<Self> {
        let quota = Quota::try_new(clients, limits)
            .map_err(|_| anyhow::anyhow!("out of memory for the quotas of {clients} clients"))?;
        Ok(Policy { quota: Mutex::new(quota), start: Instant::now(), seq: AtomicU64::new(0) })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn quota(&self) -> std::sync::MutexGuard<'_, Quota<IpAddr>> {
        // The table stays consistent even if a holder panicked: every update is one assignment.
        self.quota.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `record`'s audit line.
    pub fn audit(&self, record: &Record) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!("llamux serve: audit: {}", Line { seq, record });
    }

    /// Admits a request of `client` (`prompt_tokens` tokens, its prompt's SHA-256), or refuses it
    /// (audited) when the client is over a quota.
    pub fn admit(
        self: &Arc<Self>,
        client: IpAddr,
        prompt_sha256: [u8; 32],
        prompt_tokens: usize,
    ) -> Result<Ticket, QuotaError> {
        let mut record = Record::new(0, prompt_sha256, Outcome::Cancelled);
        record.client = Some(client);
        record.tokens_in = u32::try_from(prompt_tokens).unwrap_or(u32::MAX);
        let now = self.now_ms();
        let admitted = {
            let mut q = self.quota();
            q.open(client, now).and_then(|()| q.admit(client, now).inspect_err(|_| q.close(client, now)))
        };
        match admitted {
            Ok(()) => Ok(Ticket { policy: self.clone(), record }),
            Err(e) => {
                record.outcome = if matches!(e, QuotaError::Tokens { .. }) {
                    Outcome::OverTokenQuota
                } else {
                    Outcome::TooManySessions
                };
                record.time = unix_time();
                self.audit(&record);
                Err(e)
            }
        }
    }
}

fn unix_time() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An admitted request: when dropped (its response sent, or its client gone), its tokens are
/// charged, its place given back and its audit line written.
pub struct Ticket {
    policy: Arc<Policy>,
    record: Record,
}

impl Ticket {
    /// One more token generated.
    pub fn token(&mut self) {
        self.record.tokens_out = self.record.tokens_out.saturating_add(1);
    }

    /// How the request ended (default: cancelled, its client went away).
    pub fn end(&mut self, outcome: Outcome) {
        self.record.outcome = outcome;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let (client, now) = (self.record.client, self.policy.now_ms());
        if let Some(c) = client {
            let mut q = self.policy.quota();
            q.charge(c, self.record.tokens_in.saturating_add(self.record.tokens_out), now);
            q.close(c, now);
        }
        self.record.time = unix_time();
        self.policy.audit(&self.record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_at_its_session_limit_is_refused_until_one_ends() {
        let p = Arc::new(Policy::new(Limits { sessions: 1, tokens_per_minute: 0 }, 8).unwrap());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut first = p.admit(a, [1; 32], 5).unwrap();
        assert_eq!(p.admit(a, [2; 32], 5).err(), Some(QuotaError::Sessions { limit: 1 }));
        let other = p.admit(b, [3; 32], 5).unwrap();
        first.token();
        first.end(Outcome::Completed);
        drop(first);
        let again = p.admit(a, [4; 32], 5).unwrap();
        drop((again, other));
        // Three admitted (audited when they end) and one refused (audited at once).
        assert_eq!(p.seq.load(Ordering::Relaxed), 4, "every admission and refusal is audited");
    }
}
