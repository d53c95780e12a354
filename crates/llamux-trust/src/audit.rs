//! The audit trail: one [`Record`] per request (time, who asked, the prompt's SHA-256, tokens in
//! and out, how it ended), printed as one line, and a fixed-size [`Ring`] of the newest ones.
//!
//! Line format (one record, space separated `key=value`, `-` where a host has no such thing):
//!
//! ```text
//! seq=12 time=1764660000 uid=1000 pid=4242 comm=cat client=- prompt_sha256=9f86…0a08 tokens_in=5 tokens_out=24 outcome=completed
//! ```

use crate::hex::Hex;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Outcome {
    /// Generated to its end (end of generation, a stop string, its token limit, a full context).
    Completed = 0,
    /// Its reader went away (closed, killed, disconnected) before the end.
    Cancelled = 1,
    /// Its deadline passed.
    TimedOut = 2,
    /// The engine failed.
    Failed = 3,
    /// The prompt or its settings were refused (empty, too long, out of memory).
    Refused = 4,
    /// Refused: the principal has as many sessions as it may have at once.
    TooManySessions = 5,
    /// Refused: the principal has used its tokens for this minute.
    OverTokenQuota = 6,
}

impl Outcome {
    /// The name printed in the line.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::TimedOut => "timeout",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::TooManySessions => "too_many_sessions",
            Outcome::OverTokenQuota => "over_token_quota",
        }
    }

    /// The outcome with this number (`repr(u32)`, the C ABI's), `None` for others.
    pub fn from_u32(v: u32) -> Option<Outcome> {
        [
            Outcome::Completed,
            Outcome::Cancelled,
            Outcome::TimedOut,
            Outcome::Failed,
            Outcome::Refused,
            Outcome::TooManySessions,
            Outcome::OverTokenQuota,
        ]
        .into_iter()
        .find(|o| *o as u32 == v)
    }
}

/// One request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Seconds since the Unix epoch when it ended.
    pub time: u64,
    /// The asking process's user (kernel), if the host knows it.
    pub uid: Option<u32>,
    /// The asking process (kernel).
    pub pid: Option<u32>,
    /// The asking process's command name, NUL-padded (kernel's `comm`); empty when unknown.
    pub comm: [u8; 16],
    /// The client's address (`serve`).
    pub client: Option<IpAddr>,
    /// SHA-256 of the prompt's bytes, as written or as formatted for the model.
    pub prompt_sha256: [u8; 32],
    /// Prompt tokens.
    pub tokens_in: u32,
    /// Generated tokens.
    pub tokens_out: u32,
    /// How it ended.
    pub outcome: Outcome,
}

impl Record {
    /// A record with nothing known of the asker yet.
    pub fn new(time: u64, prompt_sha256: [u8; 32], outcome: Outcome) -> Record {
        Record {
            time,
            uid: None,
            pid: None,
            comm: [0; 16],
            client: None,
            prompt_sha256,
            tokens_in: 0,
            tokens_out: 0,
            outcome,
        }
    }
}

/// An optional value, `-` when absent.
struct Opt<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A command name as printed: up to its first NUL; bytes outside printable ASCII, spaces and `=`
/// as `?` (a process names itself, so its name must not forge fields or lines); `-` when empty.
struct Comm<'a>(&'a [u8; 16]);

impl fmt::Display for Comm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.split(|&b| b == 0).next().unwrap_or(&[]);
        if name.is_empty() {
            return f.write_str("-");
        }
        name.iter().try_for_each(|&b| {
            let c = if b.is_ascii_graphic() && b != b'=' { b as char } else { '?' };
            write!(f, "{c}")
        })
    }
}

/// A record with its sequence number, as one line (without the newline).
pub struct Line<'a> {
    /// Sequence number (1 for the first request a host recorded).
    pub seq: u64,
    /// The record.
    pub record: &'a Record,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.record;
        write!(
            f,
            "seq={} time={} uid={} pid={} comm={} client={} prompt_sha256={} tokens_in={} tokens_out={} outcome={}",
            self.seq,
            r.time,
            Opt(r.uid),
            Opt(r.pid),
            Comm(&r.comm),
            Opt(r.client),
            Hex(&r.prompt_sha256),
            r.tokens_in,
            r.tokens_out,
            r.outcome.name()
        )
    }
}

/// Records a ring keeps by default.
pub const RING_LEN: usize = 256;

/// Memory for a ring could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// The newest `capacity` records (older ones are overwritten), numbered from 1. Its memory is
/// allocated once, fallibly, when it is made.
pub struct Ring {
    slots: Vec<Record>,
    capacity: usize,
    /// Records pushed so far (the newest's sequence number).
    pushed: u64,
}

