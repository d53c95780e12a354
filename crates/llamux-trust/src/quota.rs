//! Per-principal limits: how many sessions a principal (a uid in the kernel, a client address
//! in `llamux serve`) may have at once, and how many tokens it may use per minute.
//!
//! Tokens are counted as a leaky bucket: each token a request used (prompt and generated) adds
//! one to the principal's count, which drains at `tokens_per_minute` per minute. A request is
//! admitted while the count is below one minute's worth, and charged when it ends, so one
//! request may take the count over; the next waits until it has drained below again. Time is
//! the host's monotonic clock in milliseconds. A limit of 0 is no limit.

use alloc::vec::Vec;
use core::fmt;

/// The limits, each 0 for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Sessions open at once.
    pub sessions: u32,
    /// Tokens per minute.
    pub tokens_per_minute: u32,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaError {
    /// The principal has `limit` sessions open already.
    Sessions {
        /// The limit.
        limit: u32,
    },
    /// The principal used its tokens for now.
    Tokens {
        /// Tokens per minute allowed.
        limit: u32,
        /// Seconds until a request is admitted again (at least 1).
        retry_after_s: u32,
    },
    /// More principals are counted than the table holds (each with sessions open or tokens
    /// still counted).
    Full,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaError::Sessions { limit } => write!(f, "quota: at most {limit} sessions at once"),
            QuotaError::Tokens { limit, retry_after_s } => {
                write!(f, "quota: {limit} tokens per minute used up, retry in {retry_after_s} s")
            }
            QuotaError::Full => write!(f, "quota: too many users counted at once"),
        }
    }
}

/// Memory for the table could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// Tokens are counted in 1/60000ths, so that the count drains by `tokens_per_minute` units per
/// millisecond.
const UNIT: u64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Entry<K> {
    key: K,
    sessions: u32,
    /// Tokens still counted, in `UNIT`s.
    count: u64,
    /// When `count` was last drained.
    at_ms: u64,
}

/// The per-principal counts, in a table allocated once.
pub struct Quota<K> {
    limits: Limits,
    entries: Vec<Entry<K>>,
    capacity: usize,
}

impl<K: Copy + Eq> Quota<K> {
    /// A table for up to `capacity` principals counted at once.
    pub fn try_new(capacity: usize, limits: Limits) -> Result<Self, OutOfMemory> {
        let capacity = capacity.max(1);
        let mut entries = Vec::new();
        entries.try_reserve_exact(capacity).map_err(|_| OutOfMemory)?;
        Ok(Quota { limits, entries, capacity })
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits (sessions already open stay open).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    fn drain(e: &mut Entry<K>, per_minute: u32, now_ms: u64) {
        let dt = now_ms.saturating_sub(e.at_ms);
        e.at_ms = e.at_ms.max(now_ms);
        e.count = if per_minute == 0 { 0 } else { e.count.saturating_sub(dt.saturating_mul(u64::from(per_minute))) };
    }

    fn find(&mut self, key: K, now_ms: u64) -> Option<&mut Entry<K>> {
        let per_minute = self.limits.tokens_per_minute;
        let e = self.entries.iter_mut().find(|e| e.key == key)?;
        Self::drain(e, per_minute, now_ms);
        Some(e)
    }

    /// The entry of `key`, made when missing (reusing one that counts nothing any more).
    fn entry(&mut self, key: K, now_ms: u64) -> Result<&mut Entry<K>, QuotaError> {
        let per_minute = self.limits.tokens_per_minute;
        let mut at = None;
        for (i, e) in self.entries.iter_mut().enumerate() {
            Self::drain(e, per_minute, now_ms);
            if e.key == key {
                at = Some(i);
                break;
            }
        }
        let i = match at {
            Some(i) => i,
            None => {
                let fresh = Entry { key, sessions: 0, count: 0, at_ms: now_ms };
                if let Some(i) = self.entries.iter().position(|e| e.sessions == 0 && e.count == 0) {
                    if let Some(e) = self.entries.get_mut(i) {
                        *e = fresh;
                    }
                    i
                } else if self.entries.len() < self.capacity {
                    self.entries.push(fresh); // within the capacity reserved
                    self.entries.len() - 1
                } else {
                    return Err(QuotaError::Full);
                }
            }
        };
        self.entries.get_mut(i).ok_or(QuotaError::Full)
    }

    /// A session of `key` opens: refused when it has as many open as it may.
    pub fn open(&mut self, key: K, now_ms: u64) -> Result<(), QuotaError> {
        let limit = self.limits.sessions;
        let e = self.entry(key, now_ms)?;
        if limit != 0 && e.sessions >= limit {
            return Err(QuotaError::Sessions { limit });
        }
        e.sessions += 1;
        Ok(())
    }

    /// A session of `key` closes.
    pub fn close(&mut self, key: K, now_ms: u64) {
        if let Some(e) = self.find(key, now_ms) {
            e.sessions = e.sessions.saturating_sub(1);
        }
    }

    /// A request of `key` is admitted while its tokens counted are below one minute's worth.
    pub fn admit(&mut self, key: K, now_ms: u64) -> Result<(), QuotaError> {
        let limit = self.limits.tokens_per_minute;
        if limit == 0 {
            return Ok(());
        }
        let Some(e) = self.find(key, now_ms) else { return Ok(()) };
        let full = u64::from(limit) * UNIT;
        if e.count < full {
            return Ok(());
        }
        // Below `full` after (count - full) / limit + 1 milliseconds.
        let ms = (e.count - full) / u64::from(limit) + 1;
        Err(QuotaError::Tokens { limit, retry_after_s: u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX) })
    }

