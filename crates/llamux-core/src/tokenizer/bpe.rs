//! Byte-level BPE (`tokenizer.ggml.model = gpt2`): regex-style pre-tokenization into words,
//! GPT-2 byte encoding, then merges by rank.

use super::merge::{merge, survivors};
use super::tick::Ticker;
use super::unicode::{byte_to_char, code_points, flags, Flags};
use super::vocab::Vocab;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;

/// Pre-tokenizer flavours (the rules behind `tokenizer.ggml.pre`; see [`PRE_TOKENIZERS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
    /// Llama 3 (`llama-bpe`): case-insensitive contractions, `[^\r\n\p{L}\p{N}]?\p{L}+`,
    /// `\p{N}{1,3}`, punctuation runs with trailing newlines, newline runs.
    Llama3,
    /// Qwen2: as Llama 3, with single digits.
    Qwen2,
    /// SmolLM / StarCoder: every number code point (`\p{N}`) is split off on its own first, then
    /// GPT-2's rules apply to the text between them.
    Smollm,
}

/// How llama.cpp treats one `tokenizer.ggml.pre` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreTokenizerSpec {
    /// The name, as written in `tokenizer.ggml.pre`.
    pub name: &'static str,
    /// The splitting rules.
    pub rules: PreTokenizer,
    /// Whole words that are tokens skip merging (llama.cpp's `ignore_merges`).
    pub ignore_merges: bool,
    /// BOS is prepended unless `tokenizer.ggml.add_bos_token` says otherwise.
    pub add_bos: bool,
}

const fn spec(name: &'static str, rules: PreTokenizer) -> PreTokenizerSpec {
    PreTokenizerSpec { name, rules, ignore_merges: false, add_bos: false }
}

const fn llama3(name: &'static str) -> PreTokenizerSpec {
    PreTokenizerSpec { name, rules: PreTokenizer::Llama3, ignore_merges: true, add_bos: true }
}

/// Every accepted `tokenizer.ggml.pre` name, as llama.cpp 0.3.36 (`src/llama-vocab.cpp`) maps it.
/// Other names are refused at load (llama.cpp refuses unknown names too; the ones it knows but
/// this engine lacks would tokenize differently). `default`, which llama.cpp also assumes when
/// the key is missing, is tokenized with GPT-2's rules.
pub const PRE_TOKENIZERS: &[PreTokenizerSpec] = &[
    // LLAMA_VOCAB_PRE_TYPE_GPT2 and the types sharing its single regex.
    spec("default", PreTokenizer::Gpt2),
    spec("gpt-2", PreTokenizer::Gpt2),
    spec("phi-2", PreTokenizer::Gpt2),
    spec("jina-es", PreTokenizer::Gpt2),
    spec("jina-de", PreTokenizer::Gpt2),
    spec("gigachat", PreTokenizer::Gpt2),
    spec("jina-v2-es", PreTokenizer::Gpt2),
    spec("jina-v2-de", PreTokenizer::Gpt2),
    spec("a.x-4.0", PreTokenizer::Gpt2),
    spec("mellum", PreTokenizer::Gpt2),
    spec("modern-bert", PreTokenizer::Gpt2),
    spec("exaone4", PreTokenizer::Gpt2),
    spec("mpt", PreTokenizer::Gpt2),
    spec("olmo", PreTokenizer::Gpt2),
    spec("jais", PreTokenizer::Gpt2),
    spec("trillion", PreTokenizer::Gpt2),
    spec("granite-docling", PreTokenizer::Gpt2),
    // LLAMA_VOCAB_PRE_TYPE_LLAMA3 (ignore_merges, BOS by default); DBRX and SMAUG share its regex only.
    llama3("llama3"),
    llama3("llama-v3"),
    llama3("llama-bpe"),
    llama3("falcon3"),
    llama3("falcon-h1"),
    llama3("pixtral"),
    llama3("midm-2.0"),
    llama3("lfm2"),
    llama3("jina-v5-nano"),
    spec("dbrx", PreTokenizer::Llama3),
    spec("smaug-bpe", PreTokenizer::Llama3),
    // LLAMA_VOCAB_PRE_TYPE_QWEN2 and the types sharing its regex.
    spec("qwen2", PreTokenizer::Qwen2),
    spec("deepseek-r1-qwen", PreTokenizer::Qwen2),
    spec("kormo", PreTokenizer::Qwen2),
    spec("f2llmv2", PreTokenizer::Qwen2),
    spec("megrez", PreTokenizer::Qwen2),
    spec("stablelm2", PreTokenizer::Qwen2),
    spec("hunyuan", PreTokenizer::Qwen2),
    spec("solar-open", PreTokenizer::Qwen2),
    // LLAMA_VOCAB_PRE_TYPE_SMOLLM and the types sharing its regexes (`\p{N}`, then GPT-2's).
    spec("smollm", PreTokenizer::Smollm),
    spec("starcoder", PreTokenizer::Smollm),
    spec("refact", PreTokenizer::Smollm),
    spec("command-r", PreTokenizer::Smollm),
    spec("codeshell", PreTokenizer::Smollm),
    spec("exaone", PreTokenizer::Smollm),
    spec("minerva-7b", PreTokenizer::Smollm),
    spec("mellum2", PreTokenizer::Smollm),
];

