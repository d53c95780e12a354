//! Tokenizers on hostile input, two ways chosen by the first byte:
//!
//! * any bytes as text, over a real vocabulary (llama.cpp's `ggml-vocab-*.gguf` files in
//!   `$LLAMUX_VOCAB_DIR`, else `~/.cache/llamux/vocab` or a directory in it, loaded once), encoded with and without
//!   special tokens, then decoded;
//! * a small vocabulary-only GGUF made from the bytes (SentencePiece or byte-level BPE, random
//!   tokens, scores, types, merges, special ids and flags; `tokenizer.ggml.pre` among the
//!   accepted names or not), then text from the remaining bytes through it.
//!
//! Loading gives a typed error or a tokenizer whose every id is in the vocabulary, whose
//! pieces exist for every id (and for ids past the end: nothing), and which never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamux_core::gguf::{Gguf, GgufWriter, MetaValue, ValueType};
use llamux_core::tokenizer::{Tokenizer, PRE_TOKENIZERS};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The real vocabularies' paths, listed once.
fn paths() -> &'static [PathBuf] {
    static P: OnceLock<Vec<PathBuf>> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::var_os("LLAMUX_VOCAB_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/llamux/vocab")
        });
        let list = |d: &std::path::Path| -> Vec<PathBuf> {
            std::fs::read_dir(d).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
        };
        // The files, or those one directory down (`llamux pull llama-vocabs` keeps them there).
        let mut paths: Vec<PathBuf> =
            list(&dir).into_iter().flat_map(|p| if p.is_dir() { list(&p) } else { vec![p] }).collect();
        paths.retain(|p| p.extension().is_some_and(|e| e == "gguf"));
        paths.sort();
        eprintln!("tokenizer fuzz: {} vocabulary files in {}", paths.len(), dir.display());
        paths
    })
}

/// One vocabulary file, its parse and its tokenizer (`None` where this engine refuses it, for
/// its pre-tokenizer), all kept for the process's life.
struct Loaded {
    _bytes: &'static [u8],
    _gguf: Option<&'static Gguf<'static>>,
    tok: Option<Tokenizer<'static>>,
}

/// The tokenizer of vocabulary `i`, loaded the first time it is picked (loading them all at
/// once would take most of a short run).
fn vocab(i: usize) -> Option<&'static Tokenizer<'static>> {
    static SLOTS: OnceLock<Vec<OnceLock<Loaded>>> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| paths().iter().map(|_| OnceLock::new()).collect());
    let loaded = slots.get(i)?.get_or_init(|| {
        let bytes: &'static [u8] =
            Box::leak(paths().get(i).and_then(|p| std::fs::read(p).ok()).unwrap_or_default().into_boxed_slice());
        let gguf: Option<&'static Gguf<'static>> = Gguf::parse(bytes).ok().map(|g| &*Box::leak(Box::new(g)));
        let tok = gguf.and_then(|g| Tokenizer::from_gguf(g).ok());
        Loaded { _bytes: bytes, _gguf: gguf, tok }
    });
    loaded.tok.as_ref()
}

fn check(t: &Tokenizer<'_>, text: &[u8], flags: u8) {
    let n = t.vocab.len() as u32;
    let ids = t.encode(text, flags & 1 != 0, flags & 2 != 0);
    for &id in &ids {
        assert!(id < n, "token {id} outside a vocabulary of {n}");
    }
    let _ = t.decode(&ids, flags & 4 != 0);
    let _ = t.piece(n, true);
    let _ = t.piece(u32::MAX, false);
}

