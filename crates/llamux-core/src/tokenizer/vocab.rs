//! The vocabulary: token texts, scores, types and special ids, borrowed from GGUF metadata.

use crate::gguf::Gguf;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A token's type (`tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TokenType {
    /// Ordinary text.
    Normal = 1,
    /// `<unk>`.
    Unknown = 2,
    /// Control tokens (`<s>`, `<start_of_turn>`); parsed from text only on request.
    Control = 3,
    /// User-defined tokens, always matched as whole strings.
    UserDefined = 4,
    /// Unused slots.
    Unused = 5,
    /// Byte-fallback tokens `<0xXX>`.
    Byte = 6,
}

impl TokenType {
    fn from_i64(v: i64) -> Self {
        match v {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

/// Why a vocabulary could not be loaded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VocabError {
    /// `tokenizer.ggml.tokens` is missing or empty.
    NoTokens,
    /// `tokenizer.ggml.model` names a tokenizer the engine lacks.
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer the engine lacks (the accepted names are
    /// [`PRE_TOKENIZERS`](super::bpe::PRE_TOKENIZERS)).
    UnsupportedPreTokenizer(String),
    /// An array's length differs from the number of tokens, or a special id is out of range.
    Inconsistent(&'static str),
}

impl fmt::Display for VocabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VocabError::NoTokens => f.write_str("the model has no tokenizer.ggml.tokens"),
            VocabError::UnsupportedModel(m) => write!(f, "tokenizer model {m:?} is not supported (llama, gpt2 are)"),
            VocabError::UnsupportedPreTokenizer(p) => {
                write!(f, "pre-tokenizer {p:?} (tokenizer.ggml.pre) is not supported; accepted: ")?;
                for (i, s) in super::bpe::PRE_TOKENIZERS.iter().enumerate() {
                    write!(f, "{}{}", if i == 0 { "" } else { ", " }, s.name)?;
                }
                Ok(())
            }
            VocabError::Inconsistent(what) => write!(f, "inconsistent tokenizer metadata: {what}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VocabError {}

/// Token texts and attributes with lookups by text.
pub struct Vocab<'a> {
    /// Token texts (as stored: `▁` for spaces in SentencePiece, byte-mapped in BPE).
    pub tokens: Vec<&'a str>,
    /// Scores (SentencePiece merge priorities).
    pub scores: Vec<f32>,
    /// Types.
    pub types: Vec<TokenType>,
    by_text: BTreeMap<&'a [u8], u32>,
    /// Control, user-defined and unknown tokens, longest first (matched before tokenizing).
    pub specials: Vec<u32>,
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// Unknown.
    pub unk: Option<u32>,
    /// Every token that ends generation.
    pub eog: Vec<u32>,
    /// Whether BOS is prepended to prompts.
    pub add_bos: bool,
    /// Whether EOS is appended to prompts.
    pub add_eos: bool,
    /// Whether a space is prepended to text (SentencePiece).
    pub add_space_prefix: bool,
}

/// Texts of tokens that end a turn in common chat formats.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
];

impl<'a> Vocab<'a> {
    /// Reads `tokenizer.ggml.*`. `spm` selects SentencePiece's default space prefix, `bos` the
    /// default of adding BOS (metadata flags override both).
    pub fn from_gguf(g: &Gguf<'a>, spm: bool, bos_default: bool) -> Result<Self, VocabError> {
        let arr = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).ok_or(VocabError::NoTokens)?;
        let tokens: Vec<&'a str> = arr.strings().map(|s| s.unwrap_or("")).collect();
        if tokens.is_empty() {
            return Err(VocabError::NoTokens);
        }
        let n = tokens.len();
        let scores: Vec<f32> = match g.get("tokenizer.ggml.scores").and_then(|v| v.as_array()) {
            Some(a) if a.len() == n => a.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect(),
            Some(_) => return Err(VocabError::Inconsistent("tokenizer.ggml.scores length")),
            None => alloc::vec![0.0; n],
        };
        let types: Vec<TokenType> = match g.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
            Some(a) if a.len() == n => a.iter().map(|v| TokenType::from_i64(v.as_i64().unwrap_or(1))).collect(),
            Some(_) => return Err(VocabError::Inconsistent("tokenizer.ggml.token_type length")),
            None => alloc::vec![TokenType::Normal; n],
        };
        let mut by_text = BTreeMap::new();
        for (i, t) in tokens.iter().enumerate() {
            // On duplicate texts the first id wins.
            by_text.entry(t.as_bytes()).or_insert(i as u32);
        }
        let id = |key: &str| -> Result<Option<u32>, VocabError> {
            match g.get_u64(key) {
                None => Ok(None),
                Some(v) if (v as usize) < n => Ok(Some(v as u32)),
                Some(_) => Err(VocabError::Inconsistent("special token id out of range")),
            }
        };
        let flag = |key: &str, default: bool| g.get(key).and_then(|v| v.as_bool()).unwrap_or(default);
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let mut eog: Vec<u32> = [eos, id("tokenizer.ggml.eot_token_id")?, id("tokenizer.ggml.eom_token_id")?]
            .into_iter()
            .flatten()
            .collect();
        for text in EOG_TEXTS {
            if let Some(&t) = by_text.get(text.as_bytes()) {
                if !eog.contains(&t) && types.get(t as usize) != Some(&TokenType::Normal) {
                    eog.push(t);
                }
            }
        }
        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                matches!(types.get(i as usize), Some(TokenType::Control | TokenType::UserDefined | TokenType::Unknown))
                    && tokens.get(i as usize).is_some_and(|t| !t.is_empty())
            })
            .collect();
        specials.sort_by_key(|&i| core::cmp::Reverse(tokens.get(i as usize).map_or(0, |t| t.len())));
        Ok(Vocab {
            scores,
            types,
            by_text,
            specials,
            bos,
            eos,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            eog,
            add_bos: flag("tokenizer.ggml.add_bos_token", bos_default),
            add_eos: flag("tokenizer.ggml.add_eos_token", false),
            add_space_prefix: flag("tokenizer.ggml.add_space_prefix", spm),
            tokens,
        })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of the token whose text is exactly `text`.
    pub fn id(&self, text: &[u8]) -> Option<u32> {
        self.by_text.get(text).copied()
    }

    /// The stored text of token `id`.
    pub fn text(&self, id: u32) -> Option<&'a str> {
        self.tokens.get(id as usize).copied()
    }

    /// The type of token `id`.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Whether `id` ends generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }
}
