//! The merge loop shared by SentencePiece and BPE: symbols in a linked list, candidate pairs in a
//! priority queue, the best pair merged until none is left (llama.cpp's `llm_symbol` sessions).

use super::tick::Ticker;
use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// A run of the text: `text[start .. start + len]`, linked to its neighbours.
#[derive(Clone, Copy)]
pub(crate) struct Symbol {
    pub start: usize,
    pub len: usize,
    pub prev: Option<usize>,
    pub next: Option<usize>,
}

/// A candidate merge of `left` and `right`, whose joined text had `size` bytes.
struct Candidate<P> {
    priority: P,
    left: usize,
    right: usize,
    size: usize,
}

impl<P: Ord> PartialEq for Candidate<P> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl<P: Ord> Eq for Candidate<P> {}
impl<P: Ord> PartialOrd for Candidate<P> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<P: Ord> Ord for Candidate<P> {
    /// Highest priority first; on ties, the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority.cmp(&o.priority).then_with(|| o.left.cmp(&self.left))
    }
}

/// Splits `text` into one symbol per character (`char_len` gives a character's byte length),
/// then repeatedly merges the adjacent pair with the highest `priority(joined, split)` (`joined`
/// the pair's bytes, `joined[..split]` the left symbol; `None`: not mergeable). `on_candidate` sees every pair queued. Returns the symbols; merged
/// ones have `len == 0`, the survivors are linked from index 0. Each symbol made, pair queued
/// and pair taken is a step of `ticker`.
pub(crate) fn merge<'t, P: Ord>(
    text: &'t [u8],
    char_len: impl Fn(&[u8]) -> usize,
    priority: impl Fn(&[u8], usize) -> Option<P>,
    mut on_candidate: impl FnMut(&'t [u8], usize, usize),
    ticker: &mut Ticker<'_>,
) -> Vec<Symbol> {
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut offs = 0;
    while let Some(rest) = text.get(offs..).filter(|r| !r.is_empty()) {
        let len = char_len(rest).clamp(1, rest.len());
        let i = symbols.len();
        symbols.push(Symbol {
            start: offs,
            len,
            prev: i.checked_sub(1),
            next: if offs + len == text.len() { None } else { Some(i + 1) },
        });
        offs += len;
        ticker.step();
    }
    let mut queue = BinaryHeap::new();
    let mut push = |l: Option<usize>, r: Option<usize>, symbols: &[Symbol], queue: &mut BinaryHeap<Candidate<P>>| {
        let (Some(l), Some(r)) = (l, r) else { return };
        let (Some(ls), Some(rs)) = (symbols.get(l), symbols.get(r)) else { return };
        let Some(piece) = text.get(ls.start..ls.start + ls.len + rs.len) else { return };
        if let Some(priority) = priority(piece, ls.len) {
            queue.push(Candidate { priority, left: l, right: r, size: piece.len() });
            on_candidate(piece, l, r);
        }
    };
    for i in 1..symbols.len() {
        push(Some(i - 1), Some(i), &symbols, &mut queue);
        ticker.step();
    }
    while let Some(c) = queue.pop() {
        ticker.step();
        // Queued pairs index `symbols`, which never shrinks.
        let (Some(&ls), Some(&rs)) = (symbols.get(c.left), symbols.get(c.right)) else { continue };
        // Skip pairs outdated by an earlier merge.
        if ls.len == 0 || rs.len == 0 || ls.len + rs.len != c.size || ls.next != Some(c.right) {
            continue;
        }
        if let Some(r) = symbols.get_mut(c.right) {
            r.len = 0;
        }
        if let Some(n) = rs.next.and_then(|n| symbols.get_mut(n)) {
            n.prev = Some(c.left);
        }
        let Some(l) = symbols.get_mut(c.left) else { continue };
        l.len += rs.len;
        l.next = rs.next;
        let (prev, next) = (l.prev, l.next);
        push(prev, Some(c.left), &symbols, &mut queue);
        push(Some(c.left), next, &symbols, &mut queue);
    }
    symbols
}

/// Visits the surviving symbols in order.
pub(crate) fn survivors(symbols: &[Symbol]) -> impl Iterator<Item = Symbol> + '_ {
    let mut i = if symbols.is_empty() { None } else { Some(0) };
    core::iter::from_fn(move || {
        let s = *symbols.get(i?)?;
        i = s.next;
        Some(s)
    })
}
