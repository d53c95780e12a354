//! The module's audit log (`/proc/llamux/audit`): requests that ran and refusals kept apart, so
//! that no one's refusals can push a served request's record out, and refusals throttled per
//! uid, so that one user's refusals cannot push out everyone else's.
//!
//! - Records of requests that ran (completed, cancelled, timed out, failed) go to a ring of
//!   their own: only newer such records ever overwrite them.
//! - Refusals (refused, too many sessions, over the token quota) go to a smaller ring, at most
//!   `per_minute` per uid in each minute (a window starting at its first refusal); the others
//!   are counted (`suppressed`), not recorded.
//!
//! Both rings share one sequence: the lines are listed oldest first across both, in
//! `llamux_trust::audit::Line`'s format, and a gap in the numbers is a record no longer held.
//! All memory is allocated when the log is made; nothing here allocates afterwards.

use alloc::vec::Vec;
use llamux_trust::audit::{Outcome, Record};

/// The throttle's window.
const WINDOW_MS: u64 = 60_000;

/// Memory for the log could not be had.
pub struct OutOfMemory;

/// The newest `capacity` records of one kind, each with its sequence number.
struct Slots {
    items: Vec<(u64, Record)>,
    capacity: usize,
    /// Records pushed so far (the next goes to `pushed % capacity`).
    pushed: usize,
}

impl Slots {
    fn try_new(capacity: usize) -> Result<Slots, OutOfMemory> {
        let capacity = capacity.max(1);
        let mut items = Vec::new();
        items.try_reserve_exact(capacity).map_err(|_| OutOfMemory)?;
        Ok(Slots { items, capacity, pushed: 0 })
    }

    fn push(&mut self, seq: u64, r: Record) {
        let at = self.pushed % self.capacity;
        if let Some(slot) = self.items.get_mut(at) {
            *slot = (seq, r);
        } else if self.items.len() < self.capacity {
            self.items.push((seq, r)); // within the capacity reserved
        }
        self.pushed = self.pushed.wrapping_add(1);
    }

    /// The `i`-th record held, oldest first.
    fn get(&self, i: usize) -> Option<&(u64, Record)> {
        let held = self.items.len();
        if i >= held {
            return None;
        }
        // Once full, the oldest is the one the next push overwrites.
        let oldest = if held < self.capacity { 0 } else { self.pushed % self.capacity };
        self.items.get((oldest + i) % held)
    }
}

/// One uid's refusals in its current window.
#[derive(Clone, Copy)]
struct Window {
    uid: u32,
    start_ms: u64,
    recorded: u32,
}

/// The audit log.
pub struct AuditLog {
    served: Slots,
    refused: Slots,
    windows: Vec<Window>,
    windows_max: usize,
    per_minute: u32,
    seq: u64,
    suppressed: u64,
}

/// Whether a record is of a request that was refused before it ran.
fn is_refusal(o: Outcome) -> bool {
    matches!(o, Outcome::Refused | Outcome::TooManySessions | Outcome::OverTokenQuota)
}

impl AuditLog {
    /// A log of `served` records of requests that ran and `refused` refusals, recording at most
    /// `per_minute` refusals of each uid a minute, for up to `uids` uids at once (a refusal of
    /// another uid beyond them, all within their minute, is suppressed).
    pub fn try_new(served: usize, refused: usize, uids: usize, per_minute: u32) -> Result<AuditLog, OutOfMemory> {
        let uids = uids.max(1);
        let mut windows = Vec::new();
        windows.try_reserve_exact(uids).map_err(|_| OutOfMemory)?;
        Ok(AuditLog {
            served: Slots::try_new(served)?,
            refused: Slots::try_new(refused)?,
            windows,
            windows_max: uids,
            per_minute,
            seq: 0,
            suppressed: 0,
        })
    }

    /// Whether `uid` may add a refusal record at `now_ms` (a monotonic clock); counts it.
    fn admit_refusal(&mut self, uid: u32, now_ms: u64) -> bool {
        let expired = |w: &Window| now_ms.saturating_sub(w.start_ms) >= WINDOW_MS;
        if self.per_minute == 0 {
            return false;
        }
        let fresh = Window { uid, start_ms: now_ms, recorded: 1 };
        if let Some(w) = self.windows.iter_mut().find(|w| w.uid == uid) {
            if expired(w) {
                *w = fresh;
                return true;
            }
            if w.recorded < self.per_minute {
                w.recorded += 1;
                return true;
            }
            return false;
        }
        if let Some(w) = self.windows.iter_mut().find(|w| expired(w)) {
            *w = fresh;
            return true;
        }
        if self.windows.len() < self.windows_max {
            self.windows.push(fresh); // within the capacity reserved
            return true;
        }
        false
    }

    /// Adds a record at `now_ms`: its sequence number, or 0 when it is a refusal over its
    /// uid's limit (counted in [`suppressed`](Self::suppressed) instead).
    pub fn push(&mut self, r: Record, now_ms: u64) -> u64 {
        if is_refusal(r.outcome) {
            if !self.admit_refusal(r.uid.unwrap_or(u32::MAX), now_ms) {
                self.suppressed = self.suppressed.saturating_add(1);
                return 0;
            }
            self.seq += 1;
            self.refused.push(self.seq, r);
        } else {
            self.seq += 1;
            self.served.push(self.seq, r);
        }
        self.seq
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.served.items.len() + self.refused.items.len()
    }

    /// Refusals not recorded.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// The `i`-th record held, oldest first across both rings, with its sequence number.
    pub fn get(&self, i: usize) -> Option<(u64, &Record)> {
        let (mut a, mut b) = (0, 0);
        loop {
            let next = match (self.served.get(a), self.refused.get(b)) {
                (Some(x), Some(y)) if x.0 < y.0 => {
                    a += 1;
                    x
                }
                (_, Some(y)) => {
                    b += 1;
                    y
                }
                (Some(x), None) => {
                    a += 1;
                    x
                }
                (None, None) => return None,
            };
            if a + b == i + 1 {
                return Some((next.0, &next.1));
            }
        }
    }
}