impl Ring {
    /// An empty ring of `capacity` records (at least one).
    pub fn try_new(capacity: usize) -> Result<Ring, OutOfMemory> {
        let capacity = capacity.max(1);
        let mut slots = Vec::new();
        slots.try_reserve_exact(capacity).map_err(|_| OutOfMemory)?;
        Ok(Ring { slots, capacity, pushed: 0 })
    }

    /// Adds a record, dropping the oldest when full; returns its sequence number. Never
    /// allocates.
    pub fn push(&mut self, r: Record) -> u64 {
        let at = (self.pushed % self.capacity as u64) as usize;
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = r;
        } else if self.slots.len() < self.capacity {
            self.slots.push(r); // within the capacity reserved
        }
        self.pushed += 1;
        self.pushed
    }

    /// Records pushed so far, including those overwritten.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No record yet.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `i`-th record held, oldest first (`i < len()`), with its sequence number.
    pub fn get(&self, i: usize) -> Option<(u64, &Record)> {
        let held = self.slots.len() as u64;
        let seq = (self.pushed - held).checked_add(i as u64 + 1).filter(|&s| s <= self.pushed)?;
        let r = self.slots.get(((seq - 1) % self.capacity as u64) as usize)?;
        Some((seq, r))
    }

    /// The records held, oldest first, with their sequence numbers.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Record)> + '_ {
        (0..self.slots.len()).filter_map(move |i| self.get(i))
    }

    /// Writes the records as lines, oldest first.
    pub fn write_lines(&self, out: &mut impl fmt::Write) -> fmt::Result {
        self.iter().try_for_each(|(seq, record)| writeln!(out, "{}", Line { seq, record }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn rec(i: u32) -> Record {
        let mut r = Record::new(1_700_000_000 + u64::from(i), crate::sha256(&i.to_le_bytes()), Outcome::Completed);
        r.uid = Some(1000 + i);
        r.tokens_out = i;
        r
    }

    #[test]
    fn a_line_has_every_field_and_cannot_be_forged() {
        let mut r = rec(1);
        r.pid = Some(42);
        r.comm[..11].copy_from_slice(b"ev il\nx=1 \x01");
        r.tokens_in = 5;
        r.outcome = Outcome::OverTokenQuota;
        let line = Line { seq: 3, record: &r }.to_string();
        let want = std::format!(
            "seq=3 time=1700000001 uid=1001 pid=42 comm=ev?il?x?1?? client=- prompt_sha256={} tokens_in=5 tokens_out=1 outcome=over_token_quota",
            Hex(&crate::sha256(&1u32.to_le_bytes()))
        );
        assert_eq!(line, want);
        let mut s = rec(2);
        s.uid = None;
        s.client = Some("192.0.2.7".parse().unwrap());
        let line = Line { seq: 1, record: &s }.to_string();
        assert!(line.contains(" uid=- pid=- comm=- client=192.0.2.7 "), "{line}");
    }

    #[test]
    fn the_ring_keeps_the_newest_in_order() {
        let mut ring = Ring::try_new(RING_LEN).unwrap();
        assert!(ring.is_empty() && ring.get(0).is_none());
        for i in 1..=3 {
            assert_eq!(ring.push(rec(i)), u64::from(i));
        }
        let seqs: Vec<u64> = ring.iter().map(|(s, _)| s).collect();
        assert_eq!(seqs, [1, 2, 3]);
        for i in 4..=(RING_LEN as u32 + 10) {
            ring.push(rec(i));
        }
        let held: Vec<(u64, u32)> = ring.iter().map(|(s, r)| (s, r.tokens_out)).collect();
        assert_eq!(held.len(), RING_LEN);
        assert_eq!(held.first(), Some(&(11, 11)));
        assert_eq!(held.last(), Some(&(RING_LEN as u64 + 10, RING_LEN as u32 + 10)));
        assert!(held.windows(2).all(|w| w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1));
        assert_eq!(ring.get(RING_LEN).map(|(s, _)| s), None);
        let mut text = String::new();
        ring.write_lines(&mut text).unwrap();
        assert_eq!(text.lines().count(), RING_LEN);
        assert!(text.starts_with("seq=11 "));
        assert!(text.lines().last().unwrap().starts_with(&std::format!("seq={} ", RING_LEN + 10)));
        // A ring of one keeps the newest.
        let mut one = Ring::try_new(0).unwrap();
        one.push(rec(1));
        one.push(rec(2));
        assert_eq!(one.iter().map(|(s, r)| (s, r.tokens_out)).collect::<Vec<_>>(), [(2, 2)]);
    }

    #[test]
    fn outcomes_round_trip_through_their_numbers() {
        for v in 0..7 {
            assert_eq!(Outcome::from_u32(v).map(|o| o as u32), Some(v));
        }
        assert_eq!(Outcome::from_u32(7), None);
    }
}
