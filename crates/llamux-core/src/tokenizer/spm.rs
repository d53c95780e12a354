//! SentencePiece (`tokenizer.ggml.model = llama`): merge the adjacent pair whose merged text is
//! the highest-scoring token, until none is left; text that forms no token falls back to bytes.

use super::merge::{merge, survivors};
use super::vocab::Vocab;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Length of the UTF-8 sequence starting with `b` (1 for invalid lead bytes).
fn utf8_len(b: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[(b >> 4) as usize]
}

/// Tokenizes already-escaped text (spaces as `▁`), appending ids to `out`.
pub(crate) fn tokenize(vocab: &Vocab<'_>, text: &[u8], out: &mut Vec<u32>) {
    // Pairs whose merged text is a token, the best-scoring first.
    let mut rev_merge: BTreeMap<&[u8], (usize, usize)> = BTreeMap::new();
    let symbols = merge(
        text,
        |rest| utf8_len(rest[0]),
        |piece, _| vocab.id(piece).map(|id| Score(vocab.scores.get(id as usize).copied().unwrap_or(0.0))),
        |piece, l, r| {
            rev_merge.insert(piece, (l, r));
        },
    );
    let mut stack = Vec::new();
    for sym in survivors(&symbols) {
        stack.push(sym);
        // Resegment without recursion: a symbol is a token, a recorded merge, or bytes.
        while let Some(s) = stack.pop() {
            let piece = &text[s.start..s.start + s.len];
            if let Some(id) = vocab.id(piece) {
                out.push(id);
            } else if let Some(&(l, r)) = rev_merge.get(piece) {
                stack.push(symbols[r]);
                stack.push(symbols[l]);
            } else {
                for &byte in piece {
                    out.extend(byte_token(vocab, byte));
                }
            }
        }
    }
}

/// A token score ordered totally (higher merges first).
#[derive(PartialEq)]
struct Score(f32);
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Score {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// The byte-fallback token `<0xXX>` for `byte` (or the single-byte token, or `<unk>`).
pub(crate) fn byte_token(vocab: &Vocab<'_>, byte: u8) -> Option<u32> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let name = [b'<', b'0', b'x', HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize], b'>'];
    vocab.id(&name).or_else(|| vocab.id(&[byte])).or(vocab.unk)
}
