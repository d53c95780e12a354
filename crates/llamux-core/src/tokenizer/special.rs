//! Splitting text at special tokens before tokenizing (llama.cpp's `tokenizer_st_partition`).

use super::tick::Ticker;
use super::vocab::{TokenType, Vocab};
use alloc::vec::Vec;

/// A piece of input: raw text (a byte range) or a token matched literally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// `text[start..end]`, still to be tokenized.
    Text(usize, usize),
    /// A special token.
    Token(u32),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let &first = needle.first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last_start {
        i += hay.get(i..=last_start)?.iter().position(|&b| b == first)?;
        if hay.get(i..i + needle.len()) == Some(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Splits `text` at every special token (longest tokens first). Control and unknown tokens are
/// matched only with `parse_special`; user-defined tokens always are. `ticker` ticks after each
/// special token's search through the text, and each fragment split off is a step.
pub(crate) fn partition(vocab: &Vocab<'_>, text: &[u8], parse_special: bool, ticker: &mut Ticker<'_>) -> Vec<Fragment> {
    let mut frags = Vec::new();
    if text.is_empty() {
        return frags;
    }
    frags.push(Fragment::Text(0, text.len()));
    for &id in &vocab.specials {
        let ty = vocab.token_type(id);
        if !parse_special && matches!(ty, Some(TokenType::Control | TokenType::Unknown)) {
            continue;
        }
        let Some(tok) = vocab.text(id).map(str::as_bytes) else { continue };
        // Cheap rejection: most special tokens do not occur at all.
        let found = find(text, tok).is_some();
        ticker.now();
        if !found {
            continue;
        }
        let mut next = Vec::with_capacity(frags.len() + 2);
        for f in frags {
            let Fragment::Text(mut s, e) = f else {
                next.push(f);
                continue;
            };
            while let Some(p) = text.get(s..e).and_then(|t| find(t, tok)) {
                if p > 0 {
                    next.push(Fragment::Text(s, s + p));
                }
                next.push(Fragment::Token(id));
                s += p + tok.len();
                ticker.step();
            }
            if s < e {
                next.push(Fragment::Text(s, e));
            }
        }
        frags = next;
    }
    frags
}
