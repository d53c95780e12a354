//! Byte-level BPE (`tokenizer.ggml.model = gpt2`): regex-style pre-tokenization into words,
//! GPT-2 byte encoding, then merges by rank.

use super::merge::{merge, survivors};
use super::unicode::{byte_to_char, code_points, flags, Flags};
use super::vocab::Vocab;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;

/// Pre-tokenizer flavours (`tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
    /// Llama 3 (`llama-bpe`): case-insensitive contractions, `[^\r\n\p{L}\p{N}]?\p{L}+`,
    /// `\p{N}{1,3}`, punctuation runs with trailing newlines, newline runs; whole words that are
    /// tokens skip merging.
    Llama3,
    /// Qwen2: as Llama 3, with single digits.
    Qwen2,
}

impl PreTokenizer {
    /// The flavour named by `tokenizer.ggml.pre` (unknown names use GPT-2's rules).
    pub fn from_name(name: &str) -> Self {
        match name {
            "llama3" | "llama-bpe" | "llama-v3" | "smaug-bpe" | "dbrx" => PreTokenizer::Llama3,
            "qwen2" | "stablelm2" | "hunyuan" | "deepseek-r1-qwen" => PreTokenizer::Qwen2,
            _ => PreTokenizer::Gpt2,
        }
    }
}

/// Splits code points into word lengths (in code points).
fn split(cps: &[u32], pre: PreTokenizer) -> Vec<usize> {
    let n = cps.len();
    let cpt = |i: usize| cps.get(i).copied();
    let fl = |i: usize| cps.get(i).map(|&c| flags(c));
    let is_l = |f: Option<Flags>| f.is_some_and(|f| f.letter);
    let is_n = |f: Option<Flags>| f.is_some_and(|f| f.number);
    let is_ws = |f: Option<Flags>| f.is_some_and(|f| f.whitespace);
    let is_other = |f: Option<Flags>| f.is_some_and(|f| !(f.whitespace || f.letter || f.number));
    let lower =
        |c: Option<u32>| c.map(|c| if pre != PreTokenizer::Gpt2 && (0x41..=0x5A).contains(&c) { c + 0x20 } else { c });
    let mut words = Vec::new();
    let mut prev_end = 0usize;
    let mut add = |end: usize, prev_end: &mut usize| {
        if end > *prev_end {
            words.push(end - *prev_end);
        }
        *prev_end = end;
    };
    let mut pos = 0usize;
    while pos < n {
        let c = cps[pos];
        let f = fl(pos);
        // Contractions: 's 't 'm 'd 're 've 'll.
        if c == u32::from(b'\'') && pos + 1 < n {
            let c1 = lower(cpt(pos + 1));
            if [b's', b't', b'm', b'd'].iter().any(|&x| c1 == Some(u32::from(x))) {
                pos += 2;
                add(pos, &mut prev_end);
                continue;
            }
            if pos + 2 < n {
                let c2 = lower(cpt(pos + 2));
                let pair = |a: u8, b: u8| c1 == Some(u32::from(a)) && c2 == Some(u32::from(b));
                if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
                    pos += 3;
                    add(pos, &mut prev_end);
                    continue;
                }
            }
        }
        match pre {
            PreTokenizer::Gpt2 => {
                let f2 = if c == u32::from(b' ') { fl(pos + 1) } else { f };
                // <space>?\p{L}+ | <space>?\p{N}+ | <space>?[^\s\p{L}\p{N}]+
                let class: Option<fn(Option<Flags>) -> bool> = if is_l(f2) {
                    Some(|f| f.is_some_and(|f| f.letter))
                } else if is_n(f2) {
                    Some(|f| f.is_some_and(|f| f.number))
                } else if is_other(f2) {
                    Some(|f| f.is_some_and(|f| !(f.whitespace || f.letter || f.number)))
                } else {
                    None
                };
                if let Some(class) = class {
                    pos += usize::from(c == u32::from(b' '));
                    while class(fl(pos)) {
                        pos += 1;
                    }
                    add(pos, &mut prev_end);
                    continue;
                }
            }
            PreTokenizer::Llama3 | PreTokenizer::Qwen2 => {
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if !(c == u32::from(b'\r') || c == u32::from(b'\n') || is_n(f)) && (is_l(f) || is_l(fl(pos + 1))) {
                    pos += 1;
                    while is_l(fl(pos)) {
                        pos += 1;
                    }
                    add(pos, &mut prev_end);
                    continue;
                }
                // \p{N}{1,3} (Qwen2: \p{N})
                if is_n(f) {
                    let max = if pre == PreTokenizer::Llama3 { 3 } else { 1 };
                    let mut ini = pos;
                    while is_n(fl(pos)) {
                        pos += 1;
                        if pos - ini >= max {
                            add(pos, &mut prev_end);
                            ini = pos;
                        }
                    }
                    add(pos, &mut prev_end);
                    continue;
                }
                // <space>?[^\s\p{L}\p{N}]+[\r\n]*
                let f2 = if c == u32::from(b' ') { fl(pos + 1) } else { f };
                if is_other(f2) && f.is_some() {
                    pos += usize::from(c == u32::from(b' '));
                    while is_other(fl(pos)) {
                        pos += 1;
                    }
                    while matches!(cpt(pos), Some(0x0D | 0x0A)) {
                        pos += 1;
                    }
                    add(pos, &mut prev_end);
                    continue;
                }
            }
        }
        let mut num_ws = 0;
        let mut last_newline_end = 0;
        while is_ws(fl(pos + num_ws)) {
            if pre != PreTokenizer::Gpt2 && matches!(cpt(pos + num_ws), Some(0x0D | 0x0A)) {
                last_newline_end = pos + num_ws + 1;
            }
            num_ws += 1;
        }
        // \s*[\r\n]+
        if last_newline_end > 0 {
            pos = last_newline_end;
            add(pos, &mut prev_end);
            continue;
        }
        // \s+(?!\S)
        if num_ws > 1 && cpt(pos + num_ws).is_some() {
            pos += num_ws - 1;
            add(pos, &mut prev_end);
            continue;
        }
        // \s+
        if num_ws > 0 {
            pos += num_ws;
            add(pos, &mut prev_end);
            continue;
        }
        pos += 1;
        add(pos, &mut prev_end);
    }
    words
}

