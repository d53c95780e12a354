//! Tokenizers: SentencePiece (and, to come, byte-level BPE) behind one type, with llama.cpp's
//! handling of special tokens, BOS/EOS and the SentencePiece space prefix.

#![warn(clippy::indexing_slicing)]

mod bpe;
mod merge;
mod special;
mod spm;
mod tick;
mod unicode;
mod unicode_table;
mod vocab;

pub use bpe::{PreTokenizer, PreTokenizerSpec, PRE_TOKENIZERS};
pub use vocab::{TokenType, Vocab, VocabError};

use crate::gguf::Gguf;
use alloc::string::ToString;
use alloc::vec::Vec;
use special::Fragment;
use tick::Ticker;

/// Which algorithm splits text into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// SentencePiece with scores and byte fallback (`llama`).
    SentencePiece,
    /// Byte-level BPE with merges (`gpt2`), and its pre-tokenizer.
    BytePairEncoding(PreTokenizer),
}

/// A model's tokenizer.
pub struct Tokenizer<'a> {
    /// The vocabulary.
    pub vocab: Vocab<'a>,
    /// The algorithm.
    pub kind: TokenizerKind,
    merges: Option<bpe::Merges<'a>>,
    ignore_merges: bool,
}

pub use tick::TICK_WORK;

/// `▁` (U+2581), SentencePiece's visible space.
const SPM_SPACE: &str = "\u{2581}";

impl<'a> Tokenizer<'a> {
    /// Loads the tokenizer described by `tokenizer.ggml.*`.
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self, VocabError> {
        let model = g.get_str("tokenizer.ggml.model").unwrap_or("llama");
        match model {
            "llama" => Ok(Tokenizer {
                vocab: Vocab::from_gguf(g, true, true)?,
                kind: TokenizerKind::SentencePiece,
                merges: None,
                ignore_merges: false,
            }),
            "gpt2" => {
                // llama.cpp assumes `default` when the key is missing.
                let name = g.get_str("tokenizer.ggml.pre").unwrap_or("default");
                let pre =
                    PreTokenizer::lookup(name).ok_or_else(|| VocabError::UnsupportedPreTokenizer(name.to_string()))?;
                let merges = g
                    .get("tokenizer.ggml.merges")
                    .and_then(|v| v.as_array())
                    .ok_or(VocabError::Inconsistent("byte-level BPE without tokenizer.ggml.merges"))?;
                let merges = bpe::Merges::new(merges.strings().map(|m| m.unwrap_or("")), merges.len())
                    .map_err(|_| VocabError::OutOfMemory)?;
                Ok(Tokenizer {
                    vocab: Vocab::from_gguf(g, false, pre.add_bos)?,
                    kind: TokenizerKind::BytePairEncoding(pre.rules),
                    merges: Some(merges),
                    ignore_merges: pre.ignore_merges,
                })
            }
            other => Err(VocabError::UnsupportedModel(other.to_string())),
        }
    }

    /// Encodes `text` (any bytes). `add_special` adds BOS/EOS as the model's metadata asks;
    /// `parse_special` lets control tokens written in the text (`<start_of_turn>`) become tokens.
    pub fn encode(&self, text: &[u8], add_special: bool, parse_special: bool) -> Vec<u32> {
        self.encode_yielding(text, add_special, parse_special, &mut || {})
    }

