//! The Unicode facts the BPE pre-tokenizers need: letter / number classes, whitespace, UTF-8
//! decoding with replacement, and GPT-2's byte-to-character map.

use super::unicode_table::RUNS;
use alloc::vec::Vec;

/// What a pre-tokenizer needs to know about a code point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags {
    pub letter: bool,
    pub number: bool,
    pub whitespace: bool,
}

/// Flags of `cp`.
pub(crate) fn flags(cp: u32) -> Flags {
    let run = match RUNS.binary_search_by_key(&cp, |r| r.0) {
        Ok(i) => RUNS.get(i),
        Err(i) => i.checked_sub(1).and_then(|i| RUNS.get(i)),
    };
    let class = run.map_or(0, |r| r.1);
    Flags { letter: class == 1, number: class == 2, whitespace: is_whitespace(cp) }
}

/// llama.cpp's whitespace set (`\s`).
fn is_whitespace(cp: u32) -> bool {
    matches!(cp, 0x09..=0x0D | 0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000)
}

/// Code points of `bytes`; each invalid byte becomes U+FFFD.
pub(crate) fn code_points(bytes: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match core::str::from_utf8(rest) {
            Ok(s) => {
                out.extend(s.chars().map(|c| c as u32));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // SAFETY-free: `good` is valid UTF-8 by construction.
                out.extend(core::str::from_utf8(good).unwrap_or("").chars().map(|c| c as u32));
                out.push(0xFFFD);
                let skip = e.error_len().unwrap_or(bad.len()).max(1);
                rest = bad.get(skip..).unwrap_or(&[]);
            }
        }
    }
    out
}

/// GPT-2's map from bytes to printable characters (`bytes_to_unicode`).
pub(crate) fn byte_to_char(b: u8) -> char {
    let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable {
        return char::from(b);
    }
    // Non-printable bytes take code points 256, 257, … in byte order.
    let n = (0..b).filter(|&x| !matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)).count() as u32;
    char::from_u32(256 + n).unwrap_or('?')
}

/// The inverse of [`byte_to_char`].
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < 256 {
        let b = cp as u8;
        return matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF).then_some(b);
    }
    let n = cp - 256;
    (0..=255u8).filter(|&x| !matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)).nth(n as usize)
}