/// Merge ranks: `"left right"` pairs from `tokenizer.ggml.merges`.
pub(crate) struct Merges<'a> {
    ranks: BTreeMap<(&'a str, &'a str), u32>,
}

impl<'a> Merges<'a> {
    pub(crate) fn new(merges: impl Iterator<Item = &'a str>) -> Self {
        let mut ranks = BTreeMap::new();
        for (i, m) in merges.enumerate() {
            if let Some((a, b)) = m.split_once(' ') {
                ranks.entry((a, b)).or_insert(i as u32);
            }
        }
        Merges { ranks }
    }

    fn rank(&self, a: &str, b: &str) -> Option<u32> {
        self.ranks.get(&(a, b)).copied()
    }
}

/// Tokenizes `text` (raw bytes) with byte-level BPE, appending to `out`.
pub(crate) fn tokenize(vocab: &Vocab<'_>, merges: &Merges<'_>, pre: PreTokenizer, text: &[u8], out: &mut Vec<u32>) {
    let cps = code_points(text);
    let mut start = 0;
    let mut word = String::new();
    for len in split(&cps, pre) {
        // The word's UTF-8 bytes, each mapped to its GPT-2 character.
        word.clear();
        let mut utf8 = [0u8; 4];
        for &cp in &cps[start..start + len] {
            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
            for &b in ch.encode_utf8(&mut utf8).as_bytes() {
                word.push(byte_to_char(b));
            }
        }
        start += len;
        if pre == PreTokenizer::Llama3 {
            if let Some(id) = vocab.id(word.as_bytes()) {
                out.push(id);
                continue;
            }
        }
        merge_word(vocab, merges, &word, out);
    }
}

fn merge_word(vocab: &Vocab<'_>, merges: &Merges<'_>, word: &str, out: &mut Vec<u32>) {
    let bytes = word.as_bytes();
    let symbols = merge(
        bytes,
        |rest| core::str::from_utf8(rest).ok().and_then(|s| s.chars().next()).map_or(1, char::len_utf8),
        |piece, split| {
            let (a, b) = piece.split_at(split);
            merges.rank(core::str::from_utf8(a).ok()?, core::str::from_utf8(b).ok()?).map(Reverse)
        },
        |_, _, _| {},
    );
    for s in survivors(&symbols) {
        let t = word.get(s.start..s.start + s.len).unwrap_or("");
        match vocab.id(t.as_bytes()) {
            Some(id) => out.push(id),
            None => {
                for ch in t.chars() {
                    let mut b = [0u8; 4];
                    if let Some(id) = vocab.id(ch.encode_utf8(&mut b).as_bytes()) {
                        out.push(id);
                    }
                }
            }
        }
    }
}
