//! Tokenizers: SentencePiece (and, to come, byte-level BPE) behind one type, with llama.cpp's
//! handling of special tokens, BOS/EOS and the SentencePiece space prefix.

#![warn(clippy::indexing_slicing)]

mod bpe;
mod merge;
mod special;
mod spm;
mod unicode;
mod unicode_table;
mod vocab;

pub use bpe::{PreTokenizer, PreTokenizerSpec, PRE_TOKENIZERS};
pub use vocab::{TokenType, Vocab, VocabError};

use crate::gguf::Gguf;
use alloc::string::ToString;
use alloc::vec::Vec;
use special::Fragment;

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
        let v = &self.vocab;
        let mut out = Vec::new();
        if add_special && v.add_bos {
            out.extend(v.bos);
        }
        let fragments = special::partition(v, text, parse_special);
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
                            spm::tokenize(v, &buf, &mut out);
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
                        (Fragment::Text(s, e), Some(m)) => {
                            bpe::tokenize(v, m, pre, self.ignore_merges, text.get(s..e).unwrap_or(&[]), &mut out)
                        }
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
}
