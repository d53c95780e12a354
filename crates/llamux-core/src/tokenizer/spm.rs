//! SentencePiece (`tokenizer.ggml.model = llama`): merge the adjacent pair whose merged text is
//! the highest-scoring token, until none is left; text that forms no token falls back to bytes.

use super::vocab::Vocab;
use alloc::collections::{BTreeMap, BinaryHeap};
use alloc::vec::Vec;
use core::cmp::Ordering;

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Highest score first; on ties, the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score).then_with(|| o.left.cmp(&self.left))
    }
}

/// Length of the UTF-8 sequence starting with `b` (1 for invalid lead bytes).
fn utf8_len(b: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[(b >> 4) as usize]
}

/// Queues the merge of symbols `left` and `right` if their text is a token.
fn try_add<'t>(
    vocab: &Vocab<'_>,
    text: &'t [u8],
    left: Option<usize>,
    right: Option<usize>,
    symbols: &[Symbol],
    queue: &mut BinaryHeap<Bigram>,
    rev_merge: &mut BTreeMap<&'t [u8], (usize, usize)>,
) {
    let (Some(l), Some(r)) = (left, right) else { return };
    let (Some(ls), Some(rs)) = (symbols.get(l), symbols.get(r)) else { return };
    let Some(piece) = text.get(ls.start..ls.start + ls.len + rs.len) else { return };
    let Some(id) = vocab.id(piece) else { return };
    let score = vocab.scores.get(id as usize).copied().unwrap_or(0.0);
    queue.push(Bigram { left: l, right: r, score, size: piece.len() });
    rev_merge.insert(piece, (l, r));
}

/// Tokenizes already-escaped text (spaces as `▁`), appending ids to `out`.
pub(crate) fn tokenize(vocab: &Vocab<'_>, text: &[u8], out: &mut Vec<u32>) {
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut offs = 0;
    while offs < text.len() {
        let len = utf8_len(text[offs]).min(text.len() - offs);
        let i = symbols.len();
        symbols.push(Symbol {
            start: offs,
            len,
            prev: i.checked_sub(1),
            next: if offs + len == text.len() { None } else { Some(i + 1) },
        });
        offs += len;
    }
    let mut queue = BinaryHeap::new();
    let mut rev_merge: BTreeMap<&[u8], (usize, usize)> = BTreeMap::new();
    for i in 1..symbols.len() {
        try_add(vocab, text, Some(i - 1), Some(i), &symbols, &mut queue, &mut rev_merge);
    }
    while let Some(b) = queue.pop() {
        let (ls, rs) = (symbols[b.left], symbols[b.right]);
        if ls.len == 0 || rs.len == 0 || ls.len + rs.len != b.size {
            continue;
        }
        symbols[b.left].len += rs.len;
        symbols[b.right].len = 0;
        symbols[b.left].next = rs.next;
        if let Some(n) = rs.next {
            symbols[n].prev = Some(b.left);
        }
        let prev = symbols[b.left].prev;
        try_add(vocab, text, prev, Some(b.left), &symbols, &mut queue, &mut rev_merge);
        let next = symbols[b.left].next;
        try_add(vocab, text, Some(b.left), next, &symbols, &mut queue, &mut rev_merge);
    }
    let mut i = if symbols.is_empty() { None } else { Some(0) };
    let mut stack = Vec::new();
    while let Some(idx) = i {
        stack.push(idx);
        // Resegment without recursion: a symbol is a token, a recorded merge, or bytes.
        while let Some(s) = stack.pop() {
            let sym = symbols[s];
            let piece = &text[sym.start..sym.start + sym.len];
            if let Some(id) = vocab.id(piece) {
                out.push(id);
            } else if let Some(&(l, r)) = rev_merge.get(piece) {
                stack.push(r);
                stack.push(l);
            } else {
                for &byte in piece {
                    out.extend(byte_token(vocab, byte));
                }
            }
        }
        i = symbols[idx].next;
    }
}

/// The byte-fallback token `<0xXX>` for `byte` (or the single-byte token, or `<unk>`).
pub(crate) fn byte_token(vocab: &Vocab<'_>, byte: u8) -> Option<u32> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let name = [b'<', b'0', b'x', HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize], b'>'];
    vocab.id(&name).or_else(|| vocab.id(&[byte])).or(vocab.unk)
}
