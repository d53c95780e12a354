//! SentencePiece (`tokenizer.ggml.model = llama`): merge the adjacent pair whose merged text is
//! the highest-scoring token, until none is left; text that forms no token falls back to bytes.

use super::merge::{merge, survivors};
use super::tick::Ticker;
use super::vocab::Vocab;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Length of the UTF-8 sequence starting with `b` (1 for invalid lead bytes).
fn utf8_len(b: u8) -> usize {
    match b >> 4 {
        0xC | 0xD => 2,
        0xE => 3,
        0xF => 4,
        _ => 1,
    }
}

/// Tokenizes already-escaped text (spaces as `▁`), appending ids to `out`.
/// Each token resegmented is a step of `ticker`, as are the merge loop's.
pub(crate) fn tokenize(vocab: &Vocab<'_>, text: &[u8], out: &mut Vec<u32>, ticker: &mut Ticker<'_>) {
    // Pairs whose merged text is a token, the best-scoring first.
    let mut rev_merge: BTreeMap<&[u8], (usize, usize)> = BTreeMap::new();
    let symbols = merge(
        text,
        |rest| rest.first().map_or(1, |&b| utf8_len(b)),
        |piece, _| vocab.id(piece).map(|id| Score(vocab.scores.get(id as usize).copied().unwrap_or(0.0))),
        |piece, l, r| {
            rev_merge.insert(piece, (l, r));
        },
        ticker,
    );
    let mut stack = Vec::new();
    for sym in survivors(&symbols) {
        stack.push(sym);
        // Resegment without recursion: a symbol is a token, a recorded merge, or bytes.
        while let Some(s) = stack.pop() {
            ticker.step();
            let piece = text.get(s.start..s.start + s.len).unwrap_or(&[]);
            if let Some(id) = vocab.id(piece) {
                out.push(id);
            } else if let Some(&(l, r)) = rev_merge.get(piece) {
                stack.extend(symbols.get(r).copied());
                stack.extend(symbols.get(l).copied());
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
    let hex = |n: u8| if n < 10 { b'0' + n } else { b'A' + (n - 10) };
    let name = [b'<', b'0', b'x', hex(byte >> 4), hex(byte & 15), b'>'];
    vocab.id(&name).or_else(|| vocab.id(&[byte])).or(vocab.unk)
}