    /// [`encode`](Self::encode), calling `tick` between bounded pieces of the work: at most
    /// [`TICK_WORK`] steps (a symbol, a merge, a word, a fragment), or one special token's
    /// search through the text. A host whose callers must not hold the CPU for long (the kernel,
    /// where the engine runs with preemption off) reschedules there. The tokens are the same.
    pub fn encode_yielding(
        &self,
        text: &[u8],
        add_special: bool,
        parse_special: bool,
        tick: &mut dyn FnMut(),
    ) -> Vec<u32> {
        let v = &self.vocab;
        let mut ticker = Ticker::new(tick);
        let ticker = &mut ticker;
        let mut out = Vec::new();
        if add_special && v.add_bos {
            out.extend(v.bos);
        }
        let fragments = special::partition(v, text, parse_special, ticker);
        match self.kind {
            TokenizerKind::SentencePiece => {
                let mut prev_special = true;
                let mut buf = Vec::new();
                for f in fragments {
                    match f {
                        Fragment::Text(s, e) => {
                            buf.clear();
                            if v.add_space_prefix && prev_special {
                                buf.extend_from_slice(SPM_SPACE.as_bytes());
                            }
                            for &b in text.get(s..e).unwrap_or(&[]) {
                                if b == b' ' {
                                    buf.extend_from_slice(SPM_SPACE.as_bytes());
                                } else {
                                    buf.push(b);
                                }
                            }
                            spm::tokenize(v, &buf, &mut out, ticker);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            TokenizerKind::BytePairEncoding(pre) => {
                for f in fragments {
                    match (f, &self.merges) {
                        (Fragment::Text(s, e), Some(m)) => bpe::tokenize(
                            v,
                            m,
                            pre,
                            self.ignore_merges,
                            text.get(s..e).unwrap_or(&[]),
                            &mut out,
                            ticker,
                        ),
                        (Fragment::Text(..), None) => {}
                        (Fragment::Token(id), _) => out.push(id),
                    }
                }
            }
        }
        if add_special && v.add_eos {
            out.extend(v.eos);
        }
        out
    }

    /// The bytes token `id` stands for; control and unknown tokens give their text only when
    /// `special` is set (llama.cpp's `token_to_piece`).
    pub fn piece(&self, id: u32, special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.append_piece(id, special, &mut out);
        out
    }

    /// Appends the bytes of token `id` to `out` (no allocation when `out` has room).
    pub fn append_piece(&self, id: u32, special: bool, out: &mut Vec<u8>) {
        let v = &self.vocab;
        let (Some(text), Some(ty)) = (v.text(id), v.token_type(id)) else { return };
        match ty {
            TokenType::Control | TokenType::Unknown => {
                if special {
                    out.extend_from_slice(text.as_bytes());
                }
            }
            TokenType::UserDefined => out.extend_from_slice(text.as_bytes()),
            TokenType::Byte => out.extend(text.get(3..5).and_then(|h| u8::from_str_radix(h, 16).ok())),
            TokenType::Normal | TokenType::Unused => match self.kind {
                TokenizerKind::SentencePiece => {
                    let mut rest = text;
                    while let Some((before, after)) = rest.split_once(SPM_SPACE) {
                        out.extend_from_slice(before.as_bytes());
                        out.push(b' ');
                        rest = after;
                    }
                    out.extend_from_slice(rest.as_bytes());
                }
                TokenizerKind::BytePairEncoding(_) => {
                    for ch in text.chars() {
                        match unicode::char_to_byte(ch) {
                            Some(b) => out.push(b),
                            None => out.extend_from_slice(ch.encode_utf8(&mut [0u8; 4]).as_bytes()),
                        }
                    }
                }
            },
        }
    }

    /// Decodes a token sequence to bytes: pieces concatenated; after a leading BOS, the space
    /// the SentencePiece tokenizer prefixed is removed (as llama-cpp-python's `detokenize`).
    pub fn decode(&self, ids: &[u32], special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let bos = self.vocab.bos;
        let mut strip = !special && self.vocab.add_space_prefix && bos.is_some() && ids.first().copied() == bos;
        for &id in ids {
            let p = self.piece(id, special);
            let skip = usize::from(strip && Some(id) != bos && p.first() == Some(&b' '));
            if Some(id) != bos {
                strip = false;
            }
            out.extend_from_slice(p.get(skip..).unwrap_or(&[]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{GgufWriter, MetaValue};
    use alloc::string::String;
    use alloc::vec;

    fn gguf(pre: Option<&str>) -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.add("tokenizer.ggml.model", MetaValue::String("gpt2".into())).unwrap();
        if let Some(p) = pre {
            w.add("tokenizer.ggml.pre", MetaValue::String(p.into())).unwrap();
        }
        w.add("tokenizer.ggml.tokens", MetaValue::strings(["1", "2", "a", "b", "ab", "Ġ", "12"])).unwrap();
        w.add("tokenizer.ggml.merges", MetaValue::strings(["a b", "1 2"])).unwrap();
        w.header_bytes().unwrap()
    }

    fn load(pre: Option<&str>) -> Result<(TokenizerKind, Vec<u32>), VocabError> {
        let bytes = gguf(pre);
        let g = Gguf::parse(&bytes).unwrap();
        let t = Tokenizer::from_gguf(&g)?;
        Ok((t.kind, t.encode(b"ab 12", false, false)))
    }

    #[test]
    fn pre_tokenizer_names() {
        use PreTokenizer::*;
        assert_eq!(load(Some("smollm")), Ok((TokenizerKind::BytePairEncoding(Smollm), vec![4, 5, 0, 1])));
        assert_eq!(load(Some("gpt-2")).map(|r| r.0), Ok(TokenizerKind::BytePairEncoding(Gpt2)));
        // A missing key is llama.cpp's `default`.
        assert_eq!(load(None).map(|r| r.0), Ok(TokenizerKind::BytePairEncoding(Gpt2)));
        assert_eq!(load(Some("qwen2")).map(|r| r.0), Ok(TokenizerKind::BytePairEncoding(Qwen2)));
        let err = load(Some("tekken")).unwrap_err();
        assert_eq!(err, VocabError::UnsupportedPreTokenizer(String::from("tekken")));
        let msg = err.to_string();
        assert!(msg.contains("\"tekken\"") && msg.contains("smollm") && msg.contains("llama-bpe"), "{msg}");
    }

    /// A long text tokenized with a tick: the same tokens as without, and a tick at least every
    /// `TICK_WORK` steps of each part of the work (so a host rescheduling there is never held up
    /// by the whole text at once).
    #[test]
    fn encoding_with_a_tick_gives_the_same_tokens_in_bounded_pieces() {
        let mut w = GgufWriter::new();
        w.add("tokenizer.ggml.model", MetaValue::String("llama".into())).unwrap();
        let tokens = ["<unk>", "<s>", "</s>", "\u{2581}", "a", "b", "ab", "\u{2581}ab", "<|x|>"];
        w.add("tokenizer.ggml.tokens", MetaValue::strings(tokens)).unwrap();
        w.add("tokenizer.ggml.scores", MetaValue::f32s([0.0, 0.0, 0.0, -3.0, -4.0, -4.0, -2.0, -1.0, 0.0])).unwrap();
        // Control tokens: <unk>, <s>, </s> and <|x|>.
        w.add("tokenizer.ggml.token_type", MetaValue::i32s([3, 3, 3, 1, 1, 1, 1, 1, 3])).unwrap();
        let spm = w.header_bytes().unwrap();
        let gpt2 = gguf(Some("gpt-2"));
        let mut text = Vec::new();
        while text.len() < 64 * 1024 {
            text.extend_from_slice(b"ab ba 12 a<|x|>b ");
        }
        for bytes in [spm, gpt2] {
            let g = Gguf::parse(&bytes).unwrap();
            let t = Tokenizer::from_gguf(&g).unwrap();
            let plain = t.encode(&text, true, true);
            let mut ticks = 0usize;
            let ticked = t.encode_yielding(&text, true, true, &mut || ticks += 1);
            assert_eq!(ticked, plain);
            assert!(plain.len() > 10_000, "{} tokens", plain.len());
            // Each byte of the text is at least one step of the merge loop.
            assert!(ticks >= text.len() / TICK_WORK, "{ticks} ticks for {} bytes", text.len());
        }
    }
}