    /// Counts `tokens` used by a request of `key` (dropped if the table is full).
    pub fn charge(&mut self, key: K, tokens: u32, now_ms: u64) {
        if self.limits.tokens_per_minute == 0 {
            return;
        }
        if let Ok(e) = self.entry(key, now_ms) {
            e.count = e.count.saturating_add(u64::from(tokens) * UNIT);
        }
    }

    /// Sessions `key` has open.
    pub fn sessions(&self, key: K) -> u32 {
        self.entries.iter().find(|e| e.key == key).map_or(0, |e| e.sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn sessions_are_limited_per_principal() {
        let mut q = Quota::try_new(4, Limits { sessions: 2, tokens_per_minute: 0 }).unwrap();
        q.open(1u32, 0).unwrap();
        q.open(1, 0).unwrap();
        assert_eq!(q.open(1, 0), Err(QuotaError::Sessions { limit: 2 }));
        // Another principal is not affected.
        q.open(2, 0).unwrap();
        q.close(1, 5);
        q.open(1, 5).unwrap();
        assert_eq!((q.sessions(1), q.sessions(2)), (2, 1));
        // No limit.
        q.set_limits(Limits::default());
        q.open(1, 6).unwrap();
        assert_eq!(q.sessions(1), 3);
        assert_eq!(QuotaError::Sessions { limit: 2 }.to_string(), "quota: at most 2 sessions at once");
    }

    #[test]
    fn tokens_drain_at_the_rate_per_minute() {
        let mut q = Quota::try_new(4, Limits { sessions: 0, tokens_per_minute: 600 }).unwrap();
        q.open(7u32, 0).unwrap();
        q.admit(7, 0).unwrap();
        q.charge(7, 599, 0);
        q.admit(7, 0).unwrap(); // below a minute's worth
        q.charge(7, 61, 0); // 660 counted: 60 over, drained in 6 s (10 per second)
        assert_eq!(q.admit(7, 0), Err(QuotaError::Tokens { limit: 600, retry_after_s: 7 }));
        assert!(matches!(q.admit(7, 5_000), Err(QuotaError::Tokens { retry_after_s: 2, .. })));
        assert!(q.admit(7, 6_001).is_ok());
        // Others are admitted all along.
        q.admit(8, 0).unwrap();
        q.charge(8, 10, 0);
        q.admit(8, 1).unwrap();
        let e = q.admit(7, 0);
        assert!(e.is_ok(), "time never runs backwards: {e:?}");
        assert!(QuotaError::Tokens { limit: 600, retry_after_s: 7 }.to_string().contains("600 tokens per minute"));
    }

    #[test]
    fn a_full_table_refuses_new_principals_until_one_is_idle() {
        let mut q = Quota::try_new(2, Limits { sessions: 1, tokens_per_minute: 60 }).unwrap();
        q.open(1u32, 0).unwrap();
        q.open(2, 0).unwrap();
        assert_eq!(q.open(3, 0), Err(QuotaError::Full));
        q.close(1, 0);
        q.charge(1, 1, 0); // still counted for a second
        assert_eq!(q.open(3, 500), Err(QuotaError::Full));
        q.open(3, 1_000).unwrap(); // principal 1 idle and drained: its entry is reused
        assert_eq!((q.sessions(1), q.sessions(3)), (0, 1));
    }
}
