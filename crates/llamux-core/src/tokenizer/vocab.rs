//! The vocabulary: token texts, scores, types and special ids, borrowed from GGUF metadata.

use crate::gguf::Gguf;
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
    /// Memory for the vocabulary's tables ran out.
    OutOfMemory,
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
            VocabError::OutOfMemory => f.write_str("out of memory while loading the tokenizer"),
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
    /// Token ids sorted by text (the first id of each text only): lookups by binary search.
    by_text: Vec<u32>,
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
        let oom = |_| VocabError::OutOfMemory;
        let mut tokens: Vec<&'a str> = Vec::new();
        tokens.try_reserve_exact(arr.len()).map_err(oom)?;
        tokens.extend(arr.strings().map(|s| s.unwrap_or("")));
        if tokens.is_empty() {
            return Err(VocabError::NoTokens);
        }
        let n = tokens.len();
        let mut scores: Vec<f32> = Vec::new();
        scores.try_reserve_exact(n).map_err(oom)?;
        match g.get("tokenizer.ggml.scores").and_then(|v| v.as_array()) {
            Some(a) if a.len() == n => scores.extend(a.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32)),
            Some(_) => return Err(VocabError::Inconsistent("tokenizer.ggml.scores length")),
            None => scores.resize(n, 0.0),
        }
        let mut types: Vec<TokenType> = Vec::new();
        types.try_reserve_exact(n).map_err(oom)?;
        match g.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
            Some(a) if a.len() == n => types.extend(a.iter().map(|v| TokenType::from_i64(v.as_i64().unwrap_or(1)))),
            Some(_) => return Err(VocabError::Inconsistent("tokenizer.ggml.token_type length")),
            None => types.resize(n, TokenType::Normal),
        }
        let mut by_text: Vec<u32> = Vec::new();
        by_text.try_reserve_exact(n).map_err(oom)?;
        by_text.extend(0..n as u32);
        let text = |i: &u32| tokens.get(*i as usize).map_or(&[][..], |t| t.as_bytes());
        // On duplicate texts the first id wins: sorted by text then id, the first of each run is kept.
        by_text.sort_unstable_by(|a, b| text(a).cmp(text(b)).then(a.cmp(b)));
        by_text.dedup_by(|later, first| text(later) == text(first));
        let lookup =
            |s: &[u8]| by_text.binary_search_by(|i| text(i).cmp(s)).ok().and_then(|at| by_text.get(at)).copied();
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
        let mut eog: Vec<u32> = Vec::new();
        eog.try_reserve_exact(3 + EOG_TEXTS.len()).map_err(oom)?;
        eog.extend([eos, id("tokenizer.ggml.eot_token_id")?, id("tokenizer.ggml.eom_token_id")?].into_iter().flatten());
        for text in EOG_TEXTS {
            if let Some(t) = lookup(text.as_bytes()) {
                if !eog.contains(&t) && types.get(t as usize) != Some(&TokenType::Normal) {
                    eog.push(t);
                }
            }
        }
        let is_special = |i: &u32| {
            matches!(types.get(*i as usize), Some(TokenType::Control | TokenType::UserDefined | TokenType::Unknown))
                && tokens.get(*i as usize).is_some_and(|t| !t.is_empty())
        };
        let mut specials: Vec<u32> = Vec::new();
        specials.try_reserve_exact((0..n as u32).filter(is_special).count()).map_err(oom)?;
        specials.extend((0..n as u32).filter(is_special));
        // Longest first, then by id (an unstable sort: it allocates nothing).
        let len = |i: &u32| tokens.get(*i as usize).map_or(0, |t| t.len());
        specials.sort_unstable_by(|a, b| len(b).cmp(&len(a)).then(a.cmp(b)));
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
        let of = |i: &u32| self.tokens.get(*i as usize).map_or(&[][..], |t| t.as_bytes());
        let at = self.by_text.binary_search_by(|i| of(i).cmp(text)).ok()?;
        self.by_text.get(at).copied()
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