/// A vocabulary-only GGUF described by `data`, and the bytes left for text.
fn synthetic(data: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut at = 0usize;
    let mut next = || {
        let b = data.get(at).copied().unwrap_or(0);
        at += 1;
        b
    };
    let bpe = next() & 1 == 1;
    let n_tokens = usize::from(next() % 64);
    let mut tokens = Vec::with_capacity(n_tokens);
    let mut scores = Vec::with_capacity(n_tokens);
    let mut types = Vec::with_capacity(n_tokens);
    for i in 0..n_tokens {
        let len = usize::from(next() % 6);
        let s: String = (0..len)
            .map(|_| match next() % 8 {
                0 => ' ',
                1 => '\u{2581}',
                2 => '\u{120}',
                3 => '<',
                4 => '>',
                b => char::from(b'a' + (b % 4)),
            })
            .collect();
        // Byte tokens as SentencePiece names them (`<0x41>`), sometimes malformed.
        let s = if next() % 5 == 0 { format!("<0x{:02X}>", next()) } else { s };
        tokens.push(if i % 16 == 15 { String::new() } else { s });
        scores.push(MetaValue::F32(f32::from(next()) - 128.0));
        types.push(MetaValue::I32(i32::from(next() % 8) - 1));
    }
    let mut w = GgufWriter::new();
    w.add("tokenizer.ggml.model", MetaValue::String(if bpe { "gpt2" } else { "llama" }.into())).ok()?;
    w.add("tokenizer.ggml.tokens", MetaValue::strings(tokens.iter().map(String::as_str))).ok()?;
    let flags = next();
    if flags & 1 != 0 {
        // Sometimes the wrong length.
        let mut s = scores;
        if flags & 8 != 0 {
            s.pop();
        }
        w.add("tokenizer.ggml.scores", MetaValue::Array { elem: ValueType::F32, items: s }).ok()?;
    }
    if flags & 2 != 0 {
        w.add("tokenizer.ggml.token_type", MetaValue::Array { elem: ValueType::I32, items: types }).ok()?;
    }
    if bpe {
        let names: Vec<&str> = PRE_TOKENIZERS.iter().map(|p| p.name).collect();
        let pick = usize::from(next());
        let pre = names.get(pick % (names.len() + 1)).copied().unwrap_or("no-such-pre-tokenizer");
        w.add("tokenizer.ggml.pre", MetaValue::String(pre.into())).ok()?;
        let n_merges = usize::from(next() % 32);
        let merges: Vec<String> = (0..n_merges)
            .map(|_| {
                let a = tokens.get(usize::from(next())).map_or("", String::as_str);
                let b = tokens.get(usize::from(next())).map_or("", String::as_str);
                if next() % 7 == 0 {
                    a.to_string()
                } else {
                    format!("{a} {b}")
                }
            })
            .collect();
        if flags & 4 == 0 {
            w.add("tokenizer.ggml.merges", MetaValue::strings(merges.iter().map(String::as_str))).ok()?;
        }
    }
    for key in ["bos", "eos", "unknown", "padding", "eot"] {
        if next() % 3 == 0 {
            let id = u32::from(next()) % (n_tokens as u32 + 4);
            w.add(&format!("tokenizer.ggml.{key}_token_id"), MetaValue::U32(id)).ok()?;
        }
    }
    for key in ["add_bos_token", "add_eos_token", "add_space_prefix"] {
        let b = next();
        if b % 3 == 0 {
            w.add(&format!("tokenizer.ggml.{key}"), MetaValue::Bool(b & 8 != 0)).ok()?;
        }
    }
    let bytes = w.header_bytes().ok()?;
    Some((bytes, data.get(at..).unwrap_or(&[])))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let n_real = paths().len();
    if mode & 1 == 0 && n_real > 0 {
        let Some((&pick, text)) = rest.split_first() else { return };
        // A vocabulary this engine refuses is skipped.
        if let Some(t) = vocab(usize::from(pick) % n_real) {
            check(t, text, mode >> 1);
        }
        return;
    }
    let Some((bytes, text)) = synthetic(rest) else { return };
    let Ok(g) = Gguf::parse(&bytes) else { return };
    if let Ok(t) = Tokenizer::from_gguf(&g) {
        check(&t, text, mode >> 1);
    }
});