impl PreTokenizer {
    /// The entry of [`PRE_TOKENIZERS`] for a `tokenizer.ggml.pre` name, if it is accepted.
    pub fn lookup(name: &str) -> Option<&'static PreTokenizerSpec> {
        PRE_TOKENIZERS.iter().find(|s| s.name == name)
    }
}

/// Splits code points into word lengths (in code points).
fn split(cps: &[u32], pre: PreTokenizer) -> Vec<usize> {
    if pre != PreTokenizer::Smollm {
        return split_words(cps, pre);
    }
    // llama.cpp applies `\p{N}` first: each number code point becomes its own fragment, and
    // GPT-2's rules then run inside every fragment, never across a boundary.
    let mut words = Vec::new();
    let mut start = 0;
    for (i, &c) in cps.iter().enumerate() {
        if flags(c).number {
            if i > start {
                words.extend(split_words(cps.get(start..i).unwrap_or(&[]), PreTokenizer::Gpt2));
            }
            words.push(1);
            start = i + 1;
        }
    }
    if cps.len() > start {
        words.extend(split_words(cps.get(start..).unwrap_or(&[]), PreTokenizer::Gpt2));
    }
    words
}

/// The splitting rules of one flavour (GPT-2, Llama 3, Qwen2) over one fragment.
fn split_words(cps: &[u32], pre: PreTokenizer) -> Vec<usize> {
    let gpt2 = matches!(pre, PreTokenizer::Gpt2 | PreTokenizer::Smollm);
    let n = cps.len();
    let cpt = |i: usize| cps.get(i).copied();
    let fl = |i: usize| cps.get(i).map(|&c| flags(c));
    let is_l = |f: Option<Flags>| f.is_some_and(|f| f.letter);
    let is_n = |f: Option<Flags>| f.is_some_and(|f| f.number);
    let is_ws = |f: Option<Flags>| f.is_some_and(|f| f.whitespace);
    let is_other = |f: Option<Flags>| f.is_some_and(|f| !(f.whitespace || f.letter || f.number));
    let lower = |c: Option<u32>| c.map(|c| if !gpt2 && (0x41..=0x5A).contains(&c) { c + 0x20 } else { c });
    let mut words = Vec::new();
    let mut prev_end = 0usize;
    let mut add = |end: usize, prev_end: &mut usize| {
        if end > *prev_end {
            words.push(end - *prev_end);
        }
        *prev_end = end;
    };
    let mut pos = 0usize;
    while let Some(&c) = cps.get(pos) {
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
            PreTokenizer::Gpt2 | PreTokenizer::Smollm => {
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
            if !gpt2 && matches!(cpt(pos + num_ws), Some(0x0D | 0x0A)) {
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

/// Sorts `v` in place with constant stack. `sort_unstable` keeps a scratch buffer of 48 elements
/// on the stack in each level of its recursion (about 2 KiB per level for the merges' tuples),
/// which overflows a kernel stack of 16 KiB on a vocabulary with some 50 000 merges.
fn heap_sort<T: Ord>(v: &mut [T]) {
    // Moves `v[root]` down the max-heap `v[..end]`.
    fn sift_down<T: Ord>(v: &mut [T], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            // Both in bounds (`child + 1 < end <= v.len()`): `Option`'s order is `T`'s.
            if child + 1 < end && v.get(child) < v.get(child + 1) {
                child += 1;
            }
            if v.get(root) >= v.get(child) {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift_down(v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

/// Merge ranks: `"left right"` pairs from `tokenizer.ggml.merges`.
pub(crate) struct Merges<'a> {
    /// `(left, right, rank)` sorted by the pair, the lowest rank of each pair only: lookups by
    /// binary search.
    ranks: Vec<(&'a str, &'a str, u32)>,
}

impl<'a> Merges<'a> {
    /// The ranks of `merges` (at most `n` of them), or the allocation failure.
    pub(crate) fn new(
        merges: impl Iterator<Item = &'a str>,
        n: usize,
    ) -> Result<Self, alloc::collections::TryReserveError> {
        let mut ranks = Vec::new();
        ranks.try_reserve_exact(n)?;
        ranks.extend(merges.take(n).enumerate().filter_map(|(i, m)| m.split_once(' ').map(|(a, b)| (a, b, i as u32))));
        // On duplicate pairs the first (lowest) rank wins.
        heap_sort(&mut ranks);
        ranks.dedup_by(|later, first| (later.0, later.1) == (first.0, first.1));
        Ok(Merges { ranks })
    }

    fn rank(&self, a: &str, b: &str) -> Option<u32> {
        let at = self.ranks.binary_search_by(|&(x, y, _)| (x, y).cmp(&(a, b))).ok()?;
        self.ranks.get(at).map(|r| r.2)
    }
}

/// Tokenizes `text` (raw bytes) with byte-level BPE, appending to `out`. With `ignore_merges`,
/// a word that is a token as a whole becomes that token without merging.
pub(crate) fn tokenize(
    vocab: &Vocab<'_>,
    merges: &Merges<'_>,
    pre: PreTokenizer,
    ignore_merges: bool,
    text: &[u8],
    out: &mut Vec<u32>,
    ticker: &mut Ticker<'_>,
) {
    let cps = code_points(text);
    let mut start = 0;
    let mut word = String::new();
    for len in split(&cps, pre) {
        // The word's UTF-8 bytes, each mapped to its GPT-2 character.
        word.clear();
        let mut utf8 = [0u8; 4];
        for &cp in cps.get(start..start + len).unwrap_or(&[]) {
            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
            for &b in ch.encode_utf8(&mut utf8).as_bytes() {
                word.push(byte_to_char(b));
            }
        }
        start += len;
        ticker.step();
        if ignore_merges {
            if let Some(id) = vocab.id(word.as_bytes()) {
                out.push(id);
                continue;
            }
        }
        merge_word(vocab, merges, &word, out, ticker);
    }
}

fn merge_word(vocab: &Vocab<'_>, merges: &Merges<'_>, word: &str, out: &mut Vec<u32>, ticker: &mut Ticker<'_>) {
    let bytes = word.as_bytes();
    let symbols = merge(
        bytes,
        |rest| core::str::from_utf8(rest).ok().and_then(|s| s.chars().next()).map_or(1, char::len_utf8),
        |piece, split| {
            let (a, b) = piece.split_at(split);
            merges.rank(core::str::from_utf8(a).ok()?, core::str::from_utf8(b).ok()?).map(Reverse)
        },
        |_, _, _| {},
        ticker,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_sort_orders_like_sort() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for n in [0usize, 1, 2, 3, 7, 100, 1000, 4097] {
            let v: Vec<(u8, u16)> = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 7) as u8, (seed >> 20) as u16)
                })
                .collect();
            let (mut ours, mut want) = (v.clone(), v);
            heap_sort(&mut ours);
            want.sort();
            assert_eq!(ours, want, "n = {n}");
        }
    }

    fn words(text: &str, pre: PreTokenizer) -> Vec<String> {
        let cps: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let mut start = 0;
        split(&cps, pre)
            .into_iter()
            .map(|len| {
                let w = cps[start..start + len].iter().filter_map(|&c| char::from_u32(c)).collect();
                start += len;
                w
            })
            .collect()
    }

    #[test]
    fn smollm_splits_every_digit_before_gpt2_rules() {
        // GPT-2 keeps a space with the number after it and a whitespace run's last space with
        // the next word; SmolLM's `\p{N}` split comes first, so neither crosses a digit.
        assert_eq!(words(" 12ab  3", PreTokenizer::Gpt2), [" 12", "ab", " ", " 3"]);
        assert_eq!(words(" 12ab  3", PreTokenizer::Smollm), [" ", "1", "2", "ab", "  ", "3"]);
        assert_eq!(words("x٣y", PreTokenizer::Smollm), ["x", "٣", "y"]);
        assert_eq!(words("it's 2024!", PreTokenizer::Smollm), ["it", "'s", " ", "2", "0", "2", "4", "!"]);
        assert_eq!(words("", PreTokenizer::Smollm), Vec::<String>::new());
        assert_eq!(words("9", PreTokenizer::Smollm), ["9"]);
    }

    #[test]
    fn every_accepted_name_is_listed_once() {
        for (i, s) in PRE_TOKENIZERS.iter().enumerate() {
            assert_eq!(PreTokenizer::lookup(s.name), Some(s));
            assert!(PRE_TOKENIZERS[..i].iter().all(|t| t.name != s.name), "{} twice", s.name);
        }
        assert_eq!(PreTokenizer::lookup("smollm").map(|s| s.rules), Some(PreTokenizer::Smollm));
        assert_eq!(PreTokenizer::lookup("llama-bpe").map(|s| (s.ignore_merges, s.add_bos)), Some((true, true)));
        assert_eq!(PreTokenizer::lookup("dbrx").map(|s| (s.ignore_merges, s.add_bos)), Some((false, false)));
        assert_eq!(PreTokenizer::lookup("tekken"), None);
        assert_eq!(PreTokenizer::lookup(""), None);
    }
}
